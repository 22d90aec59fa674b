//! What the workspace keeps beside conversations: feedback on answers,
//! each person's preferences, and the agency's rules of behaviour with who
//! accepted which version of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Conversation, Message, NewMessage, StoreResult, UsageOwner};

/// Usage of one model on one day (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micros: i64,
}

/// A person's judgement of one answer. One per person and message: a new
/// judgement replaces the earlier one. Kept when the answer is
/// regenerated, for later analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub message_id: String,
    pub conversation_id: String,
    pub person_id: String,
    pub agency_id: String,
    /// The model that wrote the answer.
    pub model: String,
    /// `1` (helpful) or `-1` (not helpful).
    pub rating: i64,
    pub comment: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A person's workspace settings; `None` follows the defaults (the
/// browser's language, the first model they may use).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    pub language: Option<String>,
    pub default_model: Option<String>,
}

/// An agency's rules of behaviour, shown to each person on first sign-in
/// and again whenever the text changes.
#[derive(Debug, Clone, PartialEq)]
pub struct AgencyRules {
    pub agency_id: String,
    pub text: String,
    /// SHA-256 of the text, hex: what an acceptance refers to.
    pub version: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[async_trait]
pub trait WorkspaceStore {
    /// `owner`'s conversations whose title or any message contains `query`
    /// (case-insensitive), most recently active first.
    async fn search_conversations(
        &self,
        owner: &str,
        query: &str,
        limit: u32,
    ) -> StoreResult<Vec<Conversation>>;

    /// Renames one of `owner`'s conversations; `false` when they have no
    /// such conversation.
    async fn rename_conversation(&self, owner: &str, conversation_id: &str, title: &str)
        -> StoreResult<bool>;

    /// Sets the classification level of one of `owner`'s conversations
    /// (raised when a marking is found in it); `false` when they have no
    /// such conversation.
    async fn set_classification(&self, owner: &str, conversation_id: &str, level: &str) -> StoreResult<bool>;

    /// Deletes one of `owner`'s conversations with its messages; `false`
    /// when they have no such conversation.
    async fn delete_conversation(&self, owner: &str, conversation_id: &str) -> StoreResult<bool>;

    /// Removes the messages from `from_seq` on and appends `messages` after
    /// what remains, in one transaction (regenerate, edit and resend).
    async fn replace_messages_from(
        &self,
        conversation_id: &str,
        from_seq: i64,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>>;

    /// One message by its id.
    async fn get_message(&self, message_id: &str) -> StoreResult<Option<Message>>;

    async fn put_feedback(&self, feedback: &Feedback) -> StoreResult<()>;

    /// `person_id`'s feedback on the messages of one conversation.
    async fn list_feedback(&self, person_id: &str, conversation_id: &str) -> StoreResult<Vec<Feedback>>;

    async fn get_preferences(&self, person_id: &str) -> StoreResult<Preferences>;

    async fn put_preferences(&self, person_id: &str, preferences: &Preferences) -> StoreResult<()>;

    async fn get_agency_rules(&self, agency_id: &str) -> StoreResult<Option<AgencyRules>>;

    async fn put_agency_rules(&self, rules: &AgencyRules) -> StoreResult<()>;

    /// Records that `person_id` accepted `version` (once; a second
    /// acceptance of the same version keeps the first time).
    async fn accept_rules(
        &self,
        person_id: &str,
        agency_id: &str,
        version: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Usage per day and model since `since`, oldest day first.
    async fn daily_usage(&self, owner: &UsageOwner, since: DateTime<Utc>) -> StoreResult<Vec<DailyUsage>>;

    /// When `person_id` accepted `version`, if they did.
    async fn rules_accepted_at(&self, person_id: &str, version: &str) -> StoreResult<Option<DateTime<Utc>>>;
}
