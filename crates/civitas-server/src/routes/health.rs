//! `/healthz` (the process answers), `/readyz` (database and model ready)
//! and `/metrics` (Prometheus).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use civitas_types::ErrorCode;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations",
    summary = "Liveness: the process answers (no authentication)",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    summary = "Readiness: database reachable and model loaded (no authentication)",
    responses((status = 200, description = "Ready"), (status = 503, body = civitas_types::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    if let Err(error) = state.store.ping().await {
        tracing::warn!(%error, "readiness: database unavailable");
        return Err(ApiError::new(
            ErrorCode::StorageUnavailable,
            "the database is unavailable",
        ));
    }
    let model = state.chat.as_ref().map(|engine| engine.info().name.clone());
    if model.is_none() && !state.config.models.chat.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ModelUnavailable,
            "the chat model is not loaded",
        ));
    }
    Ok((
        StatusCode::OK,
        Json(json!({"status": "ready", "database": state.store.backend(), "model": model})),
    ))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics (OpenMetrics text); platform administrators (e.g. a scraper's service account)",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 403, description = "permission_denied", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    civitas_identity::policy::authorize_platform(&principal)
        .map_err(|_| crate::auth::forbidden(&[civitas_identity::Role::PlatformAdmin]))?;
    state
        .metrics
        .trace_spans_dropped
        .set(i64::try_from(state.telemetry.dropped()).unwrap_or(i64::MAX));
    let body = state.metrics.render(state.chat.as_deref());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}
