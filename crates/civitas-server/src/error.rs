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
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            param: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameter, message).with_param(param)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            ErrorCode::InternalError,
            "an internal error occurred; quote the request id to your administrator",
        )
    }
}

/// Marker left in a response's extensions so the middleware can re-render
/// the body with the request id.
#[derive(Debug, Clone)]
pub struct ErrorMarker(pub ApiError);

impl ApiError {
    /// The response body for `request_id`.
    pub fn to_response(&self, request_id: &str) -> Response {
        let body = ErrorBody::new(self.code, self.message.clone(), self.param.clone(), request_id);
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
