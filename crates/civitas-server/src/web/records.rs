//! The records page of the administration: the agency's retention
//! schedule, legal holds, people's clearances and data keys. Each change
//! is the same store call as the API's and is recorded the same way, in
//! its own transaction.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use civitas_audit::Action;
use civitas_identity::Principal;
use civitas_store::{NewLegalHold, RetentionRule, StoreError};
use serde_json::json;

use super::admin::{
    changing, field, frame, refused, viewing, AdminFrame, AdminQuery, Choice, FieldErrors, Fields,
};
use super::i18n::Texts;
use super::{level_label, page, Shell};
use crate::auth::{AgencyAccess, ManageLegalHolds, ManageRecords};
use crate::error::ApiError;
use crate::state::AppState;

pub struct HoldRow {
    pub id: String,
    pub person: String,
    pub matter: String,
    pub reason: String,
    pub placed: String,
    pub released: Option<String>,
    pub release_label: String,
}

pub struct RetentionField {
    pub kind: &'static str,
    pub label: String,
    pub value: String,
}

pub struct KeyRow {
    pub id: String,
    pub state: String,
    pub created: String,
    pub sealed: String,
}

pub struct PersonRow {
    pub name: String,
    pub clearance: String,
    pub export_label: String,
    pub id: String,
}

#[derive(Template)]
#[template(path = "admin_records.html")]
struct RecordsPage {
    t: Texts,
    shell: Shell,
    frame: AdminFrame,
    can_manage: bool,
    retention: Vec<RetentionField>,
    people: Vec<Choice>,
    levels: Vec<Choice>,
    matter: String,
    reason: String,
    errors: FieldErrors,
    holds: Vec<HoldRow>,
    keys: Vec<KeyRow>,
    clearances: Vec<PersonRow>,
}

/// The smallest and largest number of days a rule may keep records.
const DAYS: std::ops::RangeInclusive<i64> = 1..=36_500;

