//! Knowledge on a replica: its search index, the ingestion workers, the
//! replica-to-replica synchronisation and the search every caller goes
//! through.
//!
//! The database is the source of truth. At start the index is rebuilt
//! from the stored passages; afterwards every replica applies the
//! `knowledge_log` entries after the last one it applied (its own
//! ingestion included), every `knowledge.sync_every_seconds`. Access
//! (collections the caller may read, levels up to their clearance) is a
//! [`Filter`] applied inside the index, never to results afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use civitas_identity::policy::{collection_access, CollectionAccess};
use civitas_identity::Principal;
use civitas_knowledge::index::DocumentInfo;
use civitas_knowledge::{
    chunk_blocks, ChunkOptions, Filter, Format, Index, IndexedChunk, Limits, Method, SearchRequest,
};
use civitas_store::{Collection, Document, IngestionJob, NewChunk, Processed, StoreError, StoredChunk};
use civitas_types::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a worker holds a job without news before another may take it.
const LEASE_SECONDS: i64 = 120;
/// Attempts after which a job that keeps stopping midway is failed.
const MAX_ATTEMPTS: i64 = 3;

/// This replica's index and workers.
#[derive(Debug)]
pub struct Knowledge {
    index: RwLock<Index>,
    applied: AtomicI64,
    sync: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    worker: String,
    pub limits: Limits,
    chunking: ChunkOptions,
}

impl Knowledge {
    pub fn new(config: &civitas_config::KnowledgeConfig, dimensions: usize) -> Knowledge {
        let target = config.chunk_chars.clamp(200, 4_000) as usize;
        Knowledge {
            index: RwLock::new(Index::new(dimensions)),
            applied: AtomicI64::new(0),
            sync: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            worker: format!("replica-{}", civitas_store::new_id()),
            limits: Limits {
                max_file_bytes: usize::try_from(config.max_file_bytes).unwrap_or(usize::MAX),
                max_pages: config.max_pages,
                max_decompressed_bytes: usize::try_from(config.max_decompressed_bytes).unwrap_or(usize::MAX),
                max_text_bytes: 32 << 20,
            },
            chunking: ChunkOptions {
                target_chars: target,
                max_chars: target * 5 / 3,
                min_chars: 200,
            },
        }
    }

    /// Passages searchable on this replica.
    pub fn indexed_chunks(&self) -> usize {
        self.index.read().map(|index| index.len()).unwrap_or(0)
    }

    /// Wakes the workers (a file was just queued here).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }
}

/// The demo collection's name.
pub const DEMO_NAME: &str = "Agency handbook (demo)";

