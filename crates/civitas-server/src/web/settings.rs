//! `/settings`: the person's language and default model, and their API
//! keys (create — the secret is shown once —, list, revoke). Every form
//! carries the session's CSRF token.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use civitas_identity::provision::{self, KeyRequest, ProvisionError};
use civitas_identity::{policy, Principal};
use serde::Deserialize;

use super::chat::{usable_models, Choice};
use super::i18n::{Texts, LANGUAGES, LANGUAGE_COOKIE};
use super::{open_page, page, signed_in, LanguageQuery, Shell};
use crate::state::AppState;

/// One key as the page shows it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub expires: String,
    pub last_used: String,
    pub state: String,
    pub active: bool,
    pub revoke_label: String,
}

/// A break-glass request about the person, as their settings show it.
pub struct AccessRow {
    pub requested_by: String,
    pub justification: String,
    pub asked: String,
    pub state: String,
    pub approved_by: String,
    pub reads: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    t: Texts,
    shell: Shell,
    csrf_token: String,
    models: Vec<Choice>,
    languages: Vec<Choice>,
    saved: bool,
    keys: Vec<KeyRow>,
    created: Option<String>,
    name_error: Option<String>,
    accesses: Vec<AccessRow>,
    /// The person's clearance, as a level's label.
    clearance: String,
    /// The matters of legal holds on the person's records.
    holds: Vec<String>,
}

#[allow(clippy::too_many_arguments, reason = "what the page shows, one value each")]
async fn render(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    created: Option<String>,
    name_error: Option<String>,
    status: StatusCode,
    saved: bool,
) -> Response {
    let keys = state
        .store
        .list_api_keys(principal.agency_id(), Some(principal.id()))
        .await
        .unwrap_or_default();
    let now = Utc::now();
    let date = |at: Option<chrono::DateTime<Utc>>| {
        at.map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| t.get("key-never"))
    };
    let rows = keys
        .into_iter()
        .map(|key| {
            let (state_id, active) = if key.revoked_at.is_some() {
                ("key-state-revoked", false)
            } else if key.expires_at.is_some_and(|at| at <= now) {
                ("key-state-expired", false)
            } else {
                ("key-state-active", true)
            };
            KeyRow {
                revoke_label: t.with("revoke-button", &[("name", &key.name)]),
                id: key.id,
                name: key.name,
                prefix: key.prefix,
                expires: date(key.expires_at),
                last_used: date(key.last_used_at),
                state: t.get(state_id),
                active,
            }
        })
        .collect();
    let grants = state
        .store
        .break_glass_about(principal.id(), 100)
        .await
        .unwrap_or_default();
    let accesses = crate::break_glass::views(state, grants)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|view| {
            let state_text = super::break_glass::state_of(t, &view);
            AccessRow {
                requested_by: view
                    .requested_by_name
                    .unwrap_or_else(|| view.grant.requested_by.clone()),
                justification: view.grant.justification.clone(),
                asked: t.datetime(view.grant.created_at),
                state: state_text,
                approved_by: view.decided_by_name.unwrap_or_default(),
                reads: match view.grant.last_read_at {
                    Some(last) => t.with(
                        "access-reads",
                        &[
                            ("count", &t.number(view.grant.reads)),
                            ("last", &t.datetime(last)),
                        ],
                    ),
                    None => t.get("access-no-reads"),
                },
            }
        })
        .collect();
    let csrf_token = super::csrf_of(principal);
    let preferences = state
        .store
        .get_preferences(principal.id())
        .await
        .unwrap_or_default();
    let mut models = vec![Choice {
        value: String::new(),
        label: t.get("default-model-first"),
        selected: preferences.default_model.is_none(),
    }];
    models.extend(usable_models(state, principal).into_iter().map(|model| Choice {
        selected: preferences.default_model.as_deref() == Some(model.as_str()),
        label: model.clone(),
        value: model,
    }));
    let mut languages = vec![Choice {
        value: String::new(),
        label: t.get("language-browser"),
        selected: preferences.language.is_none(),
    }];
    languages.extend(
        [("en", "English"), ("fr", "Français")].map(|(code, name)| Choice {
            value: code.to_owned(),
            label: name.to_owned(),
            selected: preferences.language.as_deref() == Some(code),
        }),
    );
    let clearance = state
        .config
        .classifications
        .get(crate::classification::clearance_rank(state, principal))
        .map(|level| super::level_label(level, t))
        .unwrap_or_default();
    let holds = state
        .store
        .active_holds(principal.id())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|hold| hold.matter)
        .collect();
    page(
        status,
        &SettingsPage {
            t,
            shell: Shell::of(state, t, principal, None, "settings"),
            csrf_token,
            models,
            languages,
            saved,
            keys: rows,
            created,
            name_error,
            accesses,
            clearance,
            holds,
        },
        HeaderMap::new(),
    )
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    let saved = query.saved.is_some();
    render(&state, t, &principal, None, None, StatusCode::OK, saved).await
}

