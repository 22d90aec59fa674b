//! Single sign-on with OpenID Connect: `GET /auth/providers`,
//! `GET /auth/oidc/{provider}/start` and `GET /auth/oidc/callback` (all
//! public: they are how one signs in).
//!
//! Authorization code flow with PKCE (S256), a random `state` kept hashed
//! in the database and usable once (a replayed callback is refused), a
//! random `nonce` checked in the ID token, the ID token verified against
//! the provider's published keys. People are created on their first
//! sign-in (just-in-time), `pending` when the provider requires approval;
//! groups and roles follow the provider's claims when so configured.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use civitas_identity::oidc::{claim_values, Expectations, Pkce};
use civitas_identity::provision::{self, PersonRequest};
use civitas_identity::{secret, Role};
use civitas_store::{Agency, ConsumedState, OidcState, Person};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::check_status;
use crate::error::ApiError;
use crate::routes::session::{session_cookie, start_session};
use crate::sso::{SsoError, SsoProvider};
use crate::state::AppState;

/// How long a sign-in may take between the redirect and the callback.
const ATTEMPT_MINUTES: i64 = 10;

/// A provider to offer on the sign-in page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoButton {
    pub name: String,
    pub display_name: String,
    /// Where the sign-in button points.
    pub start_url: String,
}

/// `{"object": "list", "data": [SsoButton]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoButtons {
    pub object: String,
    pub data: Vec<SsoButton>,
}

#[utoipa::path(get, path = "/auth/providers", operation_id = "listSignInProviders", tag = "sessions",
    summary = "Single sign-on providers to offer on the sign-in page",
    responses((status = 200, body = SsoButtons)))]
pub async fn providers(State(state): State<AppState>) -> Json<SsoButtons> {
    Json(SsoButtons {
        object: "list".to_owned(),
        data: state
            .sso
            .iter()
            .map(|provider| SsoButton {
                name: provider.config.name.clone(),
                display_name: if provider.config.display_name.is_empty() {
                    provider.config.name.clone()
                } else {
                    provider.config.display_name.clone()
                },
                start_url: format!("/auth/oidc/{}/start", provider.config.name),
            })
            .collect(),
    })
}

fn sso_error(error: SsoError) -> ApiError {
    match error {
        SsoError::Unavailable(reason) => {
            tracing::warn!(%reason, "identity provider unavailable");
            ApiError::new(
                ErrorCode::UpstreamError,
                format!("the identity provider is unavailable: {reason}"),
            )
        }
        SsoError::Token(error) => ApiError::new(ErrorCode::SsoFailed, error.to_string()),
        SsoError::Refused(reason) => ApiError::new(
            ErrorCode::SsoFailed,
            format!("the identity provider refused the sign-in ({reason}); start again"),
        ),
    }
}

fn provider_named(state: &AppState, name: &str) -> Result<Arc<SsoProvider>, ApiError> {
    state
        .sso
        .iter()
        .find(|provider| provider.config.name == name)
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no sign-in provider `{name}`")))
}

