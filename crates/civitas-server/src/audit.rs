//! The server's side of the audit log: the signing key, records of what
//! people do (who, from where, in which request), the task that signs
//! checkpoints, and the published checkpoint an outside party can pin.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
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
            return Ok(Auditor { key });
        }
        let path = config.data_dir().join("audit-signing-key");
        Ok(Auditor {
            key: read_or_create(&path)?,
        })
    }

    pub fn public_keys(&self) -> Vec<PublicKey> {
        vec![self.key.public()]
    }
}

fn read_or_create(path: &Path) -> Result<AuditKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            AuditKey::from_text(&text).ok_or_else(|| format!("{} does not hold an audit key", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = AuditKey::generate();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|error| format!("{}: {error}", parent.display()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            let written = options
                .open(path)
                .and_then(|mut file| file.write_all(format!("{}\n", key.to_text()).as_bytes()));
            match written {
                Ok(()) => Ok(key),
                // Another replica or process wrote it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_or_create(path),
                Err(error) => Err(format!("{}: {error}", path.display())),
            }
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
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
            match state.store.add_checkpoint(&checkpoint).await {
                Ok(()) => {
                    signed = tree.size();
                    last = Instant::now();
                    state.metrics.audit_checkpoint_unix.set(checkpoint.at.timestamp());
                    let details = json!({
                        "tree_size": checkpoint.tree_size,
                        "root_hash": civitas_audit::record::hex_hash::to_hex(&checkpoint.root_hash),
                        "key_id": checkpoint.key_id,
                    });
                    if let Err(error) = state
                        .store
                        .append_audit(vec![system_entry(Action::Checkpoint, details)])
                        .await
                    {
                        tracing::error!(%error, "could not record a checkpoint in the audit log");
                    }
                }
                Err(error) => tracing::error!(%error, "could not store an audit checkpoint"),
            }
        }
    })
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
    let public = state
        .auditor
        .public_keys()
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

/// What a change on `route` is, for the audit log (`None`: not recorded
/// here — model calls are recorded with their request record).
fn action_for(route: &str, method: &axum::http::Method) -> Option<Action> {
    use axum::http::Method;
    Some(match route {
        "/v1/chat/completions" | "/v1/embeddings" => return None,
        "/auth/logout" => Action::SignOut,
        "/auth/logout-all" => Action::SessionsRevoked,
        "/auth/totp/setup" | "/auth/totp/confirm" => Action::SecondFactor,
        "/auth/password" => Action::AdminChange,
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
        _ => Action::AdminChange,
    })
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
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let request_id = request
        .extensions()
        .get::<crate::middleware::RequestId>()
        .map(|id| id.0.clone());
    let origin = Origin::of(&state, request.headers(), peer, request_id.as_deref());
    let details = json!({ "method": request.method().as_str(), "route": route });
    let target = Some(request.uri().path().to_owned());
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
