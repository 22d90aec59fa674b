//! The rules of behaviour, accepted on first sign-in and again whenever
//! their text changes (the acceptance is recorded), and the page a person
//! whose account awaits approval lands on.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use civitas_identity::Principal;
use civitas_store::StoreError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::chat::NoticePage;
use super::i18n::Texts;
use super::{language, markdown, page, signed_in, LanguageQuery, Shell};
use crate::state::AppState;

/// The version of the built-in text (whatever the language it is read in).
const BUILT_IN_VERSION: &str = "built-in-1";

/// The rules `principal` must accept: the agency's own text, else the
/// installation's, else the built-in one; with their version.
async fn current(state: &AppState, principal: &Principal, t: Texts) -> Result<(String, String), StoreError> {
    if let Some(rules) = state.store.get_agency_rules(principal.agency_id()).await? {
        return Ok((rules.text, rules.version));
    }
    let configured = state.config.workspace.rules_of_behaviour.trim();
    if !configured.is_empty() {
        return Ok((configured.to_owned(), version_of(configured)));
    }
    Ok((t.get("rules-built-in"), BUILT_IN_VERSION.to_owned()))
}

/// The version of a rules text: its SHA-256, hex.
pub fn version_of(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `principal` accepted the rules now in force.
pub async fn accepted(state: &AppState, principal: &Principal) -> Result<bool, StoreError> {
    let (_, version) = current(state, principal, Texts::new("en")).await?;
    Ok(state
        .store
        .rules_accepted_at(principal.id(), &version)
        .await?
        .is_some())
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    t: Texts,
    shell: Shell,
    html: String,
    version: String,
    accepted: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let t = language(&headers, query.lang.as_deref());
    let Some(principal) = signed_in(&state, &headers, true, "").await else {
        return Redirect::to("/sign-in").into_response();
    };
    let (text, version) = match current(&state, &principal, t).await {
        Ok(rules) => rules,
        Err(error) => {
            tracing::error!(%error, "could not read the rules of behaviour");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let accepted = state
        .store
        .rules_accepted_at(principal.id(), &version)
        .await
        .ok()
        .flatten()
        .map(|at| t.datetime(at));
    let rules = RulesPage {
        t,
        shell: Shell::of(&state, t, &principal, None, ""),
        html: markdown::render(&text, false),
        version,
        accepted,
    };
    page(StatusCode::OK, &rules, HeaderMap::new())
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    csrf_token: String,
    version: String,
    #[serde(default)]
    agree: String,
}

pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AcceptForm>,
) -> Response {
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return Redirect::to("/sign-in").into_response();
    };
    let (_, version) = match current(&state, &principal, Texts::new("en")).await {
        Ok(rules) => rules,
        Err(error) => {
            tracing::error!(%error, "could not read the rules of behaviour");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // Accepting a text that changed meanwhile accepts nothing: the page
    // shows the new text.
    if form.version != version || form.agree != "yes" {
        return Redirect::to("/rules").into_response();
    }
    match state
        .store
        .accept_rules(
            principal.id(),
            principal.agency_id(),
            &version,
            civitas_store::now(),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(person_id = %principal.id(), version, "rules of behaviour accepted");
            Redirect::to("/").into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not record the acceptance of the rules");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Where a person whose account awaits approval lands.
pub async fn pending(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let t = language(&headers, query.lang.as_deref());
    let notice = NoticePage {
        t,
        shell: Shell::public(&state, t),
        heading: t.get("pending-title"),
        text: t.get("pending-text"),
    };
    page(StatusCode::OK, &notice, HeaderMap::new())
}
