//! The workspace: server-rendered HTML pages (askama templates in
//! `templates/`, words in `locales/`) on the U.S. Web Design System, with
//! its assets embedded in the binary (built into `web/dist` by
//! `scripts/web-assets.sh`).
//!
//! Every page carries strict security headers (no inline script or style,
//! no framing); every form carries a CSRF token. Public pages:
//! [`PUBLIC_PAGES`]; any other page redirects to the sign-in page without
//! a session.

mod admin;
mod audit;
mod break_glass;
mod chat;
mod export;
pub mod i18n;
mod knowledge;
pub mod markdown;
mod preview;
mod records;
mod rules;
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
pub const PUBLIC_PAGES: &[&str] = &["/sign-in", "/pending", "/assets/{*path}", "/classification.css"];

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

/// The headers of every page: security, and the cookie remembering a
/// language picked with `?lang=`.
async fn page_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let tls = over_tls(&state, &request);
    let chosen = chosen_language(&request);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(lang) = chosen {
        let cookie = format!("{LANGUAGE_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
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
        .route("/", get(chat::index))
        .route("/c", post(chat::create))
        .route("/c/{id}", get(chat::show))
        .route("/c/{id}/thread", get(chat::thread))
        .route("/c/{id}/reply", post(chat::reply))
        .route("/c/{id}/regenerate", post(chat::regenerate))
        .route("/c/{id}/edit", post(chat::edit))
        .route("/c/{id}/stop", post(chat::stop))
        .route("/c/{id}/rename", post(chat::rename))
        .route("/c/{id}/delete", get(chat::confirm_delete).post(chat::delete))
        .route("/c/{id}/feedback/{message_id}", post(chat::feedback))
        .route("/c/{id}/export.json", get(export::json))
        .route("/c/{id}/export.html", get(export::html))
        .route(
            "/temporary",
            get(chat::temporary_page).post(chat::temporary_reply),
        )
        .route("/temporary/render", post(chat::render_markdown))
        .route("/preview", post(preview::preview))
        .route("/knowledge", get(knowledge::index).post(knowledge::create))
        .route("/knowledge/{id}", get(knowledge::show))
        .route(
            "/knowledge/{id}/upload",
            post(knowledge::upload).layer(axum::extract::DefaultBodyLimit::max(
                usize::try_from(state.config.knowledge.max_file_bytes)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(4)
                    .saturating_add(64 << 10),
            )),
        )
        .route(
            "/knowledge/{id}/documents/{document}/delete",
            post(knowledge::delete_document),
        )
        .route("/rules", get(rules::show).post(rules::accept))
        .route("/pending", get(rules::pending))
        .route("/audit", get(audit::console))
        .route("/admin", get(admin::index))
        .route("/admin/agencies/{agency_id}", get(admin::overview))
        .route(
            "/admin/agencies/{agency_id}/people",
            get(admin::people).post(admin::create_person),
        )
        .route(
            "/admin/agencies/{agency_id}/people/{person_id}",
            get(admin::person),
        )
        .route(
            "/admin/agencies/{agency_id}/people/{person_id}/{what}",
            post(admin::change_person),
        )
        .route("/admin/agencies/{agency_id}/approvals", get(admin::approvals))
        .route(
            "/admin/agencies/{agency_id}/groups",
            get(admin::groups).post(admin::create_group),
        )
        .route("/admin/agencies/{agency_id}/groups/{group_id}", get(admin::group))
        .route(
            "/admin/agencies/{agency_id}/groups/{group_id}/models",
            post(admin::set_group_models),
        )
        .route(
            "/admin/agencies/{agency_id}/limits",
            get(admin::limits).post(admin::set_limits),
        )
        .route("/admin/agencies/{agency_id}/keys", get(admin::keys))
        .route(
            "/admin/agencies/{agency_id}/keys/{key_id}/revoke",
            post(admin::revoke_key),
        )
        .route(
            "/admin/agencies/{agency_id}/break-glass",
            get(break_glass::list).post(break_glass::request),
        )
        .route(
            "/admin/agencies/{agency_id}/break-glass/{request_id}",
            get(break_glass::read),
        )
        .route(
            "/admin/agencies/{agency_id}/break-glass/{request_id}/approve",
            post(break_glass::approve),
        )
        .route(
            "/admin/agencies/{agency_id}/break-glass/{request_id}/refuse",
            post(break_glass::refuse),
        )
        .route("/admin/agencies/{agency_id}/records", get(records::show))
        .route(
            "/admin/agencies/{agency_id}/records/retention",
            post(records::save_retention),
        )
        .route(
            "/admin/agencies/{agency_id}/records/holds",
            post(records::place_hold),
        )
        .route(
            "/admin/agencies/{agency_id}/records/holds/{hold_id}/release",
            post(records::release_hold),
        )
        .route(
            "/admin/agencies/{agency_id}/records/clearance",
            post(records::set_clearance),
        )
        .route(
            "/admin/agencies/{agency_id}/records/rotate-key",
            post(records::rotate_key),
        )
        .route("/admin/agencies/{agency_id}/usage", get(admin::usage))
        .route("/admin/agencies/{agency_id}/usage.csv", get(admin::usage_csv))
        .route(
            "/admin/agencies/{agency_id}/rules",
            get(admin::rules).post(admin::save_rules),
        )
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/settings", get(settings::show))
        .route("/settings/preferences", post(settings::save_preferences))
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/{key_id}/revoke", post(settings::revoke_key))
        .route("/assets/{*path}", get(asset))
        .route("/classification.css", get(classification_css))
        .layer(from_fn_with_state(state, page_headers))
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

/// The colours of the classification banners, from the configuration
/// (a stylesheet, since the pages allow no inline style).
async fn classification_css(State(state): State<AppState>) -> Response {
    let mut css = String::new();
    for level in &state.config.classifications {
        css.push_str(&format!(
            ".civitas-classification--{} {{ background: {}; color: {}; }}\n",
            level.id, level.background, level.foreground
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response()
}

/// The classification banner of a page.
#[derive(Debug, Clone)]
pub struct Banner {
    pub id: String,
    pub label: String,
}

/// The banner for `level` (an unknown or absent level shows the default).
pub fn banner(state: &AppState, t: Texts, level: Option<&str>) -> Banner {
    let levels = &state.config.classifications;
    let wanted = level.unwrap_or(&state.config.workspace.default_classification);
    let found = levels
        .iter()
        .find(|candidate| candidate.id == wanted)
        .or_else(|| {
            levels
                .iter()
                .find(|candidate| candidate.id == state.config.workspace.default_classification)
        })
        .or(levels.first());
    match found {
        Some(level) => Banner {
            id: level.id.clone(),
            label: level_label(level, t),
        },
        None => Banner {
            id: "unclassified".to_owned(),
            label: String::new(),
        },
    }
}

/// A level's label in the page's language (English when it has none).
pub fn level_label(level: &civitas_config::ClassificationLevel, t: Texts) -> String {
    level
        .labels
        .get(t.lang)
        .or_else(|| level.labels.get("en"))
        .cloned()
        .unwrap_or_else(|| level.id.to_uppercase())
}

/// The design system the pages are dressed in, its assets named in one
/// place: the seam where DSFR or GOV.UK Frontend would come in (with
/// their own `scripts/web-assets.sh` step). Civitas's own styles
/// (`civitas.css`) use only `civitas-` classes.
#[derive(Debug)]
pub struct Theme {
    pub stylesheets: &'static [&'static str],
    /// Loaded in the head, before the page is drawn.
    pub head_scripts: &'static [&'static str],
    /// Loaded at the end of the body.
    pub scripts: &'static [&'static str],
}

/// The U.S. Web Design System, the default theme.
pub const USWDS: Theme = Theme {
    stylesheets: &["/assets/uswds/css/uswds.min.css"],
    head_scripts: &["/assets/uswds/js/uswds-init.min.js"],
    scripts: &["/assets/uswds/js/uswds.min.js"],
};

/// What the frame of every page needs besides its words.
#[derive(Debug, Clone)]
pub struct Shell {
    pub theme: &'static Theme,
    pub csrf_token: String,
    pub banner: Banner,
    pub signed_in: bool,
    /// The signed-in person's name.
    pub person: String,
    /// Show the administration link.
    pub admin: bool,
    /// Show the audit console's link.
    pub auditor: bool,
    /// Which navigation entry is the current page.
    pub current: &'static str,
}

impl Shell {
    /// The frame of a page seen without a session.
    pub fn public(state: &AppState, t: Texts) -> Shell {
        Shell {
            theme: &USWDS,
            csrf_token: String::new(),
            banner: banner(state, t, None),
            signed_in: false,
            person: String::new(),
            admin: false,
            auditor: false,
            current: "",
        }
    }

    /// The frame of a signed-in page.
    pub fn of(
        state: &AppState,
        t: Texts,
        principal: &Principal,
        level: Option<&str>,
        current: &'static str,
    ) -> Shell {
        Shell {
            theme: &USWDS,
            csrf_token: csrf_of(principal),
            banner: banner(state, t, level),
            signed_in: true,
            person: principal.person.display_name.clone(),
            admin: principal.holds_anywhere(civitas_identity::policy::AGENCY_READERS)
                || principal.is_platform_admin(),
            auditor: principal.holds_anywhere(civitas_identity::policy::AUDIT_READERS)
                || principal.is_platform_admin(),
            current,
        }
    }
}

/// The session's CSRF token (empty for a key, which pages never see).
pub fn csrf_of(principal: &Principal) -> String {
    match &principal.credential {
        Credential::Session { csrf_token, .. } => csrf_token.clone(),
        Credential::Key(_) => String::new(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LanguageQuery {
    lang: Option<String>,
    /// Why a single sign-on ended here (an error code).
    notice: Option<String>,
    /// Settings were just saved.
    saved: Option<String>,
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

/// The language of the request: `?lang=` (which [`page_headers`] also
/// remembers in a cookie), else the cookie, else the browser's.
fn language(headers: &HeaderMap, lang: Option<&str>) -> Texts {
    match lang.filter(|lang| i18n::LANGUAGES.contains(lang)) {
        Some(lang) => Texts::new(lang),
        None => negotiate(headers),
    }
}

/// The language a `?lang=` query asks for, if it names one.
fn chosen_language(request: &Request) -> Option<&'static str> {
    let query = request.uri().query()?;
    let lang = query.split('&').find_map(|pair| pair.strip_prefix("lang="))?;
    i18n::LANGUAGES.into_iter().find(|known| *known == lang)
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
    signed_in_with_version(state, headers, safe, csrf)
        .await
        .map(|(principal, _)| principal)
}

/// The signed-in person and the identity version read with the session.
async fn signed_in_with_version(
    state: &AppState,
    headers: &HeaderMap,
    safe: bool,
    csrf: &str,
) -> Option<(Principal, i64)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    from_session(state, token, safe, csrf).await.ok()
}

/// The language and the signed-in person of a page, or where the browser
/// goes instead: the sign-in page, or the rules of behaviour until they
/// are accepted.
async fn open_page(
    state: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
) -> Result<(Texts, Principal), Response> {
    let t = language(headers, lang);
    let Some(principal) = signed_in(state, headers, true, "").await else {
        return Err(Redirect::to("/sign-in").into_response());
    };
    if let Some(elsewhere) = gate(state, &principal).await {
        return Err(elsewhere);
    }
    Ok((t, principal))
}

/// Where a signed-in page request goes instead, if anywhere: the rules of
/// behaviour until the person has accepted their current version.
async fn gate(state: &AppState, principal: &Principal) -> Option<Response> {
    match rules::accepted(state, principal).await {
        Ok(true) => None,
        Ok(false) => Some(Redirect::to("/rules").into_response()),
        Err(error) => {
            tracing::error!(%error, "could not read the rules of behaviour");
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    t: Texts,
    shell: Shell,
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
            shell: Shell::public(state, t),
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
    let t = language(&headers, query.lang.as_deref());
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
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    axum::Extension(crate::middleware::RequestId(request_id)): axum::Extension<crate::middleware::RequestId>,
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
    let origin = crate::audit::Origin::of(
        &state,
        &headers,
        peer.map(|axum::Extension(info)| info.0.ip()),
        Some(&request_id),
    );
    match password_sign_in(&state, &headers, &origin, login).await {
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
                ErrorCode::AccountPending => return Redirect::to("/pending").into_response(),
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
        let ending = state.store.revoke_session(id_hash, civitas_store::now());
        let ended = crate::audit::acting(
            &state,
            &principal,
            &headers,
            civitas_audit::Action::SignOut,
            None,
            serde_json::json!({ "via": "workspace" }),
            ending,
        )
        .await;
        if let Err(error) = ended {
            tracing::error!(%error, "could not end a session");
        }
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Some(value) = session_cookie(&state, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
