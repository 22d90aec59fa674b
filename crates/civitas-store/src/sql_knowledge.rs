//! The SQL of [`KnowledgeStore`](crate::KnowledgeStore), shared by both
//! databases; expanded by [`impl_sql_store!`](crate::impl_sql_store).
//!
//! Sealed values are bound to their row: a document's name and metadata
//! to its id, a file to its document and version, a passage's content,
//! metadata and vector to its document, version and position.

/// Implements [`KnowledgeStore`](crate::KnowledgeStore) for `$store`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_knowledge_store {
    ($store:ident, $db:ty, $row:ty) => {
const SQL_COLLECTION_COLUMNS: &str = "c.id, c.agency_id, c.owner_kind, c.owner_id, c.name, c.description,
    c.classification, c.created_by, c.created_at, c.updated_at,
    (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) AS documents";

const SQL_DOCUMENT_COLUMNS: &str = "d.id, d.collection_id, d.name, d.metadata, d.classification, d.version,
    d.content_hash, d.size_bytes, d.format, d.status, d.progress, d.error_code, d.error_message, d.chunks,
    d.pages, d.language, d.created_by, d.created_at, d.updated_at, d.key_id";

const SQL_CHUNK_COLUMNS: &str = "k.id, k.document_id, d.collection_id, k.version, k.seq, k.content, k.metadata,
    k.vector, k.key_id, k.created_at";

fn sql_collection_from_row(row: &$row) -> Result<$crate::Collection, sqlx::Error> {
    Ok($crate::Collection {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        owner_kind: sqlx::Row::try_get(row, "owner_kind")?,
        owner_id: sqlx::Row::try_get(row, "owner_id")?,
        name: sqlx::Row::try_get(row, "name")?,
        description: sqlx::Row::try_get(row, "description")?,
        classification: sqlx::Row::try_get(row, "classification")?,
        created_by: sqlx::Row::try_get(row, "created_by")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
        updated_at: sqlx::Row::try_get(row, "updated_at")?,
        documents: sqlx::Row::try_get(row, "documents")?,
        shares: Vec::new(),
    })
}

fn sql_chunk_aad(document_id: i64, version: i64, seq: i64, field: &str) -> Vec<u8> {
    $crate::crypt::field_aad("chunks", &format!("{document_id}:{version}:{seq}"), field)
}

fn sql_vector_text(vector: &[f32]) -> String {
    use $crate::base64::Engine;
    let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
    $crate::base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sql_vector_from_text(text: &str) -> Option<Vec<f32>> {
    use $crate::base64::Engine;
    let bytes = $crate::base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|four| f32::from_le_bytes([four[0], four[1], four[2], four[3]])).collect())
}

