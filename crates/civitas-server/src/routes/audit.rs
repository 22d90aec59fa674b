//! The auditor's API: search an agency's audit records (metadata, never
//! content), page back through them, and export them as JSON Lines or as
//! OCSF events for a SIEM; the status of the log (last checkpoint, last
//! verification). Reading the log is itself recorded.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use civitas_audit::record::hex_hash::to_hex;
use civitas_audit::Record;
use civitas_store::AuditFilter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{AgencyAccess, ReadAudit};
use crate::error::ApiError;
use crate::state::AppState;

/// Filters of a search or an export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From this moment (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before this moment (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// The actor's id (a person, key or service account).
    pub actor: Option<String>,
    /// An action, e.g. `auth.sign_in` or `model.call`.
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Only records older than this sequence number (the next page).
    pub before_seq: Option<u64>,
    /// 1 to 500 (search, default 50) or 1 to 100000 (export, default 10000).
    pub limit: Option<u32>,
    /// Export only: `jsonl` (default) or `ocsf`.
    pub format: Option<String>,
}

/// One record as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecordView {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: String,
    pub agency_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<Record> for AuditRecordView {
    fn from(record: Record) -> AuditRecordView {
        AuditRecordView {
            seq: record.seq,
            at: record.at,
            actor_kind: record.actor_kind.as_str().to_owned(),
            actor_id: record.actor_id,
            agency_id: record.agency_id,
            action: record.action,
            target: record.target,
            outcome: record.outcome.as_str().to_owned(),
            source_address: record.source_address,
            user_agent: record.user_agent,
            request_id: record.request_id,
            details: record.details,
            prev_hash: to_hex(&record.prev_hash),
            hash: to_hex(&record.hash),
        }
    }
}

/// A page of records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub object: String,
    pub data: Vec<AuditRecordView>,
    /// Pass as `before_seq` for the next (older) page; absent at the end.
    pub next_before_seq: Option<u64>,
}

fn filter(agency_id: &str, query: &AuditQuery) -> Result<AuditFilter, ApiError> {
    if let Some(outcome) = &query.outcome {
        if civitas_audit::Outcome::parse(outcome).is_none() {
            return Err(ApiError::invalid(
                "outcome",
                "use `success`, `failure` or `denied`",
            ));
        }
    }
    if let Some(action) = &query.action {
        if civitas_audit::Action::parse(action).is_none() {
            let known: Vec<&str> = civitas_audit::Action::ALL
                .iter()
                .map(|action| action.as_str())
                .collect();
            return Err(ApiError::invalid(
                "action",
                format!("`{action}` is not an audit action; actions: {}", known.join(", ")),
            ));
        }
    }
    Ok(AuditFilter {
        since: query.since,
        until: query.until,
        actor_id: query.actor.clone(),
        agency_id: Some(agency_id.to_owned()),
        action: query.action.clone(),
        outcome: query.outcome.clone(),
        before_seq: query.before_seq,
        request_id: None,
        target_contains: None,
    })
}

/// Records that the log was read, by whom and how.
async fn note_reading(
    state: &AppState,
    access: &AgencyAccess<ReadAudit>,
    what: &str,
    query: &AuditQuery,
) -> Result<(), ApiError> {
    let entry = crate::audit::entry(
        &access.principal,
        &crate::audit::Origin::default(),
        civitas_audit::Action::Export,
        Some(format!("audit:{}", access.agency.id)),
        civitas_audit::Outcome::Success,
        json!({
            "read": what,
            "since": query.since,
            "until": query.until,
            "actor": query.actor,
            "action": query.action,
            "outcome": query.outcome,
        }),
    );
    crate::audit::record(state.store.as_ref(), vec![entry]).await
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/audit/records", operation_id = "searchAuditRecords", tag = "audit",
    summary = "Search the agency's audit records, newest first (auditors; metadata, never content)",
    params(("agency_id" = String, Path), AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    access: AgencyAccess<ReadAudit>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 500"));
    }
    let filter = filter(&access.agency.id, &query)?;
    let records = state
        .store
        .search_audit(&filter, limit)
        .await
        .map_err(ApiError::storage)?;
    let next_before_seq = (records.len() as u32 == limit)
        .then(|| records.last().map(|record| record.seq))
        .flatten();
    Ok(Json(AuditPage {
        object: "list".to_owned(),
        data: records.into_iter().map(AuditRecordView::from).collect(),
        next_before_seq,
    }))
}

