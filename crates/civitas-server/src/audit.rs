//! The server's side of the audit log: the signing key, records of what
//! people do (who, from where, in which request), the task that signs
//! checkpoints, and the published checkpoint an outside party can pin.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use civitas_audit::{Action, ActorKind, AuditKey, Checkpoint, CompactTree, Entry, Outcome, PublicKey};
use civitas_config::{Config, SecretLocation};
use civitas_identity::Principal;
use civitas_store::Store;
use civitas_types::ErrorCode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// The installation's audit signing key and the keys its checkpoints may
/// carry.
#[derive(Debug)]
pub struct Auditor {
    pub key: AuditKey,
    /// The minute each limit last refused a request on this replica: a
    /// limit hit is recorded once per scope, kind and minute, not once per
    /// refused request (a client hammering a limit cannot flood the log).
    limit_hits: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// One proof computed at a time (each reads the log from the start).
    proofs: tokio::sync::Semaphore,
}

impl Auditor {
    /// The key from `audit.signing_key`, or from `audit-signing-key` in
    /// the data directory (created on first start).
    pub fn load(config: &Config) -> Result<Auditor, String> {
        if !config.audit.signing_key.is_empty() {
            let location = SecretLocation::parse(&config.audit.signing_key)?;
            let secret = location
                .read()?
                .ok_or_else(|| format!("audit.signing_key: nothing found at {location:?}"))?;
            let key = AuditKey::from_text(secret.expose())
                .ok_or("audit.signing_key: not a base64 Ed25519 seed of 32 bytes")?;
            return Ok(Auditor::new(key));
        }
        let path = config.data_dir().join("audit-signing-key");
        Ok(Auditor::new(read_or_create(&path)?))
    }

    pub fn new(key: AuditKey) -> Auditor {
        Auditor {
            key,
            limit_hits: Default::default(),
            proofs: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether `limit` refused nothing yet in the current minute (and
    /// notes that it now has).
    pub fn first_limit_hit_this_minute(&self, limit: &str) -> bool {
        let minute = chrono::Utc::now().timestamp() / 60;
        let mut hits = self
            .limit_hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hits.len() > 10_000 {
            hits.retain(|_, at| *at == minute);
        }
        hits.insert(limit.to_owned(), minute) != Some(minute)
    }

    pub fn public_keys(&self) -> Vec<PublicKey> {
        vec![self.key.public()]
    }
}

fn read_or_create(path: &Path) -> Result<AuditKey, String> {
    let text = crate::protection::read_or_create(path, &|| Ok(AuditKey::generate().to_text()))?;
    AuditKey::from_text(&text).ok_or_else(|| format!("{} does not hold an audit key", path.display()))
}

/// Who acted, as the audit log names them.
pub fn actor_of(principal: &Principal) -> (ActorKind, String) {
    if principal.person.kind == "service" {
        (ActorKind::Service, principal.id().to_owned())
    } else if principal.key().is_some() {
        (ActorKind::Key, principal.id().to_owned())
    } else {
        (ActorKind::Person, principal.id().to_owned())
    }
}

/// Where a request came from, as far as the server can tell.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Origin {
    pub fn of(
        state: &AppState,
        headers: &HeaderMap,
        peer: Option<std::net::IpAddr>,
        request_id: Option<&str>,
    ) -> Origin {
        let address = peer.and_then(|peer| {
            crate::auth::forwarded_client(headers, peer, &state.config.server.trusted_proxies)
        });
        Origin {
            source_address: address.map(|address| address.to_string()),
            user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .map(|agent| agent.chars().take(300).collect()),
            request_id: request_id.map(str::to_owned),
        }
    }
}

/// The [`Origin`] of the request being handled, as an extractor.
#[derive(Debug, Clone)]
pub struct RequestOrigin(pub Origin);

impl axum::extract::FromRequestParts<AppState> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin(Origin::of_parts(
            state,
            &parts.headers,
            &parts.extensions,
        )))
    }
}

