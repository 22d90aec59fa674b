//! `GET /v1/conversations` and `GET /v1/conversations/{id}/messages`: the
//! conversations kept from chat completions, for their owner only.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use civitas_store::{Conversation, Message};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProvenanceQuery {
    /// `dossier`: the provenance signed with the installation's audit key,
    /// to attach to an administrative decision.
    pub format: Option<String>,
}

/// How an answer was made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Provenance {
    pub object: String,
    pub message_id: String,
    pub conversation_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The conversation's classification level.
    pub classification: String,
    pub model: Option<String>,
    /// `civitas` (the embedded model) or the remote provider's name.
    pub provider: Option<String>,
    pub weights_sha256: Option<String>,
    /// The chat template used: the one in the model file.
    pub chat_template: String,
    /// No system prompt is added by Civitas yet.
    pub system_prompt_version: Option<String>,
    /// How the answer ended, tokens and times.
    #[schema(value_type = Object)]
    pub generation: Value,
    pub request_id: Option<String>,
    /// Passages the answer was grounded on (none before knowledge bases).
    pub sources: Vec<Value>,
    /// The data-protection decision the answer was made under (level
    /// cleared, whether the text was pseudonymized).
    #[schema(value_type = Object)]
    pub data_protection: Value,
    /// The audit record of the model call: sequence number and hash.
    #[schema(value_type = Object)]
    pub audit: Value,
    /// Tokens, cost (price table) and the energy and emissions estimate.
    pub usage: ProvenanceUsage,
}

/// What an answer used, in whole units so that the signed dossier carries
/// no floating-point number a verifier could re-encode differently.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvenanceUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// From the price table, in millionths of its currency unit.
    pub cost_micros: i64,
    /// Estimated energy, microwatt-hours (method in the README).
    pub energy_microwatt_hours: i64,
    /// Estimated emissions, micrograms of CO2 equivalent.
    pub emissions_micrograms_co2e: i64,
    /// False when the model's size is unknown (its energy counts as 0).
    pub energy_estimated: bool,
}

#[utoipa::path(get, path = "/v1/messages/{id}/provenance", operation_id = "getMessageProvenance", tag = "conversations",
    summary = "How an answer was made: model, weights, tokens, times, its audit record; `format=dossier` signs it",
    params(("id" = String, Path, description = "Message id"), ProvenanceQuery),
    responses((status = 200, body = Provenance), (status = 400, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody), (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn provenance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<ProvenanceQuery>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no answer `{id}`"));
    let message = state
        .store
        .get_message(&id)
        .await
        .map_err(ApiError::storage)?
        .filter(|message| message.role == "assistant")
        .ok_or_else(not_found)?;
    let conversation = state
        .store
        .get_conversation(&message.conversation_id)
        .await
        .map_err(ApiError::storage)?
        .filter(|conversation| conversation.owner == caller.actor)
        .ok_or_else(not_found)?;
    let metadata: Value = message
        .metadata
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let generation = metadata["generation"].clone();
    let data_protection = generation["data_protection"].clone();
    let model = generation["model"].as_str().map(str::to_owned);
    let local = state
        .chat
        .as_ref()
        .is_some_and(|engine| Some(engine.info().name.as_str()) == model.as_deref());
    let provider = if local {
        Some("civitas".to_owned())
    } else {
        model.as_ref().and_then(|model| {
            state
                .providers
                .iter()
                .find(|provider| provider.serves(model))
                .map(|provider| provider.name.clone())
        })
    };
    let request_id = generation["request_id"].as_str().map(str::to_owned);
    let audit = match &request_id {
        Some(request_id) => state
            .store
            .search_audit(
                &civitas_store::AuditFilter {
                    request_id: Some(request_id.clone()),
                    action: Some(civitas_audit::Action::ModelCall.as_str().to_owned()),
                    ..civitas_store::AuditFilter::default()
                },
                1,
            )
            .await
            .map_err(ApiError::storage)?
            .into_iter()
            .next()
            .map(|record| {
                json!({ "seq": record.seq, "hash": civitas_audit::record::hex_hash::to_hex(&record.hash) })
            })
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let tokens = |name: &str| generation[name].as_i64().unwrap_or(0);
    let (prompt_tokens, completion_tokens) = (tokens("prompt_tokens"), tokens("completion_tokens"));
    let model_name = model.as_deref().unwrap_or_default();
    let estimate = state
        .energy
        .estimate(model_name, prompt_tokens, completion_tokens);
    let usage = ProvenanceUsage {
        prompt_tokens,
        completion_tokens,
        cost_micros: crate::limits::PriceTable::new(&state.config.prices).cost_micros(
            model.as_deref(),
            prompt_tokens,
            completion_tokens,
        ),
        energy_microwatt_hours: (estimate.watt_hours * 1e6).round() as i64,
        emissions_micrograms_co2e: (estimate.grams_co2e * 1e6).round() as i64,
        energy_estimated: state.energy.knows(model_name),
    };
    let provenance = Provenance {
        usage,
        object: "message.provenance".to_owned(),
        message_id: message.id,
        conversation_id: conversation.id,
        created_at: message.created_at,
        classification: conversation.classification,
        weights_sha256: generation["weights_sha256"].as_str().map(str::to_owned),
        model,
        provider,
        chat_template: "the model file's own (tokenizer.chat_template)".to_owned(),
        system_prompt_version: None,
        request_id,
        generation,
        sources: Vec::new(),
        data_protection,
        audit,
    };
    let document = serde_json::to_value(&provenance).map_err(|_| ApiError::internal())?;
    match query.format.as_deref() {
        None => Ok(Json(document)),
        Some("dossier") => {
            let signed_at = civitas_store::now();
            let body = json!({ "provenance": document, "signed_at": signed_at });
            let canonical = civitas_audit::record::canonical_json(&body);
            let key = &state.auditor.key;
            Ok(Json(json!({
                "object": "provenance.dossier",
                "document": body,
                "signature": {
                    "algorithm": "Ed25519",
                    "over": "the document as JSON with keys sorted and no spaces",
                    "key_id": key.key_id(),
                    "public_key": key.public().public_key,
                    "value": key.sign_bytes(canonical.as_bytes()),
                },
            })))
        }
        Some(_) => Err(ApiError::invalid("format", "use `dossier` or leave it out")),
    }
}
