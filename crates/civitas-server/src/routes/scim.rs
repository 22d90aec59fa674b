//! SCIM 2.0 provisioning (RFC 7643, 7644): `/scim/v2/Users` and
//! `/scim/v2/Groups`, so that Entra ID, Okta and similar directories can
//! create, update and deactivate people and groups.
//!
//! Each agency has its own bearer token: an API key of kind `scim`, issued
//! by `POST /api/admin/agencies/{agency_id}/scim-token`, valid only on
//! these routes (and these routes accept nothing else). Everything a SCIM
//! request touches is within the token's agency; other ids answer 404.
//! Deactivating or deleting a user keeps the record (for audit) with the
//! status `disabled` and ends their sessions.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civitas_identity::provision::{self, PersonRequest, ProvisionError};
use civitas_store::{Group, Person, PersonUpdate, StoreError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Authenticated;
use crate::extract::ApiJson;
use crate::state::AppState;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const MAX_COUNT: usize = 500;

/// A SCIM error: `{"schemas": [Error], "status": "409", "scimType": ..., "detail": ...}`.
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

fn scim_error(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> ScimError {
    ScimError {
        status,
        scim_type,
        detail: detail.into(),
    }
}

fn bad(detail: impl Into<String>) -> ScimError {
    scim_error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
}

fn not_found(what: &str, id: &str) -> ScimError {
    scim_error(StatusCode::NOT_FOUND, None, format!("no {what} `{id}`"))
}

impl From<StoreError> for ScimError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => scim_error(StatusCode::CONFLICT, Some("uniqueness"), message),
            StoreError::NotFound { what } => {
                scim_error(StatusCode::NOT_FOUND, None, format!("no such {what}"))
            }
            StoreError::Invalid(message) => bad(message),
            other => {
                tracing::error!(error = %other, "storage error in SCIM");
                scim_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "the database could not answer; try again",
                )
            }
        }
    }
}

impl From<ProvisionError> for ScimError {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Conflict(message) => {
                scim_error(StatusCode::CONFLICT, Some("uniqueness"), message)
            }
            ProvisionError::Store(error) => error.into(),
            other => bad(other.to_string()),
        }
    }
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    response
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        scim_json(self.status, body)
    }
}

/// The agency of the SCIM token that authenticated the request.
#[derive(Debug)]
pub struct ScimAgency {
    pub agency_id: String,
    pub agency_slug: String,
}

impl FromRequestParts<AppState> for ScimAgency {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state)
            .await
            .map_err(|_| scim_error(StatusCode::UNAUTHORIZED, None, "a SCIM token is needed"))?;
        if principal.key().is_none_or(|key| key.kind != "scim") {
            return Err(scim_error(
                StatusCode::FORBIDDEN,
                None,
                "SCIM routes need the agency's SCIM token (POST /api/admin/agencies/{agency_id}/scim-token)",
            ));
        }
        let agency = state
            .store
            .get_agency(principal.agency_id())
            .await?
            .ok_or_else(|| {
                scim_error(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "the token's agency no longer exists",
                )
            })?;
        Ok(ScimAgency {
            agency_id: agency.id,
            agency_slug: agency.slug,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `attribute eq "value"` (userName, externalId, displayName).
    pub filter: Option<String>,
    #[serde(rename = "startIndex")]
    pub start_index: Option<usize>,
    pub count: Option<usize>,
}

/// A parsed `attribute eq "value"` filter.
fn parse_filter(filter: &str) -> Result<(String, String), ScimError> {
    let invalid = || {
        scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            "only `attribute eq \"value\"` filters are supported",
        )
    };
    let mut parts = filter.trim().splitn(3, char::is_whitespace);
    let attribute = parts.next().ok_or_else(invalid)?;
    let operator = parts.next().ok_or_else(invalid)?;
    let value = parts.next().ok_or_else(invalid)?.trim();
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(invalid());
    }
    let value = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(invalid)?
        .replace("\\\"", "\"");
    Ok((attribute.to_ascii_lowercase(), value))
}

