//! The SQL shared by the SQLite and PostgreSQL stores.
//!
//! Both databases accept the same statements (`$N` parameters, standard
//! types through sqlx), so the whole `Store` implementation is written once
//! here and expanded in each store crate with its pool, transaction and row
//! types. Only opening the pool and the migrations differ per database.

/// Implements [`Store`](crate::Store) for `$store`, a struct with a
/// `pool: sqlx::Pool<$db>` field. The calling crate depends on `sqlx`,
/// `chrono` and `async-trait`.
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ident, $db:ty, $row:ty, $backend:literal) => {
fn sql_unavailable(error: sqlx::Error) -> $crate::StoreError {
    $crate::StoreError::Unavailable(error.to_string())
}

$crate::impl_sql_identity_store!($store, $db, $row);
$crate::impl_sql_workspace_store!($store, $db, $row);
$crate::impl_sql_audit_store!($store, $db, $row);
$crate::impl_sql_break_glass_store!($store, $db, $row);
$crate::impl_sql_protection_store!($store, $db, $row);
$crate::impl_sql_knowledge_store!($store, $db, $row);

fn sql_conversation_from_row(row: &$row) -> Result<$crate::Conversation, sqlx::Error> {
    Ok($crate::Conversation {
        id: sqlx::Row::try_get(row, "id")?,
        owner: sqlx::Row::try_get(row, "owner")?,
        title: sqlx::Row::try_get(row, "title")?,
        model: sqlx::Row::try_get(row, "model")?,
        classification: sqlx::Row::try_get(row, "classification")?,
        created_at: sqlx::Row::try_get::<chrono::DateTime<chrono::Utc>, _>(row, "created_at")?,
        updated_at: sqlx::Row::try_get::<chrono::DateTime<chrono::Utc>, _>(row, "updated_at")?,
    })
}

fn sql_message_from_row(row: &$row) -> Result<$crate::Message, sqlx::Error> {
    Ok($crate::Message {
        id: sqlx::Row::try_get(row, "id")?,
        conversation_id: sqlx::Row::try_get(row, "conversation_id")?,
        seq: sqlx::Row::try_get(row, "seq")?,
        role: sqlx::Row::try_get(row, "role")?,
        content: sqlx::Row::try_get(row, "content")?,
        metadata: sqlx::Row::try_get(row, "metadata")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
    })
}

fn sql_request_record_from_row(row: &$row) -> Result<$crate::RequestRecord, sqlx::Error> {
    Ok($crate::RequestRecord {
        request_id: sqlx::Row::try_get(row, "request_id")?,
        at: sqlx::Row::try_get(row, "at")?,
        actor: sqlx::Row::try_get(row, "actor")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        key_id: sqlx::Row::try_get(row, "key_id")?,
        route: sqlx::Row::try_get(row, "route")?,
        model: sqlx::Row::try_get(row, "model")?,
        model_sha256: sqlx::Row::try_get(row, "model_sha256")?,
        prompt_tokens: sqlx::Row::try_get(row, "prompt_tokens")?,
        completion_tokens: sqlx::Row::try_get(row, "completion_tokens")?,
        cost_micros: sqlx::Row::try_get(row, "cost_micros")?,
        latency_ms: sqlx::Row::try_get(row, "latency_ms")?,
        status: sqlx::Row::try_get(row, "status")?,
        error_code: sqlx::Row::try_get(row, "error_code")?,
    })
}

impl $store {
    /// Marks the conversation active, which locks its row (a row lock in
    /// PostgreSQL, the write lock in SQLite) so that two appenders cannot
    /// read the same next sequence number; returns that number.
    async fn sql_lock_conversation(
        transaction: &mut sqlx::Transaction<'_, $db>,
        conversation_id: &str,
    ) -> $crate::StoreResult<i64> {
        let touched = sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
            .bind(conversation_id)
            .bind($crate::now())
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "conversation" });
        }
        sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = $1")
            .bind(conversation_id)
            .fetch_one(&mut **transaction)
            .await
            .map_err(sql_unavailable)
    }

    async fn insert_messages(
        transaction: &mut sqlx::Transaction<'_, $db>,
        conversation_id: &str,
        first_seq: i64,
        messages: Vec<$crate::NewMessage>,
        key: &$crate::crypt::DataKey,
    ) -> $crate::StoreResult<Vec<$crate::Message>> {
        let mut stored = Vec::with_capacity(messages.len());
        for (offset, message) in messages.into_iter().enumerate() {
            $crate::check_text("message content", &message.content)?;
            let row = $crate::Message {
                id: $crate::new_id(),
                conversation_id: conversation_id.to_owned(),
                seq: first_seq + offset as i64,
                role: message.role,
                content: message.content,
                metadata: message.metadata,
                created_at: $crate::now(),
            };
            let content = key.seal(&row.content, &$crate::crypt::field_aad("messages", &row.id, "content"))?;
            let metadata = row
                .metadata
                .as_deref()
                .map(|metadata| key.seal(metadata, &$crate::crypt::field_aad("messages", &row.id, "metadata")))
                .transpose()?;
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, seq, role, content, metadata, created_at, key_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&row.conversation_id)
            .bind(row.seq)
            .bind(&row.role)
            .bind(content)
            .bind(metadata)
            .bind(row.created_at)
            .bind(&key.id)
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
            stored.push(row);
        }
        Ok(stored)
    }
}

