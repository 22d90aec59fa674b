//! The caller's own API keys: `GET|POST /api/keys`,
//! `DELETE /api/keys/{key_id}`. Administrators manage their agency's keys
//! under `/api/admin` with the same request shape.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use civitas_identity::provision::{self, KeyRequest};
use civitas_identity::Principal;
use civitas_store::{ApiKey, Person};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::models::check_allowed;
use crate::state::AppState;

/// A key to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label to recognise the key.
    pub name: String,
    /// `personal` (default), `service` (service accounts) or `short_lived`
    /// (must expire within 24 hours).
    #[serde(default)]
    pub kind: Option<String>,
    /// Models the key may use, within its owner's; absent: all of them.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Client addresses (CIDR ranges) allowed to use it; absent: any.
    #[serde(default)]
    pub ip_ranges: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Admin routes only: whose key it is (a person or service account of
    /// the agency). Absent: the caller.
    #[serde(default)]
    pub person_id: Option<String>,
}

/// A new key and its secret, shown only in this answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// `civ_...`: store it now; Civitas keeps only its hash.
    pub secret: String,
}

/// `{"object": "list", "data": [ApiKey]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub object: String,
    pub data: Vec<ApiKey>,
}

/// Creates a key for `owner`, made by `creator`.
pub async fn create_for(
    state: &AppState,
    creator: &Principal,
    owner: Person,
    body: CreateKey,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    if creator.key().is_some_and(|key| key.kind == "short_lived") {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "a short-lived key cannot create keys; sign in or use a personal key",
        ));
    }
    if owner.id == creator.id() {
        for model in body.models.iter().flatten() {
            check_allowed(creator, model)?;
        }
    }
    let (key, secret) = provision::create_key(
        state.store.as_ref(),
        KeyRequest {
            owner,
            name: body.name,
            kind: body.kind.unwrap_or_else(|| "personal".to_owned()),
            models: body.models,
            ip_ranges: body.ip_ranges,
            expires_at: body.expires_at,
            created_by: creator.id().to_owned(),
        },
    )
    .await?;
    tracing::info!(key_id = %key.id, person_id = %key.person_id, created_by = %creator.id(), "API key created");
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

#[utoipa::path(get, path = "/api/keys", operation_id = "listOwnKeys", tag = "keys",
    summary = "List the caller's API keys (never their secrets)",
    responses((status = 200, body = KeyList), (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<KeyList>, ApiError> {
    let data = state
        .store
        .list_api_keys(principal.agency_id(), Some(principal.id()))
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(KeyList {
        object: "list".to_owned(),
        data,
    }))
}

#[utoipa::path(post, path = "/api/keys", operation_id = "createOwnKey", tag = "keys",
    summary = "Create an API key for the caller; its secret is shown once",
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey),
        (status = 400, description = "invalid_parameter", body = civitas_types::ErrorBody),
        (status = 403, description = "model_not_allowed or permission_denied", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    if body.person_id.as_deref().is_some_and(|id| id != principal.id()) {
        return Err(ApiError::invalid(
            "person_id",
            "this route creates your own keys; administrators use /api/admin/agencies/{agency_id}/keys",
        ));
    }
    let owner = principal.person.clone();
    create_for(&state, &principal, owner, body).await
}

#[utoipa::path(delete, path = "/api/keys/{key_id}", operation_id = "revokeOwnKey", tag = "keys",
    summary = "Revoke one of the caller's keys; refused from the next request on",
    params(("key_id" = String, Path, description = "Key id")),
    responses((status = 200, body = ApiKey), (status = 404, description = "not_found", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(key_id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no key `{key_id}`"));
    let key = state
        .store
        .get_api_key(principal.agency_id(), &key_id)
        .await
        .map_err(ApiError::storage)?
        .filter(|key| civitas_identity::policy::owns_key(&principal, key))
        .ok_or_else(not_found)?;
    revoke_key(&state, &principal, key).await.map(Json)
}

/// Revokes `key` and returns it as stored afterwards.
pub async fn revoke_key(state: &AppState, by: &Principal, key: ApiKey) -> Result<ApiKey, ApiError> {
    state
        .store
        .revoke_api_key(&key.agency_id, &key.id, civitas_store::now())
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(key_id = %key.id, revoked_by = %by.id(), "API key revoked");
    state
        .store
        .get_api_key(&key.agency_id, &key.id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(ApiError::internal)
}
