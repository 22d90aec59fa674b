//! Signing in with a local account: `POST /auth/login` (the one public
//! route that writes), sign-out, sign-out everywhere, password change and
//! the TOTP second factor.
//!
//! Sessions live in the database (so they hold across replicas); the
//! cookie carries 256 random bits of which only the hash is stored; a new
//! session id is issued at every sign-in and the one presented (if any) is
//! ended, so a planted cookie is worthless. Every state-changing request
//! made with the cookie must carry the session's CSRF token.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use civitas_identity::{password, provision, secret, totp, Credential, Principal};
use civitas_store::Session;
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::audit::{audited, entry_by, Origin};
use crate::auth::{check_status, cookie, Authenticated, SESSION_COOKIE};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::middleware::RequestId;
use crate::state::AppState;
use civitas_audit::{Action, ActorKind, Outcome};

/// Failures before answers start to slow down.
const FREE_FAILURES: i64 = 3;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
    /// The six-digit code, for accounts with a second factor.
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// A new session; the cookie is set by the same answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    pub object: String,
    pub person_id: String,
    /// Send it as `x-csrf-token` on every state-changing request.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_minutes: u32,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the e-mail address or the password is not right",
    )
}

async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => password::verify(&password, &stored),
        None => {
            password::verify_nobody(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Counts a failure, locks the account at the limit, and slows down.
async fn failed(state: &AppState, person_id: &str, failures_before: i64, error: ApiError) -> ApiError {
    let auth = &state.config.auth;
    let lock = (failures_before + 1 >= i64::from(auth.max_failed_logins))
        .then(|| Utc::now() + chrono::Duration::minutes(i64::from(auth.lockout_minutes)));
    let count = match state.store.record_login_failure(person_id, lock).await {
        Ok(count) => count,
        Err(error) => return ApiError::storage(error),
    };
    if lock.is_some() {
        tracing::warn!(person_id, "account locked after repeated failed sign-ins");
    }
    if count > FREE_FAILURES {
        let steps = (count - FREE_FAILURES - 1).min(5) as u32;
        tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(steps))).await;
    }
    error
}

/// Opens a new session for `person_id` and ends the one presented in
/// `headers`, if any (a new session id at every sign-in). Returns the
/// cookie value (never stored) and the session.
pub async fn start_session(
    state: &AppState,
    person_id: &str,
    headers: &HeaderMap,
) -> Result<(String, Session), ApiError> {
    if let Some(previous) = cookie(headers, SESSION_COOKIE) {
        state
            .store
            .revoke_session(&secret::hash(previous), civitas_store::now())
            .await
            .map_err(ApiError::storage)?;
    }
    let token = secret::random_token();
    let absolute = chrono::Duration::hours(i64::from(state.config.auth.session_absolute_hours));
    let created = civitas_store::now();
    let session = Session {
        id_hash: secret::hash(&token),
        person_id: person_id.to_owned(),
        csrf_token: secret::random_token(),
        created_at: created,
        last_seen_at: created,
        expires_at: created + absolute,
        revoked_at: None,
    };
    state
        .store
        .create_session(&session)
        .await
        .map_err(ApiError::storage)?;
    Ok((token, session))
}

/// The `Set-Cookie` value of a session (an empty value and age 0 clear it).
pub fn session_cookie(state: &AppState, value: &str, max_age_seconds: i64) -> Option<HeaderValue> {
    let secure = if state.config.auth.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    ))
    .ok()
}

