//! The Civitas HTTP server.
//!
//! [`Application::build`] is used by both the binary and the tests: it
//! binds the listener (port 0 in tests), wires the state and the router.
//! This is the only crate that knows axum, status codes and the wire format.
//!
//! Architecture invariant: every route needs an API key or a signed-in
//! session except the named allow-list in [`PUBLIC_ROUTES`]; what the
//! caller may do is decided by `civitas_identity::policy` through the
//! extractors of [`auth`] in each handler's signature.

pub mod anthropic;
pub mod audit;
pub mod auth;
pub mod break_glass;
pub mod classification;
pub mod energy;
pub mod error;
pub mod extract;
pub mod fair_queue;
pub mod gateway;
pub mod generations;
pub mod grounding;
pub mod identity_cache;
pub mod knowledge;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod protection;
pub mod providers;
pub mod recorder;
pub mod routes;
pub mod sso;
pub mod state;
pub mod telemetry;
pub mod web;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use civitas_config::{Config, Secret};
use civitas_inference::embed::Embedder;
use civitas_inference::ChatEngine;
use civitas_store::Store;
use civitas_types::ErrorCode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::recorder::RequestRecorder;
use crate::state::AppState;

/// Routes reachable without an API key or session.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    // A signed tree head holds no content; outside parties pin it.
    "/v1/audit/checkpoints/latest",
    "/auth/login",
    "/auth/providers",
    "/auth/oidc/{provider}/start",
    "/auth/oidc/callback",
];

/// The matched route, carried to the outer middleware for metric labels.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub String);

async fn tag_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such route; the API lives under /v1")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed on this route",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked; answered 500");
    ApiError::internal().into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Civitas API",
        description = "OpenAI-compatible API of Civitas, a sovereign AI workspace for public administrations. Errors use OpenAI's shape plus `request_id`, also sent as the `x-request-id` header.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerSecurity),
    components(schemas(civitas_types::ErrorBody, civitas_types::openai::ChatCompletionChunk))
)]
struct ApiDoc;

struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The authenticated and the public routes, with the OpenAPI document
/// generated from the same handler annotations.
fn routes_and_document() -> (
    Router<AppState>,
    Router<AppState>,
    Router<AppState>,
    utoipa::openapi::OpenApi,
) {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    // Model routes: limits and budgets apply.
    let (uploads, uploads_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(routes::knowledge::create_document))
        .routes(routes!(routes::knowledge::create_file))
        .split_for_parts();
    let (limited, limited_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(routes::chat::completions))
        .routes(routes!(routes::embeddings::create))
        .split_for_parts();
    let (api, api_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(routes::models::list))
        .routes(routes!(routes::models::retrieve))
        .routes(routes!(routes::me::me))
        .routes(routes!(routes::me::usage))
        .routes(routes!(routes::keys::list, routes::keys::create))
        .routes(routes!(routes::keys::revoke))
        .routes(routes!(routes::session::logout))
        .routes(routes!(routes::session::logout_everywhere))
        .routes(routes!(routes::session::change_password))
        .routes(routes!(routes::session::totp_setup))
        .routes(routes!(routes::session::totp_confirm))
        .routes(routes!(
            routes::admin::list_agencies,
            routes::admin::create_agency
        ))
        .routes(routes!(routes::admin::get_agency))
        .routes(routes!(routes::admin::list_groups, routes::admin::create_group))
        .routes(routes!(routes::admin::set_group_models))
        .routes(routes!(routes::admin::list_people, routes::admin::create_person))
        .routes(routes!(routes::admin::update_person))
        .routes(routes!(routes::admin::set_person_groups))
        .routes(routes!(routes::admin::set_person_roles))
        .routes(routes!(routes::admin::revoke_person_sessions))
        .routes(routes!(routes::admin::list_limits, routes::admin::set_limits))
        .routes(routes!(routes::admin::list_keys, routes::admin::create_key))
        .routes(routes!(routes::admin::revoke_key))
        .routes(routes!(routes::admin::agency_usage))
        .routes(routes!(routes::admin::create_scim_token))
        .routes(routes!(routes::audit::search))
        .routes(routes!(routes::audit::export))
        .routes(routes!(routes::audit::status))
        .routes(routes!(
            routes::break_glass::list_requests,
            routes::break_glass::request
        ))
        .routes(routes!(routes::break_glass::approve))
        .routes(routes!(routes::break_glass::refuse))
        .routes(routes!(routes::break_glass::conversations))
        .routes(routes!(routes::break_glass::conversation))
        .routes(routes!(routes::break_glass::about_me))
        .routes(routes!(audit::consistency))
        .routes(routes!(routes::protection::list_data_keys))
        .routes(routes!(routes::protection::rotate_data_key))
        .routes(routes!(
            routes::protection::list_retention,
            routes::protection::put_retention
        ))
        .routes(routes!(routes::protection::delete_retention))
        .routes(routes!(
            routes::protection::list_holds,
            routes::protection::create_hold
        ))
        .routes(routes!(routes::protection::release_hold))
        .routes(routes!(routes::protection::set_clearance))
        .routes(routes!(routes::protection::export_person))
        .routes(routes!(routes::protection::erase_person))
        .routes(routes!(routes::protect::analyze))
        .routes(routes!(routes::protect::anonymize))
        .routes(routes!(routes::scim::list_users, routes::scim::create_user))
        .routes(routes!(
            routes::scim::get_user,
            routes::scim::replace_user,
            routes::scim::patch_user,
            routes::scim::delete_user
        ))
        .routes(routes!(routes::scim::list_groups, routes::scim::create_group))
        .routes(routes!(
            routes::scim::get_group,
            routes::scim::replace_group,
            routes::scim::patch_group,
            routes::scim::delete_group
        ))
        .routes(routes!(routes::scim::service_provider_config))
        .routes(routes!(
            routes::knowledge::list_collections,
            routes::knowledge::create_collection
        ))
        .routes(routes!(
            routes::knowledge::get_collection,
            routes::knowledge::update_collection,
            routes::knowledge::delete_collection
        ))
        .routes(routes!(routes::knowledge::list_documents))
        .routes(routes!(
            routes::knowledge::get_document,
            routes::knowledge::delete_document
        ))
        .routes(routes!(routes::knowledge::list_chunks))
        .routes(routes!(routes::knowledge::get_chunk))
        .routes(routes!(routes::knowledge::search))
        .routes(routes!(routes::conversations::list))
        .routes(routes!(routes::conversations::messages))
        .routes(routes!(routes::conversations::provenance))
        .routes(routes!(routes::health::metrics))
        .split_for_parts();
    let (public, public_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(audit::latest_checkpoint))
        .routes(routes!(routes::session::login))
        .routes(routes!(routes::sso::providers))
        .routes(routes!(routes::sso::start))
        .routes(routes!(routes::sso::callback))
        .split_for_parts();
    let mut document = ApiDoc::openapi();
    document.merge(limited_doc);
    document.merge(uploads_doc);
    document.merge(api_doc);
    document.merge(public_doc);
    (limited, api.merge(uploads), public, document)
}

/// The OpenAPI 3.1 document of the API, generated from the code.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes_and_document().3
}

/// The OpenAPI document as pretty JSON, as committed in docs/openapi.json.
pub fn openapi_json() -> String {
    openapi_document().to_pretty_json().unwrap_or_default()
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    let (limited, api, public, _) = routes_and_document();
    let limited = limited.route_layer(from_fn_with_state(state.clone(), limits::enforce));
    // Uploads may be as large as `knowledge.max_file_bytes` (plus the
    // multipart framing); everything else keeps the small default.
    let upload_limit = usize::try_from(state.config.knowledge.max_file_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 << 10);
    let api = api.route_layer(axum::extract::DefaultBodyLimit::max(upload_limit));
    let api = api
        .merge(limited)
        .route_layer(from_fn_with_state(state.clone(), audit::record_changes))
        .route_layer(from_fn_with_state(state.clone(), recorder::record_requests))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        .route_layer(from_fn_with_state(state.clone(), middleware::shed));
    with_edge_layers(public.merge(api).merge(web::router(state.clone())), state)
}

/// The layers every route shares: route tagging, 404/405 in our error
/// shape, panics turned into 500s, request ids and metrics.
fn with_edge_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .route_layer(from_fn(tag_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), auth::forget_keys_after_changes))
        .layer(from_fn_with_state(state.clone(), middleware::request_context))
        .with_state(state)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("single sign-on: {0}")]
    Sso(String),
    #[error("cannot prepare identities: {0}")]
    Identity(civitas_identity::provision::ProvisionError),
    #[error("audit log: {0}")]
    Audit(String),
    #[error("trace export: {0}")]
    Telemetry(String),
}

