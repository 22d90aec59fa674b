//! Request records are written off the request path by one background
//! task, in order, so that recording never adds database latency to an
//! answer. On shutdown the queue is drained before the database closes.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use civitas_store::{RequestRecord, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::ErrorMarker;
use crate::middleware::{Caller, RequestId};
use crate::state::AppState;

/// Marker a handler puts on its response when it records the request
/// itself (it knows the model and the tokens).
#[derive(Debug, Clone, Copy)]
pub struct HandlerRecords;

/// Sends records to the writer task.
#[derive(Debug, Clone)]
pub struct RequestRecorder {
    sender: mpsc::Sender<RequestRecord>,
}

impl RequestRecorder {
    /// Starts the writer task; it ends when every recorder is dropped.
    pub fn start(store: Arc<dyn Store>) -> (RequestRecorder, JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<RequestRecord>(16_384);
        let task = tokio::spawn(async move {
            while let Some(record) = receiver.recv().await {
                if let Err(error) = store.record_request(&record).await {
                    tracing::error!(request_id = %record.request_id, %error, "could not store a request record");
                }
            }
        });
        (RequestRecorder { sender }, task)
    }

    /// Queues a record; waits only if the queue is full.
    pub async fn record(&self, record: RequestRecord) {
        if let Err(mpsc::error::TrySendError::Full(record)) = self.sender.try_send(record) {
            let _ = self.sender.send(record).await;
        }
    }
}

/// Records every authenticated API request that its handler did not.
pub async fn record_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let at = chrono::Utc::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().chars().take(200).collect());
    let request_id = request.extensions().get::<RequestId>().map(|id| id.0.clone());
    let actor = request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.actor.clone());
    let response = next.run(request).await;
    if response.extensions().get::<HandlerRecords>().is_some() {
        return response;
    }
    let (Some(request_id), Some(actor)) = (request_id, actor) else {
        return response;
    };
    let error_code = response
        .extensions()
        .get::<ErrorMarker>()
        .map(|ErrorMarker(error)| error.code.as_str().to_owned());
    state
        .recorder
        .record(RequestRecord {
            request_id,
            at,
            actor,
            route,
            model: None,
            model_sha256: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_ms: started.elapsed().as_millis() as i64,
            status: i64::from(response.status().as_u16()),
            error_code,
        })
        .await;
    response
}