impl Origin {
    /// The origin of a request from its headers and the extensions the
    /// server put on it (the peer address, the request id).
    pub fn of_parts(state: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> Origin {
        let peer = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let request_id = extensions
            .get::<crate::middleware::RequestId>()
            .map(|id| id.0.as_str());
        Origin::of(state, headers, peer, request_id)
    }
}

/// A record of `principal` doing `action`.
pub fn entry(
    principal: &Principal,
    origin: &Origin,
    action: Action,
    target: Option<String>,
    outcome: Outcome,
    details: Value,
) -> Entry {
    let (actor_kind, actor_id) = actor_of(principal);
    let mut entry = entry_by(actor_kind, actor_id, origin, action, outcome, details);
    entry.agency_id = Some(principal.agency_id().to_owned());
    entry.target = target;
    entry
}

/// A record of `actor_id` doing `action` from `origin`, with no agency or
/// target yet (the caller sets them when it knows them).
pub fn entry_by(
    actor_kind: ActorKind,
    actor_id: String,
    origin: &Origin,
    action: Action,
    outcome: Outcome,
    details: Value,
) -> Entry {
    Entry {
        at: civitas_store::now(),
        actor_kind,
        actor_id,
        agency_id: None,
        action,
        target: None,
        outcome,
        source_address: origin.source_address.clone(),
        user_agent: origin.user_agent.clone(),
        request_id: origin.request_id.clone(),
        details,
    }
}

/// Runs `change` for `principal`, recorded as `action` in the change's own
/// transaction (or on its own, with its outcome, when nothing was
/// committed). For changes made from the workspace's pages; the API's go
/// through [`record_changes`].
pub async fn acting<T, E>(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    action: Action,
    target: Option<String>,
    details: Value,
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let origin = Origin::of(state, headers, None, None);
    let entry = entry(principal, &origin, action, target, Outcome::Success, details);
    audited(state.store.as_ref(), vec![entry], change).await
}

/// A record of the system itself.
pub fn system_entry(action: Action, details: Value) -> Entry {
    entry_by(
        ActorKind::System,
        "civitas".to_owned(),
        &Origin::default(),
        action,
        Outcome::Success,
        details,
    )
}

/// Runs `action` with `entries` written in its transaction; entries it did
/// not write (it changed nothing, or failed before committing) are
/// appended on their own, with `outcome` when it failed.
pub async fn audited<T, E>(
    store: &dyn Store,
    entries: Vec<Entry>,
    action: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let (result, mut left) = civitas_store::with_audit(entries, action).await;
    if !left.is_empty() {
        if result.is_err() {
            for entry in &mut left {
                entry.outcome = Outcome::Failure;
            }
        }
        if let Err(error) = store.append_audit(left).await {
            tracing::error!(%error, "could not write audit records");
        }
    }
    result
}

/// Appends records of something that changed nothing in the database (a
/// refusal, a read, an export). A failure to write them is an error: the
/// caller does not go on (no export leaves unrecorded).
pub async fn record(store: &dyn Store, entries: Vec<Entry>) -> Result<(), ApiError> {
    store.append_audit(entries).await.map(|_| ()).map_err(|error| {
        tracing::error!(%error, "could not write audit records");
        ApiError::new(
            ErrorCode::StorageUnavailable,
            "the audit log cannot be written; nothing was done",
        )
    })
}

/// Signs checkpoints while the server runs: after every
/// `checkpoint_every_records` records, or `checkpoint_every_seconds`
/// after the last checkpoint if records were added. Refuses to sign a log
/// with a gap (it says so in the log).
pub fn start_checkpoints(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every_records = state.config.audit.checkpoint_every_records;
        let every = Duration::from_secs(state.config.audit.checkpoint_every_seconds);
        let poll = every.min(Duration::from_secs(2)).max(Duration::from_millis(200));
        let mut tree = CompactTree::new();
        let mut signed = match state.store.checkpoints().await {
            Ok(checkpoints) => checkpoints.last().map_or(0, |checkpoint| checkpoint.tree_size),
            Err(_) => 0,
        };
        let mut last = Instant::now();
        let mut broken = false;
        loop {
            tokio::time::sleep(poll).await;
            if state.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            if broken {
                continue;
            }
            loop {
                let Ok(page) = state.store.audit_records(tree.size() + 1, 10_000).await else {
                    break;
                };
                if page.is_empty() {
                    break;
                }
                for record in page {
                    if record.seq != tree.size() + 1 || record.computed_hash() != record.hash {
                        tracing::error!(
                            seq = record.seq,
                            expected = tree.size() + 1,
                            "the audit log is damaged; no checkpoint will be signed (run `civitas audit verify`)"
                        );
                        broken = true;
                        break;
                    }
                    tree.push(record.leaf_hash());
                }
                if broken {
                    break;
                }
            }
            if broken {
                continue;
            }
            let added = tree.size().saturating_sub(signed);
            if added == 0 || (added < every_records && last.elapsed() < every) {
                continue;
            }
            let checkpoint =
                Checkpoint::sign(&state.auditor.key, tree.size(), tree.root(), civitas_store::now());
            let details = json!({
                "tree_size": checkpoint.tree_size,
                "root_hash": civitas_audit::record::hex_hash::to_hex(&checkpoint.root_hash),
                "key_id": checkpoint.key_id,
            });
            // Stored with its record, by the one replica that adds it.
            let (added, _) = civitas_store::with_audit(
                vec![system_entry(Action::Checkpoint, details)],
                state.store.add_checkpoint(&checkpoint),
            )
            .await;
            match added {
                Ok(inserted) => {
                    // The checkpoint's own record needs no checkpoint of
                    // its own (an idle log is not signed again and again).
                    signed = tree.size() + u64::from(inserted);
                    last = Instant::now();
                    state.metrics.audit_checkpoint_unix.set(checkpoint.at.timestamp());
                }
                Err(error) => tracing::error!(%error, "could not store an audit checkpoint"),
            }
        }
    })
}

