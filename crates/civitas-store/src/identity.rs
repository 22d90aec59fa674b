//! Agencies, groups, people, roles, API keys, sessions, limits and the
//! usage counters that enforce them.
//!
//! The store keeps roles, kinds and statuses as plain strings; their
//! meaning (and the authorization rules) live in `civitas-identity`.
//! Every lookup of an agency's resource takes the agency id, so that a
//! caller scoped to one agency cannot reach another's records by id.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agency {
    pub id: String,
    /// Short unique name, `[a-z0-9-]`.
    pub slug: String,
    pub name: String,
    /// The parent agency (a ministry above a directorate).
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewAgency {
    pub slug: String,
    pub name: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: String,
    pub agency_id: String,
    pub name: String,
    /// The identifier given by an identity provider, if provisioned.
    pub external_id: Option<String>,
    /// Models its members may use; `*` means every model.
    pub models: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub id: String,
    pub agency_id: String,
    pub email: String,
    pub display_name: String,
    /// `person` or `service` (an account for an integration).
    pub kind: String,
    /// `active`, `pending` (awaiting approval) or `disabled`.
    pub status: String,
    pub external_id: Option<String>,
    /// The highest classification level they may work at (a level id);
    /// `None` follows `data_protection.default_clearance`.
    pub clearance: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewPerson {
    pub agency_id: String,
    pub email: String,
    pub display_name: String,
    pub kind: String,
    pub status: String,
    pub external_id: Option<String>,
    pub password_hash: Option<String>,
}

/// Changes to a person; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PersonUpdate {
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
}

/// What signing in with a password needs.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub person_id: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_confirmed: bool,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A role held in an agency (and, through it, in the agencies below it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoleGrant {
    pub agency_id: String,
    pub role: String,
}

/// Everything a person is allowed through roles and groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    pub roles: Vec<RoleGrant>,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// The first characters of the secret, to recognise a key in lists.
    pub prefix: String,
    pub person_id: String,
    pub agency_id: String,
    pub name: String,
    /// `personal`, `service` or `short_lived`.
    pub kind: String,
    /// Models the key may use (within its owner's); `None`: all of them.
    pub models: Option<Vec<String>>,
    /// Client address ranges (CIDR) allowed to use it; `None`: any.
    pub ip_ranges: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub secret_hash: String,
    pub prefix: String,
    pub person_id: String,
    pub agency_id: String,
    pub name: String,
    pub kind: String,
    pub models: Option<Vec<String>>,
    pub ip_ranges: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// SHA-256 of the cookie value.
    pub id_hash: String,
    pub person_id: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The limits of one scope (`agency:ID`, `group:ID`, `person:ID`,
/// `key:ID`). `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Limits {
    pub scope: String,
    #[serde(default)]
    pub agency_id: String,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub tokens_per_day: Option<i64>,
    /// Cost budget per calendar month (UTC), in millionths of the price
    /// table's currency unit.
    pub cost_per_month_micros: Option<i64>,
}

impl Limits {
    /// Whether it sets a token or cost budget (not only requests).
    pub fn has_budget(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.tokens_per_day.is_some()
            || self.cost_per_month_micros.is_some()
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    TokensPerDay,
    CostPerMonth,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests_per_minute",
            LimitKind::TokensPerMinute => "tokens_per_minute",
            LimitKind::TokensPerDay => "tokens_per_day",
            LimitKind::CostPerMonth => "cost_per_month",
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub scope: String,
    pub kind: LimitKind,
    /// Seconds until the window that refused it ends.
    pub retry_after_seconds: u64,
}

/// Requests of a lease given back unused: they count no more in `minute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub minute: String,
    pub requests: i64,
}

/// Requests granted at once under a set of limits, and the counters of
/// their scopes as they stand with them counted (in the order of the
/// limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub granted: i64,
    pub counters: Vec<UsageCounter>,
}