impl $store {
    async fn sql_collection_shares(&self, ids: &[i64]) -> $crate::StoreResult<Vec<(i64, $crate::CollectionShare)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        // The list is of integers this process formatted, never text.
        let rows = sqlx::query(&format!(
            "SELECT collection_id, group_id, access FROM collection_shares
             WHERE collection_id IN ({list}) ORDER BY collection_id, group_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(|row| {
                Ok((
                    sqlx::Row::try_get(row, "collection_id")?,
                    $crate::CollectionShare {
                        group_id: sqlx::Row::try_get(row, "group_id")?,
                        access: sqlx::Row::try_get(row, "access")?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(sql_unavailable)
    }

    async fn sql_with_shares(&self, mut collections: Vec<$crate::Collection>) -> $crate::StoreResult<Vec<$crate::Collection>> {
        let ids: Vec<i64> = collections.iter().map(|collection| collection.id).collect();
        for (id, share) in self.sql_collection_shares(&ids).await? {
            if let Some(collection) = collections.iter_mut().find(|collection| collection.id == id) {
                collection.shares.push(share);
            }
        }
        Ok(collections)
    }

    async fn sql_open_document(&self, row: &$row) -> $crate::StoreResult<$crate::Document> {
        let get = |error: sqlx::Error| sql_unavailable(error);
        let id: i64 = sqlx::Row::try_get(row, "id").map_err(get)?;
        let key_id: Option<String> = sqlx::Row::try_get(row, "key_id").map_err(get)?;
        let name: String = sqlx::Row::try_get(row, "name").map_err(get)?;
        let metadata: Option<String> = sqlx::Row::try_get(row, "metadata").map_err(get)?;
        let row_id = id.to_string();
        let name = self
            .sql_open_field(key_id.as_deref(), name, &$crate::crypt::field_aad("documents", &row_id, "name"))
            .await?;
        let metadata = match metadata {
            Some(metadata) => Some(
                self.sql_open_field(key_id.as_deref(), metadata, &$crate::crypt::field_aad("documents", &row_id, "metadata"))
                    .await?,
            ),
            None => None,
        };
        Ok($crate::Document {
            id,
            collection_id: sqlx::Row::try_get(row, "collection_id").map_err(get)?,
            name,
            metadata,
            classification: sqlx::Row::try_get(row, "classification").map_err(get)?,
            version: sqlx::Row::try_get(row, "version").map_err(get)?,
            content_hash: sqlx::Row::try_get(row, "content_hash").map_err(get)?,
            size_bytes: sqlx::Row::try_get(row, "size_bytes").map_err(get)?,
            format: sqlx::Row::try_get(row, "format").map_err(get)?,
            status: sqlx::Row::try_get(row, "status").map_err(get)?,
            progress: sqlx::Row::try_get(row, "progress").map_err(get)?,
            error_code: sqlx::Row::try_get(row, "error_code").map_err(get)?,
            error_message: sqlx::Row::try_get(row, "error_message").map_err(get)?,
            chunks: sqlx::Row::try_get(row, "chunks").map_err(get)?,
            pages: sqlx::Row::try_get(row, "pages").map_err(get)?,
            language: sqlx::Row::try_get(row, "language").map_err(get)?,
            created_by: sqlx::Row::try_get(row, "created_by").map_err(get)?,
            created_at: sqlx::Row::try_get(row, "created_at").map_err(get)?,
            updated_at: sqlx::Row::try_get(row, "updated_at").map_err(get)?,
        })
    }

    async fn sql_open_chunk(&self, row: &$row) -> $crate::StoreResult<$crate::StoredChunk> {
        let get = |error: sqlx::Error| sql_unavailable(error);
        let document_id: i64 = sqlx::Row::try_get(row, "document_id").map_err(get)?;
        let version: i64 = sqlx::Row::try_get(row, "version").map_err(get)?;
        let seq: i64 = sqlx::Row::try_get(row, "seq").map_err(get)?;
        let key_id: String = sqlx::Row::try_get(row, "key_id").map_err(get)?;
        let key = self.sql_data_key(&key_id).await?;
        let content: String = sqlx::Row::try_get(row, "content").map_err(get)?;
        let metadata: String = sqlx::Row::try_get(row, "metadata").map_err(get)?;
        let vector: Option<String> = sqlx::Row::try_get(row, "vector").map_err(get)?;
        let vector = match vector {
            Some(sealed) => {
                let text = key.open(&sealed, &sql_chunk_aad(document_id, version, seq, "vector"))?;
                Some(sql_vector_from_text(&text).ok_or_else(|| $crate::StoreError::Key("a stored vector does not decode".into()))?)
            }
            None => None,
        };
        Ok($crate::StoredChunk {
            id: sqlx::Row::try_get(row, "id").map_err(get)?,
            document_id,
            collection_id: sqlx::Row::try_get(row, "collection_id").map_err(get)?,
            version,
            seq,
            content: key.open(&content, &sql_chunk_aad(document_id, version, seq, "content"))?,
            metadata: key.open(&metadata, &sql_chunk_aad(document_id, version, seq, "metadata"))?,
            vector,
            created_at: sqlx::Row::try_get(row, "created_at").map_err(get)?,
        })
    }

    async fn sql_log_change(
        transaction: &mut sqlx::Transaction<'_, $db>,
        document_id: i64,
        collection_id: i64,
        op: &str,
    ) -> $crate::StoreResult<()> {
        sqlx::query("INSERT INTO knowledge_log (document_id, collection_id, op, at) VALUES ($1, $2, $3, $4)")
            .bind(document_id)
            .bind(collection_id)
            .bind(op)
            .bind($crate::now())
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn sql_collection_agency(&self, collection_id: i64) -> $crate::StoreResult<String> {
        sqlx::query_scalar("SELECT agency_id FROM collections WHERE id = $1")
            .bind(collection_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?
            .ok_or($crate::StoreError::NotFound { what: "collection" })
    }

    /// Re-seals up to `batch` knowledge rows (document names, files,
    /// passages) whose key is neither their agency's active key nor a
    /// destroyed one; each row is written only if its key did not change
    /// meanwhile. Returns how many were re-sealed.
    async fn sql_reencrypt_knowledge(&self, batch: u32, stale: &str) -> $crate::StoreResult<u64> {
        let mut resealed = 0u64;
        let mut left = i64::from(batch);
        let get = |error: sqlx::Error| sql_unavailable(error);
        let documents = sqlx::query(&format!(
            "SELECT d.id, d.name, d.metadata, d.key_id, c.agency_id FROM documents d
             JOIN collections c ON c.id = d.collection_id WHERE {} LIMIT $1",
            stale.replace("key_id", "d.key_id")
        ))
        .bind(left)
        .fetch_all(&self.pool)
        .await
        .map_err(get)?;
        for row in &documents {
            let id: i64 = sqlx::Row::try_get(row, "id").map_err(get)?;
            let key_id: Option<String> = sqlx::Row::try_get(row, "key_id").map_err(get)?;
            let agency: String = sqlx::Row::try_get(row, "agency_id").map_err(get)?;
            let active = self.sql_sealing_key(&agency).await?;
            let row_id = id.to_string();
            let name_aad = $crate::crypt::field_aad("documents", &row_id, "name");
            let metadata_aad = $crate::crypt::field_aad("documents", &row_id, "metadata");
            let name: String = sqlx::Row::try_get(row, "name").map_err(get)?;
            let name = active.seal(&self.sql_open_field(key_id.as_deref(), name, &name_aad).await?, &name_aad)?;
            let metadata: Option<String> = sqlx::Row::try_get(row, "metadata").map_err(get)?;
            let metadata = match metadata {
                Some(value) => Some(
                    active.seal(&self.sql_open_field(key_id.as_deref(), value, &metadata_aad).await?, &metadata_aad)?,
                ),
                None => None,
            };
            let done = sqlx::query(
                "UPDATE documents SET name = $3, metadata = $4, key_id = $5
                 WHERE id = $1 AND (key_id = $2 OR (key_id IS NULL AND $2 IS NULL))",
            )
            .bind(id)
            .bind(&key_id)
            .bind(name)
            .bind(metadata)
            .bind(&active.id)
            .execute(&self.pool)
            .await
            .map_err(get)?;
            resealed += done.rows_affected();
        }
        left -= documents.len() as i64;
        if left <= 0 {
            return Ok(resealed);
        }
        let files = sqlx::query(&format!(
            "SELECT v.document_id, v.version, v.file, v.key_id, c.agency_id FROM document_versions v
             JOIN documents d ON d.id = v.document_id JOIN collections c ON c.id = d.collection_id
             WHERE {} LIMIT $1",
            stale.replace("key_id", "v.key_id")
        ))
        .bind(left)
        .fetch_all(&self.pool)
        .await
        .map_err(get)?;
        for row in &files {
            let document_id: i64 = sqlx::Row::try_get(row, "document_id").map_err(get)?;
            let version: i64 = sqlx::Row::try_get(row, "version").map_err(get)?;
            let key_id: String = sqlx::Row::try_get(row, "key_id").map_err(get)?;
            let agency: String = sqlx::Row::try_get(row, "agency_id").map_err(get)?;
            let file: Vec<u8> = sqlx::Row::try_get(row, "file").map_err(get)?;
            let aad = $crate::crypt::field_aad("document_versions", &format!("{document_id}:{version}"), "file");
            let bytes = self.sql_data_key(&key_id).await?.open_bytes(&file, &aad)?;
            let active = self.sql_sealing_key(&agency).await?;
            let done = sqlx::query(
                "UPDATE document_versions SET file = $4, key_id = $5
                 WHERE document_id = $1 AND version = $2 AND key_id = $3",
            )
            .bind(document_id)
            .bind(version)
            .bind(&key_id)
            .bind(active.seal_bytes(&bytes, &aad)?)
            .bind(&active.id)
            .execute(&self.pool)
            .await
            .map_err(get)?;
            resealed += done.rows_affected();
        }
        left -= files.len() as i64;
        if left <= 0 {
            return Ok(resealed);
        }
        let chunks = sqlx::query(&format!(
            "SELECT k.id, k.document_id, k.version, k.seq, k.content, k.metadata, k.vector, k.key_id, c.agency_id
             FROM chunks k JOIN documents d ON d.id = k.document_id JOIN collections c ON c.id = d.collection_id
             WHERE {} LIMIT $1",
            stale.replace("key_id", "k.key_id")
        ))
        .bind(left)
        .fetch_all(&self.pool)
        .await
        .map_err(get)?;
        for row in &chunks {
            let id: i64 = sqlx::Row::try_get(row, "id").map_err(get)?;
            let document_id: i64 = sqlx::Row::try_get(row, "document_id").map_err(get)?;
            let version: i64 = sqlx::Row::try_get(row, "version").map_err(get)?;
            let seq: i64 = sqlx::Row::try_get(row, "seq").map_err(get)?;
            let key_id: String = sqlx::Row::try_get(row, "key_id").map_err(get)?;
            let agency: String = sqlx::Row::try_get(row, "agency_id").map_err(get)?;
            let old = self.sql_data_key(&key_id).await?;
            let active = self.sql_sealing_key(&agency).await?;
            let mut reseal = |field: &str| -> $crate::StoreResult<Option<String>> {
                let value: Option<String> = sqlx::Row::try_get(row, field).map_err(get)?;
                let aad = sql_chunk_aad(document_id, version, seq, field);
                value.map(|value| active.seal(&old.open(&value, &aad)?, &aad)).transpose()
            };
            let (content, metadata, vector) = (reseal("content")?, reseal("metadata")?, reseal("vector")?);
            let done = sqlx::query(
                "UPDATE chunks SET content = $3, metadata = $4, vector = $5, key_id = $6 WHERE id = $1 AND key_id = $2",
            )
            .bind(id)
            .bind(&key_id)
            .bind(content)
            .bind(metadata)
            .bind(vector)
            .bind(&active.id)
            .execute(&self.pool)
            .await
            .map_err(get)?;
            resealed += done.rows_affected();
        }
        Ok(resealed)
    }

    /// Whether `job` is still this worker's and its version current;
    /// locks the job row first (SQLite's write lock with it).
    async fn sql_holds_job(
        transaction: &mut sqlx::Transaction<'_, $db>,
        job: &$crate::IngestionJob,
        worker: &str,
    ) -> $crate::StoreResult<bool> {
        let held = sqlx::query(
            "UPDATE ingestion_jobs SET updated_at = $3 WHERE id = $1 AND worker = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(worker)
        .bind($crate::now())
        .execute(&mut **transaction)
        .await
        .map_err(sql_unavailable)?;
        if held.rows_affected() == 0 {
            return Ok(false);
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM documents WHERE id = $1")
            .bind(job.document_id)
            .fetch_optional(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        Ok(current == Some(job.version))
    }
}

#[async_trait::async_trait]
impl $crate::KnowledgeStore for $store {
    async fn create_collection(&self, collection: $crate::NewCollection) -> $crate::StoreResult<$crate::Collection> {
        $crate::check_text("collection name", &collection.name)?;
        if let Some(description) = &collection.description {
            $crate::check_text("collection description", description)?;
        }
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO collections (agency_id, owner_kind, owner_id, name, description, classification,
                                      created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&collection.agency_id)
        .bind(&collection.owner_kind)
        .bind(&collection.owner_id)
        .bind(&collection.name)
        .bind(&collection.description)
        .bind(&collection.classification)
        .bind(&collection.created_by)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        $crate::audit::add_pending_detail("collection_id", $crate::serde_json::json!(id));
        Self::sql_finish(transaction).await?;
        Ok($crate::Collection {
            id,
            agency_id: collection.agency_id,
            owner_kind: collection.owner_kind,
            owner_id: collection.owner_id,
            name: collection.name,
            description: collection.description,
            classification: collection.classification,
            created_by: collection.created_by,
            created_at: now,
            updated_at: now,
            documents: 0,
            shares: Vec::new(),
        })
    }

    async fn get_collection(&self, id: i64) -> $crate::StoreResult<Option<$crate::Collection>> {
        let row = sqlx::query(&format!("SELECT {SQL_COLLECTION_COLUMNS} FROM collections c WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let collection = sql_collection_from_row(&row).map_err(sql_unavailable)?;
        Ok(self.sql_with_shares(vec![collection]).await?.pop())
    }

    async fn list_collections(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::Collection>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_COLLECTION_COLUMNS} FROM collections c WHERE c.agency_id = $1 ORDER BY c.id"
        ))
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let collections = rows
            .iter()
            .map(sql_collection_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_unavailable)?;
        self.sql_with_shares(collections).await
    }

    async fn update_collection(&self, id: i64, change: $crate::CollectionChange) -> $crate::StoreResult<$crate::Collection> {
        if let Some(name) = &change.name {
            $crate::check_text("collection name", name)?;
        }
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query("UPDATE collections SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind($crate::now())
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "collection" });
        }
        if let Some(name) = &change.name {
            sqlx::query("UPDATE collections SET name = $2 WHERE id = $1")
                .bind(id)
                .bind(name)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        if let Some(description) = &change.description {
            sqlx::query("UPDATE collections SET description = $2 WHERE id = $1")
                .bind(id)
                .bind(description)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        if let Some(classification) = &change.classification {
            sqlx::query("UPDATE collections SET classification = $2 WHERE id = $1")
                .bind(id)
                .bind(classification)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
            // Documents are never below their collection.
            sqlx::query("UPDATE documents SET classification = $2 WHERE collection_id = $1")
                .bind(id)
                .bind(classification)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        if let Some(shares) = &change.shares {
            sqlx::query("DELETE FROM collection_shares WHERE collection_id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
            for share in shares {
                sqlx::query("INSERT INTO collection_shares (collection_id, group_id, access) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(&share.group_id)
                    .bind(&share.access)
                    .execute(&mut *transaction)
                    .await
                    .map_err(|error| match &error {
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            $crate::StoreError::Invalid(format!("group {} is listed twice", share.group_id))
                        }
                        _ => sql_unavailable(error),
                    })?;
            }
        }
        if change.classification.is_some() {
            // Levels live in the indexes: every document is indexed again.
            let documents: Vec<i64> = sqlx::query_scalar("SELECT id FROM documents WHERE collection_id = $1 AND status = 'ready'")
                .bind(id)
                .fetch_all(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
            for document in documents {
                Self::sql_log_change(&mut transaction, document, id, "upsert").await?;
            }
        }
        Self::sql_finish(transaction).await?;
        self.get_collection(id).await?.ok_or($crate::StoreError::NotFound { what: "collection" })
    }

    async fn delete_collection(&self, id: i64) -> $crate::StoreResult<Vec<i64>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query("UPDATE collections SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind($crate::now())
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "collection" });
        }
        let documents: Vec<i64> = sqlx::query_scalar("SELECT id FROM documents WHERE collection_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        for document in &documents {
            Self::sql_log_change(&mut transaction, *document, id, "remove").await?;
        }
        // Versions, passages and jobs go with their documents (ON DELETE
        // CASCADE).
        sqlx::query("DELETE FROM collections WHERE id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        $crate::audit::add_pending_detail("documents_deleted", $crate::serde_json::json!(documents.len()));
        Self::sql_finish(transaction).await?;
        Ok(documents)
    }

    async fn add_upload(&self, upload: $crate::NewUpload) -> $crate::StoreResult<$crate::UploadOutcome> {
        $crate::check_text("document name", &upload.name)?;
        let agency_id = self.sql_collection_agency(upload.collection_id).await?;
        let key = self.sql_sealing_key(&agency_id).await?;
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // The collection's row first: its lock (and SQLite's write lock)
        // orders concurrent uploads to one collection.
        let level: Option<String> = sqlx::query_scalar(
            "UPDATE collections SET updated_at = $2 WHERE id = $1 RETURNING classification",
        )
        .bind(upload.collection_id)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let Some(collection_level) = level else {
            return Err($crate::StoreError::NotFound { what: "collection" });
        };
        let rows = sqlx::query(&format!(
            "SELECT {SQL_DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = $1 ORDER BY d.id"
        ))
        .bind(upload.collection_id)
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let mut same_name = None;
        for row in &rows {
            let document = self.sql_open_document(row).await?;
            if document.content_hash == upload.content_hash {
                transaction.rollback().await.map_err(sql_unavailable)?;
                return Ok($crate::UploadOutcome::Duplicate(document));
            }
            if document.name == upload.name && same_name.is_none() {
                same_name = Some(document);
            }
        }
        let size = i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX);
        let (document_id, version, created) = match &same_name {
            Some(existing) => {
                let version = existing.version + 1;
                sqlx::query(
                    "UPDATE documents SET version = $2, content_hash = $3, size_bytes = $4, format = $5,
                         status = 'queued', progress = 0, error_code = NULL, error_message = NULL, updated_at = $6
                     WHERE id = $1",
                )
                .bind(existing.id)
                .bind(version)
                .bind(&upload.content_hash)
                .bind(size)
                .bind(&upload.format)
                .bind(now)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
                (existing.id, version, false)
            }
            None => {
                let classification = upload.classification.clone().unwrap_or_else(|| collection_level.clone());
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO documents (collection_id, name, classification, version, content_hash, size_bytes,
                                            format, status, created_by, created_at, updated_at, key_id)
                     VALUES ($1, '', $2, 1, $3, $4, $5, 'queued', $6, $7, $7, $8) RETURNING id",
                )
                .bind(upload.collection_id)
                .bind(&classification)
                .bind(&upload.content_hash)
                .bind(size)
                .bind(&upload.format)
                .bind(&upload.created_by)
                .bind(now)
                .bind(&key.id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
                let row_id = id.to_string();
                let name = key.seal(&upload.name, &$crate::crypt::field_aad("documents", &row_id, "name"))?;
                let metadata = upload
                    .metadata
                    .as_deref()
                    .map(|metadata| key.seal(metadata, &$crate::crypt::field_aad("documents", &row_id, "metadata")))
                    .transpose()?;
                sqlx::query("UPDATE documents SET name = $2, metadata = $3 WHERE id = $1")
                    .bind(id)
                    .bind(name)
                    .bind(metadata)
                    .execute(&mut *transaction)
                    .await
                    .map_err(sql_unavailable)?;
                (id, 1, true)
            }
        };
        let file = key.seal_bytes(
            &upload.bytes,
            &$crate::crypt::field_aad("document_versions", &format!("{document_id}:{version}"), "file"),
        )?;
        sqlx::query(
            "INSERT INTO document_versions (document_id, version, content_hash, size_bytes, format, file, created_by,
                                            created_at, key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(document_id)
        .bind(version)
        .bind(&upload.content_hash)
        .bind(size)
        .bind(&upload.format)
        .bind(file)
        .bind(&upload.created_by)
        .bind(now)
        .bind(&key.id)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        // An older version still queued is not worth processing.
        sqlx::query("UPDATE ingestion_jobs SET state = 'done', updated_at = $2 WHERE document_id = $1 AND state = 'queued'")
            .bind(document_id)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO ingestion_jobs (document_id, version, state, created_at, updated_at)
             VALUES ($1, $2, 'queued', $3, $3)",
        )
        .bind(document_id)
        .bind(version)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        $crate::audit::add_pending_detail("document_id", $crate::serde_json::json!(document_id));
        $crate::audit::add_pending_detail("version", $crate::serde_json::json!(version));
        Self::sql_finish(transaction).await?;
        let document = self.get_document(document_id).await?.ok_or($crate::StoreError::NotFound { what: "document" })?;
        Ok(if created { $crate::UploadOutcome::Created(document) } else { $crate::UploadOutcome::NewVersion(document) })
    }

    async fn get_document(&self, id: i64) -> $crate::StoreResult<Option<$crate::Document>> {
        let row = sqlx::query(&format!("SELECT {SQL_DOCUMENT_COLUMNS} FROM documents d WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        match row {
            Some(row) => Ok(Some(self.sql_open_document(&row).await?)),
            None => Ok(None),
        }
    }

    async fn list_documents(&self, collection_id: i64, after_id: i64, limit: u32) -> $crate::StoreResult<Vec<$crate::Document>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3"
        ))
        .bind(collection_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut documents = Vec::with_capacity(rows.len());
        for row in &rows {
            documents.push(self.sql_open_document(row).await?);
        }
        Ok(documents)
    }

    async fn delete_document(&self, id: i64) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let collection: Option<i64> = sqlx::query_scalar("DELETE FROM documents WHERE id = $1 RETURNING collection_id")
            .bind(id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let Some(collection) = collection else {
            return Err($crate::StoreError::NotFound { what: "document" });
        };
        Self::sql_log_change(&mut transaction, id, collection, "remove").await?;
        Self::sql_finish(transaction).await
    }

    async fn purge_documents(
        &self,
        agency_id: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> $crate::StoreResult<Vec<i64>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // One statement, so a hold placed meanwhile is seen; files and
        // passages go with their document (ON DELETE CASCADE).
        let rows = sqlx::query(
            "DELETE FROM documents WHERE id IN (
                 SELECT d.id FROM documents d JOIN collections c ON c.id = d.collection_id
                 WHERE c.agency_id = $1 AND d.updated_at < $2 AND d.status IN ('ready', 'failed')
                   AND NOT EXISTS (SELECT 1 FROM legal_holds h
                                   WHERE h.person_id = d.created_by AND h.released_at IS NULL)
                 ORDER BY d.updated_at LIMIT $3)
             RETURNING id, collection_id",
        )
        .bind(agency_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let mut purged = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = sqlx::Row::try_get(row, "id").map_err(sql_unavailable)?;
            let collection: i64 = sqlx::Row::try_get(row, "collection_id").map_err(sql_unavailable)?;
            Self::sql_log_change(&mut transaction, id, collection, "remove").await?;
            purged.push(id);
        }
        if purged.is_empty() {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(purged);
        }
        $crate::audit::add_pending_detail("documents", $crate::serde_json::json!(purged));
        Self::sql_finish(transaction).await?;
        Ok(purged)
    }

    async fn claim_ingestion_job(&self, worker: &str, lease_seconds: i64) -> $crate::StoreResult<Option<$crate::IngestionJob>> {
        let now = $crate::now();
        let lease = now + chrono::Duration::seconds(lease_seconds);
        let claimed = sqlx::query(
            "UPDATE ingestion_jobs SET state = 'running', worker = $1, lease_until = $2, attempts = attempts + 1,
                 updated_at = $3
             WHERE id = (SELECT id FROM ingestion_jobs
                         WHERE state = 'queued' OR (state = 'running' AND lease_until < $3)
                         ORDER BY id LIMIT 1)
               AND (state = 'queued' OR (state = 'running' AND lease_until < $3))
             RETURNING id, document_id, version, attempts",
        )
        .bind(worker)
        .bind(lease)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = claimed else { return Ok(None) };
        let get = |error: sqlx::Error| sql_unavailable(error);
        let document_id: i64 = sqlx::Row::try_get(&row, "document_id").map_err(get)?;
        let place = sqlx::query(
            "SELECT d.collection_id, c.agency_id FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE d.id = $1",
        )
        .bind(document_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(place) = place else { return Ok(None) };
        sqlx::query("UPDATE documents SET status = 'processing', progress = 0 WHERE id = $1 AND status = 'queued'")
            .bind(document_id)
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(Some($crate::IngestionJob {
            id: sqlx::Row::try_get(&row, "id").map_err(get)?,
            document_id,
            version: sqlx::Row::try_get(&row, "version").map_err(get)?,
            collection_id: sqlx::Row::try_get(&place, "collection_id").map_err(get)?,
            agency_id: sqlx::Row::try_get(&place, "agency_id").map_err(get)?,
            attempts: sqlx::Row::try_get(&row, "attempts").map_err(get)?,
        }))
    }

    async fn document_file(&self, document_id: i64, version: i64) -> $crate::StoreResult<Vec<u8>> {
        let row = sqlx::query("SELECT file, key_id FROM document_versions WHERE document_id = $1 AND version = $2")
            .bind(document_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?
            .ok_or($crate::StoreError::NotFound { what: "document version" })?;
        let sealed: Vec<u8> = sqlx::Row::try_get(&row, "file").map_err(sql_unavailable)?;
        let key_id: String = sqlx::Row::try_get(&row, "key_id").map_err(sql_unavailable)?;
        self.sql_data_key(&key_id).await?.open_bytes(
            &sealed,
            &$crate::crypt::field_aad("document_versions", &format!("{document_id}:{version}"), "file"),
        )
    }

    async fn ingestion_progress(
        &self,
        job: &$crate::IngestionJob,
        worker: &str,
        percent: i64,
        lease_seconds: i64,
    ) -> $crate::StoreResult<bool> {
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        if !Self::sql_holds_job(&mut transaction, job, worker).await? {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(false);
        }
        sqlx::query("UPDATE ingestion_jobs SET lease_until = $2 WHERE id = $1")
            .bind(job.id)
            .bind(now + chrono::Duration::seconds(lease_seconds))
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query("UPDATE documents SET progress = $2, status = 'processing' WHERE id = $1")
            .bind(job.document_id)
            .bind(percent.clamp(0, 100))
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        transaction.commit().await.map_err(sql_unavailable)?;
        Ok(true)
    }

    async fn complete_ingestion(
        &self,
        job: &$crate::IngestionJob,
        worker: &str,
        processed: $crate::Processed,
    ) -> $crate::StoreResult<bool> {
        let key = self.sql_sealing_key(&job.agency_id).await?;
        // Sealed before the transaction: it holds locks only for writing.
        let mut sealed = Vec::with_capacity(processed.chunks.len());
        for chunk in &processed.chunks {
            $crate::check_text("passage", &chunk.content)?;
            let aad = |field| sql_chunk_aad(job.document_id, job.version, chunk.seq, field);
            let vector = chunk
                .vector
                .as_deref()
                .map(|vector| key.seal(&sql_vector_text(vector), &aad("vector")))
                .transpose()?;
            sealed.push((chunk.seq, key.seal(&chunk.content, &aad("content"))?, key.seal(&chunk.metadata, &aad("metadata"))?, vector));
        }
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        if !Self::sql_holds_job(&mut transaction, job, worker).await? {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM chunks WHERE document_id = $1")
            .bind(job.document_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        for (seq, content, metadata, vector) in sealed {
            sqlx::query(
                "INSERT INTO chunks (document_id, version, seq, content, metadata, vector, key_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(job.document_id)
            .bind(job.version)
            .bind(seq)
            .bind(content)
            .bind(metadata)
            .bind(vector)
            .bind(&key.id)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        }
        sqlx::query(
            "UPDATE documents SET status = 'ready', progress = 100, chunks = $2, pages = $3, language = $4,
                 error_code = NULL, error_message = NULL, updated_at = $5
             WHERE id = $1",
        )
        .bind(job.document_id)
        .bind(i64::try_from(processed.chunks.len()).unwrap_or(i64::MAX))
        .bind(processed.pages)
        .bind(&processed.language)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        sqlx::query("UPDATE ingestion_jobs SET state = 'done', lease_until = NULL, updated_at = $2 WHERE id = $1")
            .bind(job.id)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_log_change(&mut transaction, job.document_id, job.collection_id, "upsert").await?;
        Self::sql_finish(transaction).await?;
        Ok(true)
    }

    async fn fail_ingestion(
        &self,
        job: &$crate::IngestionJob,
        worker: &str,
        code: &str,
        message: &str,
    ) -> $crate::StoreResult<bool> {
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        if !Self::sql_holds_job(&mut transaction, job, worker).await? {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(false);
        }
        sqlx::query("UPDATE ingestion_jobs SET state = 'failed', lease_until = NULL, updated_at = $2 WHERE id = $1")
            .bind(job.id)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', error_code = $2, error_message = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(job.document_id)
        .bind(code)
        .bind(message)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(true)
    }

    async fn list_chunks(&self, document_id: i64, offset: i64, limit: u32) -> $crate::StoreResult<Vec<$crate::StoredChunk>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_CHUNK_COLUMNS} FROM chunks k JOIN documents d ON d.id = k.document_id
             WHERE k.document_id = $1 ORDER BY k.seq LIMIT $2 OFFSET $3"
        ))
        .bind(document_id)
        .bind(i64::from(limit))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut chunks = Vec::with_capacity(rows.len());
        for row in &rows {
            chunks.push(self.sql_open_chunk(row).await?);
        }
        Ok(chunks)
    }

    async fn get_chunks(&self, ids: &[i64]) -> $crate::StoreResult<Vec<$crate::StoredChunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Integers this process formatted, never text.
        let list = ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!(
            "SELECT {SQL_CHUNK_COLUMNS} FROM chunks k JOIN documents d ON d.id = k.document_id WHERE k.id IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut chunks = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.sql_open_chunk(row).await {
                Ok(chunk) => chunks.push(chunk),
                // Crypto-shredded content is simply gone.
                Err($crate::StoreError::Destroyed { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(chunks)
    }

    async fn knowledge_changes(&self, after_seq: i64, limit: u32) -> $crate::StoreResult<Vec<$crate::KnowledgeChange>> {
        let rows = sqlx::query(
            "SELECT seq, document_id, collection_id, op FROM knowledge_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(|row| {
                Ok($crate::KnowledgeChange {
                    seq: sqlx::Row::try_get(row, "seq")?,
                    document_id: sqlx::Row::try_get(row, "document_id")?,
                    collection_id: sqlx::Row::try_get(row, "collection_id")?,
                    op: sqlx::Row::try_get(row, "op")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(sql_unavailable)
    }

    async fn knowledge_head(&self) -> $crate::StoreResult<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM knowledge_log")
            .fetch_one(&self.pool)
            .await
            .map_err(sql_unavailable)
    }

    async fn reindex_all(&self) -> $crate::StoreResult<i64> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let logged = sqlx::query(
            "INSERT INTO knowledge_log (document_id, collection_id, op, at)
             SELECT id, collection_id, 'upsert', $1 FROM documents WHERE chunks > 0 ORDER BY id",
        )
        .bind($crate::now())
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(i64::try_from(logged.rows_affected()).unwrap_or(i64::MAX))
    }

    async fn requeue_all(&self) -> $crate::StoreResult<i64> {
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query("UPDATE ingestion_jobs SET state = 'done', updated_at = $1 WHERE state = 'queued'")
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let queued = sqlx::query(
            "INSERT INTO ingestion_jobs (document_id, version, state, created_at, updated_at)
             SELECT id, version, 'queued', $1, $1 FROM documents ORDER BY id",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(i64::try_from(queued.rows_affected()).unwrap_or(i64::MAX))
    }

    async fn ready_documents(&self, after_id: i64, limit: u32) -> $crate::StoreResult<Vec<$crate::Document>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_DOCUMENT_COLUMNS} FROM documents d WHERE d.chunks > 0 AND d.id > $1 ORDER BY d.id LIMIT $2"
        ))
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut documents = Vec::with_capacity(rows.len());
        for row in &rows {
            documents.push(self.sql_open_document(row).await?);
        }
        Ok(documents)
    }
}
    };
}
