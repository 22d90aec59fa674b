//! Cross-cutting layers: request ids, error bodies, metrics, access log,
//! authentication.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use civitas_types::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorMarker};
use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::AppState;

/// The id of the request being handled, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// When the request arrived, in request extensions.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

/// Who is calling, set by [`require_api_key`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// Stable, non-secret name of the credential (`bootstrap` for now).
    pub actor: String,
}

fn acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Outermost layer: assigns the request id (or keeps a sane one given by the
/// client), puts it on the response, renders error bodies with it, counts
/// the request and writes one access-log line without any content.
pub async fn request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| acceptable_request_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()));
    request.extensions_mut().insert(RequestId(request_id.clone()));
    request.extensions_mut().insert(RequestStart(started));
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let route = response
        .extensions()
        .get::<crate::RouteLabel>()
        .map(|label| label.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(ErrorMarker(error)) = response.extensions_mut().remove::<ErrorMarker>() {
        let headers = response.headers().clone();
        response = error.to_response(&request_id);
        for (name, value) in headers.iter() {
            if !response.headers().contains_key(name) {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response.extensions_mut().remove::<ErrorMarker>();
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method: method.to_string(),
            status,
        })
        .inc();
    let elapsed = started.elapsed();
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(elapsed.as_secs_f64());
    if method != Method::GET || status >= 400 {
        tracing::info!(
            request_id = %request_id,
            method = %method,
            route = %route,
            status,
            latency_ms = elapsed.as_millis() as u64,
            "request"
        );
    }
    response
}

/// Requires `Authorization: Bearer <key>` matching the bootstrap key.
pub async fn require_api_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let Some(token) = header.and_then(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
    }) else {
        return ApiError::new(
            ErrorCode::MissingApiKey,
            "this route needs an API key: send `Authorization: Bearer <key>`",
        )
        .to_response("");
    };
    let valid = state.bootstrap_key.as_ref().is_some_and(|key| {
        let expected = key.expose().as_bytes();
        expected.len() == token.len() && bool::from(expected.ct_eq(token.as_bytes()))
    });
    if !valid {
        return ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid").to_response("");
    }
    request.extensions_mut().insert(Caller {
        actor: "bootstrap".to_owned(),
    });
    next.run(request).await
}
