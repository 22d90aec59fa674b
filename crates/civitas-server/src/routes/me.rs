//! `GET /v1/me` (who am I, what may I use, what is left of my limits) and
//! `GET /v1/usage` (my usage, or my agency's for those who may read it).

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use civitas_identity::{Credential, Principal};
use civitas_store::{Agency, Limits, RoleGrant, UsageCounter, UsageDimension, UsageFilter, UsageRow};
use serde::{Deserialize, Serialize};

use crate::auth::{authorize_agency, Authenticated};
use crate::error::ApiError;
use crate::routes::models::served_models;
use crate::state::AppState;

/// A group the caller belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

/// How the caller authenticated.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialInfo {
    /// `api_key` or `session`.
    #[serde(rename = "type")]
    pub kind: String,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What remains under one scope's limits in the current windows; `None`
/// where the scope has no such limit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Remaining {
    pub requests_this_minute: Option<i64>,
    pub tokens_this_minute: Option<i64>,
    pub tokens_today: Option<i64>,
    pub cost_this_month_micros: Option<i64>,
}

/// The limits of one scope that apply to the caller, and what is left.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitStatus {
    pub limits: Limits,
    pub remaining: Remaining,
}

/// `GET /v1/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub object: String,
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `person` or `service`.
    pub kind: String,
    pub agency: Agency,
    pub groups: Vec<GroupRef>,
    pub roles: Vec<RoleGrant>,
    /// Served models the caller may use.
    pub models: Vec<String>,
    pub credential: CredentialInfo,
    pub limits: Vec<LimitStatus>,
    /// The highest classification level the caller may work at (a level
    /// id): their own clearance, else the installation's default.
    pub clearance: String,
}

fn remaining(limits: &Limits, counter: &UsageCounter) -> Remaining {
    let left = |limit: Option<i64>, used: i64| limit.map(|limit| (limit - used).max(0));
    Remaining {
        requests_this_minute: left(limits.requests_per_minute, counter.minute_requests),
        tokens_this_minute: left(limits.tokens_per_minute, counter.minute_tokens),
        tokens_today: left(limits.tokens_per_day, counter.day_tokens),
        cost_this_month_micros: left(limits.cost_per_month_micros, counter.month_cost_micros),
    }
}

async fn limit_statuses(state: &AppState, principal: &Principal) -> Result<Vec<LimitStatus>, ApiError> {
    let scopes = principal.limit_scopes();
    let limits = state.store.limits_for(&scopes).await.map_err(ApiError::storage)?;
    let counters = state
        .store
        .usage_counters(&scopes)
        .await
        .map_err(ApiError::storage)?;
    let now = Utc::now();
    Ok(limits
        .into_iter()
        .map(|limits| {
            let counter = counters
                .iter()
                .find(|counter| counter.scope == limits.scope)
                .map(|counter| counter.rolled(now))
                .unwrap_or_else(|| UsageCounter::empty(&limits.scope, now));
            LimitStatus {
                remaining: remaining(&limits, &counter),
                limits,
            }
        })
        .collect())
}

