//! Our own JSON extractor: bounded, and its rejections use our error codes
//! and name the offending field.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use civitas_types::ErrorCode;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body parsed into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let limit = state.config.server.max_body_bytes as usize;
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let body: Body = request.into_body();
        let bytes = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    too_large()
                } else {
                    ApiError::new(
                        ErrorCode::InvalidRequestBody,
                        "the request body could not be read",
                    )
                }
            })?
            .to_bytes();
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("the body is not valid JSON: {inner}")
            }
            _ if path == "." || path.is_empty() => format!("invalid request body: {inner}"),
            _ => format!("invalid value for `{path}`: {inner}"),
        };
        let error = ApiError::new(ErrorCode::InvalidRequestBody, message);
        if path == "." || path.is_empty() {
            error
        } else {
            error.with_param(path)
        }
    })?;
    deserializer.end().map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidRequestBody,
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use civitas_types::openai::ChatCompletionRequest;

    #[test]
    fn wrong_type_names_the_field() {
        let error =
            parse_json::<ChatCompletionRequest>(br#"{"model": "m", "messages": [], "temperature": "hot"}"#)
                .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("temperature"));
        assert_eq!(error.code, ErrorCode::InvalidRequestBody);
    }

    #[test]
    fn missing_field_is_reported() {
        let error = parse_json::<ChatCompletionRequest>(br#"{"messages": []}"#).unwrap_err();
        assert!(error.message.contains("model"), "{}", error.message);
    }

    #[test]
    fn syntax_error_is_reported() {
        let error = parse_json::<ChatCompletionRequest>(b"{\"model\": ").unwrap_err();
        assert!(error.message.contains("not valid JSON"), "{}", error.message);
    }
}
