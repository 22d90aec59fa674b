//! The one table of error codes.
//!
//! Every crate maps its own errors into an [`ErrorCode`]; the HTTP edge turns
//! the code into a status and an OpenAI-shaped body. Codes are stable: a
//! client may match on them, so a code is never renamed, only added.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable error code with its OpenAI error `type` and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The JSON body could not be parsed or a field has the wrong type.
    InvalidRequestBody,
    /// A field is present and well typed but its value is not allowed.
    InvalidParameter,
    /// The request has no body or the wrong content type.
    UnsupportedMediaType,
    /// The body is larger than `server.max_body_bytes`.
    PayloadTooLarge,
    /// No `Authorization: Bearer` header was sent.
    MissingApiKey,
    /// The bearer token is not a valid key.
    InvalidApiKey,
    /// The requested model is not served by this installation.
    ModelNotFound,
    /// The route does not exist.
    RouteNotFound,
    /// The addressed record does not exist (or belongs to someone else).
    NotFound,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The inference queue is full; retry after the `Retry-After` delay.
    QueueFull,
    /// The model is still loading or failed to load.
    ModelUnavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// The database could not complete the request.
    StorageUnavailable,
    /// A remote provider could not be reached or answered with an error.
    UpstreamError,
    /// Something unexpected happened; the request id locates it in the logs.
    InternalError,
}

impl ErrorCode {
    /// Every code, for the generated documentation and tests.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::InvalidRequestBody,
        ErrorCode::InvalidParameter,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MissingApiKey,
        ErrorCode::InvalidApiKey,
        ErrorCode::ModelNotFound,
        ErrorCode::RouteNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ContextLengthExceeded,
        ErrorCode::QueueFull,
        ErrorCode::ModelUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::StorageUnavailable,
        ErrorCode::UpstreamError,
        ErrorCode::InternalError,
    ];

    /// The stable machine-readable code sent as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequestBody => "invalid_request_body",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ContextLengthExceeded => "context_length_exceeded",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// OpenAI's `error.type` for this code.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequestBody
            | ErrorCode::InvalidParameter
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::PayloadTooLarge
            | ErrorCode::ModelNotFound
            | ErrorCode::RouteNotFound
            | ErrorCode::NotFound
            | ErrorCode::MethodNotAllowed
            | ErrorCode::ContextLengthExceeded => "invalid_request_error",
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::QueueFull => "rate_limit_error",
            ErrorCode::ModelUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::StorageUnavailable
            | ErrorCode::UpstreamError
            | ErrorCode::InternalError => "server_error",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequestBody
            | ErrorCode::InvalidParameter
            | ErrorCode::ContextLengthExceeded => 400,
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey => 401,
            ErrorCode::ModelNotFound | ErrorCode::RouteNotFound | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::QueueFull => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::UpstreamError => 502,
            ErrorCode::ModelUnavailable | ErrorCode::ShuttingDown | ErrorCode::StorageUnavailable => 503,
        }
    }
}

/// `{"error": {...}}`, OpenAI's error envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of OpenAI's error envelope, plus the request id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    pub param: Option<String>,
    pub code: String,
    pub request_id: String,
}

impl ErrorBody {
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        param: Option<String>,
        request_id: impl Into<String>,
    ) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                error_type: code.error_type().to_owned(),
                param,
                code: code.as_str().to_owned(),
                request_id: request_id.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {}", code.as_str());
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