#[utoipa::path(get, path = "/v1/me", operation_id = "getMe", tag = "identity",
    summary = "Who the caller is: agency, groups, roles, allowed models and remaining limits",
    responses((status = 200, body = Me), (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Me>, ApiError> {
    let agency = state
        .store
        .get_agency(principal.agency_id())
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(ApiError::internal)?;
    let credential = match &principal.credential {
        Credential::Key(key) => CredentialInfo {
            kind: "api_key".to_owned(),
            key_id: Some(key.id.clone()),
            key_name: Some(key.name.clone()),
            expires_at: key.expires_at,
        },
        Credential::Session { .. } => CredentialInfo {
            kind: "session".to_owned(),
            key_id: None,
            key_name: None,
            expires_at: None,
        },
    };
    let limits = limit_statuses(&state, &principal).await?;
    Ok(Json(Me {
        object: "me".to_owned(),
        id: principal.person.id.clone(),
        email: principal.person.email.clone(),
        display_name: principal.person.display_name.clone(),
        kind: principal.person.kind.clone(),
        agency,
        groups: principal
            .grants
            .groups
            .iter()
            .map(|group| GroupRef {
                id: group.id.clone(),
                name: group.name.clone(),
            })
            .collect(),
        roles: principal.grants.roles.clone(),
        models: served_models(&state)
            .into_iter()
            .map(|model| model.id)
            .filter(|id| principal.models.allows(id))
            .collect(),
        credential,
        limits,
        clearance: state
            .config
            .classifications
            .get(crate::classification::clearance_rank(&state, &principal))
            .map(|level| level.id.clone())
            .unwrap_or_default(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// An agency id: that agency's usage (agency-admin, finance-manager or
    /// auditor). Absent: the caller's own usage.
    pub agency_id: Option<String>,
    /// `YYYY-MM-DD` (UTC); default: the first day of the current month.
    pub since: Option<String>,
    /// `YYYY-MM-DD` (UTC): up to and including this day.
    pub until: Option<String>,
    /// Only this person's requests (with `agency_id`; oneself otherwise).
    pub person_id: Option<String>,
    /// Only requests made with this API key.
    pub key_id: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only requests of this group's members (with `agency_id`).
    pub group_id: Option<String>,
    /// Also break the usage down by `day`, `person`, `key`, `model` or
    /// `request` (each request on its own, at most 10,000; each line per
    /// model too, with its energy): `breakdown`.
    pub group_by: Option<String>,
}

/// Usage of one model within one day, person or key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageBreakdownLine {
    /// The day (`YYYY-MM-DD`), person id, key id (`""`: the workspace),
    /// model or request id, as `group_by` asked.
    pub group: String,
    #[serde(flatten)]
    pub usage: UsageLine,
}

/// Totals over all models.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct UsageTotal {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micros: i64,
    /// Estimated energy, watt-hours (method in the README).
    pub energy_wh: f64,
    /// Estimated emissions, grams of CO2 equivalent.
    pub emissions_gco2e: f64,
}

/// Usage of one model, with its energy estimate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micros: i64,
    pub energy_wh: f64,
    pub emissions_gco2e: f64,
    /// False when the model's size is unknown (its energy counts as 0).
    pub energy_estimated: bool,
}

/// `GET /v1/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub object: String,
    /// `person` or `agency`.
    pub owner_type: String,
    pub owner_id: String,
    pub since: DateTime<Utc>,
    pub data: Vec<UsageLine>,
    pub total: UsageTotal,
    /// With `group_by`: the same usage per day, person, key or model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Vec<UsageBreakdownLine>>,
}

/// The start of `since` (a date), or of the current month.
pub fn parse_since(since: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    match since {
        None => {
            let now = Utc::now();
            Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
                .single()
                .ok_or_else(ApiError::internal)
        }
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|start| start.and_utc())
            .ok_or_else(|| ApiError::invalid("since", "use a date as YYYY-MM-DD")),
    }
}

/// Sums rows into a [`Usage`] answer.
pub fn usage_answer(
    energy: &crate::energy::EnergyModel,
    owner_type: &str,
    owner_id: &str,
    since: DateTime<Utc>,
    rows: Vec<UsageRow>,
) -> Usage {
    let mut total = UsageTotal::default();
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let line = usage_line(energy, row);
        total.requests += line.requests;
        total.prompt_tokens += line.prompt_tokens;
        total.completion_tokens += line.completion_tokens;
        total.cost_micros += line.cost_micros;
        total.energy_wh += line.energy_wh;
        total.emissions_gco2e += line.emissions_gco2e;
        data.push(line);
    }
    Usage {
        object: "usage".to_owned(),
        owner_type: owner_type.to_owned(),
        owner_id: owner_id.to_owned(),
        since,
        data,
        total,
        breakdown: None,
    }
}

