//! Authentication and the extractors that carry authorization into each
//! handler's signature.
//!
//! [`authenticate`] runs on every route outside [`crate::PUBLIC_ROUTES`]:
//! it turns a bearer key or a session cookie into a [`Principal`]. Sessions
//! are looked up in the database at every request; API keys found valid are
//! kept for `auth.key_cache_seconds` (see [`crate::identity_cache`]), so a
//! revocation holds at the next request on this server and within those
//! seconds on the others. Handlers then take [`Authenticated`] (any
//! signed-in caller) or [`AgencyAccess<P>`] (a role in the agency of the
//! path, decided by [`civitas_identity::policy`]).

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use civitas_identity::policy::{self, Denied};
use civitas_identity::{secret, Credential, Principal, Role};
use civitas_store::{Agency, Person};
use civitas_types::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "civitas_session";
/// The header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `last_used_at` and `last_seen_at` are written at most this often.
const TOUCH_EVERY_SECONDS: i64 = 60;

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The client's address: the connection's peer, or, when the peer is a
/// trusted proxy, the right-most address of `X-Forwarded-For` that is not
/// itself a trusted proxy (entries further left are the client's own say).
fn client_address(request: &Request, trusted: &[String]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())?;
    forwarded_client(request.headers(), peer, trusted)
}

/// The client behind `peer`: the peer itself, or, when the peer is a
/// trusted proxy, the last untrusted address of `X-Forwarded-For` (`None`
/// when that header is unreadable).
pub fn forwarded_client(headers: &axum::http::HeaderMap, peer: IpAddr, trusted: &[String]) -> Option<IpAddr> {
    let is_trusted = |address: IpAddr| civitas_identity::provision::address_allowed(trusted, address);
    if trusted.is_empty() || !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()?;
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|address| !is_trusted(*address))
            .unwrap_or(peer),
    )
}

/// Refuses accounts that may not act.
pub fn check_status(person: &Person) -> Result<(), ApiError> {
    match person.status.as_str() {
        "active" => Ok(()),
        "pending" => Err(ApiError::new(
            ErrorCode::AccountPending,
            "this account awaits an administrator's approval",
        )),
        _ => Err(ApiError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled; contact your agency's administrator",
        )),
    }
}

async fn principal_for(
    state: &AppState,
    person: Person,
    version: i64,
    credential: Credential,
) -> Result<(Principal, i64), ApiError> {
    check_status(&person)?;
    let grants = state
        .identity_cache
        .grants(state.store.as_ref(), &person.id, version)
        .await
        .map_err(ApiError::storage)?;
    Ok((Principal::new(person, grants, credential), version))
}

async fn from_key(
    state: &AppState,
    token: &str,
    address: Option<IpAddr>,
    scim_route: bool,
    origin: impl FnOnce() -> crate::audit::Origin,
) -> Result<(Principal, i64), ApiError> {
    let hash = secret::hash(token);
    let fresh_for = std::time::Duration::from_secs(u64::from(state.config.auth.key_cache_seconds));
    let cached = state.identity_cache.key(&hash, fresh_for);
    let mut keep = cached.is_none() && !fresh_for.is_zero();
    let (found_at, mut holder) = match cached {
        Some(cached) => cached,
        None => {
            let found_at = std::time::Instant::now();
            let holder = state
                .store
                .key_holder(&hash)
                .await
                .map_err(ApiError::storage)?
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid"))?;
            (found_at, holder)
        }
    };
    let key = holder.credential.clone();
    let now = Utc::now();
    if key.revoked_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::ApiKeyRevoked,
            "this API key was revoked",
        ));
    }
    // SCIM tokens work on the SCIM routes only, and nothing else does.
    if (key.kind == "scim") != scim_route {
        let message = if scim_route {
            "SCIM routes need the agency's SCIM token"
        } else {
            "a SCIM token is only accepted on /scim/v2"
        };
        return Err(ApiError::new(ErrorCode::InvalidApiKey, message));
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::new(
            ErrorCode::ApiKeyExpired,
            "this API key has expired; create a new one",
        ));
    }
    if let Some(ranges) = &key.ip_ranges {
        let allowed =
            address.is_some_and(|address| civitas_identity::provision::address_allowed(ranges, address));
        if !allowed {
            return Err(ApiError::new(
                ErrorCode::AddressNotAllowed,
                "this API key may not be used from this address",
            ));
        }
    }
    if key
        .last_used_at
        .is_none_or(|at| (now - at).num_seconds() >= TOUCH_EVERY_SECONDS)
    {
        let store = state.store.clone();
        let id = key.id.clone();
        // The first use of a key is an audit event, written with the
        // first `last_used_at` (only one of two racing first uses is).
        let first_use = key.last_used_at.is_none().then(|| {
            let mut record = crate::audit::entry_by(
                civitas_audit::ActorKind::Key,
                holder.person.id.clone(),
                &origin(),
                civitas_audit::Action::KeyFirstUsed,
                civitas_audit::Outcome::Success,
                serde_json::json!({ "prefix": key.prefix, "kind": key.kind }),
            );
            record.agency_id = Some(key.agency_id.clone());
            record.target = Some(format!("key:{}", key.id));
            record
        });
        tokio::spawn(async move {
            let (touched, _) = civitas_store::with_audit(
                first_use.into_iter().collect(),
                store.touch_api_key(&id, civitas_store::now()),
            )
            .await;
            if let Err(error) = touched {
                tracing::warn!(%error, "could not record a key's last use");
            }
        });
        // Kept with its new last use, so that it is not touched again.
        holder.credential.last_used_at = Some(now);
        keep = !fresh_for.is_zero();
    }
    // Only a key that passed every check is kept (a refused one is read
    // again, so that its fix holds at once), as fresh as when it was read.
    if keep {
        state.identity_cache.remember_key(&hash, found_at, holder.clone());
    }
    principal_for(
        state,
        holder.person,
        holder.version,
        Credential::Key(Box::new(key)),
    )
    .await
}

