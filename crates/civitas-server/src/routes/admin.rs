//! The administration API, `/api/admin/...`: agencies, groups, people,
//! roles, model access, limits, keys and usage. Every handler states the
//! permission it needs in its signature ([`AgencyAccess`]); records are
//! always looked up within the agency of the path, so another agency's
//! ids answer 404.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use civitas_identity::policy;
use civitas_identity::provision::{self, PersonRequest};
use civitas_identity::Role;
use civitas_store::{Agency, ApiKey, Group, Limits, Person, PersonUpdate};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::auth::{
    forbidden, AgencyAccess, Authenticated, ManageKeys, ManageLimits, ManageModels, ManagePeople, ReadAgency,
    ReadKeys, ReadUsage,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::keys::{create_for, revoke_key as revoke_stored_key, CreateKey, CreatedKey, KeyList};
use crate::routes::me::{parse_since, usage_answer, Usage};
use crate::routes::models::served_models;
use crate::state::AppState;

/// `{"object": "list", "data": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub object: String,
    pub data: Vec<T>,
}

fn list<T>(data: Vec<T>) -> Json<List<T>> {
    Json(List {
        object: "list".to_owned(),
        data,
    })
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no {what} `{id}`"))
}

pub(crate) async fn person_in(
    state: &AppState,
    agency: &Agency,
    person_id: &str,
) -> Result<Person, ApiError> {
    state
        .store
        .get_person(person_id)
        .await
        .map_err(ApiError::storage)?
        .filter(|person| person.agency_id == agency.id)
        .ok_or_else(|| not_found("person", person_id))
}