/// The models a server answers with.
#[derive(Debug, Default, Clone)]
pub struct ServedModels {
    pub chat: Option<Arc<ChatEngine>>,
    pub embedder: Option<Arc<Embedder>>,
    pub providers: Vec<Arc<providers::RemoteProvider>>,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    recorder_task: JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `listen`; done first at start-up so that a port in use is
    /// reported before any slow work.
    pub fn bind(listen: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
        let bind_error = |source| ServerError::Bind {
            addr: listen.to_string(),
            source,
        };
        let listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        Ok(listener)
    }

    /// Prepares the state over a bound listener (see [`Application::bind`]).
    pub async fn build(
        config: Config,
        listener: std::net::TcpListener,
        store: Arc<dyn Store>,
        models: ServedModels,
        bootstrap_key: Option<Secret>,
    ) -> Result<Application, ServerError> {
        civitas_identity::provision::ensure_default_agency(store.as_ref())
            .await
            .map_err(ServerError::Identity)?;
        if let Some(key) = &bootstrap_key {
            civitas_identity::provision::ensure_bootstrap_key(store.as_ref(), key.expose())
                .await
                .map_err(ServerError::Identity)?;
        }
        let addr = listener
            .local_addr()
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        let listener =
            TcpListener::from_std(listener).map_err(|source| ServerError::Bind { addr, source })?;
        let sso = config
            .oidc
            .iter()
            .map(|provider| sso::SsoProvider::from_config(provider).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServerError::Sso)?;
        let auditor = audit::Auditor::load(&config).map_err(ServerError::Audit)?;
        let config_for_energy = config.clone();
        let prices = limits::PriceTable::new(&config.prices);
        let ledger = Arc::new(ledger::Ledger::default());
        let (recorder, recorder_task) =
            RequestRecorder::start(Arc::clone(&store), prices, Arc::clone(&ledger));
        let (telemetry, _telemetry_task) =
            telemetry::Telemetry::start(&config.telemetry).map_err(ServerError::Telemetry)?;
        let dimensions = models
            .embedder
            .as_ref()
            .map_or(0, |embedder| embedder.dimensions());
        let metrics = Arc::new(Metrics::default());
        let config_max_in_flight = config.server.max_in_flight.max(1) as usize;
        let gateway = Arc::new(gateway::Gateway::new(
            &config,
            &models.providers,
            Some(Arc::clone(&metrics)),
        ));
        let state = AppState {
            config: Arc::new(config),
            store,
            chat: models.chat,
            embedder: models.embedder,
            providers: Arc::new(models.providers),
            gateway,
            sso: Arc::new(sso),
            embedding_permits: Arc::new(tokio::sync::Semaphore::new(1)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config_max_in_flight)),
            knowledge: Arc::new(knowledge::Knowledge::new(
                &config_for_energy.knowledge,
                dimensions,
            )),
            metrics,
            identity_cache: Arc::default(),
            generations: Arc::default(),
            auditor: Arc::new(auditor),
            telemetry: Arc::new(telemetry),
            energy: Arc::new(energy::EnergyModel::new(&config_for_energy)),
            recorder,
            ledger,
            shutting_down: Arc::new(AtomicBool::new(false)),
            started_at: Instant::now(),
            started_unix: chrono::Utc::now().timestamp(),
        };
        // The configuration this server starts with, without secrets
        // (their locations at most).
        let config = &state.config;
        let started = audit::system_entry(
            civitas_audit::Action::ConfigurationAtStart,
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "listen": config.server.listen,
                "database": state.store.backend(),
                "chat_model": state.chat.as_ref().map(|engine| engine.info().name.clone()),
                "chat_weights_sha256": state.chat.as_ref().map(|engine| engine.info().weights_sha256.clone()),
                "providers": config.providers.iter().map(|provider| &provider.name).collect::<Vec<_>>(),
                "sso": config.oidc.iter().map(|provider| &provider.name).collect::<Vec<_>>(),
                "classifications": config.classifications.iter().map(|level| &level.id).collect::<Vec<_>>(),
                "temporary_chat": config.workspace.temporary_chat,
                "audit_key_id": state.auditor.key.key_id(),
                "checkpoint_every_records": config.audit.checkpoint_every_records,
                "checkpoint_every_seconds": config.audit.checkpoint_every_seconds,
                "default_clearance": config.data_protection.default_clearance,
                "purge_every_seconds": config.data_protection.purge_every_seconds,
            }),
        );
        state
            .store
            .append_audit(vec![started])
            .await
            .map_err(|error| ServerError::Audit(format!("cannot write the audit log: {error}")))?;
        let observed = Arc::clone(&state.metrics);
        civitas_store::audit::observe_appends(move |seconds| observed.audit_append.observe(seconds));
        audit::start_checkpoints(state.clone());
        knowledge::start(state.clone());
        ledger::start_sweeper(state.clone());
        protection::start_purge(
            Arc::clone(&state.store),
            state.config.data_protection.purge_every_seconds,
        );
        Ok(Application {
            listener,
            state,
            recorder_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` resolves, then stops accepting, gives open
    /// streams `server.shutdown_grace_seconds` to finish, flushes pending
    /// request records and closes the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application {
            listener,
            state,
            recorder_task,
        } = self;
        let grace = Duration::from_secs(state.config.server.shutdown_grace_seconds);
        let store = Arc::clone(&state.store);
        let flag = Arc::clone(&state.shutting_down);
        let (stop_sender, stop_receiver) = tokio::sync::oneshot::channel::<()>();
        let app = router(state);
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop_receiver.await;
            })
            .into_future();
        let mut server = tokio::spawn(serve);
        tokio::select! {
            result = &mut server => {
                return result.unwrap_or_else(|error| Err(std::io::Error::other(error)));
            }
            () = shutdown => {}
        }
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        flag.store(true, Ordering::SeqCst);
        let _ = stop_sender.send(());
        if tokio::time::timeout(grace, &mut server).await.is_err() {
            tracing::warn!(
                seconds = grace.as_secs(),
                "requests still open after the grace period; closing them"
            );
            server.abort();
        }
        if tokio::time::timeout(Duration::from_secs(10), recorder_task)
            .await
            .is_err()
        {
            tracing::warn!("request records still pending after 10 s");
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document must be what the code generates.
    #[test]
    fn committed_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed.trim_end() == openapi_json().trim_end(),
            "docs/openapi.json is stale: run `civitas openapi > docs/openapi.json`"
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_request_id_and_the_server_goes_on() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt as _;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> = Arc::new(
            civitas_store_sqlite::SqliteStore::open(&url, 1, civitas_store::crypt::Keyring::ephemeral())
                .await
                .unwrap(),
        );
        let ledger = Arc::new(ledger::Ledger::default());
        let (recorder, _task) = RequestRecorder::start(
            Arc::clone(&store),
            limits::PriceTable::default(),
            Arc::clone(&ledger),
        );
        let state = AppState {
            config: Arc::new(Config::default()),
            store,
            chat: None,
            embedder: None,
            providers: Arc::new(Vec::new()),
            gateway: Arc::new(gateway::Gateway::default()),
            sso: Arc::new(Vec::new()),
            embedding_permits: Arc::new(tokio::sync::Semaphore::new(1)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(2048)),
            knowledge: Arc::new(knowledge::Knowledge::new(
                &civitas_config::KnowledgeConfig::default(),
                0,
            )),
            metrics: Arc::new(Metrics::default()),
            identity_cache: Arc::default(),
            generations: Arc::default(),
            auditor: Arc::new(audit::Auditor::new(civitas_audit::AuditKey::generate())),
            telemetry: Arc::new(telemetry::Telemetry::disabled()),
            energy: Arc::default(),
            recorder,
            ledger,
            shutting_down: Arc::new(AtomicBool::new(false)),
            started_at: Instant::now(),
            started_unix: 0,
        };
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let routes = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }));
        let app = with_edge_layers(routes, state);
        let response = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
        assert_eq!(body["error"]["request_id"], request_id);
        let fine = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(fine.status(), 200);
    }

    #[test]
    fn every_route_but_the_public_ones_needs_the_key() {
        let document = openapi_document();
        assert!(document.paths.paths.len() >= 9);
        for (path, item) in &document.paths.paths {
            let operations = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(secured, !PUBLIC_ROUTES.contains(&path.as_str()), "{path}");
            }
        }
    }
}