/// Loads the demo handbook into the default agency, once: only when
/// nothing was ever added to any collection of this installation.
pub async fn load_demo(state: &AppState) -> Result<Option<i64>, StoreError> {
    if !state.config.knowledge.demo_collection || state.store.knowledge_head().await? > 0 {
        return Ok(None);
    }
    let Some(agency) = state
        .store
        .get_agency_by_slug(civitas_identity::provision::DEFAULT_AGENCY)
        .await?
    else {
        return Ok(None);
    };
    if !state.store.list_collections(&agency.id).await?.is_empty() {
        return Ok(None);
    }
    let level = state
        .config
        .classifications
        .first()
        .map(|level| level.id.clone())
        .unwrap_or_default();
    let collection = state
        .store
        .create_collection(civitas_store::NewCollection {
            agency_id: agency.id,
            owner_kind: "agency".to_owned(),
            owner_id: String::new(),
            name: DEMO_NAME.to_owned(),
            description: Some(
                "Telework, leave, travel, records and IT security, in English and French".to_owned(),
            ),
            classification: level,
            created_by: "system".to_owned(),
        })
        .await?;
    for (name, text) in civitas_knowledge::DEMO {
        state
            .store
            .add_upload(civitas_store::NewUpload {
                collection_id: collection.id,
                name: (*name).replace('/', "-"),
                metadata: Some(r#"{"source":"demo"}"#.to_owned()),
                classification: None,
                content_hash: civitas_knowledge::content_hash(text.as_bytes()),
                format: "markdown".to_owned(),
                bytes: text.as_bytes().to_vec(),
                created_by: "system".to_owned(),
            })
            .await?;
    }
    tracing::info!(collection = collection.id, "demo collection queued for ingestion");
    Ok(Some(collection.id))
}

/// Rebuilds the index, then keeps it in step and runs the workers.
pub fn start(state: AppState) {
    let syncing = state.clone();
    tokio::spawn(async move {
        if let Err(error) = load_demo(&syncing).await {
            tracing::warn!(%error, "the demo collection could not be loaded");
        }
        if let Err(error) = rebuild(&syncing).await {
            tracing::error!(%error, "the search index could not be built; retrying at the next sync");
        }
        let every = Duration::from_secs(syncing.config.knowledge.sync_every_seconds.max(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = sync(&syncing).await {
                tracing::warn!(%error, "search index sync failed");
            }
        }
    });
    for _ in 0..state.config.knowledge.workers.max(1) {
        let working = state.clone();
        tokio::spawn(async move { work(working).await });
    }
}

/// The index from the database: every document with passages.
pub async fn rebuild(state: &AppState) -> Result<usize, StoreError> {
    let knowledge = &state.knowledge;
    let _guard = knowledge.sync.lock().await;
    let head = state.store.knowledge_head().await?;
    let dimensions = knowledge
        .index
        .read()
        .map(|index| index.dimensions())
        .unwrap_or(0);
    let mut fresh = Index::new(dimensions);
    let mut collections: HashMap<i64, Option<Collection>> = HashMap::new();
    let mut after = 0;
    loop {
        let documents = state.store.ready_documents(after, 200).await?;
        let Some(last) = documents.last() else { break };
        after = last.id;
        for document in documents {
            if let Some((info, chunks)) = load(state, &mut collections, &document).await? {
                fresh.insert_document(document.id, info, chunks);
            }
        }
    }
    let count = fresh.len();
    if let Ok(mut index) = knowledge.index.write() {
        *index = fresh;
    }
    knowledge.applied.store(head, Ordering::SeqCst);
    tracing::info!(passages = count, "search index built");
    Ok(count)
}

/// A document and its passages as the index takes them (`None`: its
/// collection is gone); collections are read once per batch.
async fn load(
    state: &AppState,
    collections: &mut HashMap<i64, Option<Collection>>,
    document: &Document,
) -> Result<Option<(DocumentInfo, Vec<IndexedChunk>)>, StoreError> {
    let collection = match collections.get(&document.collection_id) {
        Some(collection) => collection.clone(),
        None => {
            let collection = state.store.get_collection(document.collection_id).await?;
            collections.insert(document.collection_id, collection.clone());
            collection
        }
    };
    let Some(collection) = collection else {
        return Ok(None);
    };
    let chunks = state.store.list_chunks(document.id, 0, u32::MAX).await?;
    Ok(Some(indexed(state, &collection, document, chunks)))
}

fn level_rank(state: &AppState, level: &str) -> u8 {
    let levels = &state.config.classifications;
    // An unknown level counts as the highest: never shown by mistake.
    let rank = levels
        .iter()
        .position(|known| known.id == level)
        .unwrap_or(levels.len().saturating_sub(1));
    u8::try_from(rank).unwrap_or(u8::MAX)
}

fn indexed(
    state: &AppState,
    collection: &Collection,
    document: &Document,
    chunks: Vec<StoredChunk>,
) -> (DocumentInfo, Vec<IndexedChunk>) {
    let rank = level_rank(state, &collection.classification).max(level_rank(state, &document.classification));
    let metadata = document
        .metadata
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).ok())
        .map(|map| {
            map.into_iter()
                .filter_map(|(key, value)| match value {
                    serde_json::Value::String(text) => Some((key, text)),
                    serde_json::Value::Number(number) => Some((key, number.to_string())),
                    serde_json::Value::Bool(flag) => Some((key, flag.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let info = DocumentInfo {
        collection_id: collection.id,
        level_rank: rank,
        created_at: document.created_at.timestamp(),
        metadata,
    };
    let language = match document.language.as_deref() {
        Some("fr") => civitas_knowledge::analyze::Language::Fr,
        Some("en") => civitas_knowledge::analyze::Language::En,
        _ => civitas_knowledge::analyze::Language::Any,
    };
    let chunks = chunks
        .into_iter()
        .map(|chunk| {
            let section = passage_meta(&chunk).section;
            IndexedChunk {
                chunk_id: chunk.id,
                document_id: document.id,
                collection_id: collection.id,
                text: civitas_knowledge::index_text(&document.name, &section, &chunk.content),
                language,
                vector: chunk.vector,
            }
        })
        .collect();
    (info, chunks)
}

/// A passage's stored metadata.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PassageMeta {
    #[serde(default)]
    pub section: Vec<String>,
    #[serde(default)]
    pub page_start: Option<u32>,
    #[serde(default)]
    pub page_end: Option<u32>,
}

pub fn passage_meta(chunk: &StoredChunk) -> PassageMeta {
    serde_json::from_str(&chunk.metadata).unwrap_or_default()
}

/// Applies the changes other replicas (and this one's workers) logged.
pub async fn sync(state: &AppState) -> Result<usize, StoreError> {
    let knowledge = &state.knowledge;
    let _guard = knowledge.sync.lock().await;
    let mut applied = 0;
    loop {
        let after = knowledge.applied.load(Ordering::SeqCst);
        let changes = state.store.knowledge_changes(after, 500).await?;
        let Some(last) = changes.last().map(|change| change.seq) else {
            break;
        };
        // Only the last change of each document matters.
        let mut latest: HashMap<i64, &str> = HashMap::new();
        for change in &changes {
            latest.insert(change.document_id, change.op.as_str());
        }
        let mut loaded = Vec::new();
        let mut collections = HashMap::new();
        for (document_id, op) in &latest {
            // Loaded outside the lock: only the swap is under it.
            if *op == "upsert" {
                if let Some(document) = state.store.get_document(*document_id).await? {
                    let entry = load(state, &mut collections, &document).await?;
                    loaded.push((document.id, entry));
                    continue;
                }
            }
            loaded.push((*document_id, None));
        }
        if let Ok(mut index) = knowledge.index.write() {
            for (document_id, entry) in loaded {
                match entry {
                    Some((info, chunks)) => index.insert_document(document_id, info, chunks),
                    None => {
                        index.remove_document(document_id);
                    }
                }
            }
        }
        applied += changes.len();
        knowledge.applied.store(last, Ordering::SeqCst);
    }
    Ok(applied)
}

async fn work(state: AppState) {
    loop {
        let claimed = state
            .store
            .claim_ingestion_job(&state.knowledge.worker, LEASE_SECONDS)
            .await;
        match claimed {
            Ok(Some(job)) => {
                process(&state, job).await;
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot take an ingestion job"),
        }
        tokio::select! {
            () = state.knowledge.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Ingests one job: extract, cut, embed, store; or fail with the reason.
pub async fn process(state: &AppState, job: IngestionJob) {
    let worker = state.knowledge.worker.clone();
    let outcome = ingest(state, &job, &worker).await;
    let result = match outcome {
        Ok(processed) => state
            .store
            .complete_ingestion(&job, &worker, processed)
            .await
            .map(|_| ()),
        Err(Failure::Refused { code, message }) => state
            .store
            .fail_ingestion(&job, &worker, code, &message)
            .await
            .map(|_| ()),
        Err(Failure::Store(error)) => Err(error),
    };
    match result {
        Ok(()) => {
            if let Err(error) = sync(state).await {
                tracing::warn!(%error, "search index sync failed");
            }
        }
        // The lease runs out and another attempt is made.
        Err(error) => tracing::warn!(%error, job = job.id, "ingestion could not be recorded"),
    }
}

enum Failure {
    Refused { code: &'static str, message: String },
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

async fn ingest(state: &AppState, job: &IngestionJob, worker: &str) -> Result<Processed, Failure> {
    if job.attempts > MAX_ATTEMPTS {
        return Err(Failure::Refused {
            code: "ingestion_interrupted",
            message: format!("ingestion stopped {MAX_ATTEMPTS} times before finishing (the server restarted or ran out of memory); upload the file again or ask an administrator"),
        });
    }
    let document = state
        .store
        .get_document(job.document_id)
        .await?
        .ok_or(StoreError::NotFound { what: "document" })?;
    let bytes = state.store.document_file(job.document_id, job.version).await?;
    let format = Format::parse(&document.format).unwrap_or(Format::Text);
    let limits = state.knowledge.limits;
    let options = state.knowledge.chunking;
    let extracted = tokio::task::spawn_blocking(move || {
        civitas_knowledge::extract(format, &bytes, &limits).map(|extracted| {
            let text: String = extracted
                .blocks
                .iter()
                .take(200)
                .map(|block| block.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let language = match civitas_protect::Language::detect(&text) {
                civitas_protect::Language::Fr => Some("fr"),
                civitas_protect::Language::En => Some("en"),
                civitas_protect::Language::Any => None,
            };
            (
                extracted.pages,
                language,
                chunk_blocks(&extracted.blocks, options),
            )
        })
    })
    .await
    .map_err(|_| Failure::Refused {
        code: "corrupt_file",
        message: "the file could not be read".into(),
    })?;
    let (pages, language, chunks) = extracted.map_err(|error| Failure::Refused {
        code: error.code(),
        message: error.to_string(),
    })?;
    let total = chunks.len().max(1);
    let mut stored = Vec::with_capacity(chunks.len());
    let mut reported = 0;
    for chunk in chunks {
        let vector = match &state.embedder {
            Some(embedder) => {
                let text = chunk.indexed_text(Some(&document.name));
                Some(embed_passage(state, embedder, text).await)
            }
            None => None,
        }
        .flatten();
        let meta = PassageMeta {
            section: chunk.section.clone(),
            page_start: chunk.page_start,
            page_end: chunk.page_end,
        };
        stored.push(NewChunk {
            seq: i64::from(chunk.index),
            content: chunk.text,
            metadata: serde_json::to_string(&meta).unwrap_or_else(|_| "{}".into()),
            vector,
        });
        let percent = (stored.len() * 100 / total) as i64;
        if percent >= reported + 10 && percent < 100 {
            reported = percent;
            if !state
                .store
                .ingestion_progress(job, worker, percent, LEASE_SECONDS)
                .await?
            {
                return Err(Failure::Store(StoreError::NotFound {
                    what: "ingestion job",
                }));
            }
        }
    }
    Ok(Processed {
        pages: pages.map(i64::from),
        language: language.map(str::to_owned),
        chunks: stored,
    })
}

/// A passage's vector; text beyond the model's window is cut (the index
/// keeps all of it for BM25).
async fn embed_passage(
    state: &AppState,
    embedder: &Arc<civitas_inference::embed::Embedder>,
    text: String,
) -> Option<Vec<f32>> {
    let _permit = state.embedding_permits.acquire().await.ok()?;
    let embedder = Arc::clone(embedder);
    tokio::task::spawn_blocking(move || {
        let mut text = text;
        let limit = embedder.max_tokens().saturating_sub(2);
        loop {
            let tokens = embedder.tokenize(&text).len();
            if tokens <= limit || text.len() < 16 {
                break;
            }
            let keep = text.len() * limit / tokens * 9 / 10;
            let mut cut = keep.min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        embedder.embed(&text).ok().map(|(vector, _)| vector)
    })
    .await
    .ok()
    .flatten()
}

/// The query's vector, when semantic search is possible.
pub async fn embed_query(state: &AppState, query: &str) -> Option<Vec<f32>> {
    let embedder = state.embedder.as_ref()?;
    embed_passage(state, embedder, query.to_owned()).await
}

/// The collections `principal` may read (and whether they may write),
/// within their clearance.
pub async fn readable_collections(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<(Collection, CollectionAccess)>, ApiError> {
    let collections = state
        .store
        .list_collections(principal.agency_id())
        .await
        .map_err(ApiError::storage)?;
    Ok(collections
        .into_iter()
        .filter(|collection| crate::classification::cleared_for(state, principal, &collection.classification))
        .filter_map(|collection| collection_access(principal, &collection).map(|access| (collection, access)))
        .collect())
}

/// One collection as `principal` may use it; another agency's, or one
/// they may not read, is "not found".
pub async fn collection_for(
    state: &AppState,
    principal: &Principal,
    id: i64,
    need: CollectionAccess,
) -> Result<Collection, ApiError> {
    let not_found =
        || ApiError::new(ErrorCode::NotFound, format!("no collection {id}")).with_param("collection");
    let collection = state
        .store
        .get_collection(id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    let access = collection_access(principal, &collection)
        .filter(|_| crate::classification::cleared_for(state, principal, &collection.classification))
        .ok_or_else(not_found)?;
    if access < need {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("you may read collection {id} but not change it"),
        ));
    }
    Ok(collection)
}

/// A search, with what it found opened.
#[derive(Debug, Clone)]
pub struct Found {
    pub score: f32,
    pub method: Method,
    /// Rank in the BM25 list, when the passage matched words of the query.
    pub lexical_rank: Option<u32>,
    pub chunk: StoredChunk,
}

/// What a caller searches for.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    pub query: &'a str,
    /// Collection ids; empty: every collection the caller may read.
    pub collections: &'a [i64],
    pub method: Method,
    pub k: usize,
    pub rrf_k: f32,
    pub fusion: civitas_knowledge::Fusion,
    pub score_threshold: Option<f32>,
    /// Only these documents, dates and metadata (applied inside the
    /// search, like access).
    pub narrowing: Narrowing,
}

/// What a search is narrowed to besides collections.
#[derive(Debug, Clone, Default)]
pub struct Narrowing {
    pub documents: Option<HashSet<i64>>,
    /// Documents created at or after / before (Unix seconds).
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Each pair must be in the document's metadata.
    pub metadata: Vec<(String, String)>,
}

/// Searches for `principal`, within their access and clearance.
pub async fn search(
    state: &AppState,
    principal: &Principal,
    search: Search<'_>,
) -> Result<Vec<Found>, ApiError> {
    let Search {
        query,
        collections,
        method,
        k,
        rrf_k,
        fusion,
        score_threshold,
        narrowing,
    } = search;
    let readable = readable_collections(state, principal).await?;
    let readable_ids: HashSet<i64> = readable.iter().map(|(collection, _)| collection.id).collect();
    for id in collections {
        if !readable_ids.contains(id) {
            return Err(
                ApiError::new(ErrorCode::NotFound, format!("no collection {id}")).with_param("collections")
            );
        }
    }
    let wanted: HashSet<i64> = if collections.is_empty() {
        readable_ids
    } else {
        collections.iter().copied().collect()
    };
    let vector = match method {
        Method::Lexical => None,
        _ => {
            let vector = embed_query(state, query).await;
            if vector.is_none() && method == Method::Semantic {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    "semantic search needs an embedding model, and this server has none; use `lexical`",
                )
                .with_param("method"));
            }
            vector
        }
    };
    let filter = Filter {
        collections: wanted,
        max_level_rank: u8::try_from(crate::classification::clearance_rank(state, principal))
            .unwrap_or(u8::MAX),
        documents: narrowing.documents,
        created_after: narrowing.created_after,
        created_before: narrowing.created_before,
        metadata: narrowing.metadata,
    };
    // With a reranker, more passages are found for it to choose from.
    let k = k.max(1);
    let candidates = if state.config.knowledge.rerank_provider.is_empty() {
        k
    } else {
        k.max(state.config.knowledge.rerank_candidates as usize)
    };
    let hits = {
        let index = state
            .knowledge
            .index
            .read()
            .map_err(|_| ApiError::new(ErrorCode::InternalError, "the search index is unavailable"))?;
        index.search(&SearchRequest {
            query,
            vector: vector.as_deref(),
            method,
            k: candidates,
            rrf_k,
            fusion,
            score_threshold,
            filter: &filter,
        })
    };
    let ids: Vec<i64> = hits.iter().map(|hit| hit.chunk_id).collect();
    let mut chunks: HashMap<i64, StoredChunk> = state
        .store
        .get_chunks(&ids)
        .await
        .map_err(ApiError::storage)?
        .into_iter()
        .map(|chunk| (chunk.id, chunk))
        .collect();
    let found: Vec<Found> = hits
        .into_iter()
        .filter_map(|hit| {
            chunks.remove(&hit.chunk_id).map(|chunk| Found {
                score: hit.score,
                method,
                lexical_rank: hit.lexical_rank,
                chunk,
            })
        })
        .collect();
    Ok(rerank(state, query, found, k).await)
}

/// The best `k` of `found`, re-ordered by the configured reranker
/// (`knowledge.rerank_provider`), whose relevance becomes their score. If
/// there is none, or it fails, they keep their order.
async fn rerank(state: &AppState, query: &str, mut found: Vec<Found>, k: usize) -> Vec<Found> {
    let settings = &state.config.knowledge;
    let provider = state
        .providers
        .iter()
        .find(|provider| !settings.rerank_provider.is_empty() && provider.name == settings.rerank_provider);
    let Some(provider) = provider else {
        found.truncate(k);
        return found;
    };
    let passages: Vec<&str> = found.iter().map(|hit| hit.chunk.content.as_str()).collect();
    match provider.rerank(&settings.rerank_model, query, &passages).await {
        Ok(scores) => {
            for (hit, score) in found.iter_mut().zip(scores) {
                hit.score = score;
            }
            found.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "reranking failed; the passages keep their order")
        }
    }
    found.truncate(k);
    found
}