/// The installation's key and every key its rotations (valid ones, signed
/// by both keys) name: the keys a checkpoint of this log may carry.
pub async fn known_public_keys(state: &AppState) -> Result<Vec<PublicKey>, ApiError> {
    let mut keys = state.auditor.public_keys();
    let filter = civitas_store::AuditFilter {
        action: Some(Action::KeyRotation.as_str().to_owned()),
        ..Default::default()
    };
    let rotations = state
        .store
        .search_audit(&filter, 1000)
        .await
        .map_err(ApiError::storage)?;
    for record in rotations {
        let Ok(rotation) = serde_json::from_value::<civitas_audit::KeyRotation>(record.details) else {
            continue;
        };
        if !rotation.is_valid() {
            continue;
        }
        for key in [rotation.old_key(), rotation.new_key()] {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// The latest checkpoint with the key that verifies it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedCheckpoint {
    pub tree_size: u64,
    /// SHA-256 tree head (RFC 6962) over records 1 to `tree_size`, hex.
    pub root_hash: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub key_id: String,
    /// Ed25519 over `civitas audit checkpoint v1\n{tree_size}\n{root_hash}\n{at}\n{key_id}\n`, base64.
    pub signature: String,
    /// The Ed25519 public key (32 bytes, base64) of `key_id`.
    pub public_key: String,
}

#[utoipa::path(get, path = "/v1/audit/checkpoints/latest", operation_id = "getLatestAuditCheckpoint", tag = "audit",
    summary = "The latest signed head of the audit log, for anyone to pin (no authentication)",
    responses((status = 200, body = PublishedCheckpoint), (status = 404, description = "not_found: no checkpoint yet", body = civitas_types::ErrorBody)))]
pub async fn latest_checkpoint(State(state): State<AppState>) -> Result<Json<PublishedCheckpoint>, ApiError> {
    let checkpoints = state.store.checkpoints().await.map_err(ApiError::storage)?;
    let latest = checkpoints
        .into_iter()
        .last()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no checkpoint has been signed yet"))?;
    let public = known_public_keys(&state)
        .await?
        .into_iter()
        .find(|key| key.key_id == latest.key_id)
        .map(|key| key.public_key)
        .unwrap_or_default();
    Ok(Json(PublishedCheckpoint {
        tree_size: latest.tree_size,
        root_hash: civitas_audit::record::hex_hash::to_hex(&latest.root_hash),
        at: latest.at,
        key_id: latest.key_id,
        signature: latest.signature,
        public_key: public,
    }))
}

