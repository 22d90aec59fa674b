//! API errors: one [`ApiError`] type, answered in OpenAI's error shape.
//!
//! Handlers build errors without knowing the request id; the request-id
//! middleware fills it in on the way out, so every error body (including
//! those from rejections, the fallback and the panic handler) carries it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use civitas_types::{ErrorBody, ErrorCode};

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    pub retry_after_seconds: Option<u64>,
    /// The status a remote provider answered, when the error is its.
    pub upstream_status: Option<u16>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            param: None,
            retry_after_seconds: None,
            upstream_status: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameter, message).with_param(param)
    }

    /// The database failed; logged here, answered 503.
    pub fn storage(error: civitas_store::StoreError) -> ApiError {
        match error {
            civitas_store::StoreError::NotFound { what } => {
                ApiError::new(ErrorCode::NotFound, format!("no such {what}"))
            }
            civitas_store::StoreError::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            civitas_store::StoreError::Invalid(message) => {
                ApiError::new(ErrorCode::InvalidParameter, message)
            }
            held @ civitas_store::StoreError::OnHold { .. } => {
                ApiError::new(ErrorCode::LegalHoldActive, held.to_string())
            }
            destroyed @ civitas_store::StoreError::Destroyed { .. } => {
                ApiError::new(ErrorCode::ContentDestroyed, destroyed.to_string())
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(
                    ErrorCode::StorageUnavailable,
                    "the database could not answer; try again",
                )
            }
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            ErrorCode::InternalError,
            "an internal error occurred; quote the request id to your administrator",
        )
    }
}

impl From<civitas_identity::provision::ProvisionError> for ApiError {
    fn from(error: civitas_identity::provision::ProvisionError) -> Self {
        use civitas_identity::provision::ProvisionError;
        match error {
            ProvisionError::Invalid { field, message } => ApiError::invalid(field, message),
            ProvisionError::Unresolved { field, message } => {
                ApiError::new(ErrorCode::UnresolvedReference, message).with_param(field)
            }
            ProvisionError::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            ProvisionError::Password(rejected) => {
                ApiError::new(ErrorCode::WeakPassword, rejected.to_string()).with_param("password")
            }
            ProvisionError::Store(error) => ApiError::storage(error),
        }
    }
}

/// Marker left in a response's extensions so the middleware can re-render
/// the body with the request id.
#[derive(Debug, Clone)]
pub struct ErrorMarker(pub ApiError);

impl ApiError {
    /// The response body for `request_id`.
    pub fn to_response(&self, request_id: &str) -> Response {
        let mut body = ErrorBody::new(self.code, self.message.clone(), self.param.clone(), request_id);
        body.error.upstream_status = self.upstream_status;
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if self.code.http_status() == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorMarker(self.clone()));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response("")
    }
}