#[utoipa::path(post, path = "/auth/login", operation_id = "login", tag = "sessions",
    summary = "Sign in with a local account; sets the session cookie",
    request_body = Login,
    responses((status = 200, body = SignedIn),
        (status = 401, description = "invalid_credentials or second_factor_required", body = civitas_types::ErrorBody),
        (status = 403, description = "account_disabled or account_pending", body = civitas_types::ErrorBody),
        (status = 429, description = "account_locked; see Retry-After", body = civitas_types::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let origin = Origin::of(
        &state,
        &headers,
        peer.map(|axum::Extension(info)| info.0.ip()),
        Some(&request_id),
    );
    let (token, session) = password_sign_in(&state, &headers, &origin, body).await?;
    let absolute = session.expires_at - session.created_at;
    let mut response = Json(SignedIn {
        object: "session".to_owned(),
        person_id: session.person_id,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at,
        idle_timeout_minutes: state.config.auth.session_idle_minutes,
    })
    .into_response();
    if let Some(value) = session_cookie(&state, &token, absolute.num_seconds()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Checks an e-mail address, password and (if the account has one) second
/// factor, counting failures and locking at the limit, then opens a
/// session. Shared by the API and the sign-in page. A refusal is recorded
/// in the audit log (with the address tried, never the password); a
/// success is recorded in the transaction that opens the session.
pub async fn password_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    origin: &Origin,
    body: Login,
) -> Result<(String, Session), ApiError> {
    let email = provision::normalize_email(&body.email).unwrap_or_default();
    let attempt = check_sign_in(state, headers, origin, &email, body).await;
    if let Err(error) = &attempt {
        // The agency of the account tried, when there is one.
        let agency_id = match state.store.get_person_by_email(&email).await {
            Ok(Some(person)) => Some(person.agency_id),
            _ => None,
        };
        let mut refusal = entry_by(
            ActorKind::Person,
            format!("email:{email}"),
            origin,
            Action::SignInFailed,
            Outcome::Failure,
            serde_json::json!({ "method": "password", "reason": error.code.as_str() }),
        );
        refusal.agency_id = agency_id;
        if let Err(audit_error) = state.store.append_audit(vec![refusal]).await {
            tracing::error!(error = %audit_error, "could not record a refused sign-in");
        }
    }
    attempt
}

async fn check_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    origin: &Origin,
    email: &str,
    body: Login,
) -> Result<(String, Session), ApiError> {
    let email = email.to_owned();
    let person = if email.is_empty() {
        None
    } else {
        state
            .store
            .get_person_by_email(&email)
            .await
            .map_err(ApiError::storage)?
            .filter(|person| person.kind == "person")
    };
    let Some(person) = person else {
        verify_password(body.password, None).await;
        return Err(invalid_credentials());
    };
    let credentials = state
        .store
        .credentials(&person.id)
        .await
        .map_err(ApiError::storage)?;
    let now = Utc::now();
    if let Some(until) = credentials.locked_until.filter(|until| *until > now) {
        let mut error = ApiError::new(
            ErrorCode::AccountLocked,
            "too many failed sign-ins: this account is locked for a while; try later or ask an administrator",
        );
        error.retry_after_seconds = Some((until - now).num_seconds().max(1) as u64);
        return Err(error);
    }
    if !verify_password(body.password, credentials.password_hash.clone()).await {
        return Err(failed(
            state,
            &person.id,
            credentials.failed_logins,
            invalid_credentials(),
        )
        .await);
    }
    if credentials.totp_confirmed {
        let Some(code) = body.totp_code.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::SecondFactorRequired,
                "this account has a second factor: send the six-digit code as `totp_code`",
            )
            .with_param("totp_code"));
        };
        let secret_value = credentials.totp_secret.clone().unwrap_or_default();
        if !totp::verify(&secret_value, code, now.timestamp()) {
            let error = ApiError::new(
                ErrorCode::InvalidCredentials,
                "the second-factor code is not right",
            )
            .with_param("totp_code");
            return Err(failed(state, &person.id, credentials.failed_logins, error).await);
        }
    }
    check_status(&person)?;
    if credentials.failed_logins > 0 || credentials.locked_until.is_some() {
        state
            .store
            .reset_login_failures(&person.id)
            .await
            .map_err(ApiError::storage)?;
    }
    let mut signed_in = entry_by(
        ActorKind::Person,
        person.id.clone(),
        origin,
        Action::SignIn,
        Outcome::Success,
        serde_json::json!({ "method": "password", "second_factor": credentials.totp_confirmed }),
    );
    signed_in.agency_id = Some(person.agency_id.clone());
    let opened = audited(
        state.store.as_ref(),
        vec![signed_in],
        start_session(state, &person.id, headers),
    )
    .await?;
    tracing::info!(person_id = %person.id, "signed in");
    Ok(opened)
}

/// How many sessions ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    pub object: String,
    pub sessions_ended: u64,
}

