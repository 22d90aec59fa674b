//! Cross-cutting layers: request ids, error bodies, metrics, access log,
//! authentication.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ErrorMarker;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::AppState;

/// The id of the request being handled, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// When the request arrived, in request extensions.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

/// Who is calling, for request records and limits; set by
/// [`crate::auth::authenticate`] and completed by [`crate::limits::enforce`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The person or service account.
    pub actor: String,
    pub agency_id: String,
    pub key_id: Option<String>,
    /// Scopes with limits this request was admitted under, to charge.
    pub charge: std::sync::Arc<Vec<String>>,
    /// The identity version read with the credential.
    pub identity_version: i64,
    /// Its class in fair queues: API traffic, or batch work when the
    /// client says so (`x-civitas-priority: batch`); the workspace's
    /// people go first.
    pub priority: crate::fair_queue::Priority,
}

impl Caller {
    pub fn of(principal: &civitas_identity::Principal, identity_version: i64) -> Caller {
        Caller {
            actor: principal.id().to_owned(),
            agency_id: principal.agency_id().to_owned(),
            key_id: principal.key().map(|key| key.id.clone()),
            charge: std::sync::Arc::default(),
            identity_version,
            priority: crate::fair_queue::Priority::Api,
        }
    }

    /// A request record of this caller with nothing used yet.
    pub fn new_record(
        &self,
        request_id: &str,
        at: chrono::DateTime<chrono::Utc>,
        route: &str,
    ) -> civitas_store::RequestRecord {
        civitas_store::RequestRecord {
            request_id: request_id.to_owned(),
            at,
            actor: self.actor.clone(),
            agency_id: Some(self.agency_id.clone()),
            key_id: self.key_id.clone(),
            route: route.to_owned(),
            model: None,
            model_sha256: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_micros: 0,
            latency_ms: 0,
            status: 0,
            error_code: None,
        }
    }
}

/// Now, in nanoseconds since the Unix epoch.
fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0)
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
    let trace = state.telemetry.enabled().then(|| {
        (
            crate::telemetry::TraceContext::of_request(request.headers(), state.telemetry.sample_ratio()),
            unix_nanos(),
        )
    });
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
    if let Some((context, start_unix_nanos)) = trace {
        use crate::telemetry::Value;
        state.telemetry.emit(crate::telemetry::Span {
            context,
            name: format!("{method} {route}"),
            start_unix_nanos,
            end_unix_nanos: start_unix_nanos + elapsed.as_nanos() as u64,
            attributes: vec![
                ("http.request.method", Value::Text(method.to_string())),
                ("http.route", Value::Text(route.clone())),
                ("http.response.status_code", Value::Int(i64::from(status))),
                ("civitas.request_id", Value::Text(request_id.clone())),
            ],
            error: status >= 500,
        });
    }
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

/// A response body that holds its request's place among those in flight
/// until it is sent (or dropped), with the inner body's size kept.
struct Held {
    inner: axum::body::Body,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Sheds load: past `server.max_in_flight` API requests being answered
/// (a stream counts until its end), 503 `server_busy` at once, before any
/// work (no database, no model), so that an overload costs little.
pub async fn shed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(place) = std::sync::Arc::clone(&state.in_flight).try_acquire_owned() else {
        let mut busy = crate::error::ApiError::new(
            civitas_types::ErrorCode::ServerBusy,
            "the server is answering as many requests as it may; try again in a moment",
        );
        busy.retry_after_seconds = Some(1);
        return axum::response::IntoResponse::into_response(busy);
    };
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        axum::body::Body::new(Held {
            inner: body,
            _place: place,
        }),
    )
}
