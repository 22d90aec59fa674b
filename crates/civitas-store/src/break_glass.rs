//! Break-glass access: the only way an administrator reads someone else's
//! conversations. A request names the person (and optionally one of their
//! conversations), carries a written justification and a duration, and,
//! when the installation asks for it, waits for a second person's
//! approval. Every read while it is open is counted in the same
//! transaction as its audit record, and the person concerned sees it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::StoreResult;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BreakGlassStatus {
    /// Waiting for a second approver.
    Pending,
    /// Open from `decided_at` until `expires_at`.
    Approved,
    Refused,
}

impl BreakGlassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakGlassStatus::Pending => "pending",
            BreakGlassStatus::Approved => "approved",
            BreakGlassStatus::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<BreakGlassStatus> {
        [
            BreakGlassStatus::Pending,
            BreakGlassStatus::Approved,
            BreakGlassStatus::Refused,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One break-glass request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BreakGlass {
    pub id: String,
    pub agency_id: String,
    /// The administrator who asked (and who alone may read).
    pub requested_by: String,
    /// The person whose conversations are opened.
    pub subject_id: String,
    /// One conversation only, or all of the person's when absent.
    pub conversation_id: Option<String>,
    pub justification: String,
    /// How long access stays open once approved.
    pub minutes: i64,
    pub status: BreakGlassStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// How many times content was read under this access.
    pub reads: i64,
    pub last_read_at: Option<DateTime<Utc>>,
}

impl BreakGlass {
    /// Whether content may be read under it at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == BreakGlassStatus::Approved && self.expires_at.is_some_and(|at| now < at)
    }

    /// Whether it covers `conversation_id`.
    pub fn covers(&self, conversation_id: &str) -> bool {
        self.conversation_id
            .as_deref()
            .is_none_or(|only| only == conversation_id)
    }
}

/// A request as made.
#[derive(Debug, Clone)]
pub struct NewBreakGlass {
    pub agency_id: String,
    pub requested_by: String,
    pub subject_id: String,
    pub conversation_id: Option<String>,
    pub justification: String,
    pub minutes: i64,
    /// Opened at once (no second approver is required).
    pub open_now: bool,
}

#[async_trait]
pub trait BreakGlassStore {
    async fn create_break_glass(&self, request: NewBreakGlass) -> StoreResult<BreakGlass>;

    /// Approves or refuses a pending request of `agency_id`; `None` when
    /// there is no such request or it was already decided.
    async fn decide_break_glass(
        &self,
        agency_id: &str,
        id: &str,
        decided_by: &str,
        approve: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<BreakGlass>>;

    async fn get_break_glass(&self, agency_id: &str, id: &str) -> StoreResult<Option<BreakGlass>>;

    /// The agency's requests, newest first.
    async fn list_break_glass(&self, agency_id: &str, limit: u32) -> StoreResult<Vec<BreakGlass>>;

    /// The requests concerning `subject_id`, newest first (what the person
    /// is shown).
    async fn break_glass_about(&self, subject_id: &str, limit: u32) -> StoreResult<Vec<BreakGlass>>;

    /// Counts one read under request `id` if it is open at `at` (the
    /// pending audit record commits with it); `false` when it is not.
    async fn note_break_glass_read(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
}
