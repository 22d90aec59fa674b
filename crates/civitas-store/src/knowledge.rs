//! Collections, documents (with versions), passages, the ingestion queue
//! and the change log that keeps every replica's search index in step.
//!
//! Document names and metadata, files, passages and their vectors are
//! sealed with the data key of the collection's agency. The database is
//! the source of truth; search indexes are rebuilt from it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::StoreResult;

/// A group a collection is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionShare {
    pub group_id: String,
    /// `read`, or `write` (add and delete documents too).
    pub access: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Collection {
    pub id: i64,
    pub agency_id: String,
    /// `agency`, `group` or `person`.
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub description: Option<String>,
    /// Classification level of everything in it (documents may be higher).
    pub classification: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Documents in it.
    pub documents: i64,
    pub shares: Vec<CollectionShare>,
}

#[derive(Debug, Clone)]
pub struct NewCollection {
    pub agency_id: String,
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub description: Option<String>,
    pub classification: String,
    pub created_by: String,
}

/// What to change in a collection (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct CollectionChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub classification: Option<String>,
    /// The whole list of shares, replacing the old one.
    pub shares: Option<Vec<CollectionShare>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: i64,
    pub collection_id: i64,
    pub name: String,
    /// A JSON object given at upload (source, author, date, tags…).
    pub metadata: Option<String>,
    pub classification: String,
    /// Its current version, from 1.
    pub version: i64,
    pub content_hash: String,
    pub size_bytes: i64,
    pub format: String,
    /// `queued`, `processing`, `ready` or `failed`.
    pub status: String,
    /// Percent done while processing.
    pub progress: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub chunks: i64,
    pub pages: Option<i64>,
    pub language: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A file to add to a collection.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub collection_id: i64,
    pub name: String,
    pub metadata: Option<String>,
    /// `None`: the collection's level.
    pub classification: Option<String>,
    pub content_hash: String,
    pub format: String,
    pub bytes: Vec<u8>,
    pub created_by: String,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadOutcome {
    /// A new document, queued for ingestion.
    Created(Document),
    /// A new version of the document of the same name, queued.
    NewVersion(Document),
    /// The same content is already in the collection (this document):
    /// nothing was added.
    Duplicate(Document),
}

impl UploadOutcome {
    pub fn document(&self) -> &Document {
        match self {
            UploadOutcome::Created(document)
            | UploadOutcome::NewVersion(document)
            | UploadOutcome::Duplicate(document) => document,
        }
    }
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionJob {
    pub id: i64,
    pub document_id: i64,
    pub version: i64,
    pub collection_id: i64,
    pub agency_id: String,
    /// Including this one.
    pub attempts: i64,
}

/// A passage to store.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub seq: i64,
    pub content: String,
    /// JSON object: section path, pages.
    pub metadata: String,
    pub vector: Option<Vec<f32>>,
}

/// A stored passage, opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredChunk {
    pub id: i64,
    pub document_id: i64,
    pub collection_id: i64,
    pub version: i64,
    pub seq: i64,
    pub content: String,
    pub metadata: String,
    #[serde(skip)]
    pub vector: Option<Vec<f32>>,
    pub created_at: DateTime<Utc>,
}

/// What ingestion found.
#[derive(Debug, Clone)]
pub struct Processed {
    pub pages: Option<i64>,
    pub language: Option<String>,
    pub chunks: Vec<NewChunk>,
}

/// One change of the searchable set.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeChange {
    pub seq: i64,
    pub document_id: i64,
    pub collection_id: i64,
    /// `upsert` (its passages changed) or `remove`.
    pub op: String,
}

#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    async fn create_collection(&self, collection: NewCollection) -> StoreResult<Collection>;

    async fn get_collection(&self, id: i64) -> StoreResult<Option<Collection>>;

    /// An agency's collections, by id.
    async fn list_collections(&self, agency_id: &str) -> StoreResult<Vec<Collection>>;

    async fn update_collection(&self, id: i64, change: CollectionChange) -> StoreResult<Collection>;

    /// Deletes the collection, its documents, files and passages; the
    /// removals are logged for the indexes. Returns the documents removed.
    async fn delete_collection(&self, id: i64) -> StoreResult<Vec<i64>>;

    /// Stores the file (sealed) and queues it, in one transaction; an
    /// identical file already in the collection is not added twice.
    async fn add_upload(&self, upload: NewUpload) -> StoreResult<UploadOutcome>;

    async fn get_document(&self, id: i64) -> StoreResult<Option<Document>>;

    /// A collection's documents, by id, after `after_id`.
    async fn list_documents(
        &self,
        collection_id: i64,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Document>>;

    /// Deletes a document with every version, passage and job.
    async fn delete_document(&self, id: i64) -> StoreResult<()>;

    /// Removes up to `limit` documents of the agency's collections last
    /// changed before `before` (ready or failed; not those uploaded by a
    /// person on legal hold), with their files and passages, and logs
    /// their removal for every index; returns their ids.
    async fn purge_documents(
        &self,
        agency_id: &str,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<i64>>;

    /// Takes the oldest job that is queued, or running with an expired
    /// lease (its worker died), for `lease_seconds`.
    async fn claim_ingestion_job(
        &self,
        worker: &str,
        lease_seconds: i64,
    ) -> StoreResult<Option<IngestionJob>>;

    /// The file of a version, opened.
    async fn document_file(&self, document_id: i64, version: i64) -> StoreResult<Vec<u8>>;

    /// Progress of a held job (and renews its lease); `false` when the
    /// job is no longer this worker's (its lease ran out, or the document
    /// was deleted or replaced).
    async fn ingestion_progress(
        &self,
        job: &IngestionJob,
        worker: &str,
        percent: i64,
        lease_seconds: i64,
    ) -> StoreResult<bool>;

    /// Stores the passages of the job's version in place of the old ones,
    /// marks the document ready and logs the change, all or nothing;
    /// `false` (and nothing written) when the job is no longer held.
    async fn complete_ingestion(
        &self,
        job: &IngestionJob,
        worker: &str,
        processed: Processed,
    ) -> StoreResult<bool>;

    /// Marks the job and its document failed with a reason.
    async fn fail_ingestion(
        &self,
        job: &IngestionJob,
        worker: &str,
        code: &str,
        message: &str,
    ) -> StoreResult<bool>;

    /// A document's passages in order.
    async fn list_chunks(&self, document_id: i64, offset: i64, limit: u32) -> StoreResult<Vec<StoredChunk>>;

    /// Passages by id (those that exist), in no particular order.
    async fn get_chunks(&self, ids: &[i64]) -> StoreResult<Vec<StoredChunk>>;

    /// Changes after `after_seq`, oldest first.
    async fn knowledge_changes(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<KnowledgeChange>>;

    /// The newest change's sequence number (0 when none).
    async fn knowledge_head(&self) -> StoreResult<i64>;

    /// Logs every document with passages as changed, so every replica
    /// indexes it again; returns how many.
    async fn reindex_all(&self) -> StoreResult<i64>;

    /// Queues every document's current version for ingestion again (after
    /// a change of embedding model or chunking); returns how many.
    async fn requeue_all(&self) -> StoreResult<i64>;

    /// Documents with stored passages after `after_id` (a new version
    /// being processed keeps the old one's), for a rebuild.
    async fn ready_documents(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Document>>;
}
