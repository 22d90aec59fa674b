//! What every handler can reach.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use civitas_config::Config;
use civitas_inference::embed::Embedder;
use civitas_inference::ChatEngine;
use civitas_store::Store;

use crate::metrics::Metrics;
use crate::recorder::RequestRecorder;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub chat: Option<Arc<ChatEngine>>,
    pub embedder: Option<Arc<Embedder>>,
    pub providers: Arc<Vec<Arc<crate::providers::RemoteProvider>>>,
    /// How requests are routed over the providers' deployments.
    pub gateway: Arc<crate::gateway::Gateway>,
    /// OpenID providers for single sign-on.
    pub sso: Arc<Vec<Arc<crate::sso::SsoProvider>>>,
    /// Embeddings computed at once (each uses one core).
    pub embedding_permits: Arc<tokio::sync::Semaphore>,
    /// API requests being answered (`server.max_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    pub knowledge: Arc<crate::knowledge::Knowledge>,
    pub metrics: Arc<Metrics>,
    /// Grants and limits per person, valid while the identity version holds.
    pub identity_cache: Arc<crate::identity_cache::IdentityCache>,
    pub recorder: RequestRecorder,
    /// Limit counters on leases from the database.
    pub ledger: Arc<crate::ledger::Ledger>,
    /// Energy and emissions estimates of model use.
    pub energy: Arc<crate::energy::EnergyModel>,
    /// Trace export (disabled unless configured).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The audit log's signing key.
    pub auditor: Arc<crate::audit::Auditor>,
    /// Answers being written into workspace conversations.
    pub generations: Arc<crate::generations::Generations>,
    pub shutting_down: Arc<AtomicBool>,
    pub started_at: Instant,
    /// Unix seconds at start, used as `created` of served models.
    pub started_unix: i64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .field(
                "chat",
                &self.chat.as_ref().map(|engine| engine.info().name.clone()),
            )
            .finish_non_exhaustive()
    }
}
