//! Data protection for administrators: the agency's data keys, retention
//! schedules, legal holds, clearances, and a person's access and erasure
//! requests. Changes are recorded by the audit layer in their own
//! transaction (`data.key`, `data.legal_hold`, `data.erased`,
//! `admin.change`); an access-request export records `data.export` before
//! it leaves.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civitas_audit::{Action, Outcome};
use civitas_store::{
    AuditFilter, DataKeyInfo, ErasureReport, LegalHold, NewLegalHold, RetentionRule, UsageDimension,
    UsageFilter, RETENTION_RECORD_TYPES,
};
use civitas_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::audit::{entry, RequestOrigin};
use crate::auth::{AgencyAccess, ManageLegalHolds, ManageRecords};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::admin::{person_in, List};
use crate::state::AppState;

fn list<T>(data: Vec<T>) -> Json<List<T>> {
    Json(List {
        object: "list".to_owned(),
        data,
    })
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/data-keys", operation_id = "listDataKeys", tag = "data-protection",
    summary = "The agency's data keys (never the keys): state, wrapping master key, rows still sealed with each",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<DataKeyInfo>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_data_keys(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
) -> Result<Json<List<DataKeyInfo>>, ApiError> {
    let keys = state.store.list_data_keys().await.map_err(ApiError::storage)?;
    Ok(list(
        keys.into_iter()
            .filter(|key| key.agency_id == access.agency.id)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/data-keys/rotate", operation_id = "rotateDataKey", tag = "data-protection",
    summary = "Seal the agency's new content with a new data key; the previous key still opens older content until `civitas keys reencrypt` moves it",
    params(("agency_id" = String, Path)),
    responses((status = 201, body = DataKeyInfo), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_data_key(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
) -> Result<(StatusCode, Json<DataKeyInfo>), ApiError> {
    let key = state
        .store
        .rotate_data_key(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(agency_id = %access.agency.id, key_id = %key.id, "data key rotated");
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/retention", operation_id = "listRetention", tag = "data-protection",
    summary = "The agency's retention schedule: how many days each kind of record is kept",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<RetentionRule>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_retention(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
) -> Result<Json<List<RetentionRule>>, ApiError> {
    let rules = state
        .store
        .list_retention_rules(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(rules))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRetention {
    /// `conversations` (by last activity), `usage` (request records) or
    /// `documents` (knowledge documents, by last change).
    pub record_type: String,
    /// Kept this many days (1 to 36,500).
    pub days: i64,
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/retention", operation_id = "putRetention", tag = "data-protection",
    summary = "Set how long one kind of record is kept; the purge removes older ones (not those of people on legal hold)",
    params(("agency_id" = String, Path)),
    request_body = PutRetention,
    responses((status = 200, body = RetentionRule), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_retention(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
    ApiJson(body): ApiJson<PutRetention>,
) -> Result<Json<RetentionRule>, ApiError> {
    if !RETENTION_RECORD_TYPES.contains(&body.record_type.as_str()) {
        return Err(ApiError::invalid(
            "record_type",
            format!("record_type must be one of {}", RETENTION_RECORD_TYPES.join(", ")),
        ));
    }
    if !(1..=36_500).contains(&body.days) {
        return Err(ApiError::invalid("days", "days must be between 1 and 36500"));
    }
    let rule = RetentionRule {
        agency_id: access.agency.id.clone(),
        record_type: body.record_type,
        days: body.days,
        updated_at: civitas_store::now(),
        updated_by: access.principal.id().to_owned(),
    };
    state
        .store
        .put_retention_rule(&rule)
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(rule))
}

#[utoipa::path(delete, path = "/api/admin/agencies/{agency_id}/retention/{record_type}", operation_id = "deleteRetention", tag = "data-protection",
    summary = "Remove a retention rule: that kind of record is kept indefinitely again",
    params(("agency_id" = String, Path), ("record_type" = String, Path)),
    responses((status = 204), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_retention(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
    Path((_, record_type)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let removed = state
        .store
        .delete_retention_rule(&access.agency.id, &record_type)
        .await
        .map_err(ApiError::storage)?;
    if !removed {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no retention rule for `{record_type}`"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/legal-holds", operation_id = "listLegalHolds", tag = "data-protection",
    summary = "The agency's legal holds, newest first, released ones included",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<LegalHold>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_holds(
    State(state): State<AppState>,
    access: AgencyAccess<ManageLegalHolds>,
) -> Result<Json<List<LegalHold>>, ApiError> {
    let holds = state
        .store
        .list_legal_holds(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(holds))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHold {
    pub person_id: String,
    /// The matter's name or reference, 1 to 200 characters.
    pub matter: String,
    /// Why, 10 to 2,000 characters.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/legal-holds", operation_id = "createLegalHold", tag = "data-protection",
    summary = "Place a legal hold on a person: nothing of theirs is purged, deleted or erased until it is released",
    params(("agency_id" = String, Path)),
    request_body = CreateHold,
    responses((status = 201, body = LegalHold), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_hold(
    State(state): State<AppState>,
    access: AgencyAccess<ManageLegalHolds>,
    ApiJson(body): ApiJson<CreateHold>,
) -> Result<(StatusCode, Json<LegalHold>), ApiError> {
    let matter = body.matter.trim();
    if matter.is_empty() || matter.chars().count() > 200 {
        return Err(ApiError::invalid("matter", "a matter is 1 to 200 characters"));
    }
    let reason = body.reason.trim();
    if !(10..=2_000).contains(&reason.chars().count()) {
        return Err(ApiError::invalid("reason", "a reason is 10 to 2,000 characters"));
    }
    let person = person_in(&state, &access.agency, &body.person_id).await?;
    let hold = state
        .store
        .create_legal_hold(NewLegalHold {
            agency_id: access.agency.id.clone(),
            person_id: person.id,
            matter: matter.to_owned(),
            reason: reason.to_owned(),
            created_by: access.principal.id().to_owned(),
        })
        .await
        .map_err(ApiError::storage)?;
    Ok((StatusCode::CREATED, Json(hold)))
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/legal-holds/{hold_id}/release", operation_id = "releaseLegalHold", tag = "data-protection",
    summary = "Release a legal hold; retention applies again to what it kept",
    params(("agency_id" = String, Path), ("hold_id" = String, Path)),
    responses((status = 200, body = LegalHold), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn release_hold(
    State(state): State<AppState>,
    access: AgencyAccess<ManageLegalHolds>,
    Path((_, hold_id)): Path<(String, String)>,
) -> Result<Json<LegalHold>, ApiError> {
    state
        .store
        .release_legal_hold(&access.agency.id, &hold_id, access.principal.id())
        .await
        .map_err(ApiError::storage)?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no open legal hold `{hold_id}`")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClearance {
    /// A classification level id, or null to follow the installation's
    /// default clearance.
    pub clearance: Option<String>,
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/people/{person_id}/clearance", operation_id = "setClearance", tag = "data-protection",
    summary = "Set the highest classification level a person may work at",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    request_body = SetClearance,
    responses((status = 200, body = civitas_store::Person), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_clearance(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
    Path((_, person_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetClearance>,
) -> Result<Json<civitas_store::Person>, ApiError> {
    let levels = &state.config.classifications;
    if let Some(level) = &body.clearance {
        if !levels.iter().any(|known| &known.id == level) {
            let ids: Vec<&str> = levels.iter().map(|known| known.id.as_str()).collect();
            return Err(ApiError::invalid(
                "clearance",
                format!(
                    "`{level}` is not a classification level; use one of {}",
                    ids.join(", ")
                ),
            ));
        }
    }
    let person = person_in(&state, &access.agency, &person_id).await?;
    state
        .store
        .set_clearance(&person.id, body.clearance.as_deref())
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(civitas_store::Person {
        clearance: body.clearance,
        ..person
    }))
}

/// At most this many conversations (and audit records) in one export.
const EXPORT_LIMIT: u32 = 100_000;

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/people/{person_id}/export", operation_id = "exportPerson", tag = "data-protection",
    summary = "Everything Civitas holds about one person, for an access request: account, roles and groups, conversations with their messages, feedback, preferences, usage, legal holds, break-glass requests and audit records; the export is itself recorded",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    responses((status = 200, description = "A JSON document, sent as an attachment"), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody),
        (status = 410, description = "content_destroyed: the agency's data key was destroyed", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_person(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
    RequestOrigin(origin): RequestOrigin,
    Path((_, person_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.store.as_ref();
    let person = person_in(&state, &access.agency, &person_id).await?;
    let grants = store.grants(&person.id).await.map_err(ApiError::storage)?;
    let mut conversations = Vec::new();
    for conversation in store
        .list_conversations(&person.id, EXPORT_LIMIT)
        .await
        .map_err(ApiError::storage)?
    {
        let messages = store
            .list_messages(&conversation.id)
            .await
            .map_err(ApiError::storage)?;
        let feedback = store
            .list_feedback(&person.id, &conversation.id)
            .await
            .map_err(ApiError::storage)?;
        conversations
            .push(json!({ "conversation": conversation, "messages": messages, "feedback": feedback }));
    }
    let preferences = store
        .get_preferences(&person.id)
        .await
        .map_err(ApiError::storage)?;
    let usage = store
        .usage_breakdown(
            &UsageFilter {
                agency_id: Some(access.agency.id.clone()),
                person_id: Some(person.id.clone()),
                key_id: None,
                model: None,
                group_id: None,
                since: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                until: None,
            },
            UsageDimension::Request,
        )
        .await
        .map_err(ApiError::storage)?;
    let holds: Vec<LegalHold> = store
        .list_legal_holds(&access.agency.id)
        .await
        .map_err(ApiError::storage)?
        .into_iter()
        .filter(|hold| hold.person_id == person.id)
        .collect();
    let break_glass = store
        .break_glass_about(&person.id, EXPORT_LIMIT)
        .await
        .map_err(ApiError::storage)?;
    // What they did, and what was done to them (whatever route did it).
    let mut audit = store
        .search_audit(
            &AuditFilter {
                actor_id: Some(person.id.clone()),
                ..AuditFilter::default()
            },
            EXPORT_LIMIT,
        )
        .await
        .map_err(ApiError::storage)?;
    audit.extend(
        store
            .search_audit(
                &AuditFilter {
                    target_contains: Some(person.id.clone()),
                    ..AuditFilter::default()
                },
                EXPORT_LIMIT,
            )
            .await
            .map_err(ApiError::storage)?,
    );
    audit.sort_by_key(|record| std::cmp::Reverse(record.seq));
    audit.dedup_by_key(|record| record.seq);
    // Recorded before anything leaves; if it cannot be, nothing does.
    let record = entry(
        &access.principal,
        &origin,
        Action::Export,
        Some(format!("person:{}", person.id)),
        Outcome::Success,
        json!({ "kind": "access_request", "conversations": conversations.len(), "audit_records": audit.len() }),
    );
    crate::audit::record(store, vec![record]).await?;
    let document = json!({
        "object": "person_export",
        "exported_at": civitas_store::now(),
        "exported_by": access.principal.id(),
        "person": person,
        "roles": grants.roles,
        "groups": grants.groups.iter().map(|group| json!({ "id": group.id, "name": group.name })).collect::<Vec<_>>(),
        "preferences": { "language": preferences.language, "default_model": preferences.default_model },
        "conversations": conversations,
        "usage": usage,
        "legal_holds": holds,
        "break_glass": break_glass,
        "audit_records": audit,
    });
    let name = format!("attachment; filename=\"person-{}.json\"", person.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        serde_json::to_string_pretty(&document).unwrap_or_default(),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Also anonymise and disable the account (its keys and sessions end).
    #[serde(default)]
    pub account: bool,
    /// The request's reference (e.g. the erasure request's number), kept in
    /// the audit record; 1 to 200 characters.
    pub reference: String,
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/people/{person_id}/erasure", operation_id = "erasePerson", tag = "data-protection",
    summary = "Erase a person's conversations, messages, feedback and preferences (and with `account`, anonymise and disable the account); refused while a legal hold applies. The audit log keeps that it happened, never the content",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    request_body = EraseRequest,
    responses((status = 200, body = ErasureReport), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody),
        (status = 409, description = "legal_hold_active", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase_person(
    State(state): State<AppState>,
    access: AgencyAccess<ManageRecords>,
    Path((_, person_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EraseRequest>,
) -> Result<Json<ErasureReport>, ApiError> {
    let reference = body.reference.trim();
    if reference.is_empty() || reference.chars().count() > 200 {
        return Err(ApiError::invalid(
            "reference",
            "a reference is 1 to 200 characters",
        ));
    }
    let person = person_in(&state, &access.agency, &person_id).await?;
    if person.id == access.principal.id() && body.account {
        return Err(ApiError::invalid("account", "you cannot erase your own account"));
    }
    let report = state
        .store
        .erase_person(&person.id, body.account)
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(report))
}
