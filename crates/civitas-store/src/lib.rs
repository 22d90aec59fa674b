//! What Civitas keeps, independent of the database that keeps it.
//!
//! [`Store`] is implemented by `civitas-store-sqlite` (the embedded default)
//! and `civitas-store-postgres` (at scale). Each implementation owns its
//! migrations; both must pass the same [`conformance`] suite.
//!
//! Architecture invariant: a call either commits everything it was asked to
//! write or nothing (a conversation is never stored without its messages).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod audit;
pub mod break_glass;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod crypt;
pub mod identity;
pub mod knowledge;
pub mod protection;
mod sql_audit;
mod sql_break_glass;
mod sql_identity;
mod sql_impl;
mod sql_knowledge;
mod sql_protection;
mod sql_workspace;
pub mod workspace;

pub use audit::{with_audit, AuditFilter, AuditStore};
pub use break_glass::{BreakGlass, BreakGlassStatus, BreakGlassStore, NewBreakGlass};
// For the SQL macros expanded in the database crates.
#[doc(hidden)]
pub use base64;
#[doc(hidden)]
pub use civitas_audit;
pub use identity::*;
pub use knowledge::*;
pub use protection::*;
#[doc(hidden)]
pub use serde_json;
pub use workspace::*;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A record that must exist does not.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A value does not satisfy a constraint.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The value is already taken (a slug, an e-mail address, a name).
    #[error("{0}")]
    Conflict(String),
    /// Content sealed with a data key that was destroyed (crypto-shredded):
    /// it can never be read again.
    #[error("this content can no longer be read: its data key {key_id} was destroyed")]
    Destroyed { key_id: String },
    /// An encryption key is missing or does not unwrap (a configuration
    /// fault, never the caller's).
    #[error("encryption key: {0}")]
    Key(String),
    /// A legal hold applies: nothing of the person's may be deleted.
    #[error("a legal hold applies ({matter}); nothing of this person's is deleted until it is released")]
    OnHold { matter: String },
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A conversation, created through the API or the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: String,
    /// The person or service account who holds it.
    pub owner: String,
    pub title: Option<String>,
    pub model: String,
    /// Its classification level (an id from the configured levels).
    pub classification: String,
    pub created_at: DateTime<Utc>,
    /// When a message was last added (or the title changed).
    pub updated_at: DateTime<Utc>,
}

/// A conversation to create.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub owner: String,
    pub title: Option<String>,
    pub model: String,
    pub classification: String,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Position in the conversation, from 0, without gaps.
    pub seq: i64,
    pub role: String,
    pub content: String,
    /// Structured parts as a JSON object: `tool_calls` (an assistant's
    /// calls), `generation` (model, tokens, latency, how it ended).
    pub metadata: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: String,
    pub content: String,
    pub metadata: Option<String>,
}

/// Who did what, when, with which model: one per API request.
/// Never holds content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub at: DateTime<Utc>,
    /// The person (or service account) who called.
    pub actor: String,
    pub agency_id: Option<String>,
    pub key_id: Option<String>,
    pub route: String,
    pub model: Option<String>,
    pub model_sha256: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// From the price table, in millionths of its currency unit.
    pub cost_micros: i64,
    pub latency_ms: i64,
    pub status: i64,
    pub error_code: Option<String>,
}

/// The storage of one installation.
#[async_trait]
pub trait Store:
    IdentityStore
    + WorkspaceStore
    + AuditStore
    + BreakGlassStore
    + DataProtectionStore
    + KnowledgeStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a conversation holding `messages`, all or nothing.
    async fn create_conversation(
        &self,
        conversation: NewConversation,
        messages: Vec<NewMessage>,
    ) -> StoreResult<(Conversation, Vec<Message>)>;

    /// Appends messages to an existing conversation, all or nothing.
    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>>;

    async fn get_conversation(&self, conversation_id: &str) -> StoreResult<Option<Conversation>>;

    /// Most recently active first.
    async fn list_conversations(&self, owner: &str, limit: u32) -> StoreResult<Vec<Conversation>>;

    /// In order of `seq`.
    async fn list_messages(&self, conversation_id: &str) -> StoreResult<Vec<Message>>;

    async fn record_request(&self, record: &RequestRecord) -> StoreResult<()> {
        self.record_requests(std::slice::from_ref(record)).await
    }

    /// Writes several request records in one transaction (with the audit
    /// records pending for them): the recorder's group commit.
    async fn record_requests(&self, records: &[RequestRecord]) -> StoreResult<()>;

    /// Newest first.
    async fn list_request_records(&self, limit: u32) -> StoreResult<Vec<RequestRecord>>;

    /// Flushes and closes the pool.
    async fn close(&self);
}

/// The current time at the precision both databases keep (microseconds),
/// so that what is written reads back equal.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A new identifier: UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A list of names as stored in one column (JSON array text).
pub fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// The inverse of [`encode_list`]; an unreadable value reads as empty.
pub fn decode_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Refuses content a database would mangle (NUL bytes in PostgreSQL text).
pub fn check_text(field: &'static str, value: &str) -> StoreResult<()> {
    if value.contains('\0') {
        return Err(StoreError::Invalid(format!("{field} contains a NUL character")));
    }
    Ok(())
}