/// One model's usage with its energy estimate.
fn usage_line(energy: &crate::energy::EnergyModel, row: UsageRow) -> UsageLine {
    let estimate = energy.estimate(&row.model, row.prompt_tokens, row.completion_tokens);
    UsageLine {
        energy_estimated: energy.knows(&row.model),
        model: row.model,
        requests: row.requests,
        prompt_tokens: row.prompt_tokens,
        completion_tokens: row.completion_tokens,
        cost_micros: row.cost_micros,
        energy_wh: estimate.watt_hours,
        emissions_gco2e: estimate.grams_co2e,
    }
}

#[utoipa::path(get, path = "/v1/usage", operation_id = "getUsage", tag = "identity",
    summary = "Usage, cost and energy per model between two dates — the caller's own or an agency's, filtered by person, group, key or model, optionally per day, person, key or request",
    params(UsageQuery),
    responses((status = 200, body = Usage),
        (status = 400, description = "invalid_parameter", body = civitas_types::ErrorBody),
        (status = 403, description = "permission_denied", body = civitas_types::ErrorBody),
        (status = 404, description = "not_found: no such agency (or not the caller's)", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Usage>, ApiError> {
    let since = parse_since(query.since.as_deref())?;
    let until = match query.until.as_deref() {
        None => None,
        Some(day) => Some(
            parse_since(Some(day)).map_err(|_| ApiError::invalid("until", "use a date as YYYY-MM-DD"))?
                + chrono::Duration::days(1),
        ),
    };
    let by = match query.group_by.as_deref() {
        None => None,
        Some("day") => Some(UsageDimension::Day),
        Some("person") => Some(UsageDimension::Person),
        Some("key") => Some(UsageDimension::Key),
        Some("model") => Some(UsageDimension::Model),
        Some("request") => Some(UsageDimension::Request),
        Some(_) => {
            return Err(ApiError::invalid(
                "group_by",
                "group_by is one of day, person, key, model and request",
            ))
        }
    };
    let mut filter = UsageFilter {
        agency_id: None,
        person_id: query.person_id.clone(),
        key_id: query.key_id.clone(),
        model: query.model.clone(),
        group_id: query.group_id.clone(),
        since,
        until,
    };
    let (owner_type, owner_id) = match &query.agency_id {
        Some(agency_id) => {
            authorize_agency(
                &state,
                &principal,
                agency_id,
                civitas_identity::policy::USAGE_READERS,
            )
            .await?;
            filter.agency_id = Some(agency_id.clone());
            ("agency", agency_id.clone())
        }
        None => {
            if query.person_id.as_deref().is_some_and(|id| id != principal.id()) {
                return Err(ApiError::invalid(
                    "person_id",
                    "someone else's usage is read with agency_id (agency-admin, finance-manager or auditor)",
                ));
            }
            if query.group_id.is_some() {
                return Err(ApiError::invalid(
                    "group_id",
                    "a group's usage is read with agency_id",
                ));
            }
            filter.person_id = Some(principal.id().to_owned());
            ("person", principal.id().to_owned())
        }
    };
    let per_model = state
        .store
        .usage_breakdown(&filter, UsageDimension::Model)
        .await
        .map_err(ApiError::storage)?;
    let mut answer = usage_answer(
        &state.energy,
        owner_type,
        &owner_id,
        since,
        per_model.into_iter().map(|row| row.usage).collect(),
    );
    if let Some(by) = by {
        let rows = state
            .store
            .usage_breakdown(&filter, by)
            .await
            .map_err(ApiError::storage)?;
        answer.breakdown = Some(
            rows.into_iter()
                .map(|row| UsageBreakdownLine {
                    group: row.group,
                    usage: usage_line(&state.energy, row.usage),
                })
                .collect(),
        );
    }
    Ok(Json(answer))
}