/// The counters of one scope, in the current windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UsageCounter {
    pub scope: String,
    pub minute: String,
    pub minute_requests: i64,
    pub minute_tokens: i64,
    pub day: String,
    pub day_tokens: i64,
    pub month: String,
    pub month_cost_micros: i64,
}

/// The windows a moment falls in: `YYYY-MM-DDTHH:MM`, `YYYY-MM-DD`, `YYYY-MM`.
pub fn windows(now: DateTime<Utc>) -> (String, String, String) {
    (
        now.format("%Y-%m-%dT%H:%M").to_string(),
        now.format("%Y-%m-%d").to_string(),
        now.format("%Y-%m").to_string(),
    )
}

impl UsageCounter {
    /// A counter at zero in the windows of `now`.
    pub fn empty(scope: &str, now: DateTime<Utc>) -> UsageCounter {
        let (minute, day, month) = windows(now);
        UsageCounter {
            scope: scope.to_owned(),
            minute,
            minute_requests: 0,
            minute_tokens: 0,
            day,
            day_tokens: 0,
            month,
            month_cost_micros: 0,
        }
    }

    /// This counter moved to the windows of `now`: each window that has
    /// changed starts again from zero.
    pub fn rolled(&self, now: DateTime<Utc>) -> UsageCounter {
        let (minute, day, month) = windows(now);
        let mut next = self.clone();
        if next.minute != minute {
            next.minute = minute;
            next.minute_requests = 0;
            next.minute_tokens = 0;
        }
        if next.day != day {
            next.day = day;
            next.day_tokens = 0;
        }
        if next.month != month {
            next.month = month;
            next.month_cost_micros = 0;
        }
        next
    }

    /// Admits one more request under `limits`, or names the limit that
    /// refuses it. Tokens and cost are charged after the request; a request
    /// is admitted while they are under their limit.
    pub fn admit(&self, limits: &Limits, now: DateTime<Utc>) -> Result<UsageCounter, LimitHit> {
        self.grant(limits, 1, now).map(|(next, _)| next)
    }

    /// Grants up to `want` requests under `limits` at once (fewer when the
    /// minute's limit is near, none when `want` is 0), or names the limit
    /// that refuses any: the counter with them counted, and how many.
    pub fn grant(
        &self,
        limits: &Limits,
        want: i64,
        now: DateTime<Utc>,
    ) -> Result<(UsageCounter, i64), LimitHit> {
        let current = self.rolled(now);
        if want <= 0 {
            return Ok((current, 0));
        }
        let room = limits
            .requests_per_minute
            .map_or(want, |limit| (limit - current.minute_requests).min(want));
        if room <= 0 {
            return Err(LimitHit {
                scope: limits.scope.clone(),
                kind: LimitKind::RequestsPerMinute,
                retry_after_seconds: 60 - u64::from(now.second()),
            });
        }
        if let Some(spent) = current.spent(limits, now) {
            return Err(spent);
        }
        let mut next = current;
        next.minute_requests += room;
        Ok((next, room))
    }

    /// The token or cost budget of `limits` this counter (already in the
    /// windows of `now`) has used up, if any.
    pub fn spent(&self, limits: &Limits, now: DateTime<Utc>) -> Option<LimitHit> {
        let (kind, retry_after_seconds) = if limits
            .tokens_per_minute
            .is_some_and(|limit| self.minute_tokens >= limit)
        {
            (LimitKind::TokensPerMinute, 60 - u64::from(now.second()))
        } else if limits
            .tokens_per_day
            .is_some_and(|limit| self.day_tokens >= limit)
        {
            (
                LimitKind::TokensPerDay,
                86_400 - u64::from(now.num_seconds_from_midnight()),
            )
        } else if limits
            .cost_per_month_micros
            .is_some_and(|limit| self.month_cost_micros >= limit)
        {
            (LimitKind::CostPerMonth, seconds_to_next_month(now))
        } else {
            return None;
        };
        Some(LimitHit {
            scope: limits.scope.clone(),
            kind,
            retry_after_seconds,
        })
    }