#[async_trait::async_trait]
impl $crate::Store for $store {
    fn backend(&self) -> &'static str {
        $backend
    }

    async fn ping(&self) -> $crate::StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn create_conversation(
        &self,
        conversation: $crate::NewConversation,
        messages: Vec<$crate::NewMessage>,
    ) -> $crate::StoreResult<($crate::Conversation, Vec<$crate::Message>)> {
        if let Some(title) = &conversation.title {
            $crate::check_text("title", title)?;
        }
        let key = self.sql_owner_sealing_key(&conversation.owner).await?;
        let created_at = $crate::now();
        let row = $crate::Conversation {
            id: $crate::new_id(),
            owner: conversation.owner,
            title: conversation.title,
            model: conversation.model,
            classification: conversation.classification,
            created_at,
            updated_at: created_at,
        };
        let title = row
            .title
            .as_deref()
            .map(|title| key.seal(title, &$crate::crypt::field_aad("conversations", &row.id, "title")))
            .transpose()?;
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO conversations (id, owner, title, model, classification, created_at, updated_at, key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.owner)
        .bind(title)
        .bind(&row.model)
        .bind(&row.classification)
        .bind(row.created_at)
        .bind(&key.id)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let stored = Self::insert_messages(&mut transaction, &row.id, 0, messages, &key).await?;
        Self::sql_finish(transaction).await?;
        Ok((row, stored))
    }

    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: Vec<$crate::NewMessage>,
    ) -> $crate::StoreResult<Vec<$crate::Message>> {
        let key = self.sql_conversation_sealing_key(conversation_id).await?;
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let next = Self::sql_lock_conversation(&mut transaction, conversation_id).await?;
        let stored = Self::insert_messages(&mut transaction, conversation_id, next, messages, &key).await?;
        Self::sql_finish(transaction).await?;
        Ok(stored)
    }

    async fn get_conversation(&self, conversation_id: &str) -> $crate::StoreResult<Option<$crate::Conversation>> {
        let row = sqlx::query("SELECT id, owner, title, model, classification, created_at, updated_at, key_id FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        match row {
            Some(row) => Ok(Some(self.sql_open_conversation(&row).await?)),
            None => Ok(None),
        }
    }

    async fn list_conversations(&self, owner: &str, limit: u32) -> $crate::StoreResult<Vec<$crate::Conversation>> {
        let rows = sqlx::query(
            "SELECT id, owner, title, model, classification, created_at, updated_at, key_id FROM conversations
             WHERE owner = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        self.sql_open_conversations(&rows).await
    }

    async fn list_messages(&self, conversation_id: &str) -> $crate::StoreResult<Vec<$crate::Message>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, seq, role, content, metadata, created_at, key_id FROM messages
             WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        self.sql_open_messages(&rows).await
    }

    async fn record_requests(&self, records: &[$crate::RequestRecord]) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        for record in records {
            sqlx::query(
                "INSERT INTO request_records (request_id, at, actor, route, model, model_sha256,
                     prompt_tokens, completion_tokens, latency_ms, status, error_code,
                     agency_id, key_id, cost_micros)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&record.request_id)
            .bind(record.at)
            .bind(&record.actor)
            .bind(&record.route)
            .bind(&record.model)
            .bind(&record.model_sha256)
            .bind(record.prompt_tokens)
            .bind(record.completion_tokens)
            .bind(record.latency_ms)
            .bind(record.status)
            .bind(&record.error_code)
            .bind(&record.agency_id)
            .bind(&record.key_id)
            .bind(record.cost_micros)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        }
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn list_request_records(&self, limit: u32) -> $crate::StoreResult<Vec<$crate::RequestRecord>> {
        let rows = sqlx::query(
            "SELECT request_id, at, actor, route, model, model_sha256, prompt_tokens,
                    completion_tokens, latency_ms, status, error_code, agency_id, key_id, cost_micros
             FROM request_records ORDER BY at DESC, request_id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_request_record_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

    };
}