#[allow(
    clippy::too_many_arguments,
    reason = "the form as it was sent, one value each"
)]
async fn render(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    frame: AdminFrame,
    fields: Option<&Fields>,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let agency_id = frame.agency.id.clone();
    let store = state.store.as_ref();
    let can_manage = AgencyAccess::<ManageRecords>::allows(state, principal, &agency_id).await;
    let rules = store.list_retention_rules(&agency_id).await.unwrap_or_default();
    let days_of = |kind: &str| {
        fields
            .map(|fields| field(fields, kind).to_owned())
            .or_else(|| {
                rules
                    .iter()
                    .find(|rule| rule.record_type == kind)
                    .map(|rule| rule.days.to_string())
            })
            .unwrap_or_default()
    };
    let mut listed = store.list_people(&agency_id).await.unwrap_or_default();
    listed.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    let name_of = |id: &str| {
        listed
            .iter()
            .find(|person| person.id == id)
            .map(|person| person.display_name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let chosen = fields
        .map(|fields| field(fields, "person_id"))
        .unwrap_or_default();
    let mut people = vec![Choice {
        value: String::new(),
        label: t.get("access-choose-person"),
        selected: chosen.is_empty(),
    }];
    people.extend(listed.iter().map(|person| Choice {
        value: person.id.clone(),
        label: format!("{} ({})", person.display_name, person.email),
        selected: person.id == chosen,
    }));
    let label_of = |id: Option<&str>| match id
        .and_then(|id| state.config.classifications.iter().find(|level| level.id == id))
    {
        Some(level) => level_label(level, t),
        None => t.get("records-clearance-default"),
    };
    let mut levels = vec![Choice {
        value: String::new(),
        label: t.get("records-clearance-default"),
        selected: true,
    }];
    levels.extend(state.config.classifications.iter().map(|level| Choice {
        value: level.id.clone(),
        label: level_label(level, t),
        selected: false,
    }));
    let holds = store
        .list_legal_holds(&agency_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|hold| {
            let person = name_of(&hold.person_id);
            HoldRow {
                release_label: t.with(
                    "records-release",
                    &[("matter", &hold.matter), ("person", &person)],
                ),
                id: hold.id,
                person,
                matter: hold.matter,
                reason: hold.reason,
                placed: t.datetime(hold.created_at),
                released: hold.released_at.map(|at| t.datetime(at)),
            }
        })
        .collect();
    let keys = if can_manage {
        store
            .list_data_keys()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|key| key.agency_id == agency_id)
            .map(|key| KeyRow {
                state: t.get(&format!("records-key-{}", key.state)),
                created: t.datetime(key.created_at),
                sealed: t.number(key.sealed_rows),
                id: key.id,
            })
            .collect()
    } else {
        Vec::new()
    };
    let clearances = if can_manage {
        listed
            .iter()
            .filter(|person| person.kind == "person")
            .map(|person| PersonRow {
                name: person.display_name.clone(),
                clearance: label_of(person.clearance.as_deref()),
                export_label: t.with("records-export", &[("person", &person.display_name)]),
                id: person.id.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let value = |name: &str| {
        fields
            .map(|fields| field(fields, name).to_owned())
            .unwrap_or_default()
    };
    let records = RecordsPage {
        t,
        shell: Shell::of(state, t, principal, None, "admin"),
        frame,
        can_manage,
        retention: [
            ("conversations", "records-retention-conversations"),
            ("usage", "records-retention-usage"),
        ]
        .into_iter()
        .map(|(kind, label)| RetentionField {
            kind,
            label: t.get(label),
            value: days_of(kind),
        })
        .collect(),
        people,
        levels,
        matter: value("matter"),
        reason: value("reason"),
        errors,
        holds,
        keys,
        clearances,
    };
    page(status, &records, HeaderMap::new())
}

/// `/admin/agencies/{id}/records`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let (t, principal, granted) =
        match viewing::<ManageLegalHolds>(&state, &headers, &query, &agency_id).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        };
    let frame = frame(&state, &principal, granted.agency, "records", query.done(t)).await;
    render(
        &state,
        t,
        &principal,
        frame,
        None,
        FieldErrors::new(),
        StatusCode::OK,
    )
    .await
}

fn done(agency_id: &str, what: &str) -> Response {
    Redirect::to(&format!("/admin/agencies/{agency_id}/records?done={what}")).into_response()
}

async fn again(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    granted: AgencyAccess<impl crate::auth::Permission>,
    fields: &Fields,
    errors: FieldErrors,
) -> Response {
    let frame = frame(state, principal, granted.agency, "records", None).await;
    render(
        state,
        t,
        principal,
        frame,
        Some(fields),
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Saves the retention schedule: a number of days per kind of record, or
/// nothing to keep them indefinitely.
pub async fn save_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManageRecords>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let mut errors = FieldErrors::new();
    let mut wanted = Vec::new();
    for kind in civitas_store::RETENTION_RECORD_TYPES {
        let text = field(&fields, kind).trim();
        if text.is_empty() {
            wanted.push((*kind, None));
            continue;
        }
        match text.parse::<i64>() {
            Ok(days) if DAYS.contains(&days) => wanted.push((*kind, Some(days))),
            _ => errors.insert((*kind).to_owned(), t.get("records-error-days")),
        }
    }
    if !errors.is_empty() {
        return again(&state, t, &principal, granted, &fields, errors).await;
    }
    for (kind, days) in wanted {
        let details = json!({ "via": "workspace", "change": "retention", "record_type": kind, "days": days });
        let target = Some(format!("agency:{agency_id}"));
        let result = crate::audit::acting(
            &state,
            &principal,
            &headers,
            Action::AdminChange,
            target,
            details,
            async {
                match days {
                    Some(days) => {
                        let rule = RetentionRule {
                            agency_id: agency_id.clone(),
                            record_type: kind.to_owned(),
                            days,
                            updated_at: civitas_store::now(),
                            updated_by: principal.id().to_owned(),
                        };
                        state.store.put_retention_rule(&rule).await
                    }
                    None => state
                        .store
                        .delete_retention_rule(&agency_id, kind)
                        .await
                        .map(|_| ()),
                }
            },
        )
        .await;
        if let Err(error) = result {
            return refused(&state, t, &principal, &ApiError::storage(error));
        }
    }
    done(&agency_id, "retention-saved")
}

/// Places a legal hold.
pub async fn place_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) =
        match changing::<ManageLegalHolds>(&state, &headers, &fields, &agency_id).await {
            Ok(changer) => changer,
            Err(response) => return response,
        };
    let person_id = field(&fields, "person_id").to_owned();
    let matter = field(&fields, "matter").trim().to_owned();
    let reason = field(&fields, "reason").trim().replace("\r\n", "\n");
    let mut errors = FieldErrors::new();
    if person_id.is_empty() {
        errors.insert("person_id".to_owned(), t.get("access-error-person"));
    }
    if matter.is_empty() || matter.chars().count() > 200 {
        errors.insert("matter".to_owned(), t.get("records-error-matter"));
    }
    if !(10..=2_000).contains(&reason.chars().count()) {
        errors.insert("reason".to_owned(), t.get("records-error-reason"));
    }
    if !errors.is_empty() {
        return again(&state, t, &principal, granted, &fields, errors).await;
    }
    let details =
        json!({ "via": "workspace", "change": "legal_hold", "person_id": person_id, "matter": matter });
    let hold = NewLegalHold {
        agency_id: agency_id.clone(),
        person_id: person_id.clone(),
        matter,
        reason,
        created_by: principal.id().to_owned(),
    };
    let target = Some(format!("person:{person_id}"));
    let placed = crate::audit::acting(
        &state,
        &principal,
        &headers,
        Action::LegalHold,
        target,
        details,
        async { state.store.create_legal_hold(hold).await },
    )
    .await;
    match placed {
        Ok(_) => done(&agency_id, "hold-placed"),
        Err(StoreError::NotFound { .. }) => {
            let errors = FieldErrors::one("person_id", t.get("access-error-person"));
            again(&state, t, &principal, granted, &fields, errors).await
        }
        Err(error) => refused(&state, t, &principal, &ApiError::storage(error)),
    }
}

/// Releases a legal hold.
pub async fn release_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agency_id, hold_id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, _) = match changing::<ManageLegalHolds>(&state, &headers, &fields, &agency_id).await {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let details = json!({ "via": "workspace", "change": "legal_hold_released", "hold_id": hold_id });
    let target = Some(format!("legal_hold:{hold_id}"));
    let released = crate::audit::acting(
        &state,
        &principal,
        &headers,
        Action::LegalHold,
        target,
        details,
        async {
            state
                .store
                .release_legal_hold(&agency_id, &hold_id, principal.id())
                .await
        },
    )
    .await;
    match released {
        Ok(Some(_)) => done(&agency_id, "hold-released"),
        Ok(None) => refused(
            &state,
            t,
            &principal,
            &ApiError::new(civitas_types::ErrorCode::NotFound, "no such open hold"),
        ),
        Err(error) => refused(&state, t, &principal, &ApiError::storage(error)),
    }
}