fn session_expired() -> ApiError {
    ApiError::new(ErrorCode::SessionExpired, "the session has ended; sign in again")
}

/// The principal of a session cookie's value; `safe` requests need no
/// CSRF token, others must send `csrf`.
pub async fn from_session(
    state: &AppState,
    token: &str,
    safe: bool,
    csrf: &str,
) -> Result<(Principal, i64), ApiError> {
    let id_hash = secret::hash(token);
    let holder = state
        .store
        .session_holder(&id_hash)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(session_expired)?;
    let session = holder.credential;
    let now = Utc::now();
    let idle = chrono::Duration::minutes(i64::from(state.config.auth.session_idle_minutes));
    if session.revoked_at.is_some() || session.expires_at <= now || session.last_seen_at + idle <= now {
        return Err(session_expired());
    }
    if !safe && !secret::constant_time_eq(csrf, &session.csrf_token) {
        return Err(ApiError::new(
            ErrorCode::CsrfTokenInvalid,
            format!("a request made with a session cookie must send its CSRF token in `{CSRF_HEADER}`"),
        ));
    }
    if (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS {
        state
            .store
            .touch_session(&id_hash, civitas_store::now())
            .await
            .map_err(ApiError::storage)?;
    }
    principal_for(
        state,
        holder.person,
        holder.version,
        Credential::Session {
            id_hash,
            csrf_token: session.csrf_token,
        },
    )
    .await
}

/// After any state-changing request outside `/v1/` (the API's
/// administration, the workspace's settings and pages, SCIM), forgets the
/// API keys this server believed: a key revoked, a role taken away or a
/// person disabled holds at the next request here.
pub async fn forget_keys_after_changes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !request.uri().path().starts_with("/v1/");
    let response = next.run(request).await;
    if changes {
        state.identity_cache.forget_keys();
    }
    response
}

/// Resolves the caller from `Authorization: Bearer <key>` or the session
/// cookie, and refuses the request when neither is valid.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let resolved = if let Some(token) = bearer(&request).map(str::to_owned) {
        let scim_route = request.uri().path().starts_with("/scim/");
        let address = client_address(&request, &state.config.server.trusted_proxies);
        // Only references to the parts that are shared between threads
        // (the body is not), so that the future stays `Send`.
        let (headers, extensions) = (request.headers(), request.extensions());
        let origin = || crate::audit::Origin::of_parts(&state, headers, extensions);
        from_key(&state, &token, address, scim_route, origin).await
    } else if let Some(token) = cookie(request.headers(), SESSION_COOKIE) {
        let token = token.to_owned();
        let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        from_session(&state, &token, safe, &csrf).await
    } else {
        Err(ApiError::new(
            ErrorCode::MissingApiKey,
            "this route needs an API key (`Authorization: Bearer <key>`) or a signed-in session",
        ))
    };
    match resolved {
        Ok((principal, version)) => {
            let mut caller = crate::middleware::Caller::of(&principal, version);
            // A client may put its own work behind others' (never ahead).
            if request
                .headers()
                .get("x-civitas-priority")
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"batch"))
            {
                caller.priority = crate::fair_queue::Priority::Batch;
            }
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// Any authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| {
                tracing::error!("a handler needing a principal runs without authentication");
                ApiError::internal()
            })
    }
}

