//! The auditor's console: the agency's audit records searched by time,
//! actor, action and outcome, page by page, with exports (JSON Lines,
//! OCSF) and the state of the log (last checkpoint, last verification).
//! Metadata only: the log holds no content.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use civitas_store::AuditFilter;
use serde::Deserialize;

use super::i18n::Texts;
use super::{open_page, page, Shell};
use crate::auth::{AgencyAccess, ReadAudit};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ConsoleQuery {
    lang: Option<String>,
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    before: Option<u64>,
}

pub struct Row {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
}

pub struct Choice {
    pub value: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct ConsolePage {
    t: Texts,
    shell: Shell,
    agency_id: String,
    rows: Vec<Row>,
    since: String,
    until: String,
    actor: String,
    actions: Vec<Choice>,
    outcomes: Vec<Choice>,
    older: Option<String>,
    export_query: String,
    records: String,
    checkpoint: Option<(String, String)>,
    verification: Option<(String, bool)>,
    error: Option<String>,
}

const PAGE: u32 = 50;

fn date(text: Option<&str>) -> Result<Option<NaiveDate>, ()> {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ()),
    }
}

/// A query string of the filters, for the links.
fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            format!(
                "{name}={}",
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn console(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ConsoleQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    let agency_id = principal.agency_id().to_owned();
    let access = match AgencyAccess::<ReadAudit>::check(&state, principal.clone(), &agency_id).await {
        Ok(access) => access,
        Err(error) => return super::admin::refused(&state, t, &principal, &error),
    };
    let action = query
        .action
        .clone()
        .filter(|action| civitas_audit::Action::parse(action).is_some());
    let outcome = query
        .outcome
        .clone()
        .filter(|outcome| civitas_audit::Outcome::parse(outcome).is_some());
    let actor = query
        .actor
        .clone()
        .map(|actor| actor.trim().to_owned())
        .filter(|actor| !actor.is_empty());
    let (since, until, error) = match (date(query.since.as_deref()), date(query.until.as_deref())) {
        (Ok(since), Ok(until)) => (since, until, None),
        _ => (None, None, Some(t.get("audit-error-date"))),
    };
    let filter = AuditFilter {
        since: since
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc()),
        until: until
            .and_then(|day| day.succ_opt())
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc()),
        actor_id: actor.clone(),
        agency_id: Some(access.agency.id.clone()),
        action: action.clone(),
        outcome: outcome.clone(),
        before_seq: query.before,
        request_id: None,
        target_contains: None,
    };
    let records = match state.store.search_audit(&filter, PAGE).await {
        Ok(records) => records,
        Err(error) => {
            tracing::error!(%error, "could not search the audit log");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let status = crate::routes::audit::status_of(&state).await.ok();
    let since_text = since.map(|day| day.to_string()).unwrap_or_default();
    let until_text = until.map(|day| day.to_string()).unwrap_or_default();
    let action_text = action.clone().unwrap_or_default();
    let outcome_text = outcome.clone().unwrap_or_default();
    let actor_text = actor.clone().unwrap_or_default();
    let filters = [
        ("since", since_text.as_str()),
        ("until", until_text.as_str()),
        ("actor", actor_text.as_str()),
        ("action", action_text.as_str()),
        ("outcome", outcome_text.as_str()),
    ];
    let older = (records.len() as u32 == PAGE)
        .then(|| records.last().map(|record| record.seq))
        .flatten()
        .map(|seq| {
            let mut pairs = filters.to_vec();
            let seq = seq.to_string();
            pairs.push(("before", &seq));
            encode(&pairs)
        });
    let export_query = {
        let mut pairs = filters.to_vec();
        let since_at = filter.since.map(|at| at.to_rfc3339()).unwrap_or_default();
        let until_at = filter.until.map(|at| at.to_rfc3339()).unwrap_or_default();
        pairs.retain(|(name, _)| *name != "since" && *name != "until");
        pairs.push(("since", &since_at));
        pairs.push(("until", &until_at));
        encode(&pairs)
    };
    let rows = records
        .into_iter()
        .map(|record| Row {
            seq: record.seq,
            at: t.datetime(record.at),
            actor: format!("{} {}", record.actor_kind.as_str(), record.actor_id),
            action: record.action,
            target: record.target.unwrap_or_default(),
            outcome: t.get(&format!("audit-outcome-{}", record.outcome.as_str())),
            source: record.source_address.unwrap_or_default(),
        })
        .collect();
    let console = ConsolePage {
        t,
        shell: Shell::of(&state, t, &principal, None, "audit"),
        agency_id: access.agency.id.clone(),
        rows,
        since: since_text.clone(),
        until: until_text.clone(),
        actor: actor_text.clone(),
        actions: civitas_audit::Action::ALL
            .iter()
            .map(|known| Choice {
                value: known.as_str().to_owned(),
                selected: action.as_deref() == Some(known.as_str()),
            })
            .collect(),
        outcomes: ["success", "failure", "denied"]
            .into_iter()
            .map(|known| Choice {
                value: known.to_owned(),
                selected: outcome.as_deref() == Some(known),
            })
            .collect(),
        older,
        export_query,
        records: status
            .as_ref()
            .map(|status| t.number(status.records as i64))
            .unwrap_or_default(),
        checkpoint: status.as_ref().and_then(|status| {
            status
                .last_checkpoint
                .as_ref()
                .map(|checkpoint| (t.number(checkpoint.tree_size as i64), t.datetime(checkpoint.at)))
        }),
        verification: status.as_ref().and_then(|status| {
            status
                .last_verification
                .as_ref()
                .map(|verification| (t.datetime(verification.at), verification.intact))
        }),
        error,
    };
    let status = if console.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(status, &console, HeaderMap::new())
}
