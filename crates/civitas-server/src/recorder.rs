//! Request records are written off the request path by one background
//! task, in order, so that recording never adds database latency to an
//! answer. The same task prices each record and charges its tokens and
//! cost to the limited scopes it was admitted under. On shutdown the queue
//! is drained before the database closes.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use civitas_store::{RequestRecord, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::ErrorMarker;
use crate::limits::PriceTable;
use crate::middleware::{Caller, RequestId};
use crate::state::AppState;

/// Marker a handler puts on its response when it records the request
/// itself (it knows the model and the tokens).
#[derive(Debug, Clone, Copy)]
pub struct HandlerRecords;

struct Pending {
    record: RequestRecord,
    charge: Arc<Vec<String>>,
    /// The data-protection decision the model call was made under.
    decision: Option<serde_json::Value>,
    /// The answering deployment's own price per million tokens (prompt,
    /// answer), charged instead of the price table's.
    price: Option<(f64, f64)>,
}

/// The audit record of a model call: who, agency, model and weights,
/// tokens, latency, outcome — never the content.
fn model_call(record: &RequestRecord, decision: Option<&serde_json::Value>) -> Option<civitas_audit::Entry> {
    if !matches!(record.route.as_str(), "/v1/chat/completions" | "/v1/embeddings") {
        return None;
    }
    let outcome = match record.status {
        200..=299 => civitas_audit::Outcome::Success,
        401 | 402 | 403 | 429 => civitas_audit::Outcome::Denied,
        _ => civitas_audit::Outcome::Failure,
    };
    Some(civitas_audit::Entry {
        at: record.at,
        actor_kind: if record.key_id.is_some() {
            civitas_audit::ActorKind::Key
        } else {
            civitas_audit::ActorKind::Person
        },
        actor_id: record.actor.clone(),
        agency_id: record.agency_id.clone(),
        action: civitas_audit::Action::ModelCall,
        target: record.model.as_ref().map(|model| format!("model:{model}")),
        outcome,
        source_address: None,
        user_agent: None,
        request_id: Some(record.request_id.clone()),
        details: serde_json::json!({
            "route": record.route,
            "key_id": record.key_id,
            "weights_sha256": record.model_sha256,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cost_micros": record.cost_micros,
            "latency_ms": record.latency_ms,
            "status": record.status,
            "error_code": record.error_code,
            "data_protection": decision,
        }),
    })
}

/// What the requests of one batch used, summed per set of scopes.
struct Charge {
    scopes: Arc<Vec<String>>,
    tokens: i64,
    cost_micros: i64,
    at: chrono::DateTime<chrono::Utc>,
}

/// Records written together, at most.
const BATCH: usize = 512;

/// Sends records to the writer task.
#[derive(Debug, Clone)]
pub struct RequestRecorder {
    sender: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("request_id", &self.record.request_id)
            .finish()
    }
}

