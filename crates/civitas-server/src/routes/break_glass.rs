//! Break-glass access through the API:
//! `/api/admin/agencies/{agency_id}/break-glass` (ask, list, approve,
//! refuse, read under it) and `GET /v1/me/break-glass` (what the person
//! concerned sees). The rules are in [`crate::break_glass`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use civitas_store::{Conversation, Message};
use serde::Serialize;

use crate::audit::RequestOrigin;
use crate::auth::{AgencyAccess, ApproveBreakGlass, Authenticated, RequestBreakGlass};
use crate::break_glass::{self, BreakGlassRequest, BreakGlassView};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::admin::List;
use crate::state::AppState;

/// Requests shown at most.
const LISTED: u32 = 200;

fn list<T>(data: Vec<T>) -> Json<List<T>> {
    Json(List {
        object: "list".to_owned(),
        data,
    })
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/break-glass", operation_id = "listBreakGlass", tag = "admin",
    summary = "The agency's break-glass requests, newest first (administrators and auditors)",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<BreakGlassView>),
        (status = 403, description = "permission_denied", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    access: AgencyAccess<ApproveBreakGlass>,
) -> Result<Json<List<BreakGlassView>>, ApiError> {
    let grants = state
        .store
        .list_break_glass(&access.agency.id, LISTED)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(break_glass::views(&state, grants).await?))
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/break-glass", operation_id = "requestBreakGlass", tag = "admin",
    summary = "Ask to read a person's conversations, with a justification and a time limit (administrators)",
    description = "Open at once, or after a second person's approval when `audit.break_glass_second_approver` is set. Recorded in the audit log and shown to the person concerned.",
    params(("agency_id" = String, Path)),
    request_body = BreakGlassRequest,
    responses((status = 201, body = civitas_store::BreakGlass),
        (status = 400, description = "invalid_parameter: justification too short, duration out of range, oneself", body = civitas_types::ErrorBody),
        (status = 403, description = "permission_denied", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found: no such person or conversation", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    access: AgencyAccess<RequestBreakGlass>,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<BreakGlassRequest>,
) -> Result<(StatusCode, Json<civitas_store::BreakGlass>), ApiError> {
    let grant = break_glass::request(&state, &access.principal, &access.agency, &origin, body).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

async fn decide(
    state: AppState,
    access: AgencyAccess<ApproveBreakGlass>,
    origin: crate::audit::Origin,
    id: String,
    approve: bool,
) -> Result<Json<civitas_store::BreakGlass>, ApiError> {
    break_glass::decide(&state, &access.principal, &access.agency, &origin, &id, approve)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/break-glass/{request_id}/approve", operation_id = "approveBreakGlass", tag = "admin",
    summary = "Approve a pending break-glass request (another administrator or an auditor)",
    params(("agency_id" = String, Path), ("request_id" = String, Path)),
    responses((status = 200, body = civitas_store::BreakGlass),
        (status = 403, description = "second_approver_required: the one who asked, or the person concerned", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found", body = civitas_types::ErrorBody),
        (status = 409, description = "conflict: already decided", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    access: AgencyAccess<ApproveBreakGlass>,
    RequestOrigin(origin): RequestOrigin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<civitas_store::BreakGlass>, ApiError> {
    decide(state, access, origin, id, true).await
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/break-glass/{request_id}/refuse", operation_id = "refuseBreakGlass", tag = "admin",
    summary = "Refuse a pending break-glass request",
    params(("agency_id" = String, Path), ("request_id" = String, Path)),
    responses((status = 200, body = civitas_store::BreakGlass),
        (status = 403, description = "second_approver_required", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found", body = civitas_types::ErrorBody),
        (status = 409, description = "conflict: already decided", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn refuse(
    State(state): State<AppState>,
    access: AgencyAccess<ApproveBreakGlass>,
    RequestOrigin(origin): RequestOrigin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<civitas_store::BreakGlass>, ApiError> {
    decide(state, access, origin, id, false).await
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/break-glass/{request_id}/conversations", operation_id = "listBreakGlassConversations", tag = "admin",
    summary = "The conversations open under an approved request (recorded as a read)",
    params(("agency_id" = String, Path), ("request_id" = String, Path)),
    responses((status = 200, body = crate::routes::conversations::ConversationList),
        (status = 403, description = "break_glass_not_open, or not the one who asked", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn conversations(
    State(state): State<AppState>,
    access: AgencyAccess<RequestBreakGlass>,
    RequestOrigin(origin): RequestOrigin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<List<Conversation>>, ApiError> {
    let (_, conversations) =
        break_glass::conversations(&state, &access.principal, &access.agency, &origin, &id).await?;
    Ok(list(conversations))
}

/// One conversation read under break-glass access.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenedConversation {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    /// When the access closes.
    pub open_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/break-glass/{request_id}/conversations/{conversation_id}", operation_id = "readBreakGlassConversation", tag = "admin",
    summary = "One conversation with its messages under an approved request (recorded as a read)",
    params(("agency_id" = String, Path), ("request_id" = String, Path), ("conversation_id" = String, Path)),
    responses((status = 200, body = OpenedConversation),
        (status = 403, description = "break_glass_not_open, or not the one who asked", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn conversation(
    State(state): State<AppState>,
    access: AgencyAccess<RequestBreakGlass>,
    RequestOrigin(origin): RequestOrigin,
    Path((_, id, conversation_id)): Path<(String, String, String)>,
) -> Result<Json<OpenedConversation>, ApiError> {
    let (grant, conversation, messages) = break_glass::conversation(
        &state,
        &access.principal,
        &access.agency,
        &origin,
        &id,
        &conversation_id,
    )
    .await?;
    Ok(Json(OpenedConversation {
        conversation,
        messages,
        open_until: grant.expires_at,
    }))
}

#[utoipa::path(get, path = "/v1/me/break-glass", operation_id = "listBreakGlassAboutMe", tag = "me",
    summary = "Every break-glass request about the caller's conversations: who asked, why, who approved, how often content was read",
    responses((status = 200, body = List<BreakGlassView>), (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn about_me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<List<BreakGlassView>>, ApiError> {
    let grants = state
        .store
        .break_glass_about(principal.id(), LISTED)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(break_glass::views(&state, grants).await?))
}
