//! The workspace: server-rendered HTML pages (askama templates in
//! `templates/`, words in `locales/`) on the U.S. Web Design System, with
//! its assets embedded in the binary (built into `web/dist` by
//! `scripts/web-assets.sh`).
//!
//! Every page carries strict security headers (no inline script or style,
//! no framing); every form carries a CSRF token. Public pages:
//! [`PUBLIC_PAGES`]; any other page redirects to the sign-in page without
//! a session.

pub mod i18n;
mod settings;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use civitas_identity::{secret, Credential, Principal};
use civitas_types::ErrorCode;
use serde::Deserialize;

use crate::auth::{cookie, from_session, SESSION_COOKIE};
use crate::routes::session::{password_sign_in, session_cookie, Login};
use crate::state::AppState;
use i18n::{negotiate, Texts, LANGUAGE_COOKIE};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Pages reachable without a session.
pub const PUBLIC_PAGES: &[&str] = &["/sign-in", "/assets/{*path}"];

/// The cookie holding the sign-in form's CSRF token (before any session).
const SIGN_IN_CSRF_COOKIE: &str = "civitas_signin_csrf";

/// Content-Security-Policy of every page: only this origin, no inline
/// script or style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Whether the request reached a trusted reverse proxy over HTTPS (then
/// browsers are told to use HTTPS only, HSTS).
fn over_tls(state: &AppState, request: &Request) -> bool {
    let trusted = &state.config.server.trusted_proxies;
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(address)| address.ip());
    peer.is_some_and(|peer| civitas_identity::provision::address_allowed(trusted, peer))
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let tls = over_tls(&state, &request);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The workspace's routes, with their security headers, compressed when
/// the browser accepts gzip (the API's streams are left alone).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/settings", get(settings::show))
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/{key_id}/revoke", post(settings::revoke_key))
        .route("/assets/{*path}", get(asset))
        .layer(from_fn_with_state(state, security_headers))
        .layer(tower_http::compression::CompressionLayer::new())
}