impl RequestRecorder {
    /// Starts the writer task; it ends when every recorder is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        prices: PriceTable,
        ledger: Arc<crate::ledger::Ledger>,
    ) -> (RequestRecorder, JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<Pending>(16_384);
        let task = tokio::spawn(async move {
            // Group commit: whatever is waiting (up to a batch) is written
            // in one transaction, its audit records with it.
            let mut batch = Vec::with_capacity(BATCH);
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                let mut records = Vec::with_capacity(batch.len());
                let mut charges = Vec::with_capacity(batch.len());
                let mut decisions = Vec::with_capacity(batch.len());
                for Pending {
                    mut record,
                    charge,
                    decision,
                    price,
                } in batch.drain(..)
                {
                    record.cost_micros = match price {
                        Some(price) => crate::limits::priced_micros(
                            price,
                            record.prompt_tokens,
                            record.completion_tokens,
                        ),
                        None => prices.cost_micros(
                            record.model.as_deref(),
                            record.prompt_tokens,
                            record.completion_tokens,
                        ),
                    };
                    charges.push(charge);
                    decisions.push(decision);
                    records.push(record);
                }
                let entries: Vec<_> = records
                    .iter()
                    .zip(&decisions)
                    .filter_map(|(record, decision)| model_call(record, decision.as_ref()))
                    .collect();
                let (stored, left) =
                    civitas_store::with_audit(entries, store.record_requests(&records)).await;
                if let Err(error) = stored {
                    // One bad record must not lose the others: write them
                    // one by one.
                    tracing::warn!(records = records.len(), %error, "a batch of request records failed; writing them one by one");
                    drop(left);
                    for (record, decision) in records.iter().zip(&decisions) {
                        let entries = model_call(record, decision.as_ref()).into_iter().collect();
                        let (stored, left) =
                            civitas_store::with_audit(entries, store.record_request(record)).await;
                        if let Err(error) = stored {
                            tracing::error!(request_id = %record.request_id, %error, "could not store a request record");
                            if let Err(error) = store.append_audit(left).await {
                                tracing::error!(request_id = %record.request_id, %error, "could not record a model call in the audit log");
                            }
                        }
                    }
                }
                // One charge per set of scopes in the batch.
                let mut sums: Vec<Charge> = Vec::new();
                for (record, scopes) in records.iter().zip(charges) {
                    let tokens = record.prompt_tokens + record.completion_tokens;
                    if scopes.is_empty() || (tokens == 0 && record.cost_micros == 0) {
                        continue;
                    }
                    match sums.iter_mut().find(|sum| sum.scopes == scopes) {
                        Some(sum) => {
                            sum.tokens += tokens;
                            sum.cost_micros += record.cost_micros;
                            sum.at = sum.at.max(record.at);
                        }
                        None => sums.push(Charge {
                            scopes,
                            tokens,
                            cost_micros: record.cost_micros,
                            at: record.at,
                        }),
                    }
                }
                for sum in sums {
                    ledger
                        .charged(&sum.scopes, sum.tokens, sum.cost_micros, sum.at)
                        .await;
                    if let Err(error) = store
                        .charge(&sum.scopes, sum.tokens, sum.cost_micros, sum.at)
                        .await
                    {
                        tracing::error!(scopes = sum.scopes.len(), %error, "could not charge usage to limits");
                    }
                }
            }
        });
        (RequestRecorder { sender }, task)
    }

    /// Queues a record of `caller`'s request (made with
    /// [`Caller::new_record`]); waits only if the queue is full.
    pub async fn record(&self, caller: &Caller, record: RequestRecord) {
        self.record_decided(caller, record, None).await
    }

    /// Queues the record of a model call with the data-protection decision
    /// it was made under (kept in its `model.call` audit record).
    pub async fn record_decided(
        &self,
        caller: &Caller,
        record: RequestRecord,
        decision: Option<serde_json::Value>,
    ) {
        self.record_priced(caller, record, decision, None).await
    }

    /// Queues the record of a model call, charged `price` (per million
    /// tokens: prompt, answer) when the deployment that answered has its
    /// own, else the price table's.
    pub async fn record_priced(
        &self,
        caller: &Caller,
        record: RequestRecord,
        decision: Option<serde_json::Value>,
        price: Option<(f64, f64)>,
    ) {
        let pending = Pending {
            record,
            charge: Arc::clone(&caller.charge),
            decision,
            price,
        };
        if let Err(mpsc::error::TrySendError::Full(pending)) = self.sender.try_send(pending) {
            let _ = self.sender.send(pending).await;
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
    let caller = request.extensions().get::<Caller>().cloned();
    let response = next.run(request).await;
    if response.extensions().get::<HandlerRecords>().is_some() {
        return response;
    }
    let (Some(request_id), Some(caller)) = (request_id, caller) else {
        return response;
    };
    let error_code = response
        .extensions()
        .get::<ErrorMarker>()
        .map(|ErrorMarker(error)| error.code.as_str().to_owned());
    state
        .recorder
        .record(
            &caller,
            RequestRecord {
                latency_ms: started.elapsed().as_millis() as i64,
                status: i64::from(response.status().as_u16()),
                error_code,
                ..caller.new_record(&request_id, at, &route)
            },
        )
        .await;
    response
}