/// Sets a person's clearance (empty: the installation's default).
pub async fn set_clearance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, granted) = match changing::<ManageRecords>(&state, &headers, &fields, &agency_id).await
    {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let person_id = field(&fields, "clearance_person").to_owned();
    let level = field(&fields, "clearance").to_owned();
    let known = state.config.classifications.iter().any(|known| known.id == level);
    let person = state.store.get_person(&person_id).await.ok().flatten();
    let Some(person) = person.filter(|person| person.agency_id == agency_id) else {
        let errors = FieldErrors::one("clearance_person", t.get("access-error-person"));
        return again(&state, t, &principal, granted, &fields, errors).await;
    };
    if !level.is_empty() && !known {
        let errors = FieldErrors::one("clearance", t.get("error-classification"));
        return again(&state, t, &principal, granted, &fields, errors).await;
    }
    let clearance = (!level.is_empty()).then_some(level.as_str());
    let details =
        json!({ "via": "workspace", "change": "clearance", "before": person.clearance, "after": clearance });
    let target = Some(format!("person:{}", person.id));
    let set = crate::audit::acting(
        &state,
        &principal,
        &headers,
        Action::AdminChange,
        target,
        details,
        async { state.store.set_clearance(&person.id, clearance).await },
    )
    .await;
    finish(
        &state,
        t,
        &principal,
        &agency_id,
        set.map(|_| ()),
        "clearance-saved",
    )
}

/// Back to the page with what was done, or the refusal page.
fn finish(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    agency_id: &str,
    result: Result<(), StoreError>,
    what: &str,
) -> Response {
    match result {
        Ok(()) => done(agency_id, what),
        Err(error) => refused(state, t, principal, &ApiError::storage(error)),
    }
}

/// Gives the agency a new data key.
pub async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(agency_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (t, principal, _) = match changing::<ManageRecords>(&state, &headers, &fields, &agency_id).await {
        Ok(changer) => changer,
        Err(response) => return response,
    };
    let details = json!({ "via": "workspace", "operation": "rotate" });
    let target = Some(format!("agency:{agency_id}"));
    let rotated = crate::audit::acting(
        &state,
        &principal,
        &headers,
        Action::DataKey,
        target,
        details,
        async { state.store.rotate_data_key(&agency_id).await },
    )
    .await;
    finish(
        &state,
        t,
        &principal,
        &agency_id,
        rotated.map(|_| ()),
        "key-rotated",
    )
}