/// The leaf hashes of records 1 to `size`, read in pages; an error names
/// a gap or a log shorter than `size`.
pub async fn leaf_hashes(store: &dyn Store, size: u64) -> Result<Vec<civitas_audit::Hash>, String> {
    const PAGE: u32 = 10_000;
    let mut leaves = Vec::with_capacity(size.min(10_000_000) as usize);
    while (leaves.len() as u64) < size {
        let page = store
            .audit_records(leaves.len() as u64 + 1, PAGE)
            .await
            .map_err(|error| error.to_string())?;
        if page.is_empty() {
            break;
        }
        for record in page {
            if leaves.len() as u64 >= size {
                break;
            }
            if record.seq != leaves.len() as u64 + 1 {
                return Err(format!(
                    "the log has a gap before record {}; run `civitas audit verify`",
                    record.seq
                ));
            }
            leaves.push(record.leaf_hash());
        }
    }
    if (leaves.len() as u64) < size {
        return Err(format!(
            "the log holds {} records, fewer than {size}",
            leaves.len()
        ));
    }
    Ok(leaves)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The tree size of a checkpoint pinned earlier.
    pub from: u64,
    /// The tree size of a later checkpoint (default: the latest).
    pub to: Option<u64>,
}

/// Proof that the log signed at `from` records is a prefix of the log
/// signed at `to`: nothing was changed or removed in between.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyAnswer {
    pub from: PublishedCheckpoint,
    pub to: PublishedCheckpoint,
    /// RFC 6962 consistency proof (SHA-256 hashes, hex), from `from` to `to`.
    pub proof: Vec<String>,
}

#[utoipa::path(get, path = "/v1/audit/checkpoints/consistency", operation_id = "getAuditConsistencyProof", tag = "audit",
    summary = "RFC 6962 consistency proof between two signed checkpoints: the later log extends the earlier one",
    params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyAnswer),
        (status = 400, description = "invalid_parameter", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found: no checkpoint of that size", body = civitas_types::ErrorBody),
        (status = 429, description = "queue_full: another proof is being computed", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyAnswer>, ApiError> {
    let checkpoints = state.store.checkpoints().await.map_err(ApiError::storage)?;
    let find = |size: u64, param: &str| {
        checkpoints
            .iter()
            .find(|checkpoint| checkpoint.tree_size == size)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no checkpoint covers exactly {size} records"),
                )
                .with_param(param)
            })
    };
    let to = match query.to {
        Some(size) => find(size, "to")?,
        None => checkpoints
            .last()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no checkpoint has been signed yet"))?,
    };
    if query.from == 0 || query.from > to.tree_size {
        return Err(ApiError::invalid(
            "from",
            "from must be from 1 to the later checkpoint's size",
        ));
    }
    let from = find(query.from, "from")?;
    let _permit = state.auditor.proofs.try_acquire().map_err(|_| {
        let mut busy = ApiError::new(
            ErrorCode::QueueFull,
            "another proof is being computed; retry in a moment",
        );
        busy.retry_after_seconds = Some(1);
        busy
    })?;
    let leaves = leaf_hashes(state.store.as_ref(), to.tree_size)
        .await
        .map_err(|error| {
            tracing::error!(%error, "a consistency proof could not read the log");
            ApiError::new(
                ErrorCode::StorageUnavailable,
                "the audit log cannot be read whole; an auditor should run `civitas audit verify`",
            )
        })?;
    let from_size = usize::try_from(from.tree_size).map_err(|_| ApiError::internal())?;
    let proof = civitas_audit::merkle::consistency_proof(&leaves, from_size);
    let keys = known_public_keys(&state).await?;
    let publish = |checkpoint: Checkpoint| PublishedCheckpoint {
        public_key: keys
            .iter()
            .find(|key| key.key_id == checkpoint.key_id)
            .map(|key| key.public_key.clone())
            .unwrap_or_default(),
        tree_size: checkpoint.tree_size,
        root_hash: civitas_audit::record::hex_hash::to_hex(&checkpoint.root_hash),
        at: checkpoint.at,
        key_id: checkpoint.key_id,
        signature: checkpoint.signature,
    };
    Ok(Json(ConsistencyAnswer {
        from: publish(from),
        to: publish(to),
        proof: proof
            .iter()
            .map(civitas_audit::record::hex_hash::to_hex)
            .collect(),
    }))
}

