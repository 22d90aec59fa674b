//! SQLite implementation of [`Store`]: the embedded default.
//!
//! One file in the data directory, WAL journal, foreign keys on, a busy
//! timeout so that concurrent writers wait instead of failing. Migrations in
//! `migrations/` are embedded in the binary and applied by [`SqliteStore::open`].

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use civitas_store::{
    check_text, new_id, Conversation, Message, NewConversation, NewMessage, RequestRecord, Store, StoreError,
    StoreResult,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`)
    /// and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("database.url: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations; safe to run again.
    pub async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|error| StoreError::Migration(error.to_string()))
    }

    async fn insert_messages(
        transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        conversation_id: &str,
        first_seq: i64,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>> {
        let mut stored = Vec::with_capacity(messages.len());
        for (offset, message) in messages.into_iter().enumerate() {
            check_text("message content", &message.content)?;
            let row = Message {
                id: new_id(),
                conversation_id: conversation_id.to_owned(),
                seq: first_seq + offset as i64,
                role: message.role,
                content: message.content,
                metadata: message.metadata,
                created_at: Utc::now(),
            };
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, seq, role, content, metadata, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&row.id)
            .bind(&row.conversation_id)
            .bind(row.seq)
            .bind(&row.role)
            .bind(&row.content)
            .bind(&row.metadata)
            .bind(row.created_at)
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?;
            stored.push(row);
        }
        Ok(stored)
    }
}

fn conversation_from_row(row: &SqliteRow) -> Result<Conversation, sqlx::Error> {
    Ok(Conversation {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        title: row.try_get("title")?,
        model: row.try_get("model")?,
        created_at: row.try_get::<DateTime<Utc>, _>("created_at")?,
    })
}

fn message_from_row(row: &SqliteRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        seq: row.try_get("seq")?,
        role: row.try_get("role")?,
        content: row.try_get("content")?,
        metadata: row.try_get("metadata")?,
        created_at: row.try_get("created_at")?,
    })
}

fn request_record_from_row(row: &SqliteRow) -> Result<RequestRecord, sqlx::Error> {
    Ok(RequestRecord {
        request_id: row.try_get("request_id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        route: row.try_get("route")?,
        model: row.try_get("model")?,
        model_sha256: row.try_get("model_sha256")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        latency_ms: row.try_get("latency_ms")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn create_conversation(
        &self,
        conversation: NewConversation,
        messages: Vec<NewMessage>,
    ) -> StoreResult<(Conversation, Vec<Message>)> {
        if let Some(title) = &conversation.title {
            check_text("title", title)?;
        }
        let row = Conversation {
            id: new_id(),
            owner: conversation.owner,
            title: conversation.title,
            model: conversation.model,
            created_at: Utc::now(),
        };
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO conversations (id, owner, title, model, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.id)
        .bind(&row.owner)
        .bind(&row.title)
        .bind(&row.model)
        .bind(row.created_at)
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        let stored = Self::insert_messages(&mut transaction, &row.id, 0, messages).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok((row, stored))
    }

    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>> {
        // BEGIN IMMEDIATE semantics: the first statement writes, so two
        // appenders cannot read the same next sequence number.
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let touched = sqlx::query("UPDATE conversations SET id = id WHERE id = $1")
            .bind(conversation_id)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable)?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "conversation" });
        }
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = $1")
                .bind(conversation_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(unavailable)?;
        let stored = Self::insert_messages(&mut transaction, conversation_id, next, messages).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(stored)
    }

    async fn get_conversation(&self, conversation_id: &str) -> StoreResult<Option<Conversation>> {
        let row = sqlx::query("SELECT id, owner, title, model, created_at FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref()
            .map(conversation_from_row)
            .transpose()
            .map_err(unavailable)
    }

    async fn list_conversations(&self, owner: &str, limit: u32) -> StoreResult<Vec<Conversation>> {
        let rows = sqlx::query(
            "SELECT id, owner, title, model, created_at FROM conversations
             WHERE owner = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(conversation_from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    async fn list_messages(&self, conversation_id: &str) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, seq, role, content, metadata, created_at FROM messages
             WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    async fn record_request(&self, record: &RequestRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO request_records (request_id, at, actor, route, model, model_sha256,
                 prompt_tokens, completion_tokens, latency_ms, status, error_code)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn list_request_records(&self, limit: u32) -> StoreResult<Vec<RequestRecord>> {
        let rows = sqlx::query(
            "SELECT request_id, at, actor, route, model, model_sha256, prompt_tokens,
                    completion_tokens, latency_ms, status, error_code
             FROM request_records ORDER BY at DESC, request_id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(request_record_from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