    /// Gives back `requests` granted earlier in `minute` and not used
    /// (nothing once that minute has passed).
    pub fn given_back(&self, minute: &str, requests: i64, now: DateTime<Utc>) -> UsageCounter {
        let mut next = self.rolled(now);
        if next.minute == minute {
            next.minute_requests = (next.minute_requests - requests.max(0)).max(0);
        }
        next
    }

    /// Adds what a finished request used.
    pub fn charged(&self, tokens: i64, cost_micros: i64, now: DateTime<Utc>) -> UsageCounter {
        let mut next = self.rolled(now);
        next.minute_tokens += tokens;
        next.day_tokens += tokens;
        next.month_cost_micros += cost_micros;
        next
    }
}

fn seconds_to_next_month(now: DateTime<Utc>) -> u64 {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|start| (start.and_utc() - now).num_seconds().max(1) as u64)
        .unwrap_or(86_400)
}

/// Usage summed per model, from request records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micros: i64,
}

/// Which request records a usage report sums (all filters together).
#[derive(Debug, Clone)]
pub struct UsageFilter {
    pub agency_id: Option<String>,
    pub person_id: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    /// Requests of the group's members (as they are now).
    pub group_id: Option<String>,
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// What a usage report is broken down by (always also by model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageDimension {
    Model,
    /// The UTC day, `YYYY-MM-DD`.
    Day,
    Person,
    /// The API key; `""` for the workspace (a session).
    Key,
    /// Each request on its own (its request id).
    Request,
}

/// Usage of one model within one value of the dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageGroupRow {
    pub group: String,
    pub usage: UsageRow,
}

/// Whose usage to sum.
#[derive(Debug, Clone)]
pub enum UsageOwner {
    Person(String),
    Agency(String),
}

/// A credential with the person it belongs to and the identity version
/// read in the same query (see [`IdentityStore::identity_version`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Holder<C> {
    pub credential: C,
    pub person: Person,
    /// Grows with every change to roles, groups, memberships, model access
    /// and limits; cached grants are valid while it stays the same.
    pub version: i64,
}

/// A single sign-on attempt between the redirect to the provider and its
/// callback.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcState {
    /// SHA-256 of the `state` parameter.
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub code_verifier: String,
    pub return_to: String,
    pub created_at: DateTime<Utc>,
}

/// What consuming a state found.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumedState {
    Fresh(OidcState),
    /// It was consumed before: a replay.
    AlreadyUsed,
    Unknown,
}