/// A record as an OCSF event (class API Activity, or Authentication for
/// sign-ins), for a SIEM.
pub fn ocsf(record: &Record) -> Value {
    let (class_uid, class_name, category_uid) = match record.action.as_str() {
        "auth.sign_in"
        | "auth.sign_in_failed"
        | "auth.sign_out"
        | "auth.second_factor"
        | "auth.sessions_revoked" => (3002, "Authentication", 3),
        "admin.change" | "key.created" | "key.revoked" => (3001, "Account Change", 3),
        _ => (6003, "API Activity", 6),
    };
    let status_id = match record.outcome {
        civitas_audit::Outcome::Success => 1,
        _ => 2,
    };
    json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "activity_name": record.action,
        "time": record.at.timestamp_millis(),
        "severity_id": if status_id == 1 { 1 } else { 3 },
        "status_id": status_id,
        "status": record.outcome.as_str(),
        "actor": { "user": { "uid": record.actor_id, "type": record.actor_kind.as_str() } },
        "src_endpoint": { "ip": record.source_address },
        "http_request": { "user_agent": record.user_agent, "uid": record.request_id },
        "resources": record.target.as_ref().map(|target| vec![json!({ "uid": target })]),
        "metadata": {
            "product": { "name": "Civitas", "vendor_name": "Civitas" },
            "version": "1.1.0",
            "uid": record.seq.to_string(),
            "tenant_uid": record.agency_id,
        },
        "unmapped": { "details": record.details, "hash": to_hex(&record.hash), "prev_hash": to_hex(&record.prev_hash) },
    })
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/audit/export", operation_id = "exportAuditRecords", tag = "audit",
    summary = "Export the agency's audit records as JSON Lines or OCSF events (auditors); the export is itself recorded",
    params(("agency_id" = String, Path), AuditQuery),
    responses((status = 200, description = "`application/x-ndjson`, one record (or OCSF event) per line, newest first"), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    access: AgencyAccess<ReadAudit>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 100000"));
    }
    let format = query.format.as_deref().unwrap_or("jsonl");
    if !matches!(format, "jsonl" | "ocsf") {
        return Err(ApiError::invalid("format", "use `jsonl` or `ocsf`"));
    }
    let filter = filter(&access.agency.id, &query)?;
    let records = state
        .store
        .search_audit(&filter, limit)
        .await
        .map_err(ApiError::storage)?;
    note_reading(&state, &access, format, &query).await?;
    let mut body = String::with_capacity(records.len() * 512);
    for record in &records {
        let line = if format == "ocsf" {
            ocsf(record).to_string()
        } else {
            serde_json::to_string(record).unwrap_or_default()
        };
        body.push_str(&line);
        body.push('\n');
    }
    let name = format!(
        "attachment; filename=\"audit-{}.{format}.jsonl\"",
        access.agency.id
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}

/// The state of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditStatus {
    /// Records in the log (the whole installation).
    pub records: u64,
    pub last_checkpoint: Option<crate::audit::PublishedCheckpoint>,
    /// When `civitas audit verify` last ran, and whether it found the log
    /// intact.
    pub last_verification: Option<Verification>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub at: DateTime<Utc>,
    pub intact: bool,
    pub records: Option<u64>,
}

/// What the status panel shows.
pub async fn status_of(state: &AppState) -> Result<AuditStatus, ApiError> {
    let (records, _) = state.store.audit_head().await.map_err(ApiError::storage)?;
    let last_checkpoint = crate::audit::latest_checkpoint(State(state.clone()))
        .await
        .ok()
        .map(|Json(latest)| latest);
    let verification = AuditFilter {
        action: Some(civitas_audit::Action::Verification.as_str().to_owned()),
        ..AuditFilter::default()
    };
    let last_verification = state
        .store
        .search_audit(&verification, 1)
        .await
        .map_err(ApiError::storage)?
        .into_iter()
        .next()
        .map(|record| Verification {
            at: record.at,
            intact: record.outcome == civitas_audit::Outcome::Success,
            records: record.details["records"].as_u64(),
        });
    Ok(AuditStatus {
        records,
        last_checkpoint,
        last_verification,
    })
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/audit/status", operation_id = "getAuditStatus", tag = "audit",
    summary = "The audit log's last checkpoint and last verification (auditors)",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = AuditStatus), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    _access: AgencyAccess<ReadAudit>,
) -> Result<Json<AuditStatus>, ApiError> {
    status_of(&state).await.map(Json)
}
