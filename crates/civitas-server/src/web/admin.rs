//! Administration pages for an agency: people (with roles and groups),
//! pending approvals, groups and the models each may use, limits and
//! budgets, keys, the rules of behaviour, and the usage dashboard.
//!
//! Every change goes through the administration API's own handlers
//! (`routes::admin`), so the pages and the API share one set of checks;
//! a refusal is shown next to the field it concerns. Authorization is the
//! API's: [`AgencyAccess`] with the permission each page needs, and an
//! agency the person may not see answers like a missing one.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use civitas_audit::Action;
use civitas_identity::{policy, Principal, Role};
use civitas_store::{Agency, AgencyRules, Limits, UsageOwner};
use civitas_types::ErrorCode;
use serde::Deserialize;

use super::chat::NoticePage;
use super::i18n::{negotiate, Texts};
use super::{language, page, signed_in, Shell};
use crate::auth::{
    AgencyAccess, ManageKeys, ManageLimits, ManageModels, ManagePeople, Permission, ReadAgency, ReadKeys,
    ReadUsage,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::admin as api;
use crate::state::AppState;

/// Errors shown next to their fields, by field name.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    pub fn one(field: &str, message: String) -> FieldErrors {
        FieldErrors([(field.to_owned(), message)].into_iter().collect())
    }

    pub fn insert(&mut self, field: String, message: String) {
        self.0.insert(field, message);
    }

    fn remove(&mut self, field: &str) -> Option<String> {
        self.0.remove(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` has an error.
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The error of `field`.
    pub fn of(&self, field: &str) -> Option<&String> {
        self.0.get(field)
    }
}

/// The frame of every administration page.
pub struct AdminFrame {
    pub agency: Agency,
    /// Which entry of the side navigation is this page.
    pub section: &'static str,
    /// Agencies this person administers (to switch between them).
    pub agencies: Vec<(String, String)>,
    /// What was just done, announced at the top.
    pub done: Option<String>,
}

/// One text field of a form.
pub struct FormField {
    pub name: &'static str,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
    pub required: bool,
    pub hint: Option<String>,
}

impl FormField {
    fn text(name: &'static str, label: String, value: &str) -> FormField {
        FormField {
            name,
            label,
            kind: "text",
            value: value.to_owned(),
            autocomplete: "off",
            required: false,
            hint: None,
        }
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Runs a change of the administration API for `principal`, recorded in
/// the audit log (see [`crate::audit::acting`]) with the API route it
/// stands for, the path it acts on and what it asks.
async fn as_change<T, E>(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    action: Action,
    what: &str,
    (route, path, asked): (&str, String, serde_json::Value),
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut details = serde_json::json!({ "via": "workspace", "change": what, "route": route });
    // The same before and after as a change made through the API.
    if let Some(details) = details.as_object_mut() {
        details.extend(crate::audit::change_details(state, route, &path, Some(asked)).await);
    }
    crate::audit::acting(state, principal, headers, action, Some(path), details, change).await
}

/// The signed-in person of an administration page, with the language.
async fn admin_person(
    state: &AppState,
    headers: &HeaderMap,
    safe: bool,
    csrf: &str,
) -> Result<Principal, Response> {
    signed_in(state, headers, safe, csrf)
        .await
        .ok_or_else(|| Redirect::to("/sign-in").into_response())
}

/// The page for a refusal: 404 for an agency out of reach, else 403.
pub fn refused(state: &AppState, t: Texts, principal: &Principal, error: &ApiError) -> Response {
    let (status, heading, text) = if error.code == ErrorCode::NotFound {
        (
            StatusCode::NOT_FOUND,
            t.get("not-found-title"),
            t.get("admin-not-found"),
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            t.get("admin-forbidden-title"),
            t.get("admin-forbidden"),
        )
    };
    let notice = NoticePage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        heading,
        text,
    };
    page(status, &notice, HeaderMap::new())
}

/// `P` on `agency_id`, or the refusal page.
async fn access<P: Permission>(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency_id: &str,
) -> Result<AgencyAccess<P>, Response> {
    AgencyAccess::<P>::check(state, principal.clone(), agency_id)
        .await
        .map_err(|error| refused(state, t, principal, &error))
}

pub(super) async fn frame(
    state: &AppState,
    principal: &Principal,
    agency: Agency,
    section: &'static str,
    done: Option<String>,
) -> AdminFrame {
    let mut agencies: Vec<(String, String)> = match api::list_agencies(
        State(state.clone()),
        crate::auth::Authenticated(principal.clone()),
    )
    .await
    {
        Ok(Json(list)) => list
            .data
            .into_iter()
            .map(|agency| (agency.id, agency.name))
            .collect(),
        Err(_) => Vec::new(),
    };
    agencies.sort_by(|a, b| a.1.cmp(&b.1));
    AdminFrame {
        agency,
        section,
        agencies,
        done,
    }
}

/// An API refusal as an error next to a field (localized where the case
/// is known; the API's own words otherwise).
fn field_error(t: Texts, error: &ApiError, default_field: &str) -> FieldErrors {
    let field = error.param.clone().unwrap_or_else(|| default_field.to_owned());
    let message = match (error.code, field.as_str()) {
        (ErrorCode::Conflict, "email") => t.get("admin-error-email-taken"),
        (ErrorCode::Conflict, _) => t.get("admin-error-name-taken"),
        (ErrorCode::WeakPassword, _) => t.with("admin-error-weak-password", &[("detail", &error.message)]),
        (ErrorCode::InvalidParameter, "email") => t.get("admin-error-email"),
        (ErrorCode::InvalidParameter, "name" | "display_name") => t.get("admin-error-name"),
        (ErrorCode::PermissionDenied, _) => t.get("admin-error-role"),
        _ => error.message.clone(),
    };
    let field = if field == "display_name" {
        "name"
    } else {
        field.as_str()
    };
    FieldErrors::one(field, message)
}

/// The language, the signed-in person and their permission `P` on the
/// agency of a page being read.
pub(super) async fn viewing<P: Permission>(
    state: &AppState,
    headers: &HeaderMap,
    query: &AdminQuery,
    agency_id: &str,
) -> Result<(Texts, Principal, AgencyAccess<P>), Response> {
    let t = language(headers, query.lang.as_deref());
    let principal = admin_person(state, headers, true, "").await?;
    let granted = access::<P>(state, t, &principal, agency_id).await?;
    Ok((t, principal, granted))
}

/// The same for a form that changes something (its CSRF token checked).
pub(super) async fn changing<P: Permission>(
    state: &AppState,
    headers: &HeaderMap,
    fields: &Fields,
    agency_id: &str,
) -> Result<(Texts, Principal, AgencyAccess<P>), Response> {
    let t = negotiate(headers);
    let principal = admin_person(state, headers, false, field(fields, "csrf_token")).await?;
    let granted = access::<P>(state, t, &principal, agency_id).await?;
    Ok((t, principal, granted))
}

#[derive(Debug, Deserialize)]
pub struct AdminQuery {
    lang: Option<String>,
    done: Option<String>,
    days: Option<u32>,
    /// The conversation opened under break-glass access.
    pub conversation: Option<String>,
}

impl AdminQuery {
    /// The localized text of what was just done.
    pub(super) fn done(&self, t: Texts) -> Option<String> {
        let id = match self.done.as_deref()? {
            "person-created" => "admin-done-person-created",
            "person-updated" => "admin-done-person-updated",
            "group-created" => "admin-done-group-created",
            "models-saved" => "admin-done-models-saved",
            "limits-saved" => "admin-done-limits-saved",
            "key-revoked" => "admin-done-key-revoked",
            "rules-saved" => "admin-done-rules-saved",
            "signed-out" => "admin-done-signed-out",
            "access-requested" => "admin-done-access-requested",
            "access-opened" => "admin-done-access-opened",
            "access-approved" => "admin-done-access-approved",
            "access-refused" => "admin-done-access-refused",
            "retention-saved" => "admin-done-retention-saved",
            "hold-placed" => "admin-done-hold-placed",
            "hold-released" => "admin-done-hold-released",
            "clearance-saved" => "admin-done-clearance-saved",
            "key-rotated" => "admin-done-key-rotated",
            _ => return None,
        };
        Some(t.get(id))
    }
}

/// `/admin`: the person's own agency.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(principal) = signed_in(&state, &headers, true, "").await else {
        return Redirect::to("/sign-in").into_response();
    };
    Redirect::to(&format!("/admin/agencies/{}", principal.agency_id())).into_response()
}

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    people: usize,
    pending: usize,
    groups: usize,
}

pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let people = state.store.list_people(&agency_id).await.unwrap_or_default();
    let groups = state.store.list_groups(&agency_id).await.unwrap_or_default();
    let overview = OverviewPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        pending: people.iter().filter(|person| person.status == "pending").count(),
        people: people.len(),
        groups: groups.len(),
        frame: frame(&state, &principal, granted.agency, "overview", query.done(t)).await,
    };
    page(StatusCode::OK, &overview, HeaderMap::new())
}

pub struct PersonRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub status: String,
    pub status_label: String,
    pub groups: String,
}

#[derive(Default)]
pub struct PersonDraft {
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub group_ids: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_people.html")]
struct PeoplePage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    people: Vec<PersonRow>,
    pending_only: bool,
    groups: Vec<Choice>,
    roles: Vec<Choice>,
    fields: Vec<FormField>,
    errors: FieldErrors,
    can_manage: bool,
}

fn status_label(t: Texts, status: &str) -> String {
    match status {
        "active" => t.get("status-active"),
        "pending" => t.get("status-pending"),
        "disabled" => t.get("status-disabled"),
        other => other.to_owned(),
    }
}

fn role_label(t: Texts, role: Role) -> String {
    t.get(&format!("role-{}", role.as_str()))
}

/// Roles `principal` may grant, as choices.
fn role_choices(t: Texts, principal: &Principal, held: &[String]) -> Vec<Choice> {
    Role::ALL
        .into_iter()
        .filter(|role| policy::may_grant(principal, *role))
        .map(|role| Choice {
            value: role.as_str().to_owned(),
            label: role_label(t, role),
            selected: held.iter().any(|name| name == role.as_str()),
        })
        .collect()
}

#[allow(clippy::too_many_arguments, reason = "the page's parts, one value each")]
async fn people_page(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency: Agency,
    pending_only: bool,
    draft: PersonDraft,
    errors: FieldErrors,
    done: Option<String>,
) -> Response {
    let mut draft = draft;
    if draft.roles.is_empty() {
        draft.roles.push("member".to_owned());
    }
    let people = state.store.list_people(&agency.id).await.unwrap_or_default();
    let groups = state.store.list_groups(&agency.id).await.unwrap_or_default();
    let mut names_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in &groups {
        for member in state
            .store
            .group_members(&agency.id, &group.id)
            .await
            .unwrap_or_default()
        {
            names_of.entry(member.id).or_default().push(group.name.clone());
        }
    }
    let rows = people
        .into_iter()
        .filter(|person| !pending_only || person.status == "pending")
        .map(|person| PersonRow {
            groups: names_of
                .get(&person.id)
                .map(|names| names.join(", "))
                .unwrap_or_default(),
            status_label: status_label(t, &person.status),
            id: person.id,
            name: person.display_name,
            email: person.email,
            status: person.status,
        })
        .collect();
    let can_manage = policy::authorize_agency(
        principal,
        &state.store.agency_ancestors(&agency.id).await.unwrap_or_default(),
        policy::PEOPLE_MANAGERS,
    )
    .is_ok();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let section = if pending_only { "approvals" } else { "people" };
    let people_page = PeoplePage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        groups: groups
            .into_iter()
            .map(|group| Choice {
                selected: draft.group_ids.contains(&group.id),
                value: group.id,
                label: group.name,
            })
            .collect(),
        roles: role_choices(t, principal, &draft.roles),
        frame: frame(state, principal, agency, section, done).await,
        people: rows,
        pending_only,
        fields: vec![
            FormField {
                kind: "email",
                required: true,
                ..FormField::text("email", t.get("email-label"), &draft.email)
            },
            FormField {
                required: true,
                ..FormField::text("name", t.get("admin-name"), &draft.name)
            },
            FormField {
                kind: "password",
                autocomplete: "new-password",
                hint: Some(t.get("admin-initial-password-hint")),
                ..FormField::text("password", t.get("admin-initial-password"), "")
            },
        ],
        errors,
        can_manage,
    };
    page(status, &people_page, HeaderMap::new())
}

pub async fn people(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let done = query.done(t);
    people_page(
        &state,
        t,
        &principal,
        granted.agency,
        false,
        PersonDraft::default(),
        FieldErrors::new(),
        done,
    )
    .await
}

pub async fn approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let done = query.done(t);
    people_page(
        &state,
        t,
        &principal,
        granted.agency,
        true,
        PersonDraft::default(),
        FieldErrors::new(),
        done,
    )
    .await
}

/// A form whose fields may repeat (checkboxes), read in order.
pub type Fields = Vec<(String, String)>;

pub(super) fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or("")
}

fn all(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .collect()
}

pub async fn create_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManagePeople>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let agency = granted.agency.clone();
    let password = Some(field(&fields, "password").to_owned()).filter(|password| !password.is_empty());
    let body = api::CreatePerson {
        email: field(&fields, "email").trim().to_owned(),
        display_name: field(&fields, "name").to_owned(),
        kind: None,
        status: Some("active".to_owned()),
        password,
        group_ids: all(&fields, "group_ids"),
        roles: Some(all(&fields, "roles")).filter(|roles| !roles.is_empty()),
    };
    match as_change(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        "create_person",
        (
            "/api/admin/agencies/{agency_id}/people",
            format!("/api/admin/agencies/{agency_id}/people"),
            serde_json::json!({ "email": body.email, "display_name": body.display_name, "roles": body.roles, "group_ids": body.group_ids }),
        ),
        api::create_person(State(state.clone()), granted, ApiJson(body)),
    )
    .await
    {
        Ok(_) => {
            Redirect::to(&format!("/admin/agencies/{agency_id}/people?done=person-created")).into_response()
        }
        Err(error) => {
            let draft = PersonDraft {
                email: field(&fields, "email").to_owned(),
                name: field(&fields, "name").to_owned(),
                roles: all(&fields, "roles"),
                group_ids: all(&fields, "group_ids"),
            };
            let errors = field_error(t, &error, "email");
            people_page(&state, t, &principal, agency, false, draft, errors, None).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_person.html")]
struct PersonPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    person: PersonRow,
    roles: Vec<Choice>,
    groups: Vec<Choice>,
    errors: FieldErrors,
    myself: bool,
}

async fn person_page(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency: Agency,
    person_id: &str,
    errors: FieldErrors,
    done: Option<String>,
) -> Response {
    let person = match state.store.get_person(person_id).await {
        Ok(Some(person)) if person.agency_id == agency.id => person,
        _ => return refused(state, t, principal, &ApiError::new(ErrorCode::NotFound, "person")),
    };
    let grants = state.store.grants(&person.id).await.unwrap_or_default();
    let held: Vec<String> = grants
        .roles
        .iter()
        .filter(|grant| grant.agency_id == agency.id)
        .map(|grant| grant.role.clone())
        .collect();
    let groups = state.store.list_groups(&agency.id).await.unwrap_or_default();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let person_page = PersonPage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        roles: role_choices(t, principal, &held),
        groups: groups
            .into_iter()
            .map(|group| Choice {
                selected: grants.groups.iter().any(|member| member.id == group.id),
                value: group.id,
                label: group.name,
            })
            .collect(),
        myself: person.id == principal.id(),
        person: PersonRow {
            status_label: status_label(t, &person.status),
            id: person.id,
            name: person.display_name,
            email: person.email,
            status: person.status,
            groups: String::new(),
        },
        frame: frame(state, principal, agency, "people", done).await,
        errors,
    };
    page(status, &person_page, HeaderMap::new())
}

pub async fn person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, person_id)): Path<(String, String)>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let done = query.done(t);
    person_page(
        &state,
        t,
        &principal,
        granted.agency,
        &person_id,
        FieldErrors::new(),
        done,
    )
    .await
}

/// One change to a person: `what` is `status`, `roles`, `groups` or
/// `sign-out`.
pub async fn change_person(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, person_id, what)): Path<(String, String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManagePeople>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let agency = granted.agency.clone();
    let path = Path((agency_id.clone(), person_id.clone()));
    let (action, field_name, done) = match what.as_str() {
        "status" => (Action::AdminChange, "status", "person-updated"),
        "roles" => (Action::AdminChange, "roles", "person-updated"),
        "groups" => (Action::AdminChange, "groups", "person-updated"),
        "sign-out" => (Action::SessionsRevoked, "sessions", "signed-out"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let change = async {
        let state = State(state.clone());
        match what.as_str() {
            "status" => {
                let body = api::UpdatePerson {
                    display_name: None,
                    status: Some(field(&fields, "status").to_owned()),
                };
                api::update_person(state, granted, path, ApiJson(body))
                    .await
                    .map(|_| ())
            }
            "roles" => {
                let body = api::PersonRoles {
                    roles: all(&fields, "roles"),
                };
                api::set_person_roles(state, granted, path, ApiJson(body))
                    .await
                    .map(|_| ())
            }
            "groups" => {
                let body = api::PersonGroups {
                    group_ids: all(&fields, "group_ids"),
                };
                api::set_person_groups(state, granted, path, ApiJson(body))
                    .await
                    .map(|_| ())
            }
            _ => api::revoke_person_sessions(state, granted, path)
                .await
                .map(|_| ()),
        }
    };
    let (route, asked) = match what.as_str() {
        "status" => (
            "/api/admin/agencies/{agency_id}/people/{person_id}",
            serde_json::json!({ "status": field(&fields, "status") }),
        ),
        "roles" => (
            "/api/admin/agencies/{agency_id}/people/{person_id}/roles",
            serde_json::json!({ "roles": all(&fields, "roles") }),
        ),
        "groups" => (
            "/api/admin/agencies/{agency_id}/people/{person_id}/groups",
            serde_json::json!({ "group_ids": all(&fields, "group_ids") }),
        ),
        _ => (
            "/api/admin/agencies/{agency_id}/people/{person_id}/sessions",
            serde_json::Value::Null,
        ),
    };
    let concrete = route
        .replace("{agency_id}", &agency_id)
        .replace("{person_id}", &person_id);
    let result = as_change(
        &state,
        &principal,
        &headers,
        action,
        &what,
        (route, concrete, asked),
        change,
    )
    .await;
    match result {
        Ok(()) => {
            // Approving from the approvals list returns there.
            let back = field(&fields, "back");
            let target = if back == "approvals" {
                format!("/admin/agencies/{agency_id}/approvals?done={done}")
            } else {
                format!("/admin/agencies/{agency_id}/people/{person_id}?done={done}")
            };
            Redirect::to(&target).into_response()
        }
        Err(error) if error.code == ErrorCode::NotFound => refused(&state, t, &principal, &error),
        Err(error) => {
            let mut errors = field_error(t, &error, field_name);
            if let Some(message) = errors.remove("group_ids") {
                errors.insert("groups".to_owned(), message);
            }
            person_page(&state, t, &principal, agency, &person_id, errors, None).await
        }
    }
}

pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub models: String,
}

#[derive(Template)]
#[template(path = "admin_groups.html")]
struct GroupsPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    groups: Vec<GroupRow>,
    name: String,
    errors: FieldErrors,
}

fn models_label(t: Texts, models: &[String]) -> String {
    if models.iter().any(|model| model == "*") {
        t.get("models-all")
    } else if models.is_empty() {
        t.get("models-none")
    } else {
        models.join(", ")
    }
}

async fn groups_page(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency: Agency,
    name: String,
    errors: FieldErrors,
    done: Option<String>,
) -> Response {
    let groups = state.store.list_groups(&agency.id).await.unwrap_or_default();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let groups_page = GroupsPage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        groups: groups
            .into_iter()
            .map(|group| GroupRow {
                models: models_label(t, &group.models),
                id: group.id,
                name: group.name,
            })
            .collect(),
        frame: frame(state, principal, agency, "groups", done).await,
        name,
        errors,
    };
    page(status, &groups_page, HeaderMap::new())
}

pub async fn groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let done = query.done(t);
    groups_page(
        &state,
        t,
        &principal,
        granted.agency,
        String::new(),
        FieldErrors::new(),
        done,
    )
    .await
}

pub async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManagePeople>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let agency = granted.agency.clone();
    let body = api::CreateGroup {
        name: field(&fields, "name").to_owned(),
        external_id: None,
    };
    match as_change(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        "create_group",
        (
            "/api/admin/agencies/{agency_id}/groups",
            format!("/api/admin/agencies/{agency_id}/groups"),
            serde_json::json!({ "name": body.name }),
        ),
        api::create_group(State(state.clone()), granted, ApiJson(body)),
    )
    .await
    {
        Ok((_, Json(group))) => Redirect::to(&format!(
            "/admin/agencies/{agency_id}/groups/{}?done=group-created",
            group.id
        ))
        .into_response(),
        Err(error) => {
            let errors = field_error(t, &error, "name");
            groups_page(
                &state,
                t,
                &principal,
                agency,
                field(&fields, "name").to_owned(),
                errors,
                None,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_group.html")]
struct GroupPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    group: GroupRow,
    every: bool,
    models: Vec<Choice>,
    members: Vec<(String, String)>,
}

pub async fn group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, group_id)): Path<(String, String)>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Ok(Some(group)) = state.store.get_group(&agency_id, &group_id).await else {
        return refused(
            &state,
            t,
            &principal,
            &ApiError::new(ErrorCode::NotFound, "group"),
        );
    };
    let every = group.models.iter().any(|model| model == "*");
    let served: Vec<String> = crate::routes::models::served_models(&state)
        .into_iter()
        .map(|model| model.id)
        .collect();
    let members = state
        .store
        .group_members(&agency_id, &group_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|person| (person.id, person.display_name))
        .collect();
    let group_page = GroupPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        models: served
            .into_iter()
            .map(|model| Choice {
                selected: group.models.contains(&model),
                label: model.clone(),
                value: model,
            })
            .collect(),
        every,
        members,
        group: GroupRow {
            models: models_label(t, &group.models),
            id: group.id,
            name: group.name,
        },
        frame: frame(&state, &principal, granted.agency, "groups", query.done(t)).await,
    };
    page(StatusCode::OK, &group_page, HeaderMap::new())
}

pub async fn set_group_models(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, group_id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManageModels>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let models = if field(&fields, "every") == "yes" {
        vec!["*".to_owned()]
    } else {
        all(&fields, "models")
    };
    let body = api::GroupModels { models };
    let path = Path((agency_id.clone(), group_id.clone()));
    match as_change(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        "set_group_models",
        (
            "/api/admin/agencies/{agency_id}/groups/{group_id}/models",
            format!("/api/admin/agencies/{agency_id}/groups/{group_id}/models"),
            serde_json::json!({ "models": body.models }),
        ),
        api::set_group_models(State(state.clone()), granted, path, ApiJson(body)),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!(
            "/admin/agencies/{agency_id}/groups/{group_id}?done=models-saved"
        ))
        .into_response(),
        Err(error) => refused(&state, t, &principal, &error),
    }
}

pub struct LimitRow {
    pub scope: String,
    pub label: String,
    pub requests_per_minute: String,
    pub tokens_per_minute: String,
    pub tokens_per_day: String,
    pub cost_per_month: String,
}

#[derive(Template)]
#[template(path = "admin_limits.html")]
struct LimitsPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    limits: Vec<LimitRow>,
    scopes: Vec<Choice>,
    fields: Vec<FormField>,
    errors: FieldErrors,
}

fn optional(value: Option<i64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn money(micros: Option<i64>) -> String {
    micros
        .map(|micros| format!("{:.2}", micros as f64 / 1_000_000.0))
        .unwrap_or_default()
}

async fn limits_page(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency: Agency,
    draft: LimitRow,
    errors: FieldErrors,
    done: Option<String>,
) -> Response {
    let limits = state.store.list_limits(&agency.id).await.unwrap_or_default();
    let groups = state.store.list_groups(&agency.id).await.unwrap_or_default();
    let people = state.store.list_people(&agency.id).await.unwrap_or_default();
    let mut scopes = vec![(
        format!("agency:{}", agency.id),
        t.with("scope-agency", &[("name", &agency.name)]),
    )];
    scopes.extend(groups.iter().map(|group| {
        (
            format!("group:{}", group.id),
            t.with("scope-group", &[("name", &group.name)]),
        )
    }));
    scopes.extend(people.iter().map(|person| {
        (
            format!("person:{}", person.id),
            t.with("scope-person", &[("name", &person.display_name)]),
        )
    }));
    let label_of = |scope: &str| {
        scopes
            .iter()
            .find(|(id, _)| id == scope)
            .map(|(_, label)| label.clone())
            .unwrap_or_else(|| scope.to_owned())
    };
    let rows = limits
        .iter()
        .map(|limit| LimitRow {
            scope: limit.scope.clone(),
            label: label_of(&limit.scope),
            requests_per_minute: optional(limit.requests_per_minute),
            tokens_per_minute: optional(limit.tokens_per_minute),
            tokens_per_day: optional(limit.tokens_per_day),
            cost_per_month: money(limit.cost_per_month_micros),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let limits_page = LimitsPage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        limits: rows,
        scopes: scopes
            .iter()
            .map(|(id, label)| Choice {
                selected: *id == draft.scope,
                value: id.clone(),
                label: label.clone(),
            })
            .collect(),
        frame: frame(state, principal, agency, "limits", done).await,
        fields: vec![
            FormField::text(
                "requests_per_minute",
                t.get("limit-requests-per-minute"),
                &draft.requests_per_minute,
            ),
            FormField::text(
                "tokens_per_minute",
                t.get("limit-tokens-per-minute"),
                &draft.tokens_per_minute,
            ),
            FormField::text(
                "tokens_per_day",
                t.get("limit-tokens-per-day"),
                &draft.tokens_per_day,
            ),
            FormField::text(
                "cost_per_month",
                t.get("limit-cost-per-month"),
                &draft.cost_per_month,
            ),
        ],
        errors,
    };
    page(status, &limits_page, HeaderMap::new())
}

pub async fn limits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadUsage>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let draft = LimitRow {
        scope: format!("agency:{agency_id}"),
        label: String::new(),
        requests_per_minute: String::new(),
        tokens_per_minute: String::new(),
        tokens_per_day: String::new(),
        cost_per_month: String::new(),
    };
    let done = query.done(t);
    limits_page(
        &state,
        t,
        &principal,
        granted.agency,
        draft,
        FieldErrors::new(),
        done,
    )
    .await
}

pub async fn set_limits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManageLimits>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let draft = LimitRow {
        scope: field(&fields, "scope").to_owned(),
        label: String::new(),
        requests_per_minute: field(&fields, "requests_per_minute").trim().to_owned(),
        tokens_per_minute: field(&fields, "tokens_per_minute").trim().to_owned(),
        tokens_per_day: field(&fields, "tokens_per_day").trim().to_owned(),
        cost_per_month: field(&fields, "cost_per_month").trim().to_owned(),
    };
    let mut errors = FieldErrors::new();
    let mut whole = |name: &str, text: &str| -> Option<i64> {
        if text.is_empty() {
            return None;
        }
        match text.parse::<i64>() {
            Ok(value) if value >= 0 => Some(value),
            _ => {
                errors.insert(name.to_owned(), t.get("admin-error-whole-number"));
                None
            }
        }
    };
    let requests_per_minute = whole("requests_per_minute", &draft.requests_per_minute);
    let tokens_per_minute = whole("tokens_per_minute", &draft.tokens_per_minute);
    let tokens_per_day = whole("tokens_per_day", &draft.tokens_per_day);
    let cost_per_month_micros = if draft.cost_per_month.is_empty() {
        None
    } else {
        match draft.cost_per_month.replace(',', ".").parse::<f64>() {
            Ok(value) if value.is_finite() && (0.0..=1e9).contains(&value) => {
                Some((value * 1_000_000.0).round() as i64)
            }
            _ => {
                errors.insert("cost_per_month".to_owned(), t.get("admin-error-amount"));
                None
            }
        }
    };
    let agency = granted.agency.clone();
    if !errors.is_empty() {
        return limits_page(&state, t, &principal, agency, draft, errors, None).await;
    }
    let body = Limits {
        scope: draft.scope.clone(),
        agency_id: agency_id.clone(),
        requests_per_minute,
        tokens_per_minute,
        tokens_per_day,
        cost_per_month_micros,
    };
    match as_change(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        "set_limits",
        (
            "/api/admin/agencies/{agency_id}/limits",
            format!("/api/admin/agencies/{agency_id}/limits"),
            serde_json::to_value(&body).unwrap_or_default(),
        ),
        api::set_limits(State(state.clone()), granted, ApiJson(body)),
    )
    .await
    {
        Ok(_) => {
            Redirect::to(&format!("/admin/agencies/{agency_id}/limits?done=limits-saved")).into_response()
        }
        Err(error) => {
            let errors = field_error(t, &error, "scope");
            limits_page(&state, t, &principal, agency, draft, errors, None).await
        }
    }
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub owner: String,
    pub kind: String,
    pub expires: String,
    pub last_used: String,
    pub state: String,
    pub active: bool,
    pub revoke_label: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    keys: Vec<KeyRow>,
    can_manage: bool,
}

pub async fn keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadKeys>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let keys = state
        .store
        .list_api_keys(&agency_id, None)
        .await
        .unwrap_or_default();
    let people: BTreeMap<String, String> = state
        .store
        .list_people(&agency_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|person| (person.id, person.display_name))
        .collect();
    let now = chrono::Utc::now();
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| t.datetime(at)).unwrap_or_else(|| t.get("key-never"))
    };
    let rows = keys
        .into_iter()
        .map(|key| {
            let (state_id, active) = if key.revoked_at.is_some() {
                ("key-state-revoked", false)
            } else if key.expires_at.is_some_and(|at| at <= now) {
                ("key-state-expired", false)
            } else {
                ("key-state-active", true)
            };
            KeyRow {
                revoke_label: t.with("revoke-button", &[("name", &key.name)]),
                owner: people
                    .get(&key.person_id)
                    .cloned()
                    .unwrap_or_else(|| key.person_id.clone()),
                id: key.id,
                name: key.name,
                prefix: key.prefix,
                kind: key.kind,
                expires: date(key.expires_at),
                last_used: date(key.last_used_at),
                state: t.get(state_id),
                active,
            }
        })
        .collect();
    let can_manage = policy::authorize_agency(
        &principal,
        &state.store.agency_ancestors(&agency_id).await.unwrap_or_default(),
        ManageKeys::ROLES,
    )
    .is_ok();
    let keys_page = KeysPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        frame: frame(&state, &principal, granted.agency, "keys", query.done(t)).await,
        keys: rows,
        can_manage,
    };
    page(StatusCode::OK, &keys_page, HeaderMap::new())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, key_id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManageKeys>(&state, &headers, &fields, &agency_id).await {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    match as_change(
        &state,
        &principal,
        &headers,
        Action::KeyRevoked,
        "revoke_key",
        (
            "/api/admin/agencies/{agency_id}/keys/{key_id}",
            format!("/api/admin/agencies/{agency_id}/keys/{key_id}"),
            serde_json::Value::Null,
        ),
        api::revoke_key(State(state.clone()), granted, Path((agency_id.clone(), key_id))),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/admin/agencies/{agency_id}/keys?done=key-revoked")).into_response(),
        Err(error) => refused(&state, t, &principal, &error),
    }
}

#[derive(Template)]
#[template(path = "admin_rules.html")]
struct RulesPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    text: String,
    custom: bool,
    errors: FieldErrors,
}

pub async fn rules(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadAgency>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let stored = state.store.get_agency_rules(&agency_id).await.ok().flatten();
    let rules_page = RulesPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        custom: stored.is_some(),
        text: stored.map(|rules| rules.text).unwrap_or_default(),
        frame: frame(&state, &principal, granted.agency, "rules", query.done(t)).await,
        errors: FieldErrors::new(),
    };
    page(StatusCode::OK, &rules_page, HeaderMap::new())
}

pub async fn save_rules(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManagePeople>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let text = field(&fields, "text").trim().replace("\r\n", "\n");
    if text.is_empty() || text.chars().count() > 20_000 || text.contains('\0') {
        let rules_page = RulesPage {
            t,
            shell: Shell::of(&state, t, &principal, None, "admin"),
            custom: true,
            text,
            frame: frame(&state, &principal, granted.agency, "rules", None).await,
            errors: FieldErrors::one("text", t.get("admin-error-rules")),
        };
        return page(StatusCode::UNPROCESSABLE_ENTITY, &rules_page, HeaderMap::new());
    }
    let rules = AgencyRules {
        agency_id: agency_id.clone(),
        version: super::rules::version_of(&text),
        text,
        updated_at: civitas_store::now(),
        updated_by: principal.id().to_owned(),
    };
    let saved = as_change(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        "rules_of_behaviour",
        (
            "/admin/agencies/{agency_id}/rules",
            format!("/admin/agencies/{agency_id}/rules"),
            serde_json::json!({ "version": rules.version }),
        ),
        state.store.put_agency_rules(&rules),
    )
    .await;
    if let Err(error) = saved {
        tracing::error!(%error, "could not save the rules of behaviour");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(agency_id, by = %principal.id(), version = %rules.version, "rules of behaviour changed");
    Redirect::to(&format!("/admin/agencies/{agency_id}/rules?done=rules-saved")).into_response()
}

/// One bar of a chart.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub label: String,
    pub value: String,
}

/// A bar chart drawn on the server (SVG), described for screen readers;
/// the same figures are in the table beside it.
pub struct Chart {
    pub id: String,
    pub title: String,
    pub description: String,
    pub bars: Vec<Bar>,
    pub axis_max: String,
    pub height: u32,
}

const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 200.0;
const CHART_LEFT: f64 = 8.0;

fn column_chart(id: &str, title: String, description: String, points: &[(String, f64, String)]) -> Chart {
    let max = points.iter().map(|(_, value, _)| *value).fold(0.0, f64::max);
    let count = points.len().max(1) as f64;
    let slot = (CHART_WIDTH - CHART_LEFT) / count;
    let bars = points
        .iter()
        .enumerate()
        .map(|(index, (label, value, shown))| {
            let height = if max > 0.0 {
                value / max * (CHART_HEIGHT - 20.0)
            } else {
                0.0
            };
            Bar {
                x: format!("{:.1}", CHART_LEFT + index as f64 * slot + slot * 0.15),
                y: format!("{:.1}", CHART_HEIGHT - height),
                width: format!("{:.1}", (slot * 0.7).clamp(1.0, 48.0)),
                height: format!("{height:.1}"),
                label: label.clone(),
                value: shown.clone(),
            }
        })
        .collect();
    Chart {
        id: id.to_owned(),
        title,
        description,
        bars,
        axis_max: points
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(_, _, shown)| shown.clone())
            .unwrap_or_default(),
        height: CHART_HEIGHT as u32,
    }
}

pub struct UsageDay {
    pub day: String,
    pub requests: String,
    pub tokens_in: String,
    pub tokens_out: String,
    pub cost: String,
    /// Estimated energy and emissions.
    pub energy: String,
    pub emissions: String,
}

#[derive(Template)]
#[template(path = "admin_usage.html")]
struct UsagePage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    periods: Vec<Choice>,
    per_day: Vec<UsageDay>,
    per_model: Vec<(String, UsageDay)>,
    totals: UsageDay,
    charts: Vec<Chart>,
}

/// The period asked for (7, 30 or 90 days, ending today, UTC), its first
/// day, and the agency's usage per day and model over it.
async fn usage_rows(
    state: &AppState,
    agency_id: &str,
    query: &AdminQuery,
) -> Result<(u32, chrono::NaiveDate, Vec<civitas_store::DailyUsage>), Response> {
    let days = match query.days.unwrap_or(30) {
        days @ (7 | 30 | 90) => days,
        _ => 30,
    };
    let first = chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days) - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map(|at| at.and_utc())
        .unwrap_or_else(chrono::Utc::now);
    match state
        .store
        .daily_usage(&UsageOwner::Agency(agency_id.to_owned()), since)
        .await
    {
        Ok(rows) => Ok((days, first, rows)),
        Err(error) => {
            tracing::error!(%error, "could not read usage");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// The usage dashboard: requests, tokens and cost per day and per model.
pub async fn usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) = match viewing::<ReadUsage>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let (days, first, rows) = match usage_rows(&state, &agency_id, &query).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let cost = |micros: i64| t.decimal(micros as f64 / 1_000_000.0, 2);
    let figures =
        |requests: i64, prompt: i64, completion: i64, micros: i64, day: String, energy: (f64, f64)| {
            UsageDay {
                day,
                requests: t.number(requests),
                tokens_in: t.number(prompt),
                tokens_out: t.number(completion),
                cost: cost(micros),
                energy: t.with("usage-wh", &[("value", &t.decimal(energy.0, 2))]),
                emissions: t.with("usage-gco2e", &[("value", &t.decimal(energy.1, 2))]),
            }
        };
    let mut energy_of_day: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut energy_of_model: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for row in &rows {
        let estimate = state
            .energy
            .estimate(&row.model, row.prompt_tokens, row.completion_tokens);
        for (map, key) in [(&mut energy_of_day, &row.day), (&mut energy_of_model, &row.model)] {
            let entry = map.entry(key.clone()).or_default();
            entry.0 += estimate.watt_hours;
            entry.1 += estimate.grams_co2e;
        }
    }
    let energy_total = energy_of_model
        .values()
        .fold((0.0, 0.0), |sum, energy| (sum.0 + energy.0, sum.1 + energy.1));
    // Every day of the period, those without use included.
    let mut per_day_totals: Vec<(String, i64, i64, i64, i64)> = (0..days)
        .map(|offset| {
            (
                (first + chrono::Duration::days(i64::from(offset)))
                    .format("%Y-%m-%d")
                    .to_string(),
                0,
                0,
                0,
                0,
            )
        })
        .collect();
    let mut per_model_totals: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for row in &rows {
        if let Some(day) = per_day_totals.iter_mut().find(|(day, ..)| *day == row.day) {
            day.1 += row.requests;
            day.2 += row.prompt_tokens;
            day.3 += row.completion_tokens;
            day.4 += row.cost_micros;
        }
        let model = per_model_totals.entry(row.model.clone()).or_default();
        model.0 += row.requests;
        model.1 += row.prompt_tokens;
        model.2 += row.completion_tokens;
        model.3 += row.cost_micros;
    }
    let sum = |index: usize| {
        per_model_totals
            .values()
            .map(|totals| [totals.0, totals.1, totals.2, totals.3][index])
            .sum::<i64>()
    };
    let totals = figures(sum(0), sum(1), sum(2), sum(3), t.get("usage-total"), energy_total);
    let short_day = |day: &str| day.get(5..).unwrap_or(day).to_owned();
    let token_points: Vec<(String, f64, String)> = per_day_totals
        .iter()
        .map(|(day, _, prompt, completion, _)| {
            (
                short_day(day),
                (prompt + completion) as f64,
                t.number(prompt + completion),
            )
        })
        .collect();
    let request_points: Vec<(String, f64, String)> = per_day_totals
        .iter()
        .map(|(day, requests, ..)| (short_day(day), *requests as f64, t.number(*requests)))
        .collect();
    let cost_points: Vec<(String, f64, String)> = per_model_totals
        .iter()
        .map(|(model, totals)| (model.clone(), totals.3 as f64, cost(totals.3)))
        .collect();
    let charts = vec![
        column_chart(
            "chart-requests",
            t.get("usage-chart-requests"),
            t.with("usage-chart-described", &[("days", &days.to_string())]),
            &request_points,
        ),
        column_chart(
            "chart-tokens",
            t.get("usage-chart-tokens"),
            t.with("usage-chart-described", &[("days", &days.to_string())]),
            &token_points,
        ),
        column_chart(
            "chart-cost",
            t.get("usage-chart-cost"),
            t.get("usage-chart-cost-described"),
            &cost_points,
        ),
    ];
    let usage_page = UsagePage {
        t,
        shell: Shell::of(&state, t, &principal, None, "admin"),
        frame: frame(&state, &principal, granted.agency, "usage", None).await,
        periods: [7, 30, 90]
            .into_iter()
            .map(|period: u32| Choice {
                value: period.to_string(),
                label: t.with("usage-period", &[("days", &period.to_string())]),
                selected: period == days,
            })
            .collect(),
        per_day: per_day_totals
            .into_iter()
            .rev()
            .map(|(day, requests, prompt, completion, micros)| {
                let energy = energy_of_day.get(&day).copied().unwrap_or_default();
                figures(requests, prompt, completion, micros, day, energy)
            })
            .collect(),
        per_model: per_model_totals
            .into_iter()
            .map(|(model, totals)| {
                let energy = energy_of_model.get(&model).copied().unwrap_or_default();
                (
                    model.clone(),
                    figures(totals.0, totals.1, totals.2, totals.3, model, energy),
                )
            })
            .collect(),
        totals,
        charts,
    };
    page(StatusCode::OK, &usage_page, HeaderMap::new())
}

/// Usage per day and model as CSV (UTC days; cost in the price table's
/// unit; energy and emissions estimated), for finance and reporting.
pub async fn usage_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (_, _, granted) = match viewing::<ReadUsage>(&state, &headers, &query, &agency_id).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let (days, _, rows) = match usage_rows(&state, &granted.agency.id, &query).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    // Model names come from configuration; quote every text field anyway.
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut csv =
        String::from("day,model,requests,prompt_tokens,completion_tokens,cost,energy_wh,emissions_gco2e\n");
    for row in rows {
        let estimate = state
            .energy
            .estimate(&row.model, row.prompt_tokens, row.completion_tokens);
        csv.push_str(&format!(
            "{},{},{},{},{},{:.6},{:.4},{:.4}\n",
            row.day,
            quote(&row.model),
            row.requests,
            row.prompt_tokens,
            row.completion_tokens,
            row.cost_micros as f64 / 1_000_000.0,
            estimate.watt_hours,
            estimate.grams_co2e
        ));
    }
    let mut response = (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"usage-{}-{days}d.csv\"", granted.agency.id),
            ),
        ],
        csv,
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