/// Storage of identities and their limits.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Fails with `Conflict` when the slug is taken, `Invalid` when the
    /// parent does not exist.
    async fn create_agency(&self, agency: NewAgency) -> StoreResult<Agency>;
    async fn get_agency(&self, id: &str) -> StoreResult<Option<Agency>>;
    async fn get_agency_by_slug(&self, slug: &str) -> StoreResult<Option<Agency>>;
    async fn list_agencies(&self) -> StoreResult<Vec<Agency>>;
    /// `id` and the agencies above it, nearest first.
    async fn agency_ancestors(&self, id: &str) -> StoreResult<Vec<String>>;

    /// Fails with `Conflict` when the agency already has a group so named.
    async fn create_group(
        &self,
        agency_id: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> StoreResult<Group>;
    async fn get_group(&self, agency_id: &str, group_id: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, agency_id: &str) -> StoreResult<Vec<Group>>;
    /// Replaces the group's model list.
    async fn set_group_models(
        &self,
        agency_id: &str,
        group_id: &str,
        models: &[String],
    ) -> StoreResult<Group>;

    /// Renames a group or sets its external id.
    async fn update_group(
        &self,
        agency_id: &str,
        group_id: &str,
        name: Option<&str>,
        external_id: Option<&str>,
    ) -> StoreResult<Group>;
    /// Deletes a group, its memberships and model list; `false` when absent.
    async fn delete_group(&self, agency_id: &str, group_id: &str) -> StoreResult<bool>;
    async fn group_members(&self, agency_id: &str, group_id: &str) -> StoreResult<Vec<Person>>;
    /// Replaces the members of a group; every person must be in `agency_id`.
    async fn set_group_members(
        &self,
        agency_id: &str,
        group_id: &str,
        person_ids: &[String],
    ) -> StoreResult<()>;

    /// Fails with `Conflict` when the e-mail address is taken.
    async fn create_person(&self, person: NewPerson) -> StoreResult<Person>;
    async fn get_person(&self, id: &str) -> StoreResult<Option<Person>>;
    async fn get_person_by_email(&self, email: &str) -> StoreResult<Option<Person>>;
    async fn list_people(&self, agency_id: &str) -> StoreResult<Vec<Person>>;
    async fn update_person(&self, agency_id: &str, id: &str, update: PersonUpdate) -> StoreResult<Person>;
    /// Replaces the person's groups; every group must be in `agency_id`.
    async fn set_memberships(
        &self,
        agency_id: &str,
        person_id: &str,
        group_ids: &[String],
    ) -> StoreResult<()>;
    /// Replaces the roles the person holds in `agency_id`.
    async fn set_roles(&self, person_id: &str, agency_id: &str, roles: &[String]) -> StoreResult<()>;
    async fn grants(&self, person_id: &str) -> StoreResult<Grants>;
    /// Whether anyone holds `role` in any agency.
    async fn role_is_held(&self, role: &str) -> StoreResult<bool>;

    async fn credentials(&self, person_id: &str) -> StoreResult<Credentials>;
    async fn set_password_hash(&self, person_id: &str, hash: &str) -> StoreResult<()>;
    /// Counts a failed sign-in; returns the new count.
    async fn record_login_failure(
        &self,
        person_id: &str,
        locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<i64>;
    async fn reset_login_failures(&self, person_id: &str) -> StoreResult<()>;
    /// Sets (or clears) the TOTP secret; `confirmed` once a code was checked.
    async fn set_totp(&self, person_id: &str, secret: Option<&str>, confirmed: bool) -> StoreResult<()>;

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    /// The key with this hash, its owner and the identity version, in one
    /// query (the authentication of every request).
    async fn key_holder(&self, secret_hash: &str) -> StoreResult<Option<Holder<ApiKey>>>;
    /// The session with this hash, its person and the identity version.
    async fn session_holder(&self, id_hash: &str) -> StoreResult<Option<Holder<Session>>>;
    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn get_api_key(&self, agency_id: &str, key_id: &str) -> StoreResult<Option<ApiKey>>;
    /// The agency's keys, or one person's when `person_id` is given.
    async fn list_api_keys(&self, agency_id: &str, person_id: Option<&str>) -> StoreResult<Vec<ApiKey>>;
    /// Returns `false` when there is no such key in the agency.
    async fn revoke_api_key(&self, agency_id: &str, key_id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Notes that the key was used at `at`. The first use commits with
    /// the audit records pending (`key.first_used`) and answers `true`;
    /// later uses write no record and answer `false`.
    async fn touch_api_key(&self, key_id: &str, at: DateTime<Utc>) -> StoreResult<bool>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
    async fn revoke_session(&self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Signs a person out everywhere; returns how many sessions ended.
    async fn revoke_sessions_of(&self, person_id: &str, at: DateTime<Utc>) -> StoreResult<u64>;

    /// Records a sign-on attempt; forgets attempts older than a day.
    async fn create_oidc_state(&self, state: &OidcState) -> StoreResult<()>;
    /// Marks the attempt used, atomically: only the first caller gets it.
    async fn consume_oidc_state(&self, state_hash: &str, at: DateTime<Utc>) -> StoreResult<ConsumedState>;

    /// Creates or replaces the limits of a scope.
    async fn set_limits(&self, limits: &Limits) -> StoreResult<()>;
    async fn delete_limits(&self, agency_id: &str, scope: &str) -> StoreResult<bool>;
    async fn list_limits(&self, agency_id: &str) -> StoreResult<Vec<Limits>>;
    /// The limits set on any of `scopes`.
    async fn limits_for(&self, scopes: &[String]) -> StoreResult<Vec<Limits>>;
    /// Admits one request under every one of `limits`, atomically: either
    /// every counter takes it or none does.
    async fn admit(&self, limits: &[Limits], now: DateTime<Utc>) -> StoreResult<Result<(), LimitHit>> {
        Ok(self.lease(limits, 1, None, now).await?.map(|_| ()))
    }
    /// Takes a lease of up to `want` requests under every one of `limits`,
    /// atomically, after giving back what `returned` names of an earlier
    /// lease: the same number of requests is counted in every scope (the
    /// fewest any has room for), or none is and the limit that refuses is
    /// named (what was given back stays given back). A `want` of 0 only
    /// gives back.
    async fn lease(
        &self,
        limits: &[Limits],
        want: i64,
        returned: Option<&Returned>,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Lease, LimitHit>>;
    /// Charges what a finished request used to each scope.
    async fn charge(
        &self,
        scopes: &[String],
        tokens: i64,
        cost_micros: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn usage_counters(&self, scopes: &[String]) -> StoreResult<Vec<UsageCounter>>;
    /// Usage per model since `since`, from request records.
    async fn usage_summary(&self, owner: &UsageOwner, since: DateTime<Utc>) -> StoreResult<Vec<UsageRow>> {
        let (agency_id, person_id) = match owner {
            UsageOwner::Agency(id) => (Some(id.clone()), None),
            UsageOwner::Person(id) => (None, Some(id.clone())),
        };
        let filter = UsageFilter {
            agency_id,
            person_id,
            key_id: None,
            model: None,
            group_id: None,
            since,
            until: None,
        };
        let rows = self.usage_breakdown(&filter, UsageDimension::Model).await?;
        Ok(rows.into_iter().map(|row| row.usage).collect())
    }
    /// Usage matching `filter` per value of `by` and model, ordered by both.
    async fn usage_breakdown(
        &self,
        filter: &UsageFilter,
        by: UsageDimension,
    ) -> StoreResult<Vec<UsageGroupRow>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn limits(rpm: Option<i64>, tpd: Option<i64>) -> Limits {
        Limits {
            scope: "key:k".to_owned(),
            agency_id: "a".to_owned(),
            requests_per_minute: rpm,
            tokens_per_minute: None,
            tokens_per_day: tpd,
            cost_per_month_micros: None,
        }
    }

    #[test]
    fn windows_reset_when_their_period_changes() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 30).unwrap();
        let counter = UsageCounter::empty("key:k", at).charged(100, 5, at);
        let admitted = counter.admit(&limits(Some(1), None), at).unwrap();
        let refused = admitted.admit(&limits(Some(1), None), at).unwrap_err();
        assert_eq!(refused.kind, LimitKind::RequestsPerMinute);
        assert_eq!(refused.retry_after_seconds, 30);
        let next_year = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 1).unwrap();
        let rolled = admitted.rolled(next_year);
        assert_eq!(
            (
                rolled.minute_requests,
                rolled.day_tokens,
                rolled.month_cost_micros
            ),
            (0, 0, 0)
        );
        assert_eq!(rolled.month, "2027-01");
    }

    #[test]
    fn a_day_budget_refuses_once_spent_until_midnight() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap();
        let spent = UsageCounter::empty("key:k", at).charged(1000, 0, at);
        let hit = spent.admit(&limits(None, Some(1000)), at).unwrap_err();
        assert_eq!(hit.kind, LimitKind::TokensPerDay);
        assert_eq!(hit.retry_after_seconds, 7200);
        assert!(spent.admit(&limits(None, Some(1001)), at).is_ok());
    }

    #[test]
    fn the_month_budget_retry_is_the_start_of_next_month() {
        let at = Utc.with_ymd_and_hms(2026, 2, 28, 0, 0, 0).unwrap();
        assert_eq!(seconds_to_next_month(at), 86_400);
    }
}
