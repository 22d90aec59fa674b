//! The audit log's storage: records appended to one hash chain per
//! installation, never updated or deleted (the database refuses it too),
//! and the signed checkpoints over them.
//!
//! An action and its audit record are written in the same transaction:
//! the server wraps the store calls of an action in [`with_audit`], and
//! every store method that commits a change writes the pending records
//! into its own transaction before committing. If the records cannot be
//! written, the action fails. Actions that change nothing in the database
//! (an export, a refusal) append with [`AuditStore::append_audit`].

use std::cell::RefCell;
use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use civitas_audit::{Checkpoint, Entry, Record};

use crate::StoreResult;

tokio::task_local! {
    static PENDING: RefCell<Vec<Entry>>;
}

/// Runs `action` with `entries` pending: the first store call in it that
/// commits a change writes them in the same transaction. Returns the
/// action's result and the entries that were not written (nothing was
/// committed, or the action failed before committing): the caller records
/// those on their own, typically as a failure or a read.
pub async fn with_audit<F: Future>(entries: Vec<Entry>, action: F) -> (F::Output, Vec<Entry>) {
    let cell = RefCell::new(entries);
    PENDING
        .scope(cell, async {
            let output = action.await;
            let left = PENDING.with(|pending| pending.take());
            (output, left)
        })
        .await
}

/// Called with the seconds each append to the chain took (inside its
/// transaction); the server publishes them as a metric.
type AppendObserver = Box<dyn Fn(f64) + Send + Sync>;

static APPEND_OBSERVER: std::sync::OnceLock<AppendObserver> = std::sync::OnceLock::new();

/// Sets, once per process, what observes the time of each append.
pub fn observe_appends(observer: impl Fn(f64) + Send + Sync + 'static) {
    let _ = APPEND_OBSERVER.set(Box::new(observer));
}

/// Reports the time an append took.
pub fn appended(seconds: f64) {
    if let Some(observer) = APPEND_OBSERVER.get() {
        observer(seconds);
    }
}

/// The entries waiting to be written by the transaction about to commit
/// (taken: a second transaction will not write them again).
pub fn take_pending() -> Vec<Entry> {
    PENDING.try_with(|pending| pending.take()).unwrap_or_default()
}

/// Adds `key: value` to the details of every pending entry: what a store
/// call learnt while acting (which rows it removed), recorded in the same
/// transaction as the action.
pub fn add_pending_detail(key: &str, value: serde_json::Value) {
    let _ = PENDING.try_with(|pending| {
        for entry in pending.borrow_mut().iter_mut() {
            if let Some(details) = entry.details.as_object_mut() {
                details.insert(key.to_owned(), value.clone());
            }
        }
    });
}

/// Which records a search returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub actor_id: Option<String>,
    pub agency_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// Only records with a sequence number below this (pages go back in
    /// time).
    pub before_seq: Option<u64>,
    pub request_id: Option<String>,
    /// Only records whose target mentions this text (a person's id finds
    /// the changes made to them, whatever route made them).
    pub target_contains: Option<String>,
}

#[async_trait]
pub trait AuditStore {
    /// Appends `entries` in their own transaction; returns the records.
    async fn append_audit(&self, entries: Vec<Entry>) -> StoreResult<Vec<Record>>;

    /// Records from `from_seq` on, in order, at most `limit`.
    async fn audit_records(&self, from_seq: u64, limit: u32) -> StoreResult<Vec<Record>>;

    /// Records matching `filter`, newest first, at most `limit`.
    async fn search_audit(&self, filter: &AuditFilter, limit: u32) -> StoreResult<Vec<Record>>;

    /// The last sequence number (0 when empty) and its hash.
    async fn audit_head(&self) -> StoreResult<(u64, civitas_audit::Hash)>;

    /// Stores a checkpoint, with the audit records pending, and answers
    /// `true`; one with the same tree size is kept as it was (`false`, and
    /// nothing pending is written).
    async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<bool>;

    /// Every checkpoint, smallest tree first.
    async fn checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;
}
