//! What data protection keeps: data keys (see [`crypt`](crate::crypt)),
//! clearances, retention schedules and legal holds, and the purge and
//! erasure that act on them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::StoreResult;

/// A data key as listed for administrators: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DataKeyInfo {
    pub id: String,
    /// Empty for the key of content that belongs to no agency.
    pub agency_id: String,
    /// `active`, `previous`, `retired` or `destroyed`.
    pub state: String,
    /// The id (a digest) of the master key that wraps it.
    pub master_key_id: String,
    pub created_at: DateTime<Utc>,
    /// When it stopped being active, was retired or destroyed.
    pub ended_at: Option<DateTime<Utc>>,
    /// Messages, titles, documents, files and passages still sealed with it.
    pub sealed_rows: i64,
}

/// The kinds of record a retention rule may govern.
pub const RETENTION_RECORD_TYPES: &[&str] = &["conversations", "usage", "documents"];

/// How long an agency keeps one kind of record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetentionRule {
    pub agency_id: String,
    /// `conversations` (by last activity), `usage` (request records) or
    /// `documents` (knowledge documents, by last change).
    pub record_type: String,
    pub days: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A legal hold on one person for one matter.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LegalHold {
    pub id: String,
    pub agency_id: String,
    pub person_id: String,
    /// The matter's name or reference (e.g. a case number).
    pub matter: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub released_by: Option<String>,
    pub released_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewLegalHold {
    pub agency_id: String,
    pub person_id: String,
    pub matter: String,
    pub reason: String,
    pub created_by: String,
}

/// A conversation removed by the retention purge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgedConversation {
    pub id: String,
    pub owner: String,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    pub conversations: u64,
    pub messages: u64,
    pub feedback: u64,
    /// The person's own collections, with their documents, files and
    /// passages (removed from every index too).
    pub collections: u64,
    pub documents: u64,
    /// Whether the account itself was anonymised and disabled.
    pub account: bool,
}

#[async_trait]
pub trait DataProtectionStore {
    /// Every data key, newest first.
    async fn list_data_keys(&self) -> StoreResult<Vec<DataKeyInfo>>;

    /// Makes a new data key the agency's active one; the previous key
    /// still opens what it sealed.
    async fn rotate_data_key(&self, agency_id: &str) -> StoreResult<DataKeyInfo>;

    /// Re-seals up to `batch` messages, titles or knowledge rows (document
    /// names, files, passages) that are not sealed with
    /// their agency's active key (content written before encryption
    /// included); returns how many were re-sealed (0: nothing left).
    async fn reencrypt(&self, batch: u32) -> StoreResult<u64>;

    /// Retires previous keys that stopped being active before
    /// `ended_before` and seal nothing any more (their wrapped copy is
    /// removed); returns their ids.
    async fn retire_data_keys(&self, ended_before: DateTime<Utc>) -> StoreResult<Vec<String>>;

    /// Re-wraps every live data key with the current master key; returns
    /// how many were re-wrapped.
    async fn rewrap_data_keys(&self) -> StoreResult<u64>;

    /// Destroys the agency's data keys (crypto-shredding): what they sealed
    /// can never be read again. Returns their ids.
    async fn destroy_data_keys(&self, agency_id: &str) -> StoreResult<Vec<String>>;

    /// Sets or clears (`None`) a person's clearance; `false` when there is
    /// no such person.
    async fn set_clearance(&self, person_id: &str, clearance: Option<&str>) -> StoreResult<bool>;

    async fn list_retention_rules(&self, agency_id: &str) -> StoreResult<Vec<RetentionRule>>;

    /// Every agency's rules (for the purge job).
    async fn all_retention_rules(&self) -> StoreResult<Vec<RetentionRule>>;

    async fn put_retention_rule(&self, rule: &RetentionRule) -> StoreResult<()>;

    /// `false` when there was no such rule.
    async fn delete_retention_rule(&self, agency_id: &str, record_type: &str) -> StoreResult<bool>;

    /// Deletes up to `limit` of the agency's conversations (with their
    /// messages) last active before `before`, except those of people on
    /// legal hold; returns what it deleted.
    async fn purge_conversations(
        &self,
        agency_id: &str,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PurgedConversation>>;

    /// Deletes the agency's request records older than `before`, except
    /// those of people on legal hold; returns how many.
    async fn purge_usage(&self, agency_id: &str, before: DateTime<Utc>) -> StoreResult<u64>;

    async fn create_legal_hold(&self, hold: NewLegalHold) -> StoreResult<LegalHold>;

    /// Releases a hold of `agency_id`; `None` when there is no such open
    /// hold.
    async fn release_legal_hold(
        &self,
        agency_id: &str,
        hold_id: &str,
        released_by: &str,
    ) -> StoreResult<Option<LegalHold>>;

    /// The agency's holds, newest first, released ones included.
    async fn list_legal_holds(&self, agency_id: &str) -> StoreResult<Vec<LegalHold>>;

    /// The open holds on one person.
    async fn active_holds(&self, person_id: &str) -> StoreResult<Vec<LegalHold>>;

    /// Erases what Civitas holds of a person's own content (conversations,
    /// messages, feedback, preferences) and, with `account`, anonymises and
    /// disables the account. Refused with [`StoreError::OnHold`] while a
    /// hold applies; all or nothing.
    ///
    /// [`StoreError::OnHold`]: crate::StoreError::OnHold
    async fn erase_person(&self, person_id: &str, account: bool) -> StoreResult<ErasureReport>;
}