/// What an [`AgencyAccess`] requires: one of these roles in the agency of
/// the path (or above it).
pub trait Permission {
    const ROLES: &'static [Role];
}

macro_rules! permissions {
    ($($(#[doc = $doc:literal])* $name:ident => $roles:path,)*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Permission for $name {
                const ROLES: &'static [Role] = $roles;
            }
        )*
    };
}

permissions! {
    /// Read the agency's settings, groups and people.
    ReadAgency => policy::AGENCY_READERS,
    /// Change people, groups, memberships and roles.
    ManagePeople => policy::PEOPLE_MANAGERS,
    /// Change which models groups may use.
    ManageModels => policy::MODEL_MANAGERS,
    /// Set limits and budgets.
    ManageLimits => policy::LIMIT_MANAGERS,
    /// Read limits, budgets and usage.
    ReadUsage => policy::USAGE_READERS,
    /// Create and revoke keys of the agency's accounts.
    ManageKeys => policy::KEY_MANAGERS,
    /// List the agency's keys.
    ReadKeys => policy::KEY_READERS,
    /// Search and export the agency's audit records.
    ReadAudit => policy::AUDIT_READERS,
    /// Ask for break-glass access and read under it.
    RequestBreakGlass => policy::BREAK_GLASS_REQUESTERS,
    /// List and decide break-glass requests.
    ApproveBreakGlass => policy::BREAK_GLASS_APPROVERS,
    /// Retention, data keys, clearances, access and erasure requests.
    ManageRecords => policy::RECORDS_MANAGERS,
    /// Legal holds.
    ManageLegalHolds => policy::LEGAL_HOLD_MANAGERS,
}

/// The caller may act on the agency named by the `{agency_id}` path
/// parameter with permission `P`. Another agency's id answers 404 exactly
/// like a missing one.
#[derive(Debug)]
pub struct AgencyAccess<P> {
    pub principal: Principal,
    pub agency: Agency,
    permission: PhantomData<P>,
}

/// Decides access to agency `agency_id` for `principal` with `roles`.
pub async fn authorize_agency(
    state: &AppState,
    principal: &Principal,
    agency_id: &str,
    roles: &[Role],
) -> Result<Agency, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no agency `{agency_id}`"));
    let agency = state
        .store
        .get_agency(agency_id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    let chain = state
        .store
        .agency_ancestors(agency_id)
        .await
        .map_err(ApiError::storage)?;
    let denied = match policy::authorize_agency(principal, &chain, roles) {
        Ok(()) => return Ok(agency),
        Err(Denied::NotFound) => ("not_visible", not_found()),
        Err(Denied::Forbidden) => ("role_missing", forbidden(roles)),
    };
    // Reaching for another agency, or beyond one's roles, is recorded
    // (the caller still sees only "not found" for another agency).
    let refusal = crate::audit::entry(
        principal,
        &crate::audit::Origin::default(),
        civitas_audit::Action::PolicyDenied,
        Some(format!("agency:{agency_id}")),
        civitas_audit::Outcome::Denied,
        serde_json::json!({
            "reason": denied.0,
            "roles_needed": roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
        }),
    );
    if let Err(error) = state.store.append_audit(vec![refusal]).await {
        tracing::error!(%error, "could not record a refusal in the audit log");
    }
    Err(denied.1)
}

/// 403 naming the roles that would allow the action.
pub fn forbidden(roles: &[Role]) -> ApiError {
    let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    ApiError::new(
        ErrorCode::PermissionDenied,
        format!("this action needs one of the roles: {}", names.join(", ")),
    )
}

impl<P: Permission> AgencyAccess<P> {
    /// `principal` may act on `agency_id` with permission `P` (the
    /// workspace's administration pages come here; the API through the
    /// extractor).
    pub async fn check(state: &AppState, principal: Principal, agency_id: &str) -> Result<Self, ApiError> {
        let agency = authorize_agency(state, &principal, agency_id, P::ROLES).await?;
        Ok(AgencyAccess {
            principal,
            agency,
            permission: PhantomData,
        })
    }
}

impl<P: Permission + Send + Sync> FromRequestParts<AppState> for AgencyAccess<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::internal())?;
        let agency_id = params
            .iter()
            .find(|(name, _)| *name == "agency_id")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(ApiError::internal)?;
        let agency = authorize_agency(state, &principal, &agency_id, P::ROLES).await?;
        Ok(AgencyAccess {
            principal,
            agency,
            permission: PhantomData,
        })
    }
}