async fn asset(Path(path): Path<String>) -> Response {
    match assets::ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LanguageQuery {
    lang: Option<String>,
    /// Why a single sign-on ended here (an error code).
    notice: Option<String>,
}

/// The localized explanation of an error code sent back to the sign-in page.
fn notice_message(t: Texts, code: &str) -> Option<String> {
    let id = match code {
        "account_pending" => "error-account-pending",
        "account_disabled" => "error-account-disabled",
        "sso_not_allowed" => "error-sso-not-allowed",
        "sso_failed" | "sso_state_invalid" | "upstream_error" => "error-sso-failed",
        _ => return None,
    };
    Some(t.get(id))
}

/// The language of the request; `?lang=` also sets the cookie.
fn language(headers: &HeaderMap, query: &LanguageQuery, response_headers: &mut HeaderMap) -> Texts {
    if let Some(lang) = query
        .lang
        .as_deref()
        .filter(|lang| i18n::LANGUAGES.contains(lang))
    {
        let cookie = format!("{LANGUAGE_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response_headers.append(header::SET_COOKIE, value);
        }
        return Texts::new(lang);
    }
    negotiate(headers)
}

/// Adds every header of `source` (several `Set-Cookie` stay several).
fn append_all(target: &mut HeaderMap, source: HeaderMap) {
    for (name, value) in source.iter() {
        target.append(name.clone(), value.clone());
    }
}

fn page(status: StatusCode, template: &impl Template, extra: HeaderMap) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            append_all(response.headers_mut(), extra);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "a page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The signed-in person of a page request, if any.
async fn signed_in(state: &AppState, headers: &HeaderMap, safe: bool, csrf: &str) -> Option<Principal> {
    let token = cookie(headers, SESSION_COOKIE)?;
    from_session(state, token, safe, csrf)
        .await
        .ok()
        .map(|(principal, _)| principal)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    t: Texts,
    intro: String,
    csrf_token: String,
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let mut extra = HeaderMap::new();
    let t = language(&headers, &query, &mut extra);
    let Some(principal) = signed_in(&state, &headers, true, "").await else {
        let mut response = Redirect::to("/sign-in").into_response();
        append_all(response.headers_mut(), extra);
        return response;
    };
    let agency = state
        .store
        .get_agency(principal.agency_id())
        .await
        .ok()
        .flatten()
        .map(|agency| agency.name)
        .unwrap_or_default();
    let csrf_token = match &principal.credential {
        Credential::Session { csrf_token, .. } => csrf_token.clone(),
        Credential::Key(_) => String::new(),
    };
    let intro = t.with(
        "home-intro",
        &[("name", &principal.person.display_name), ("agency", &agency)],
    );
    page(StatusCode::OK, &HomePage { t, intro, csrf_token }, extra)
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    t: Texts,
    csrf_token: String,
    email: String,
    error: Option<String>,
    providers: Vec<(String, String)>,
}

fn sign_in_form(state: &AppState, t: Texts, email: String, error: Option<String>) -> (SignInPage, HeaderMap) {
    let csrf_token = secret::random_token();
    let mut extra = HeaderMap::new();
    let cookie =
        format!("{SIGN_IN_CSRF_COOKIE}={csrf_token}; Path=/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        extra.append(header::SET_COOKIE, value);
    }
    let providers = state
        .sso
        .iter()
        .map(|provider| {
            let label = if provider.config.display_name.is_empty() {
                provider.config.name.clone()
            } else {
                provider.config.display_name.clone()
            };
            (provider.config.name.clone(), label)
        })
        .collect();
    (
        SignInPage {
            t,
            csrf_token,
            email,
            error,
            providers,
        },
        extra,
    )
}

async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let mut extra = HeaderMap::new();
    let t = language(&headers, &query, &mut extra);
    if signed_in(&state, &headers, true, "").await.is_some() {
        return Redirect::to("/").into_response();
    }
    let notice = query.notice.as_deref().and_then(|code| notice_message(t, code));
    let (form, more) = sign_in_form(&state, t, String::new(), notice);
    append_all(&mut extra, more);
    page(StatusCode::OK, &form, extra)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    csrf_token: String,
    email: String,
    password: String,
    #[serde(default)]
    totp_code: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let t = negotiate(&headers);
    let expected = cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !secret::constant_time_eq(expected, &form.csrf_token) {
        let (page_data, extra) = sign_in_form(&state, t, form.email, Some(t.get("error-form-expired")));
        return page(StatusCode::FORBIDDEN, &page_data, extra);
    }
    let login = Login {
        email: form.email.clone(),
        password: form.password,
        totp_code: Some(form.totp_code.trim().to_owned()).filter(|code| !code.is_empty()),
    };
    match password_sign_in(&state, &headers, login).await {
        Ok((token, session)) => {
            let mut response = Redirect::to("/").into_response();
            let age = (session.expires_at - session.created_at).num_seconds();
            if let Some(value) = session_cookie(&state, &token, age) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            let message = match error.code {
                ErrorCode::InvalidCredentials => t.get("error-invalid-credentials"),
                ErrorCode::SecondFactorRequired => t.get("error-second-factor-required"),
                ErrorCode::AccountLocked => t.get("error-account-locked"),
                ErrorCode::AccountDisabled => t.get("error-account-disabled"),
                ErrorCode::AccountPending => t.get("error-account-pending"),
                _ => {
                    let reference = uuid::Uuid::now_v7().simple().to_string();
                    tracing::warn!(code = error.code.as_str(), reference, "sign-in page error");
                    t.with("error-generic", &[("reference", &reference)])
                }
            };
            let status =
                StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (page_data, extra) = sign_in_form(&state, t, form.email, Some(message));
            page(status, &page_data, extra)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    // Without the session's own token nothing happens: another site cannot
    // sign anyone out.
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return Redirect::to("/sign-in").into_response();
    };
    if let Credential::Session { id_hash, .. } = &principal.credential {
        if let Err(error) = state.store.revoke_session(id_hash, civitas_store::now()).await {
            tracing::error!(%error, "could not end a session");
        }
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Some(value) = session_cookie(&state, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
