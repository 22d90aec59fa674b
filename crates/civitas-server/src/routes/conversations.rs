//! `GET /v1/conversations` and `GET /v1/conversations/{id}/messages`: the
//! conversations kept from chat completions, for their owner only.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use civitas_store::{Conversation, Message};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::middleware::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ListResponse<T> {
    object: &'static str,
    data: Vec<T>,
}

/// `{"object": "list", "data": [Conversation]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the response shape only")]
pub struct ConversationList {
    object: String,
    data: Vec<Conversation>,
}

/// `{"object": "list", "data": [Message]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents the response shape only")]
pub struct MessageList {
    object: String,
    data: Vec<Message>,
}

#[utoipa::path(get, path = "/v1/conversations", operation_id = "listConversations", tag = "conversations",
    summary = "List the caller's conversations, newest first",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20")),
    responses((status = 200, body = ConversationList), (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListResponse<Conversation>>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 100"));
    }
    let data = state
        .store
        .list_conversations(&caller.actor, limit)
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(ListResponse { object: "list", data }))
}

#[utoipa::path(get, path = "/v1/conversations/{id}/messages", operation_id = "listConversationMessages", tag = "conversations",
    summary = "List the messages of one of the caller's conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = MessageList), (status = 404, body = civitas_types::ErrorBody), (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn messages(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ListResponse<Message>>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no conversation `{id}`"));
    let conversation = state
        .store
        .get_conversation(&id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    // Another owner's conversation answers exactly like a missing one.
    if conversation.owner != caller.actor {
        return Err(not_found());
    }
    let data = state.store.list_messages(&id).await.map_err(ApiError::storage)?;
    Ok(Json(ListResponse { object: "list", data }))
}