/// The request's filter, refused (whatever the data) unless it names one
/// of `attributes`.
fn filter_on(
    query: &ListQuery,
    what: &str,
    attributes: &[&str],
) -> Result<Option<(String, String)>, ScimError> {
    let filter = query.filter.as_deref().map(parse_filter).transpose()?;
    if let Some((attribute, _)) = &filter {
        if !attributes.contains(&attribute.as_str()) {
            return Err(scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidFilter"),
                format!("{what} cannot be filtered on `{attribute}`"),
            ));
        }
    }
    Ok(filter)
}

fn list_response(query: &ListQuery, resources: Vec<Value>) -> Response {
    let start = query.start_index.unwrap_or(1).max(1);
    let count = query.count.unwrap_or(100).min(MAX_COUNT);
    let total = resources.len();
    let page: Vec<Value> = resources.into_iter().skip(start - 1).take(count).collect();
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

fn user_resource(person: &Person, groups: &[Group]) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": person.id,
        "externalId": person.external_id,
        "userName": person.email,
        "displayName": person.display_name,
        "name": {"formatted": person.display_name},
        "emails": [{"value": person.email, "primary": true, "type": "work"}],
        "active": person.status == "active",
        "groups": groups.iter().map(|group| json!({"value": group.id, "display": group.name})).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "User",
            "created": person.created_at,
            "location": format!("/scim/v2/Users/{}", person.id),
        },
    })
}

fn group_resource(group: &Group, members: &[Person]) -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "externalId": group.external_id,
        "displayName": group.name,
        "members": members.iter().map(|person| json!({"value": person.id, "display": person.email})).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Group",
            "created": group.created_at,
            "location": format!("/scim/v2/Groups/{}", group.id),
        },
    })
}

async fn person_in(state: &AppState, scim: &ScimAgency, id: &str) -> Result<Person, ScimError> {
    state
        .store
        .get_person(id)
        .await?
        .filter(|person| person.agency_id == scim.agency_id && person.kind == "person")
        .ok_or_else(|| not_found("user", id))
}

async fn user_answer(state: &AppState, person: &Person, status: StatusCode) -> Result<Response, ScimError> {
    let groups = state.store.grants(&person.id).await?.groups;
    Ok(scim_json(status, user_resource(person, &groups)))
}

/// A boolean as directories send it (`true`, `"True"`, `"false"`).
fn as_bool(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(bad("`active` must be true or false")),
    }
}

fn as_text(value: &Value, field: &str) -> Result<String, ScimError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("`{field}` must be a string")))
}

/// The user attributes Civitas keeps, read from a SCIM User.
#[derive(Debug, Default)]
struct UserFields {
    user_name: Option<String>,
    display_name: Option<String>,
    external_id: Option<String>,
    active: Option<bool>,
}