/// What a change on `route` is, for the audit log (`None`: not recorded
/// here — model calls are recorded with their request record).
fn action_for(route: &str, method: &axum::http::Method) -> Option<Action> {
    use axum::http::Method;
    Some(match route {
        "/v1/chat/completions" | "/v1/embeddings" => return None,
        // Recorded by their handlers, with the justification.
        route if route.starts_with("/api/admin/agencies/{agency_id}/break-glass") => return None,
        "/auth/logout" => Action::SignOut,
        "/auth/logout-all" => Action::SessionsRevoked,
        "/auth/totp/setup" | "/auth/totp/confirm" => Action::SecondFactor,
        "/auth/password" => Action::AdminChange,
        route if route.starts_with("/api/admin/agencies/{agency_id}/legal-holds") => Action::LegalHold,
        "/api/admin/agencies/{agency_id}/people/{person_id}/erasure" => Action::Erasure,
        "/api/admin/agencies/{agency_id}/data-keys/rotate" => Action::DataKey,
        "/api/keys"
        | "/api/admin/agencies/{agency_id}/keys"
        | "/api/admin/agencies/{agency_id}/scim-token"
            if method == Method::POST =>
        {
            Action::KeyCreated
        }
        "/api/keys/{key_id}" | "/api/admin/agencies/{agency_id}/keys/{key_id}"
            if method == Method::DELETE =>
        {
            Action::KeyRevoked
        }
        "/api/admin/agencies/{agency_id}/people/{person_id}/sessions" => Action::SessionsRevoked,
        "/v1/collections" | "/v1/collections/{collection}" | "/v1/search" => Action::CollectionAccess,
        "/v1/documents" | "/v1/documents/{document}" => Action::DocumentAccess,
        _ => Action::AdminChange,
    })
}

/// Field names whose values never reach the audit log.
fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "totp", "credential", "private"]
        .iter()
        .any(|word| name.contains(word))
}

/// `value` with every secret field's value replaced by `"***"`.
fn masked(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| {
                    let value = if is_secret_field(&name) && !value.is_null() {
                        json!("***")
                    } else {
                        masked(value)
                    };
                    (name, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(masked).collect()),
        other => other,
    }
}

/// What an administration change on `route` (at `path`) records beside
/// who and when: `before`, the state it is about to alter, read now, and
/// `after`, what was `asked` (secret fields masked, size bounded). The
/// API's layer and the workspace's pages both use it.
pub async fn change_details(
    state: &AppState,
    route: &str,
    path: &str,
    asked: Option<Value>,
) -> serde_json::Map<String, Value> {
    let asked = asked.map(masked);
    let mut details = serde_json::Map::new();
    if let Some(before) = state_before(state, route, path, asked.as_ref()).await {
        details.insert("before".to_owned(), before);
    }
    if let Some(asked) = asked.filter(|asked| !asked.is_null()) {
        details.insert("after".to_owned(), bounded(asked));
    }
    details
}

/// Largest `after` kept whole in an audit record, in bytes of JSON.
const MAX_RECORDED_CHANGE: usize = 16 * 1024;

/// `value`, or a note of its size when it is too large to keep whole in
/// the log (a bulk provisioning call, say).
fn bounded(value: Value) -> Value {
    let size = value.to_string().len();
    if size <= MAX_RECORDED_CHANGE {
        value
    } else {
        json!({ "omitted": "too large to keep whole in the audit log", "bytes": size })
    }
}

/// What an administration change on `route` is about to alter, read
/// before it runs (people, their groups and roles, a group's models, a
/// scope's limits); `None` for creations and anything else.
async fn state_before(state: &AppState, route: &str, path: &str, asked: Option<&Value>) -> Option<Value> {
    let parts: Vec<&str> = path.strip_prefix("/api/admin/agencies/")?.split('/').collect();
    let agency_id = *parts.first()?;
    let store = state.store.as_ref();
    match route {
        "/api/admin/agencies/{agency_id}/people/{person_id}"
        | "/api/admin/agencies/{agency_id}/people/{person_id}/groups"
        | "/api/admin/agencies/{agency_id}/people/{person_id}/roles" => {
            let person = store.get_person(parts.get(2)?).await.ok()??;
            if person.agency_id != agency_id {
                return None;
            }
            let grants = store.grants(&person.id).await.ok()?;
            Some(json!({
                "display_name": person.display_name,
                "status": person.status,
                "roles": grants.roles,
                "groups": grants.groups.iter().map(|group| &group.id).collect::<Vec<_>>(),
            }))
        }
        "/api/admin/agencies/{agency_id}/groups/{group_id}/models" => {
            let group = store.get_group(agency_id, parts.get(2)?).await.ok()??;
            Some(json!({ "models": group.models }))
        }
        "/api/admin/agencies/{agency_id}/limits" => {
            let scope = asked?.get("scope")?.as_str()?;
            let limits = store.list_limits(agency_id).await.ok()?;
            Some(
                limits
                    .into_iter()
                    .find(|limits| limits.scope == scope)
                    .and_then(|limits| serde_json::to_value(limits).ok())
                    .unwrap_or(Value::Null),
            )
        }
        _ => None,
    }
}