fn signed_out(state: &AppState, sessions_ended: u64) -> Response {
    let mut response = Json(SignedOut {
        object: "signed_out".to_owned(),
        sessions_ended,
    })
    .into_response();
    if let Some(value) = session_cookie(state, "", 0) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[utoipa::path(post, path = "/auth/logout", operation_id = "logout", tag = "sessions",
    summary = "End the current session",
    responses((status = 200, body = SignedOut),
        (status = 400, description = "invalid_parameter: the caller used a key, not a session", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    let Credential::Session { id_hash, .. } = &principal.credential else {
        return Err(ApiError::invalid(
            "authorization",
            "this request used an API key, not a session; revoke the key instead",
        ));
    };
    state
        .store
        .revoke_session(id_hash, civitas_store::now())
        .await
        .map_err(ApiError::storage)?;
    Ok(signed_out(&state, 1))
}

#[utoipa::path(post, path = "/auth/logout-all", operation_id = "logoutEverywhere", tag = "sessions",
    summary = "End every session of the caller, on every device",
    responses((status = 200, body = SignedOut), (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout_everywhere(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    let ended = state
        .store
        .revoke_sessions_of(principal.id(), civitas_store::now())
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %principal.id(), ended, "signed out everywhere");
    Ok(signed_out(&state, ended))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

fn local_person(principal: &Principal) -> Result<(), ApiError> {
    if principal.person.kind != "person" {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "service accounts have no password or second factor",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/auth/password", operation_id = "changePassword", tag = "sessions",
    summary = "Change the caller's password; every session ends",
    request_body = ChangePassword,
    responses((status = 200, body = SignedOut),
        (status = 401, description = "invalid_credentials: the current password is not right", body = civitas_types::ErrorBody),
        (status = 422, description = "weak_password", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Response, ApiError> {
    local_person(&principal)?;
    let credentials = state
        .store
        .credentials(principal.id())
        .await
        .map_err(ApiError::storage)?;
    if !verify_password(body.current_password, credentials.password_hash).await {
        return Err(failed(
            &state,
            principal.id(),
            credentials.failed_logins,
            invalid_credentials().with_param("current_password"),
        )
        .await);
    }
    password::check_policy(
        &body.new_password,
        &principal.person.email,
        &principal.person.display_name,
    )
    .map_err(|rejected| {
        ApiError::new(ErrorCode::WeakPassword, rejected.to_string()).with_param("new_password")
    })?;
    let new_password = body.new_password;
    let hash = tokio::task::spawn_blocking(move || provision::hash_password(&new_password))
        .await
        .map_err(|_| ApiError::internal())??;
    state
        .store
        .set_password_hash(principal.id(), &hash)
        .await
        .map_err(ApiError::storage)?;
    let ended = state
        .store
        .revoke_sessions_of(principal.id(), civitas_store::now())
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %principal.id(), "password changed; sessions ended");
    Ok(signed_out(&state, ended))
}

/// A second factor to add to an authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    pub object: String,
    /// Base32 secret, for manual entry.
    pub secret: String,
    /// `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

#[utoipa::path(post, path = "/auth/totp/setup", operation_id = "setUpTotp", tag = "sessions",
    summary = "Start adding a TOTP second factor; confirm it with a code",
    responses((status = 200, body = TotpSetup),
        (status = 409, description = "conflict: a second factor is already on", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn totp_setup(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<TotpSetup>), ApiError> {
    local_person(&principal)?;
    let credentials = state
        .store
        .credentials(principal.id())
        .await
        .map_err(ApiError::storage)?;
    if credentials.totp_confirmed {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a second factor is already on for this account",
        ));
    }
    let secret_value = totp::new_secret();
    state
        .store
        .set_totp(principal.id(), Some(&secret_value), false)
        .await
        .map_err(ApiError::storage)?;
    Ok((
        StatusCode::OK,
        Json(TotpSetup {
            object: "totp_setup".to_owned(),
            otpauth_uri: totp::provisioning_uri(&secret_value, &principal.person.email, "Civitas"),
            secret: secret_value,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub code: String,
}

/// The second factor is on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnabled {
    pub object: String,
    pub enabled: bool,
}

#[utoipa::path(post, path = "/auth/totp/confirm", operation_id = "confirmTotp", tag = "sessions",
    summary = "Turn the second factor on by sending a current code",
    request_body = TotpConfirm,
    responses((status = 200, body = TotpEnabled),
        (status = 400, description = "invalid_parameter: the code is not right", body = civitas_types::ErrorBody),
        (status = 409, description = "conflict: no set-up in progress, or already on", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<TotpConfirm>,
) -> Result<Json<TotpEnabled>, ApiError> {
    local_person(&principal)?;
    let credentials = state
        .store
        .credentials(principal.id())
        .await
        .map_err(ApiError::storage)?;
    let secret_value = match (&credentials.totp_secret, credentials.totp_confirmed) {
        (Some(secret_value), false) => secret_value.clone(),
        _ => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "no second-factor set-up is in progress; start one with /auth/totp/setup",
            ))
        }
    };
    if !totp::verify(&secret_value, &body.code, Utc::now().timestamp()) {
        return Err(ApiError::invalid(
            "code",
            "the code is not right; check the authenticator's clock",
        ));
    }
    state
        .store
        .set_totp(principal.id(), Some(&secret_value), true)
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %principal.id(), "second factor turned on");
    Ok(Json(TotpEnabled {
        object: "totp".to_owned(),
        enabled: true,
    }))
}