#[utoipa::path(get, path = "/api/admin/agencies", operation_id = "listAgencies", tag = "admin",
    summary = "Agencies the caller administers (all of them for a platform administrator)",
    responses((status = 200, body = List<Agency>), (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_agencies(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<List<Agency>>, ApiError> {
    let all = state.store.list_agencies().await.map_err(ApiError::storage)?;
    let parents: HashMap<&str, Option<&str>> = all
        .iter()
        .map(|agency| (agency.id.as_str(), agency.parent_id.as_deref()))
        .collect();
    let chain_of = |id: &str| {
        let mut chain = vec![id.to_owned()];
        let mut current = id;
        while let Some(Some(parent)) = parents.get(current) {
            if chain.len() > 32 || chain.iter().any(|seen| seen == parent) {
                break;
            }
            chain.push((*parent).to_owned());
            current = parent;
        }
        chain
    };
    let visible = all
        .iter()
        .filter(|agency| {
            policy::authorize_agency(&principal, &chain_of(&agency.id), policy::AGENCY_READERS).is_ok()
        })
        .cloned()
        .collect();
    Ok(list(visible))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgency {
    /// `[a-z0-9-]`, unique.
    pub slug: String,
    pub name: String,
    /// The agency above this one (a ministry above a directorate).
    #[serde(default)]
    pub parent_id: Option<String>,
}

#[utoipa::path(post, path = "/api/admin/agencies", operation_id = "createAgency", tag = "admin",
    summary = "Create an agency (platform administrators)",
    request_body = CreateAgency,
    responses((status = 201, body = Agency),
        (status = 400, description = "invalid_parameter", body = civitas_types::ErrorBody),
        (status = 403, description = "permission_denied", body = civitas_types::ErrorBody),
        (status = 409, description = "conflict: the slug is taken", body = civitas_types::ErrorBody),
        (status = 422, description = "unresolved_reference: no such parent", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_agency(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CreateAgency>,
) -> Result<(StatusCode, Json<Agency>), ApiError> {
    policy::authorize_platform(&principal).map_err(|_| forbidden(&[Role::PlatformAdmin]))?;
    let agency = provision::create_agency(
        state.store.as_ref(),
        &body.slug,
        &body.name,
        body.parent_id.as_deref(),
    )
    .await?;
    tracing::info!(agency_id = %agency.id, by = %principal.id(), "agency created");
    Ok((StatusCode::CREATED, Json(agency)))
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}", operation_id = "getAgency", tag = "admin",
    summary = "One agency",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = Agency), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_agency(access: AgencyAccess<ReadAgency>) -> Json<Agency> {
    Json(access.agency)
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/groups", operation_id = "listGroups", tag = "admin",
    summary = "The agency's groups and the models each may use",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<Group>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_groups(
    State(state): State<AppState>,
    access: AgencyAccess<ReadAgency>,
) -> Result<Json<List<Group>>, ApiError> {
    let groups = state
        .store
        .list_groups(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(groups))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    /// The identity provider's id for it, for SSO and SCIM mapping.
    #[serde(default)]
    pub external_id: Option<String>,
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/groups", operation_id = "createGroup", tag = "admin",
    summary = "Create a group (it may use no model until a model manager allows some)",
    params(("agency_id" = String, Path)),
    request_body = CreateGroup,
    responses((status = 201, body = Group), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody),
        (status = 404, body = civitas_types::ErrorBody), (status = 409, description = "conflict: name taken", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_group(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    provision::check_name("name", &body.name)?;
    let group = state
        .store
        .create_group(&access.agency.id, body.name.trim(), body.external_id.as_deref())
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(group_id = %group.id, by = %access.principal.id(), "group created");
    Ok((StatusCode::CREATED, Json(group)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupModels {
    /// Served model names, or `*` for every model; empty for none.
    pub models: Vec<String>,
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/groups/{group_id}/models", operation_id = "setGroupModels", tag = "admin",
    summary = "Set which models a group may use",
    params(("agency_id" = String, Path), ("group_id" = String, Path)),
    request_body = GroupModels,
    responses((status = 200, body = Group), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody),
        (status = 422, description = "unresolved_reference: a model is not served", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_group_models(
    State(state): State<AppState>,
    access: AgencyAccess<ManageModels>,
    Path((_, group_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<GroupModels>,
) -> Result<Json<Group>, ApiError> {
    let served: Vec<String> = served_models(&state).into_iter().map(|model| model.id).collect();
    if let Some(unknown) = body
        .models
        .iter()
        .find(|model| *model != "*" && !served.contains(model))
    {
        return Err(ApiError::new(
            ErrorCode::UnresolvedReference,
            format!(
                "the model `{unknown}` is not served here; served: {}",
                served.join(", ")
            ),
        )
        .with_param("models"));
    }
    let group = state
        .store
        .set_group_models(&access.agency.id, &group_id, &body.models)
        .await
        .map_err(|error| match error {
            civitas_store::StoreError::NotFound { .. } => not_found("group", &group_id),
            other => ApiError::storage(other),
        })?;
    tracing::info!(group_id = %group.id, by = %access.principal.id(), "group model access changed");
    Ok(Json(group))
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/people", operation_id = "listPeople", tag = "admin",
    summary = "The agency's people and service accounts",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<Person>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_people(
    State(state): State<AppState>,
    access: AgencyAccess<ReadAgency>,
) -> Result<Json<List<Person>>, ApiError> {
    let people = state
        .store
        .list_people(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(people))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePerson {
    pub email: String,
    pub display_name: String,
    /// `person` (default) or `service`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `active` (default) or `pending`.
    #[serde(default)]
    pub status: Option<String>,
    /// For a local account; checked against the password policy.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub group_ids: Vec<String>,
    /// Roles in this agency; default `member`.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

fn parse_roles(principal: &civitas_identity::Principal, names: &[String]) -> Result<Vec<String>, ApiError> {
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        let role = Role::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
            ApiError::invalid(
                "roles",
                format!("`{name}` is not a role; roles: {}", known.join(", ")),
            )
        })?;
        if !policy::may_grant(principal, role) {
            return Err(forbidden(&[Role::PlatformAdmin]));
        }
        roles.push(role.as_str().to_owned());
    }
    Ok(roles)
}

fn membership_error(error: civitas_store::StoreError) -> ApiError {
    match error {
        civitas_store::StoreError::Invalid(message) => {
            ApiError::new(ErrorCode::UnresolvedReference, message).with_param("group_ids")
        }
        other => ApiError::storage(other),
    }
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/people", operation_id = "createPerson", tag = "admin",
    summary = "Add a person or service account to the agency",
    params(("agency_id" = String, Path)),
    request_body = CreatePerson,
    responses((status = 201, body = Person), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody),
        (status = 404, body = civitas_types::ErrorBody), (status = 409, description = "conflict: e-mail taken", body = civitas_types::ErrorBody),
        (status = 422, description = "weak_password or unresolved_reference", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_person(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    ApiJson(body): ApiJson<CreatePerson>,
) -> Result<(StatusCode, Json<Person>), ApiError> {
    let roles = parse_roles(
        &access.principal,
        body.roles.as_deref().unwrap_or(&["member".to_owned()]),
    )?;
    for group_id in &body.group_ids {
        if state
            .store
            .get_group(&access.agency.id, group_id)
            .await
            .map_err(ApiError::storage)?
            .is_none()
        {
            return Err(ApiError::new(
                ErrorCode::UnresolvedReference,
                format!("no group `{group_id}` in this agency"),
            )
            .with_param("group_ids"));
        }
    }
    let request = PersonRequest {
        agency_id: access.agency.id.clone(),
        email: body.email,
        display_name: body.display_name,
        kind: body.kind.unwrap_or_else(|| "person".to_owned()),
        status: body.status.unwrap_or_else(|| "active".to_owned()),
        external_id: None,
        password: body.password,
    };
    let store = state.store.clone();
    let person = provision::create_person(store.as_ref(), request).await?;
    state
        .store
        .set_memberships(&access.agency.id, &person.id, &body.group_ids)
        .await
        .map_err(membership_error)?;
    state
        .store
        .set_roles(&person.id, &access.agency.id, &roles)
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %person.id, by = %access.principal.id(), "person created");
    Ok((StatusCode::CREATED, Json(person)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePerson {
    #[serde(default)]
    pub display_name: Option<String>,
    /// `active` (approve or re-enable), `disabled` or `pending`.
    #[serde(default)]
    pub status: Option<String>,
}

#[utoipa::path(patch, path = "/api/admin/agencies/{agency_id}/people/{person_id}", operation_id = "updatePerson", tag = "admin",
    summary = "Rename, approve, disable or re-enable a person",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    request_body = UpdatePerson,
    responses((status = 200, body = Person), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_person(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    Path((_, person_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdatePerson>,
) -> Result<Json<Person>, ApiError> {
    if let Some(name) = &body.display_name {
        provision::check_name("display_name", name)?;
    }
    if let Some(status) = &body.status {
        if !matches!(status.as_str(), "active" | "disabled" | "pending") {
            return Err(ApiError::invalid(
                "status",
                "use `active`, `disabled` or `pending`",
            ));
        }
        if status != "active" && person_id == access.principal.id() {
            return Err(ApiError::invalid("status", "you cannot disable your own account"));
        }
    }
    person_in(&state, &access.agency, &person_id).await?;
    let person = state
        .store
        .update_person(
            &access.agency.id,
            &person_id,
            PersonUpdate {
                display_name: body.display_name.map(|name| name.trim().to_owned()),
                status: body.status,
                ..PersonUpdate::default()
            },
        )
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %person.id, status = %person.status, by = %access.principal.id(), "person updated");
    Ok(Json(person))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonGroups {
    pub group_ids: Vec<String>,
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/people/{person_id}/groups", operation_id = "setPersonGroups", tag = "admin",
    summary = "Set the groups a person belongs to",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    request_body = PersonGroups,
    responses((status = 200, body = List<Group>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody),
        (status = 422, description = "unresolved_reference: a group is not in this agency", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_person_groups(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    Path((_, person_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<PersonGroups>,
) -> Result<Json<List<Group>>, ApiError> {
    person_in(&state, &access.agency, &person_id).await?;
    state
        .store
        .set_memberships(&access.agency.id, &person_id, &body.group_ids)
        .await
        .map_err(membership_error)?;
    let grants = state.store.grants(&person_id).await.map_err(ApiError::storage)?;
    tracing::info!(person_id, by = %access.principal.id(), "memberships changed");
    Ok(list(grants.groups))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonRoles {
    /// Roles held in this agency (and the agencies below it).
    pub roles: Vec<String>,
}

/// The roles a person holds, after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleList {
    pub object: String,
    pub data: Vec<civitas_store::RoleGrant>,
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/people/{person_id}/roles", operation_id = "setPersonRoles", tag = "admin",
    summary = "Set the roles a person holds in this agency",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    request_body = PersonRoles,
    responses((status = 200, body = RoleList), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_person_roles(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    Path((_, person_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<PersonRoles>,
) -> Result<Json<RoleList>, ApiError> {
    let roles = parse_roles(&access.principal, &body.roles)?;
    let person = person_in(&state, &access.agency, &person_id).await?;
    // Taking platform-admin away also takes a platform administrator.
    let current = state.store.grants(&person.id).await.map_err(ApiError::storage)?;
    let losing_platform = current
        .roles
        .iter()
        .any(|grant| grant.agency_id == access.agency.id && grant.role == Role::PlatformAdmin.as_str())
        && !roles.iter().any(|role| role == Role::PlatformAdmin.as_str());
    if losing_platform && !access.principal.is_platform_admin() {
        return Err(forbidden(&[Role::PlatformAdmin]));
    }
    state
        .store
        .set_roles(&person.id, &access.agency.id, &roles)
        .await
        .map_err(ApiError::storage)?;
    let grants = state.store.grants(&person.id).await.map_err(ApiError::storage)?;
    tracing::info!(person_id = %person.id, by = %access.principal.id(), "roles changed");
    Ok(Json(RoleList {
        object: "list".to_owned(),
        data: grants.roles,
    }))
}

#[utoipa::path(delete, path = "/api/admin/agencies/{agency_id}/people/{person_id}/sessions", operation_id = "revokePersonSessions", tag = "admin",
    summary = "Sign a person out everywhere",
    params(("agency_id" = String, Path), ("person_id" = String, Path)),
    responses((status = 200, body = crate::routes::session::SignedOut), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_person_sessions(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
    Path((_, person_id)): Path<(String, String)>,
) -> Result<Json<crate::routes::session::SignedOut>, ApiError> {
    let person = person_in(&state, &access.agency, &person_id).await?;
    let ended = state
        .store
        .revoke_sessions_of(&person.id, civitas_store::now())
        .await
        .map_err(ApiError::storage)?;
    tracing::info!(person_id = %person.id, ended, by = %access.principal.id(), "sessions ended by an administrator");
    Ok(Json(crate::routes::session::SignedOut {
        object: "signed_out".to_owned(),
        sessions_ended: ended,
    }))
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/limits", operation_id = "listLimits", tag = "admin",
    summary = "Limits and budgets set in the agency",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = List<Limits>), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_limits(
    State(state): State<AppState>,
    access: AgencyAccess<ReadUsage>,
) -> Result<Json<List<Limits>>, ApiError> {
    let limits = state
        .store
        .list_limits(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(limits))
}

/// Checks that `scope` names this agency or one of its groups, people or keys.
async fn check_scope(state: &AppState, agency: &Agency, scope: &str) -> Result<(), ApiError> {
    let unresolved = || {
        ApiError::new(
            ErrorCode::UnresolvedReference,
            format!("`{scope}` is not this agency, nor one of its groups, people or keys"),
        )
        .with_param("scope")
    };
    let Some((kind, id)) = scope.split_once(':') else {
        return Err(ApiError::invalid(
            "scope",
            "use agency:ID, group:ID, person:ID or key:ID",
        ));
    };
    let store = &state.store;
    let found = match kind {
        "agency" => id == agency.id,
        "group" => store
            .get_group(&agency.id, id)
            .await
            .map_err(ApiError::storage)?
            .is_some(),
        "person" => store
            .get_person(id)
            .await
            .map_err(ApiError::storage)?
            .is_some_and(|person| person.agency_id == agency.id),
        "key" => store
            .get_api_key(&agency.id, id)
            .await
            .map_err(ApiError::storage)?
            .is_some(),
        _ => {
            return Err(ApiError::invalid(
                "scope",
                "use agency:ID, group:ID, person:ID or key:ID",
            ))
        }
    };
    if found {
        Ok(())
    } else {
        Err(unresolved())
    }
}

#[utoipa::path(put, path = "/api/admin/agencies/{agency_id}/limits", operation_id = "setLimits", tag = "admin",
    summary = "Set the limits of one scope (agency, group, person or key); all empty removes them",
    params(("agency_id" = String, Path)),
    request_body = Limits,
    responses((status = 200, body = List<Limits>), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody),
        (status = 404, body = civitas_types::ErrorBody), (status = 422, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_limits(
    State(state): State<AppState>,
    access: AgencyAccess<ManageLimits>,
    ApiJson(mut body): ApiJson<Limits>,
) -> Result<Json<List<Limits>>, ApiError> {
    check_scope(&state, &access.agency, &body.scope).await?;
    for (field, value) in [
        ("requests_per_minute", body.requests_per_minute),
        ("tokens_per_minute", body.tokens_per_minute),
        ("tokens_per_day", body.tokens_per_day),
        ("cost_per_month_micros", body.cost_per_month_micros),
    ] {
        if value.is_some_and(|value| value < 0) {
            return Err(ApiError::invalid(field, "a limit cannot be negative"));
        }
    }
    body.agency_id.clone_from(&access.agency.id);
    let empty = body.requests_per_minute.is_none()
        && body.tokens_per_minute.is_none()
        && body.tokens_per_day.is_none()
        && body.cost_per_month_micros.is_none();
    if empty {
        state
            .store
            .delete_limits(&access.agency.id, &body.scope)
            .await
            .map_err(ApiError::storage)?;
    } else {
        state.store.set_limits(&body).await.map_err(ApiError::storage)?;
    }
    tracing::info!(scope = %body.scope, by = %access.principal.id(), "limits changed");
    let limits = state
        .store
        .list_limits(&access.agency.id)
        .await
        .map_err(ApiError::storage)?;
    Ok(list(limits))
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/keys", operation_id = "listAgencyKeys", tag = "admin",
    summary = "The agency's API keys (never their secrets)",
    params(("agency_id" = String, Path)),
    responses((status = 200, body = KeyList), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    access: AgencyAccess<ReadKeys>,
) -> Result<Json<KeyList>, ApiError> {
    let data = state
        .store
        .list_api_keys(&access.agency.id, None)
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(KeyList {
        object: "list".to_owned(),
        data,
    }))
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/keys", operation_id = "createAgencyKey", tag = "admin",
    summary = "Create a key for a person or service account of the agency; its secret is shown once",
    params(("agency_id" = String, Path)),
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody),
        (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    access: AgencyAccess<ManageKeys>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let owner_id = body.person_id.clone().ok_or_else(|| {
        ApiError::invalid("person_id", "name the person or service account who owns the key")
    })?;
    let owner = person_in(&state, &access.agency, &owner_id).await?;
    create_for(&state, &access.principal, owner, body).await
}

#[utoipa::path(delete, path = "/api/admin/agencies/{agency_id}/keys/{key_id}", operation_id = "revokeAgencyKey", tag = "admin",
    summary = "Revoke a key of the agency; refused from the next request on, on every replica",
    params(("agency_id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    access: AgencyAccess<ManageKeys>,
    Path((_, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKey>, ApiError> {
    let key = state
        .store
        .get_api_key(&access.agency.id, &key_id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| not_found("key", &key_id))?;
    revoke_stored_key(&state, &access.principal, key).await.map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// `YYYY-MM-DD` (UTC); default: the first day of the current month.
    pub since: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/agencies/{agency_id}/usage", operation_id = "getAgencyUsage", tag = "admin",
    summary = "The agency's usage per model since a date",
    params(("agency_id" = String, Path), SinceQuery),
    responses((status = 200, body = Usage), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn agency_usage(
    State(state): State<AppState>,
    access: AgencyAccess<ReadUsage>,
    Query(query): Query<SinceQuery>,
) -> Result<Json<Usage>, ApiError> {
    let since = parse_since(query.since.as_deref())?;
    let data = state
        .store
        .usage_summary(
            &civitas_store::UsageOwner::Agency(access.agency.id.clone()),
            since,
        )
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(usage_answer(
        &state.energy,
        "agency",
        &access.agency.id,
        since,
        data,
    )))
}

#[utoipa::path(post, path = "/api/admin/agencies/{agency_id}/scim-token", operation_id = "createScimToken", tag = "admin",
    summary = "Issue a SCIM provisioning token for the agency (shown once; revoke it like any key)",
    params(("agency_id" = String, Path)),
    responses((status = 201, body = CreatedKey), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_scim_token(
    State(state): State<AppState>,
    access: AgencyAccess<ManagePeople>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let (key, secret) =
        provision::create_scim_key(state.store.as_ref(), &access.agency, access.principal.id()).await?;
    tracing::info!(key_id = %key.id, by = %access.principal.id(), "SCIM token issued");
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}