#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    csrf_token: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    default_model: String,
}

/// Saves the language and default model; the language also becomes this
/// browser's (and follows the person to the next browser they sign in on).
pub async fn save_preferences(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PreferencesForm>,
) -> Response {
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return Redirect::to("/sign-in").into_response();
    };
    let language = Some(form.language).filter(|lang| !lang.is_empty());
    let default_model = Some(form.default_model).filter(|model| !model.is_empty());
    if language.as_deref().is_some_and(|lang| !LANGUAGES.contains(&lang))
        || default_model
            .as_ref()
            .is_some_and(|model| !usable_models(&state, &principal).contains(model))
    {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let preferences = civitas_store::Preferences {
        language: language.clone(),
        default_model,
    };
    if let Err(error) = state.store.put_preferences(principal.id(), &preferences).await {
        tracing::error!(%error, "could not save preferences");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut response = Redirect::to("/settings?saved=1").into_response();
    let cookie = match &language {
        Some(lang) => format!("{LANGUAGE_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax"),
        None => format!("{LANGUAGE_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
    csrf_token: String,
    name: String,
    expiry_days: u32,
}

pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewKeyForm>,
) -> Response {
    let t = super::i18n::negotiate(&headers);
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let expires_at = match form.expiry_days {
        0 => None,
        days @ (30 | 90 | 365) => Some(Utc::now() + chrono::Duration::days(i64::from(days))),
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let creating = provision::create_key(
        state.store.as_ref(),
        KeyRequest {
            owner: principal.person.clone(),
            name: form.name,
            kind: "personal".to_owned(),
            models: None,
            ip_ranges: None,
            expires_at,
            created_by: principal.id().to_owned(),
        },
    );
    let details =
        serde_json::json!({ "via": "workspace", "kind": "personal", "expiry_days": form.expiry_days });
    let created = crate::audit::acting(
        &state,
        &principal,
        &headers,
        civitas_audit::Action::KeyCreated,
        None,
        details,
        creating,
    )
    .await;
    match created {
        Ok((key, secret)) => {
            tracing::info!(key_id = %key.id, person_id = %principal.id(), "API key created from the workspace");
            render(
                &state,
                t,
                &principal,
                Some(secret),
                None,
                StatusCode::CREATED,
                false,
            )
            .await
        }
        Err(ProvisionError::Invalid { field: "name", .. }) => {
            let message = Some(t.get("error-key-name"));
            render(
                &state,
                t,
                &principal,
                None,
                message,
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
            )
            .await
        }
        Err(error) => {
            tracing::warn!(%error, "a key could not be created from the workspace");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key_id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let key = state
        .store
        .get_api_key(principal.agency_id(), &key_id)
        .await
        .ok()
        .flatten()
        .filter(|key| policy::owns_key(&principal, key));
    let Some(key) = key else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let revoking = state
        .store
        .revoke_api_key(&key.agency_id, &key.id, civitas_store::now());
    let revoked = crate::audit::acting(
        &state,
        &principal,
        &headers,
        civitas_audit::Action::KeyRevoked,
        Some(format!("key:{}", key.id)),
        serde_json::json!({ "via": "workspace" }),
        revoking,
    )
    .await;
    if let Err(error) = revoked {
        tracing::error!(%error, "could not revoke a key");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(key_id = %key.id, person_id = %principal.id(), "API key revoked from the workspace");
    Redirect::to("/settings#keys").into_response()
}
