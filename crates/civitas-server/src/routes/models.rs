//! `GET /v1/models` and `GET /v1/models/{id}`.

use axum::extract::{Path, State};
use axum::Json;
use civitas_types::openai::{ModelList, ModelObject};
use civitas_types::ErrorCode;

use civitas_identity::Principal;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// Every model this installation serves, local and remote.
pub fn served_models(state: &AppState) -> Vec<ModelObject> {
    let chat = state.chat.iter().map(|engine| engine.info().name.clone());
    let embedding = state.embedder.iter().map(|embedder| embedder.name().to_owned());
    let local = chat.chain(embedding).map(|id| (id, "civitas".to_owned()));
    let remote = state.providers.iter().flat_map(|provider| {
        provider
            .models
            .iter()
            .map(|model| (model.clone(), provider.name.clone()))
    });
    // A model with several deployments is listed once, owned by the first.
    let mut seen = std::collections::HashSet::new();
    local
        .chain(remote)
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, owned_by)| ModelObject {
            id,
            object: "model".to_owned(),
            created: state.started_unix,
            owned_by,
        })
        .collect()
}

#[utoipa::path(get, path = "/v1/models", operation_id = "listModels", tag = "models",
    summary = "List the models served that the caller may use",
    responses((status = 200, body = ModelList), (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, Authenticated(principal): Authenticated) -> Json<ModelList> {
    Json(ModelList {
        object: "list".to_owned(),
        data: served_models(&state)
            .into_iter()
            .filter(|model| principal.models.allows(&model.id))
            .collect(),
    })
}

#[utoipa::path(get, path = "/v1/models/{id}", operation_id = "retrieveModel", tag = "models",
    summary = "Describe one served model",
    params(("id" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelObject), (status = 404, description = "model_not_found (also for a model the caller may not use)", body = civitas_types::ErrorBody), (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retrieve(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    // A model the caller may not use is invisible to them.
    served_models(&state)
        .into_iter()
        .find(|model| model.id == id && principal.models.allows(&model.id))
        .map(Json)
        .ok_or_else(|| model_not_found(&id))
}

/// Refuses a served model the caller's groups (or key) may not use.
pub fn check_allowed(principal: &Principal, model: &str) -> Result<(), ApiError> {
    if principal.models.allows(model) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::ModelNotAllowed,
            format!(
                "you may not use the model `{model}`; your agency's model manager decides which groups may"
            ),
        )
        .with_param("model"))
    }
}

pub fn model_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ModelNotFound,
        format!("the model `{id}` does not exist or is not served here; `GET /v1/models` lists the models"),
    )
    .with_param("model")
}