/// Records every change made through the API (administration, SCIM, keys,
/// sign-out, second factor) in the same transaction as the change; a
/// refused or failed attempt is recorded on its own with its outcome.
pub async fn record_changes(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    // Decided before anything is copied: model calls pass straight on.
    let Some(action) = action_for(&route, request.method()) else {
        return next.run(request).await;
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let origin = Origin::of_parts(&state, request.headers(), request.extensions());
    let mut details = json!({ "method": request.method().as_str(), "route": route });
    let path = request.uri().path().to_owned();
    // An administration change keeps what it changed: the state before
    // and what was asked (secrets masked).
    let request = if matches!(
        action,
        Action::AdminChange | Action::Erasure | Action::LegalHold | Action::DataKey
    ) && (route.starts_with("/api/admin/") || route.starts_with("/scim/"))
    {
        let (parts, body) = request.into_parts();
        let limit = state.config.server.max_body_bytes as usize;
        let bytes = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the request body is larger than the limit of {limit} bytes"),
                )
                .into_response()
            }
        };
        let asked = serde_json::from_slice::<Value>(&bytes).ok();
        if let (Some(details), changed) = (
            details.as_object_mut(),
            change_details(&state, &route, &path, asked).await,
        ) {
            details.extend(changed);
        }
        axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        request
    };
    let target = Some(path);
    let mut change = entry(&principal, &origin, action, target, Outcome::Success, details);
    // A change to an agency belongs to that agency's log (its auditors see
    // it), whoever made it.
    if let Some(acted_on) = request
        .uri()
        .path()
        .strip_prefix("/api/admin/agencies/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
    {
        change.agency_id = Some(acted_on.to_owned());
    }
    let (response, mut left) = civitas_store::with_audit(vec![change], next.run(request)).await;
    if !left.is_empty() {
        let status = response.status();
        let outcome = if status.is_success() || status.is_redirection() {
            Outcome::Success
        } else if matches!(status.as_u16(), 401 | 403 | 404) {
            Outcome::Denied
        } else {
            Outcome::Failure
        };
        for entry in &mut left {
            entry.outcome = outcome;
            if let Some(details) = entry.details.as_object_mut() {
                details.insert("status".to_owned(), json!(status.as_u16()));
            }
        }
        if let Err(error) = state.store.append_audit(left).await {
            tracing::error!(%error, "could not record a change in the audit log");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_masked_at_any_depth_and_nothing_else() {
        let asked = json!({
            "email": "clerk@agency.example.gov",
            "password": "Vélo-rouge-sous-la-pluie",
            "roles": ["member"],
            "credentials": [{ "client_secret": "s3cret", "name": "kept" }],
            "scim_token": null,
            "otlp": { "AccessToken": "abc" },
        });
        let masked = masked(asked);
        assert_eq!(
            masked,
            json!({
                "email": "clerk@agency.example.gov",
                "password": "***",
                "roles": ["member"],
                "credentials": "***",
                "scim_token": null,
                "otlp": { "AccessToken": "***" },
            })
        );
        assert!(!masked.to_string().contains("s3cret"));
    }

    #[test]
    fn a_huge_change_is_noted_by_its_size_not_kept() {
        let small = json!({ "roles": ["member"] });
        assert_eq!(bounded(small.clone()), small);
        let huge = json!({ "members": vec!["someone@agency.example.gov"; 2000] });
        let noted = bounded(huge);
        assert!(noted["bytes"].as_u64().unwrap() > MAX_RECORDED_CHANGE as u64);
        assert!(noted.get("members").is_none());
    }
}