/// Only a path of this site: never another host (no open redirect).
fn safe_return_to(value: Option<&str>) -> Result<String, ApiError> {
    let value = value.unwrap_or("/v1/me");
    let safe = value.starts_with('/')
        && !value.starts_with("//")
        && !value.contains('\\')
        && value.len() <= 512
        && !value.chars().any(char::is_control);
    if safe {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            "return_to",
            "must be a path of this site, starting with a single /",
        ))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Path to return to after signing in (default `/v1/me`).
    pub return_to: Option<String>,
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(get, path = "/auth/oidc/{provider}/start", operation_id = "startSingleSignOn", tag = "sessions",
    summary = "Start signing in with an OpenID provider (redirects to it)",
    params(("provider" = String, Path), StartQuery),
    responses((status = 303, description = "Redirect to the provider"),
        (status = 400, description = "invalid_parameter", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found: no such provider", body = civitas_types::ErrorBody),
        (status = 502, description = "upstream_error: the provider is unreachable", body = civitas_types::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let provider = provider_named(&state, &name)?;
    let return_to = safe_return_to(query.return_to.as_deref())?;
    let discovery = provider.discovery().await.map_err(sso_error)?;
    let state_value = secret::random_token();
    let nonce = secret::random_token();
    let pkce = Pkce::new();
    state
        .store
        .create_oidc_state(&OidcState {
            state_hash: secret::hash(&state_value),
            provider: provider.config.name.clone(),
            nonce: nonce.clone(),
            code_verifier: pkce.verifier.clone(),
            return_to,
            created_at: civitas_store::now(),
        })
        .await
        .map_err(ApiError::storage)?;
    let mut url = url::Url::parse(&discovery.authorization_endpoint).map_err(|_| {
        sso_error(SsoError::Unavailable(
            "its authorization endpoint is not a URL".to_owned(),
        ))
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.config.client_id)
        .append_pair("redirect_uri", &provider.config.redirect_url)
        .append_pair("scope", &provider.config.scopes.join(" "))
        .append_pair("state", &state_value)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(redirect(url.as_str()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn state_invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::SsoStateInvalid, message).with_param("state")
}

/// The agency a person joins: the provider's, or the one its
/// `agency_claim` names at or below the provider's agency.
async fn claimed_agency(
    state: &AppState,
    provider: &SsoProvider,
    agency: Agency,
    claims: &Value,
) -> Result<Agency, ApiError> {
    if provider.config.agency_claim.is_empty() {
        return Ok(agency);
    }
    let not_allowed = |message: String| ApiError::new(ErrorCode::SsoNotAllowed, message);
    let slug = claim_values(claims, &provider.config.agency_claim)
        .into_iter()
        .next()
        .ok_or_else(|| {
            not_allowed(format!(
                "the identity provider sent no agency (claim `{}`)",
                provider.config.agency_claim
            ))
        })?;
    let named = state
        .store
        .get_agency_by_slug(&slug)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| not_allowed(format!("no agency `{slug}` here")))?;
    let chain = state
        .store
        .agency_ancestors(&named.id)
        .await
        .map_err(ApiError::storage)?;
    if !chain.contains(&agency.id) {
        return Err(not_allowed(format!(
            "this provider does not serve the agency `{slug}`"
        )));
    }
    Ok(named)
}

/// Finds or creates the person behind `claims`, in the provider's agency.
async fn provision_person(
    state: &AppState,
    provider: &SsoProvider,
    agency: &Agency,
    claims: &Value,
) -> Result<Person, ApiError> {
    let config = &provider.config;
    let not_allowed = |message: String| ApiError::new(ErrorCode::SsoNotAllowed, message);
    let email = claim_values(claims, &config.email_claim)
        .into_iter()
        .next()
        .ok_or_else(|| {
            not_allowed(format!(
                "the identity provider sent no e-mail address (claim `{}`)",
                config.email_claim
            ))
        })?;
    if claims["email_verified"] == Value::Bool(false) {
        return Err(not_allowed(
            "the identity provider has not verified this e-mail address".to_owned(),
        ));
    }
    let email = provision::normalize_email(&email).map_err(|error| not_allowed(error.to_string()))?;
    let domain = email.rsplit('@').next().unwrap_or("");
    if !config.allowed_domains.is_empty()
        && !config
            .allowed_domains
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(domain))
    {
        return Err(not_allowed(format!(
            "e-mail addresses of `{domain}` may not sign in here"
        )));
    }
    if let Some(person) = state
        .store
        .get_person_by_email(&email)
        .await
        .map_err(ApiError::storage)?
    {
        let chain = state
            .store
            .agency_ancestors(&person.agency_id)
            .await
            .map_err(ApiError::storage)?;
        if person.kind != "person" || !chain.contains(&agency.id) {
            return Err(not_allowed(
                "this e-mail address belongs to an account this provider does not serve".to_owned(),
            ));
        }
        return Ok(person);
    }
    let display_name = claim_values(claims, &config.name_claim)
        .into_iter()
        .next()
        .filter(|name| provision::check_name("name", name).is_ok())
        .unwrap_or_else(|| email.clone());
    let person = provision::create_person(
        state.store.as_ref(),
        PersonRequest {
            agency_id: agency.id.clone(),
            email,
            display_name,
            kind: "person".to_owned(),
            status: if config.require_approval {
                "pending"
            } else {
                "active"
            }
            .to_owned(),
            external_id: claims["sub"].as_str().map(str::to_owned),
            password: None,
        },
    )
    .await?;
    state
        .store
        .set_roles(&person.id, &agency.id, &[Role::Member.as_str().to_owned()])
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %person.id, provider = %config.name, status = %person.status, "person created at first sign-in");
    Ok(person)
}

/// Makes groups and roles follow the provider's claims, when configured.
async fn sync_grants(
    state: &AppState,
    provider: &SsoProvider,
    person: &Person,
    claims: &Value,
) -> Result<(), ApiError> {
    let config = &provider.config;
    if !config.groups_claim.is_empty() {
        let values = claim_values(claims, &config.groups_claim);
        let groups = state
            .store
            .list_groups(&person.agency_id)
            .await
            .map_err(ApiError::storage)?;
        let matched: Vec<String> = groups
            .iter()
            .filter(|group| {
                values
                    .iter()
                    .any(|value| *value == group.name || group.external_id.as_deref() == Some(value.as_str()))
            })
            .map(|group| group.id.clone())
            .collect();
        state
            .store
            .set_memberships(&person.agency_id, &person.id, &matched)
            .await
            .map_err(ApiError::storage)?;
    }
    if !config.roles_claim.is_empty() {
        let mut roles: Vec<String> = claim_values(claims, &config.roles_claim)
            .iter()
            .filter_map(|value| {
                if config.role_map.is_empty() {
                    Some(value.clone())
                } else {
                    config.role_map.get(value).cloned()
                }
            })
            .filter(|name| Role::parse(name).is_some_and(|role| role != Role::PlatformAdmin))
            .collect();
        roles.push(Role::Member.as_str().to_owned());
        state
            .store
            .set_roles(&person.id, &person.agency_id, &roles)
            .await
            .map_err(ApiError::storage)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/auth/oidc/callback", operation_id = "singleSignOnCallback", tag = "sessions",
    summary = "Where the OpenID provider returns; signs in and redirects back",
    params(CallbackQuery),
    responses((status = 303, description = "Signed in: session cookie set, redirect to the page asked for"),
        (status = 400, description = "sso_state_invalid: unknown, expired or replayed attempt", body = civitas_types::ErrorBody),
        (status = 401, description = "sso_failed: the provider refused or its token is invalid", body = civitas_types::ErrorBody),
        (status = 403, description = "sso_not_allowed, account_pending or account_disabled", body = civitas_types::ErrorBody),
        (status = 502, description = "upstream_error: the provider is unreachable", body = civitas_types::ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match complete(&state, &headers, query).await {
        // A person in a browser lands on the sign-in page, which explains
        // (in their language) what happened; API clients get the error.
        Err(error) if browser => {
            tracing::info!(
                code = error.code.as_str(),
                "single sign-on ended on the sign-in page"
            );
            if error.code == ErrorCode::AccountPending {
                return Ok(redirect("/pending"));
            }
            Ok(redirect(&format!("/sign-in?notice={}", error.code.as_str())))
        }
        other => other,
    }
}

async fn complete(state: &AppState, headers: &HeaderMap, query: CallbackQuery) -> Result<Response, ApiError> {
    let state_value = query
        .state
        .as_deref()
        .ok_or_else(|| state_invalid("the provider's answer has no `state`; start signing in again"))?;
    let attempt = match state
        .store
        .consume_oidc_state(&secret::hash(state_value), civitas_store::now())
        .await
        .map_err(ApiError::storage)?
    {
        ConsumedState::Fresh(attempt) => attempt,
        ConsumedState::AlreadyUsed => {
            tracing::warn!("a single sign-on answer was replayed");
            return Err(state_invalid(
                "this sign-in answer was already used (a replay); start signing in again",
            ));
        }
        ConsumedState::Unknown => {
            return Err(state_invalid("unknown sign-in attempt; start signing in again"))
        }
    };
    if Utc::now() - attempt.created_at > chrono::Duration::minutes(ATTEMPT_MINUTES) {
        return Err(state_invalid(
            "this sign-in attempt took too long; start signing in again",
        ));
    }
    let provider = provider_named(state, &attempt.provider)?;
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        let reason: String = format!("{error} {detail}").trim().chars().take(200).collect();
        return Err(sso_error(SsoError::Refused(reason)));
    }
    let code = query
        .code
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::SsoFailed, "the provider's answer has no code"))?;
    let tokens = provider
        .exchange(code, &attempt.code_verifier)
        .await
        .map_err(sso_error)?;
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| ApiError::new(ErrorCode::SsoFailed, "the identity provider returned no ID token"))?;
    let expect = Expectations {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        nonce: Some(&attempt.nonce),
        now: Utc::now().timestamp(),
        skew_seconds: i64::from(provider.config.clock_skew_seconds),
        require_expiry: true,
    };
    let mut claims = provider.verify(id_token, &expect).await.map_err(sso_error)?;
    let missing_email = claim_values(&claims, &provider.config.email_claim).is_empty();
    if let (true, Some(access_token)) = (missing_email, tokens["access_token"].as_str()) {
        let extra = provider
            .userinfo(access_token, &expect)
            .await
            .map_err(sso_error)?;
        if extra["sub"].is_string() && extra["sub"] != claims["sub"] {
            return Err(ApiError::new(
                ErrorCode::SsoFailed,
                "the provider's userinfo is about someone else",
            ));
        }
        if let (Some(into), Some(from)) = (claims.as_object_mut(), extra.as_object()) {
            for (name, value) in from {
                into.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    let agency = state
        .store
        .get_agency_by_slug(&provider.config.agency)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::SsoFailed,
                format!(
                    "this sign-in provider serves the agency `{}`, which does not exist yet; ask the platform administrator",
                    provider.config.agency
                ),
            )
        })?;
    let agency = claimed_agency(state, &provider, agency, &claims).await?;
    let person = provision_person(state, &provider, &agency, &claims).await?;
    check_status(&person)?;
    sync_grants(state, &provider, &person, &claims).await?;
    let (token, session) = start_session(state, &person.id, headers).await?;
    tracing::info!(person_id = %person.id, provider = %provider.config.name, "signed in with single sign-on");
    let mut response = redirect(&attempt.return_to);
    if let Some(value) = session_cookie(
        state,
        &token,
        (session.expires_at - session.created_at).num_seconds(),
    ) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_to(None).unwrap(), "/v1/me");
        assert_eq!(safe_return_to(Some("/chat?x=1")).unwrap(), "/chat?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "relative",
            "/a\nb",
        ] {
            assert!(safe_return_to(Some(bad)).is_err(), "{bad}");
        }
    }
}
