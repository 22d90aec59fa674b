//! `POST /v1/embeddings`.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use civitas_inference::embed::EmbedError;
use civitas_store::RequestRecord;
use civitas_types::openai::{
    EmbeddingInput, EmbeddingObject, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
    EncodingFormat,
};
use civitas_types::ErrorCode;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::middleware::{Caller, RequestId};
use crate::recorder::HandlerRecords;
use crate::routes::models::{check_allowed, model_not_found};
use crate::state::AppState;

/// Most inputs in one request.
const MAX_INPUTS: usize = 2048;

#[utoipa::path(post, path = "/v1/embeddings", operation_id = "createEmbedding", tag = "embeddings",
    summary = "Create embeddings of text inputs",
    request_body = EmbeddingRequest,
    responses(
        (status = 200, body = EmbeddingResponse),
        (status = 400, description = "invalid_request_body, invalid_parameter or context_length_exceeded", body = civitas_types::ErrorBody),
        (status = 402, description = "budget_exceeded", body = civitas_types::ErrorBody),
        (status = 403, description = "model_not_allowed", body = civitas_types::ErrorBody),
        (status = 404, description = "model_not_found", body = civitas_types::ErrorBody),
        (status = 429, description = "a limit is reached; see Retry-After", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    ApiJson(request): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let at = chrono::Utc::now();
    let embedder = state
        .embedder
        .clone()
        .filter(|embedder| embedder.name() == request.model)
        .ok_or_else(|| model_not_found(&request.model))?;
    check_allowed(&principal, &request.model)?;
    let inputs = match request.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) => texts,
        EmbeddingInput::Tokens(_) | EmbeddingInput::ManyTokens(_) => {
            return Err(ApiError::invalid(
                "input",
                "token arrays are not supported: their ids belong to another tokenizer; send text",
            ))
        }
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("send between 1 and {MAX_INPUTS} inputs"),
        ));
    }
    if let Some(index) = inputs.iter().position(|text| text.is_empty()) {
        return Err(ApiError::invalid(
            &format!("input[{index}]"),
            "inputs must not be empty",
        ));
    }
    if let Some(dimensions) = request.dimensions {
        if dimensions as usize != embedder.dimensions() {
            return Err(ApiError::invalid(
                "dimensions",
                format!("this model only produces {} dimensions", embedder.dimensions()),
            ));
        }
    }
    let format = request.encoding_format.unwrap_or(EncodingFormat::Float);
    let _permit = state
        .embedding_permits
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    let worker = embedder.clone();
    let computed = tokio::task::spawn_blocking(move || {
        inputs
            .iter()
            .enumerate()
            .map(|(index, text)| worker.embed(text).map_err(|error| (index, error)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let vectors = computed.map_err(|(index, error)| match error {
        EmbedError::TooLong { .. } => ApiError::new(ErrorCode::ContextLengthExceeded, error.to_string())
            .with_param(format!("input[{index}]")),
        other => {
            tracing::error!(error = %other, "embedding failed");
            ApiError::internal()
        }
    })?;
    let tokens: usize = vectors.iter().map(|(_, tokens)| tokens).sum();
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, (vector, _))| EmbeddingObject {
            object: "embedding".to_owned(),
            index: index as u32,
            embedding: match format {
                EncodingFormat::Float => EmbeddingVector::Float(vector),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                    EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    state
        .recorder
        .record(
            &caller,
            RequestRecord {
                model: Some(embedder.name().to_owned()),
                model_sha256: Some(embedder.weights_sha256().to_owned()),
                prompt_tokens: tokens as i64,
                completion_tokens: 0,
                latency_ms: started.elapsed().as_millis() as i64,
                status: 200,
                error_code: None,
                ..caller.new_record(&request_id, at, "/v1/embeddings")
            },
        )
        .await;
    let mut response = Json(EmbeddingResponse {
        object: "list".to_owned(),
        data,
        model: embedder.name().to_owned(),
        usage: EmbeddingUsage {
            prompt_tokens: tokens as u32,
            total_tokens: tokens as u32,
        },
    })
    .into_response();
    response.extensions_mut().insert(HandlerRecords);
    Ok(response)
}