impl UserFields {
    fn from_resource(body: &Value) -> Result<UserFields, ScimError> {
        let object = body
            .as_object()
            .ok_or_else(|| bad("the body must be a JSON object"))?;
        let mut fields = UserFields::default();
        for (name, value) in object {
            fields.apply(name, value)?;
        }
        if fields.display_name.is_none() {
            let name = &body["name"];
            let joined = [name["givenName"].as_str(), name["familyName"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if !joined.trim().is_empty() {
                fields.display_name = Some(joined);
            }
        }
        if fields.user_name.as_deref().is_none_or(|name| !name.contains('@')) {
            let primary = body["emails"]
                .as_array()
                .and_then(|emails| {
                    emails
                        .iter()
                        .find(|email| email["primary"] == json!(true))
                        .or_else(|| emails.first())
                })
                .and_then(|email| email["value"].as_str());
            if let Some(email) = primary {
                fields.user_name = Some(email.to_owned());
            }
        }
        Ok(fields)
    }

    /// Applies one attribute (case-insensitive, as SCIM requires).
    fn apply(&mut self, name: &str, value: &Value) -> Result<(), ScimError> {
        match name.to_ascii_lowercase().as_str() {
            "username" => self.user_name = Some(as_text(value, "userName")?),
            "displayname" | "name.formatted" => self.display_name = Some(as_text(value, "displayName")?),
            "externalid" => self.external_id = Some(as_text(value, "externalId")?),
            "active" => self.active = Some(as_bool(value)?),
            "name" => {
                if let Some(formatted) = value.get("formatted").and_then(Value::as_str) {
                    self.display_name = Some(formatted.to_owned());
                }
            }
            // Attributes Civitas does not keep are accepted and ignored.
            _ => {}
        }
        Ok(())
    }
}

fn status_of(active: Option<bool>) -> Option<String> {
    active.map(|active| if active { "active" } else { "disabled" }.to_owned())
}

/// Applies `fields` to an existing person; ends their sessions on deactivation.
async fn update_user(
    state: &AppState,
    scim: &ScimAgency,
    person: &Person,
    fields: UserFields,
) -> Result<Person, ScimError> {
    let email = match fields.user_name {
        Some(name) => Some(provision::normalize_email(&name).map_err(|error| bad(error.to_string()))?),
        None => None,
    };
    if let Some(name) = &fields.display_name {
        provision::check_name("displayName", name).map_err(|error| bad(error.to_string()))?;
    }
    let deactivating = fields.active == Some(false);
    let updated = state
        .store
        .update_person(
            &scim.agency_id,
            &person.id,
            PersonUpdate {
                display_name: fields.display_name,
                status: status_of(fields.active),
                email,
                external_id: fields.external_id,
            },
        )
        .await?;
    if deactivating {
        state
            .store
            .revoke_sessions_of(&person.id, civitas_store::now())
            .await?;
    }
    tracing::info!(person_id = %person.id, agency = %scim.agency_slug, status = %updated.status, "SCIM user updated");
    Ok(updated)
}

#[utoipa::path(get, path = "/scim/v2/Users", operation_id = "scimListUsers", tag = "scim",
    summary = "SCIM: list or filter the agency's users",
    params(ListQuery),
    responses((status = 200, description = "SCIM ListResponse of User", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    scim: ScimAgency,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let filter = filter_on(
        &query,
        "users",
        &[
            "username",
            "emails.value",
            "emails",
            "externalid",
            "id",
            "displayname",
        ],
    )?;
    let people = state.store.list_people(&scim.agency_id).await?;
    // Groups per person from one pass over the agency's groups, not one
    // query per person.
    let mut groups_of: std::collections::HashMap<String, Vec<Group>> = std::collections::HashMap::new();
    for group in state.store.list_groups(&scim.agency_id).await? {
        for member in state.store.group_members(&scim.agency_id, &group.id).await? {
            groups_of.entry(member.id).or_default().push(group.clone());
        }
    }
    let resources = people
        .iter()
        .filter(|person| person.kind == "person")
        .filter(|person| match &filter {
            None => true,
            Some((attribute, value)) => match attribute.as_str() {
                "externalid" => person.external_id.as_deref() == Some(value.as_str()),
                "id" => person.id == *value,
                "displayname" => person.display_name == *value,
                _ => person.email.eq_ignore_ascii_case(value),
            },
        })
        .map(|person| {
            user_resource(
                person,
                groups_of.get(&person.id).map(Vec::as_slice).unwrap_or_default(),
            )
        })
        .collect();
    Ok(list_response(&query, resources))
}

#[utoipa::path(post, path = "/scim/v2/Users", operation_id = "scimCreateUser", tag = "scim",
    summary = "SCIM: create a user (a person who signs in through the agency's SSO)",
    responses((status = 201, description = "SCIM User", content_type = "application/scim+json"),
        (status = 409, description = "SCIM error, scimType uniqueness", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    scim: ScimAgency,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let fields = UserFields::from_resource(&body)?;
    let email = fields
        .user_name
        .clone()
        .ok_or_else(|| bad("`userName` (an e-mail address) is required"))?;
    let display_name = fields.display_name.clone().unwrap_or_else(|| email.clone());
    let person = provision::create_person(
        state.store.as_ref(),
        PersonRequest {
            agency_id: scim.agency_id.clone(),
            email,
            display_name,
            kind: "person".to_owned(),
            status: status_of(fields.active).unwrap_or_else(|| "active".to_owned()),
            external_id: fields.external_id,
            password: None,
        },
    )
    .await?;
    state
        .store
        .set_roles(&person.id, &scim.agency_id, &["member".to_owned()])
        .await?;
    tracing::info!(person_id = %person.id, agency = %scim.agency_slug, "SCIM user created");
    user_answer(&state, &person, StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/scim/v2/Users/{id}", operation_id = "scimGetUser", tag = "scim",
    summary = "SCIM: one user",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM User", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let person = person_in(&state, &scim, &id).await?;
    user_answer(&state, &person, StatusCode::OK).await
}

#[utoipa::path(put, path = "/scim/v2/Users/{id}", operation_id = "scimReplaceUser", tag = "scim",
    summary = "SCIM: replace a user's attributes",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM User", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn replace_user(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let person = person_in(&state, &scim, &id).await?;
    let mut fields = UserFields::from_resource(&body)?;
    // A replacement without `active` means active (SCIM's default).
    fields.active = Some(fields.active.unwrap_or(true));
    let updated = update_user(&state, &scim, &person, fields).await?;
    user_answer(&state, &updated, StatusCode::OK).await
}

/// The operations of a SCIM PATCH request.
fn operations(body: &Value) -> Result<&Vec<Value>, ScimError> {
    body.get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a PATCH needs `Operations`"))
}

fn op_name(operation: &Value) -> Result<String, ScimError> {
    let name = operation["op"]
        .as_str()
        .ok_or_else(|| bad("each operation needs `op`"))?;
    let name = name.to_ascii_lowercase();
    if !matches!(name.as_str(), "add" | "replace" | "remove") {
        return Err(bad(format!("unknown operation `{name}`")));
    }
    Ok(name)
}

#[utoipa::path(patch, path = "/scim/v2/Users/{id}", operation_id = "scimPatchUser", tag = "scim",
    summary = "SCIM: change some attributes of a user (e.g. `active: false` to deactivate)",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM User", content_type = "application/scim+json"),
        (status = 400, description = "SCIM error", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn patch_user(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let person = person_in(&state, &scim, &id).await?;
    let mut fields = UserFields::default();
    for operation in operations(&body)? {
        if op_name(operation)? == "remove" {
            return Err(bad(
                "removing user attributes is not supported; set `active` to false instead",
            ));
        }
        match operation["path"].as_str() {
            Some(path) => fields.apply(path, &operation["value"])?,
            None => {
                let values: &Map<String, Value> = operation["value"]
                    .as_object()
                    .ok_or_else(|| bad("an operation without `path` needs an object `value`"))?;
                for (name, value) in values {
                    fields.apply(name, value)?;
                }
            }
        }
    }
    let updated = update_user(&state, &scim, &person, fields).await?;
    user_answer(&state, &updated, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/scim/v2/Users/{id}", operation_id = "scimDeleteUser", tag = "scim",
    summary = "SCIM: deprovision a user; the record is kept (disabled) for audit",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deactivated"), (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let person = person_in(&state, &scim, &id).await?;
    let fields = UserFields {
        active: Some(false),
        ..UserFields::default()
    };
    update_user(&state, &scim, &person, fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_in(state: &AppState, scim: &ScimAgency, id: &str) -> Result<Group, ScimError> {
    state
        .store
        .get_group(&scim.agency_id, id)
        .await?
        .ok_or_else(|| not_found("group", id))
}

async fn group_answer(
    state: &AppState,
    scim: &ScimAgency,
    group: &Group,
    status: StatusCode,
) -> Result<Response, ScimError> {
    let members = state.store.group_members(&scim.agency_id, &group.id).await?;
    Ok(scim_json(status, group_resource(group, &members)))
}

fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let members = match value {
        Value::Array(members) => members.clone(),
        Value::Object(_) => vec![value.clone()],
        Value::Null => Vec::new(),
        _ => return Err(bad("`members` must be a list of {\"value\": id}")),
    };
    members
        .iter()
        .map(|member| {
            member["value"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad("each member needs `value`, a user id"))
        })
        .collect()
}

async fn set_members(
    state: &AppState,
    scim: &ScimAgency,
    group: &Group,
    ids: &[String],
) -> Result<(), ScimError> {
    state
        .store
        .set_group_members(&scim.agency_id, &group.id, ids)
        .await
        .map_err(|error| match error {
            StoreError::Invalid(message) => bad(message),
            other => other.into(),
        })
}

#[utoipa::path(get, path = "/scim/v2/Groups", operation_id = "scimListGroups", tag = "scim",
    summary = "SCIM: list or filter the agency's groups",
    params(ListQuery),
    responses((status = 200, description = "SCIM ListResponse of Group", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn list_groups(
    State(state): State<AppState>,
    scim: ScimAgency,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let filter = filter_on(&query, "groups", &["displayname", "externalid", "id"])?;
    let groups = state.store.list_groups(&scim.agency_id).await?;
    let mut resources = Vec::new();
    for group in &groups {
        let keep = match &filter {
            None => true,
            Some((attribute, value)) => match attribute.as_str() {
                "externalid" => group.external_id.as_deref() == Some(value.as_str()),
                "id" => group.id == *value,
                _ => group.name == *value,
            },
        };
        if keep {
            let members = state.store.group_members(&scim.agency_id, &group.id).await?;
            resources.push(group_resource(group, &members));
        }
    }
    Ok(list_response(&query, resources))
}

#[utoipa::path(post, path = "/scim/v2/Groups", operation_id = "scimCreateGroup", tag = "scim",
    summary = "SCIM: create a group (it may use no model until a model manager allows some)",
    responses((status = 201, description = "SCIM Group", content_type = "application/scim+json"),
        (status = 409, description = "SCIM error, scimType uniqueness", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn create_group(
    State(state): State<AppState>,
    scim: ScimAgency,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let name = body["displayName"]
        .as_str()
        .ok_or_else(|| bad("`displayName` is required"))?;
    provision::check_name("displayName", name).map_err(|error| bad(error.to_string()))?;
    let members = member_ids(&body["members"])?;
    let group = state
        .store
        .create_group(&scim.agency_id, name.trim(), body["externalId"].as_str())
        .await?;
    if let Err(error) = set_members(&state, &scim, &group, &members).await {
        // Nothing half-made: a group whose members were refused is removed.
        state.store.delete_group(&scim.agency_id, &group.id).await?;
        return Err(error);
    }
    tracing::info!(group_id = %group.id, agency = %scim.agency_slug, "SCIM group created");
    group_answer(&state, &scim, &group, StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/scim/v2/Groups/{id}", operation_id = "scimGetGroup", tag = "scim",
    summary = "SCIM: one group with its members",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM Group", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn get_group(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let group = group_in(&state, &scim, &id).await?;
    group_answer(&state, &scim, &group, StatusCode::OK).await
}

#[utoipa::path(put, path = "/scim/v2/Groups/{id}", operation_id = "scimReplaceGroup", tag = "scim",
    summary = "SCIM: replace a group's name and members",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM Group", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn replace_group(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let group = group_in(&state, &scim, &id).await?;
    let members = member_ids(&body["members"])?;
    let name = body["displayName"].as_str();
    if let Some(name) = name {
        provision::check_name("displayName", name).map_err(|error| bad(error.to_string()))?;
    }
    set_members(&state, &scim, &group, &members).await?;
    let group = state
        .store
        .update_group(
            &scim.agency_id,
            &group.id,
            name.map(str::trim),
            body["externalId"].as_str(),
        )
        .await?;
    group_answer(&state, &scim, &group, StatusCode::OK).await
}

/// `members[value eq "ID"]` → `ID`.
fn member_in_path(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[")?.strip_suffix(']')?;
    parse_filter(inner)
        .ok()
        .filter(|(attribute, _)| attribute == "value")
        .map(|(_, value)| value)
}

#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", operation_id = "scimPatchGroup", tag = "scim",
    summary = "SCIM: add or remove members, rename",
    params(("id" = String, Path)),
    responses((status = 200, description = "SCIM Group", content_type = "application/scim+json"),
        (status = 400, description = "SCIM error", content_type = "application/scim+json"),
        (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn patch_group(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ScimError> {
    let group = group_in(&state, &scim, &id).await?;
    let mut members: Vec<String> = state
        .store
        .group_members(&scim.agency_id, &group.id)
        .await?
        .into_iter()
        .map(|person| person.id)
        .collect();
    let mut name: Option<String> = None;
    let mut external_id: Option<String> = None;
    for operation in operations(&body)? {
        let op = op_name(operation)?;
        let path = operation["path"].as_str().map(str::to_owned);
        let value = &operation["value"];
        match (op.as_str(), path.as_deref()) {
            ("add", Some(path)) if path.eq_ignore_ascii_case("members") => {
                for id in member_ids(value)? {
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
            }
            ("replace", Some(path)) if path.eq_ignore_ascii_case("members") => members = member_ids(value)?,
            ("remove", Some(path)) if path.eq_ignore_ascii_case("members") => {
                let removed = member_ids(value)?;
                if removed.is_empty() {
                    members.clear();
                } else {
                    members.retain(|id| !removed.contains(id));
                }
            }
            ("remove", Some(path)) if member_in_path(path).is_some() => {
                let removed = member_in_path(path).unwrap_or_default();
                members.retain(|id| *id != removed);
            }
            ("add" | "replace", Some(path)) if path.eq_ignore_ascii_case("displayName") => {
                name = Some(as_text(value, "displayName")?);
            }
            ("add" | "replace", Some(path)) if path.eq_ignore_ascii_case("externalId") => {
                external_id = Some(as_text(value, "externalId")?);
            }
            ("add" | "replace", None) => {
                let values = value
                    .as_object()
                    .ok_or_else(|| bad("an operation without `path` needs an object `value`"))?;
                for (key, value) in values {
                    match key.to_ascii_lowercase().as_str() {
                        "displayname" => name = Some(as_text(value, "displayName")?),
                        "externalid" => external_id = Some(as_text(value, "externalId")?),
                        "members" => {
                            let ids = member_ids(value)?;
                            if op == "replace" {
                                members = ids;
                            } else {
                                members.extend(
                                    ids.into_iter()
                                        .filter(|id| !members.contains(id))
                                        .collect::<Vec<_>>(),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                return Err(bad(format!(
                    "unsupported operation `{op}` on `{}`",
                    path.unwrap_or_default()
                )))
            }
        }
    }
    if let Some(name) = &name {
        provision::check_name("displayName", name).map_err(|error| bad(error.to_string()))?;
    }
    set_members(&state, &scim, &group, &members).await?;
    let group = if name.is_some() || external_id.is_some() {
        state
            .store
            .update_group(
                &scim.agency_id,
                &group.id,
                name.as_deref().map(str::trim),
                external_id.as_deref(),
            )
            .await?
    } else {
        group
    };
    tracing::info!(group_id = %group.id, agency = %scim.agency_slug, "SCIM group changed");
    group_answer(&state, &scim, &group, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", operation_id = "scimDeleteGroup", tag = "scim",
    summary = "SCIM: delete a group (its members stay)",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "SCIM error", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn delete_group(
    State(state): State<AppState>,
    scim: ScimAgency,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    if !state.store.delete_group(&scim.agency_id, &id).await? {
        return Err(not_found("group", &id));
    }
    tracing::info!(group_id = %id, agency = %scim.agency_slug, "SCIM group deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", operation_id = "scimServiceProviderConfig", tag = "scim",
    summary = "SCIM: what this service provider supports",
    responses((status = 200, description = "SCIM ServiceProviderConfig", content_type = "application/scim+json")),
    security(("bearer" = [])))]
pub async fn service_provider_config(_scim: ScimAgency) -> Response {
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_COUNT},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The agency's SCIM token",
                "primary": true,
            }],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_parsed_or_refused() {
        assert_eq!(
            parse_filter(r#"userName eq "Jeanne@Example.gov""#).unwrap(),
            ("username".to_owned(), "Jeanne@Example.gov".to_owned())
        );
        assert_eq!(
            parse_filter(r#"displayName EQ "Équipe \"A\"""#).unwrap().1,
            "Équipe \"A\""
        );
        for bad in ["userName", r#"userName co "x""#, "userName eq x", ""] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            member_in_path(r#"members[value eq "abc"]"#).as_deref(),
            Some("abc")
        );
        assert_eq!(member_in_path("members"), None);
    }

    #[test]
    fn directory_booleans_and_names_are_understood() {
        assert!(!as_bool(&json!("False")).unwrap());
        assert!(as_bool(&json!(true)).unwrap());
        assert!(as_bool(&json!(1)).is_err());
        let fields = UserFields::from_resource(&json!({
            "userName": "jdupont",
            "name": {"givenName": "Jeanne", "familyName": "Dupont"},
            "emails": [{"value": "other@example.gov"}, {"value": "jeanne@example.gov", "primary": true}],
            "active": "True",
        }))
        .unwrap();
        assert_eq!(fields.user_name.as_deref(), Some("jeanne@example.gov"));
        assert_eq!(fields.display_name.as_deref(), Some("Jeanne Dupont"));
        assert_eq!(fields.active, Some(true));
    }
}
