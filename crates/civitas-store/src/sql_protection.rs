//! The SQL of [`DataProtectionStore`](crate::DataProtectionStore) and the
//! sealing of content with data keys, shared by both databases; expanded by
//! [`impl_sql_store!`](crate::impl_sql_store). `$store` has a
//! `keys: Arc<Keyring>` field.

/// Implements [`DataProtectionStore`](crate::DataProtectionStore) for `$store`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_protection_store {
    ($store:ident, $db:ty, $row:ty) => {
fn sql_wrapped_key_from_row(row: &$row) -> Result<$crate::crypt::WrappedDataKey, sqlx::Error> {
    Ok($crate::crypt::WrappedDataKey {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        wrapped: sqlx::Row::try_get(row, "wrapped")?,
        master_key_id: sqlx::Row::try_get(row, "master_key_id")?,
    })
}

fn sql_data_key_info_from_row(row: &$row) -> Result<$crate::DataKeyInfo, sqlx::Error> {
    Ok($crate::DataKeyInfo {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        state: sqlx::Row::try_get(row, "state")?,
        master_key_id: sqlx::Row::try_get(row, "master_key_id")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
        ended_at: sqlx::Row::try_get(row, "ended_at")?,
        sealed_rows: sqlx::Row::try_get(row, "sealed_rows")?,
    })
}

fn sql_retention_rule_from_row(row: &$row) -> Result<$crate::RetentionRule, sqlx::Error> {
    Ok($crate::RetentionRule {
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        record_type: sqlx::Row::try_get(row, "record_type")?,
        days: sqlx::Row::try_get(row, "days")?,
        updated_at: sqlx::Row::try_get(row, "updated_at")?,
        updated_by: sqlx::Row::try_get(row, "updated_by")?,
    })
}

fn sql_legal_hold_from_row(row: &$row) -> Result<$crate::LegalHold, sqlx::Error> {
    Ok($crate::LegalHold {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        person_id: sqlx::Row::try_get(row, "person_id")?,
        matter: sqlx::Row::try_get(row, "matter")?,
        reason: sqlx::Row::try_get(row, "reason")?,
        created_by: sqlx::Row::try_get(row, "created_by")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
        released_by: sqlx::Row::try_get(row, "released_by")?,
        released_at: sqlx::Row::try_get(row, "released_at")?,
    })
}

const SQL_DATA_KEY_INFO: &str = "SELECT k.id, k.agency_id, k.state, k.master_key_id, k.created_at, k.ended_at,
        (SELECT COUNT(*) FROM messages m WHERE m.key_id = k.id)
        + (SELECT COUNT(*) FROM conversations c WHERE c.key_id = k.id AND c.title IS NOT NULL)
        + (SELECT COUNT(*) FROM documents d WHERE d.key_id = k.id)
        + (SELECT COUNT(*) FROM document_versions v WHERE v.key_id = k.id)
        + (SELECT COUNT(*) FROM chunks ch WHERE ch.key_id = k.id) AS sealed_rows
    FROM data_keys k";

const SQL_HOLD_COLUMNS: &str = "id, agency_id, person_id, matter, reason, created_by, created_at, released_by, released_at";

impl $store {
    /// The agency a conversation owner belongs to; '' when the owner is no
    /// person of this installation.
    async fn sql_owner_agency(&self, owner: &str) -> $crate::StoreResult<String> {
        let agency: Option<String> = sqlx::query_scalar("SELECT agency_id FROM people WHERE id = $1")
            .bind(owner)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(agency.unwrap_or_default())
    }

    /// The agency's active data key, created on first use. Looked up (and
    /// created, in its own transaction) before the caller's transaction
    /// starts: a key is never used before it is durably stored.
    async fn sql_sealing_key(
        &self,
        agency_id: &str,
    ) -> $crate::StoreResult<std::sync::Arc<$crate::crypt::DataKey>> {
        if let Some(key) = self.keys.active(agency_id) {
            return Ok(key);
        }
        let row = sqlx::query(
            "SELECT id, agency_id, wrapped, master_key_id FROM data_keys
             WHERE agency_id = $1 AND state = 'active' ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(agency_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let key = match row {
            Some(row) => self
                .keys
                .unwrap(&sql_wrapped_key_from_row(&row).map_err(sql_unavailable)?)?,
            None => {
                let (stored, key) = self.keys.new_data_key(agency_id)?;
                sqlx::query(
                    "INSERT INTO data_keys (id, agency_id, state, wrapped, master_key_id, created_at)
                     VALUES ($1, $2, 'active', $3, $4, $5)",
                )
                .bind(&stored.id)
                .bind(&stored.agency_id)
                .bind(&stored.wrapped)
                .bind(&stored.master_key_id)
                .bind($crate::now())
                .execute(&self.pool)
                .await
                .map_err(sql_unavailable)?;
                key
            }
        };
        self.keys.set_active(key.clone());
        Ok(key)
    }

    async fn sql_owner_sealing_key(
        &self,
        owner: &str,
    ) -> $crate::StoreResult<std::sync::Arc<$crate::crypt::DataKey>> {
        let agency = self.sql_owner_agency(owner).await?;
        self.sql_sealing_key(&agency).await
    }

    /// The active key of a conversation owner's agency.
    async fn sql_conversation_sealing_key(
        &self,
        conversation_id: &str,
    ) -> $crate::StoreResult<std::sync::Arc<$crate::crypt::DataKey>> {
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        let owner = owner.ok_or($crate::StoreError::NotFound { what: "conversation" })?;
        self.sql_owner_sealing_key(&owner).await
    }

    /// A data key by id, to open what it sealed.
    async fn sql_data_key(&self, key_id: &str) -> $crate::StoreResult<std::sync::Arc<$crate::crypt::DataKey>> {
        if let Some(key) = self.keys.cached(key_id) {
            return Ok(key);
        }
        let row = sqlx::query("SELECT id, agency_id, wrapped, master_key_id FROM data_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?
            .ok_or_else(|| $crate::StoreError::Key(format!("data key {key_id} is missing")))?;
        self.keys.unwrap(&sql_wrapped_key_from_row(&row).map_err(sql_unavailable)?)
    }

    /// Opens a field sealed with `key_id` (`None`: written before
    /// encryption, kept as it was).
    async fn sql_open_field(
        &self,
        key_id: Option<&str>,
        value: String,
        aad: &[u8],
    ) -> $crate::StoreResult<String> {
        match key_id {
            Some(key_id) => self.sql_data_key(key_id).await?.open(&value, aad),
            None => Ok(value),
        }
    }

    async fn sql_open_message(&self, row: &$row) -> $crate::StoreResult<$crate::Message> {
        let mut message = sql_message_from_row(row).map_err(sql_unavailable)?;
        let key_id: Option<String> = sqlx::Row::try_get(row, "key_id").map_err(sql_unavailable)?;
        let key_id = key_id.as_deref();
        let content = std::mem::take(&mut message.content);
        message.content = self
            .sql_open_field(key_id, content, &$crate::crypt::field_aad("messages", &message.id, "content"))
            .await?;
        if let Some(metadata) = message.metadata.take() {
            message.metadata = Some(
                self.sql_open_field(key_id, metadata, &$crate::crypt::field_aad("messages", &message.id, "metadata"))
                    .await?,
            );
        }
        Ok(message)
    }

    async fn sql_open_messages(&self, rows: &[$row]) -> $crate::StoreResult<Vec<$crate::Message>> {
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            messages.push(self.sql_open_message(row).await?);
        }
        Ok(messages)
    }

    async fn sql_open_conversation(&self, row: &$row) -> $crate::StoreResult<$crate::Conversation> {
        let mut conversation = sql_conversation_from_row(row).map_err(sql_unavailable)?;
        let key_id: Option<String> = sqlx::Row::try_get(row, "key_id").map_err(sql_unavailable)?;
        if let Some(title) = conversation.title.take() {
            conversation.title = Some(
                self.sql_open_field(
                    key_id.as_deref(),
                    title,
                    &$crate::crypt::field_aad("conversations", &conversation.id, "title"),
                )
                .await?,
            );
        }
        Ok(conversation)
    }

    async fn sql_open_conversations(&self, rows: &[$row]) -> $crate::StoreResult<Vec<$crate::Conversation>> {
        let mut conversations = Vec::with_capacity(rows.len());
        for row in rows {
            conversations.push(self.sql_open_conversation(row).await?);
        }
        Ok(conversations)
    }

    /// Refuses when a legal hold applies to `person_id` (inside the
    /// deleting transaction, so a hold placed meanwhile is seen).
    async fn sql_refuse_if_held(
        transaction: &mut sqlx::Transaction<'_, $db>,
        person_id: &str,
    ) -> $crate::StoreResult<()> {
        let matter: Option<String> = sqlx::query_scalar(
            "SELECT matter FROM legal_holds WHERE person_id = $1 AND released_at IS NULL
             ORDER BY created_at LIMIT 1",
        )
        .bind(person_id)
        .fetch_optional(&mut **transaction)
        .await
        .map_err(sql_unavailable)?;
        match matter {
            Some(matter) => Err($crate::StoreError::OnHold { matter }),
            None => Ok(()),
        }
    }

    /// One row that is not sealed with its agency's active key, re-sealed
    /// with it; `false` when it changed meanwhile (left for the next pass).
    async fn sql_reseal_row(
        &self,
        table: &'static str,
        id: &str,
        owner: &str,
        key_id: Option<String>,
        fields: Vec<(&'static str, Option<String>)>,
    ) -> $crate::StoreResult<bool> {
        let agency = match &key_id {
            Some(key_id) => self.sql_data_key(key_id).await?.agency_id.clone(),
            None => self.sql_owner_agency(owner).await?,
        };
        let active = self.sql_sealing_key(&agency).await?;
        let mut sealed = Vec::with_capacity(fields.len());
        for (field, value) in fields {
            let aad = $crate::crypt::field_aad(table, id, field);
            let value = match value {
                Some(value) => Some(active.seal(&self.sql_open_field(key_id.as_deref(), value, &aad).await?, &aad)?),
                None => None,
            };
            sealed.push(value);
        }
        let statement = match table {
            "messages" => "UPDATE messages SET content = $3, metadata = $4, key_id = $5
                           WHERE id = $1 AND (key_id = $2 OR (key_id IS NULL AND $2 IS NULL))",
            _ => "UPDATE conversations SET title = $3, key_id = $5
                  WHERE id = $1 AND (key_id = $2 OR (key_id IS NULL AND $2 IS NULL)) AND $4 IS NULL",
        };
        let mut values = sealed.into_iter();
        let done = sqlx::query(statement)
            .bind(id)
            .bind(&key_id)
            .bind(values.next().flatten())
            .bind(values.next().flatten())
            .bind(&active.id)
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait::async_trait]
impl $crate::DataProtectionStore for $store {
    async fn list_data_keys(&self) -> $crate::StoreResult<Vec<$crate::DataKeyInfo>> {
        let rows = sqlx::query(&format!("{SQL_DATA_KEY_INFO} ORDER BY k.created_at DESC, k.id DESC"))
            .fetch_all(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_data_key_info_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn rotate_data_key(&self, agency_id: &str) -> $crate::StoreResult<$crate::DataKeyInfo> {
        let (stored, key) = self.keys.new_data_key(agency_id)?;
        let now = $crate::now();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query("UPDATE data_keys SET state = 'previous', ended_at = $2 WHERE agency_id = $1 AND state = 'active'")
            .bind(agency_id)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO data_keys (id, agency_id, state, wrapped, master_key_id, created_at)
             VALUES ($1, $2, 'active', $3, $4, $5)",
        )
        .bind(&stored.id)
        .bind(&stored.agency_id)
        .bind(&stored.wrapped)
        .bind(&stored.master_key_id)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        self.keys.set_active(key);
        Ok($crate::DataKeyInfo {
            id: stored.id,
            agency_id: stored.agency_id,
            state: "active".to_owned(),
            master_key_id: stored.master_key_id,
            created_at: now,
            ended_at: None,
            sealed_rows: 0,
        })
    }

    async fn reencrypt(&self, batch: u32) -> $crate::StoreResult<u64> {
        // Rows sealed with neither an active key nor a destroyed one
        // (destroyed content stays unreadable), or not sealed at all.
        const STALE: &str = "(key_id IS NULL OR key_id NOT IN
            (SELECT id FROM data_keys WHERE state IN ('active', 'destroyed')))";
        let mut resealed = 0;
        let messages = sqlx::query(&format!(
            "SELECT m.id, m.content, m.metadata, m.key_id, c.owner FROM messages m
             JOIN conversations c ON c.id = m.conversation_id
             WHERE {} LIMIT $1",
            STALE.replace("key_id", "m.key_id")
        ))
        .bind(i64::from(batch))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        for row in &messages {
            let get = |column: &str| -> $crate::StoreResult<Option<String>> {
                sqlx::Row::try_get(row, column).map_err(sql_unavailable)
            };
            let id = get("id")?.unwrap_or_default();
            let owner = get("owner")?.unwrap_or_default();
            let fields = vec![("content", get("content")?), ("metadata", get("metadata")?)];
            if self.sql_reseal_row("messages", &id, &owner, get("key_id")?, fields).await? {
                resealed += 1;
            }
        }
        let left = u64::from(batch).saturating_sub(messages.len() as u64);
        if left > 0 {
            let titles = sqlx::query(&format!(
                "SELECT id, owner, title, key_id FROM conversations WHERE title IS NOT NULL AND {STALE} LIMIT $1"
            ))
            .bind(left as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_unavailable)?;
            for row in &titles {
                let get = |column: &str| -> $crate::StoreResult<Option<String>> {
                    sqlx::Row::try_get(row, column).map_err(sql_unavailable)
                };
                let id = get("id")?.unwrap_or_default();
                let owner = get("owner")?.unwrap_or_default();
                if self
                    .sql_reseal_row("conversations", &id, &owner, get("key_id")?, vec![("title", get("title")?)])
                    .await?
                {
                    resealed += 1;
                }
            }
            let left = left.saturating_sub(titles.len() as u64);
            if left > 0 {
                resealed += self.sql_reencrypt_knowledge(u32::try_from(left).unwrap_or(batch), STALE).await?;
            }
        }
        Ok(resealed)
    }

    async fn retire_data_keys(&self, ended_before: chrono::DateTime<chrono::Utc>) -> $crate::StoreResult<Vec<String>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let retired: Vec<String> = sqlx::query_scalar(
            "UPDATE data_keys SET state = 'retired', wrapped = NULL, ended_at = $2
             WHERE state = 'previous' AND ended_at < $1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.key_id = data_keys.id)
               AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.key_id = data_keys.id AND c.title IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.key_id = data_keys.id)
               AND NOT EXISTS (SELECT 1 FROM document_versions v WHERE v.key_id = data_keys.id)
               AND NOT EXISTS (SELECT 1 FROM chunks ch WHERE ch.key_id = data_keys.id)
             RETURNING id",
        )
        .bind(ended_before)
        .bind($crate::now())
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        self.keys.forget(&retired);
        Ok(retired)
    }

    async fn rewrap_data_keys(&self) -> $crate::StoreResult<u64> {
        let rows = sqlx::query(
            "SELECT id, agency_id, wrapped, master_key_id FROM data_keys
             WHERE wrapped IS NOT NULL AND master_key_id <> $1",
        )
        .bind(self.keys.master_key_id())
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut rewrapped = Vec::with_capacity(rows.len());
        for row in &rows {
            let stored = sql_wrapped_key_from_row(row).map_err(sql_unavailable)?;
            rewrapped.push((stored.master_key_id.clone(), self.keys.rewrap(&stored)?));
        }
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let mut count = 0;
        for (old_master, key) in &rewrapped {
            let done = sqlx::query(
                "UPDATE data_keys SET wrapped = $2, master_key_id = $3
                 WHERE id = $1 AND master_key_id = $4 AND wrapped IS NOT NULL",
            )
            .bind(&key.id)
            .bind(&key.wrapped)
            .bind(&key.master_key_id)
            .bind(old_master)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
            count += done.rows_affected();
        }
        Self::sql_finish(transaction).await?;
        Ok(count)
    }

    async fn destroy_data_keys(&self, agency_id: &str) -> $crate::StoreResult<Vec<String>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let destroyed: Vec<String> = sqlx::query_scalar(
            "UPDATE data_keys SET state = 'destroyed', wrapped = NULL, ended_at = $2
             WHERE agency_id = $1 AND state <> 'destroyed' RETURNING id",
        )
        .bind(agency_id)
        .bind($crate::now())
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        self.keys.forget(&destroyed);
        Ok(destroyed)
    }

    async fn set_clearance(&self, person_id: &str, clearance: Option<&str>) -> $crate::StoreResult<bool> {
        if let Some(level) = clearance {
            $crate::check_text("clearance", level)?;
        }
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let done = sqlx::query("UPDATE people SET clearance = $2 WHERE id = $1")
            .bind(person_id)
            .bind(clearance)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query("UPDATE identity_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_retention_rules(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::RetentionRule>> {
        let rows = sqlx::query(
            "SELECT agency_id, record_type, days, updated_at, updated_by FROM retention_rules
             WHERE agency_id = $1 ORDER BY record_type",
        )
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_retention_rule_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn all_retention_rules(&self) -> $crate::StoreResult<Vec<$crate::RetentionRule>> {
        let rows = sqlx::query(
            "SELECT agency_id, record_type, days, updated_at, updated_by FROM retention_rules
             ORDER BY agency_id, record_type",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_retention_rule_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn put_retention_rule(&self, rule: &$crate::RetentionRule) -> $crate::StoreResult<()> {
        if !$crate::RETENTION_RECORD_TYPES.contains(&rule.record_type.as_str()) {
            return Err($crate::StoreError::Invalid(format!(
                "record_type must be one of {}",
                $crate::RETENTION_RECORD_TYPES.join(", ")
            )));
        }
        if rule.days <= 0 {
            return Err($crate::StoreError::Invalid("days must be at least 1".to_owned()));
        }
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO retention_rules (agency_id, record_type, days, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agency_id, record_type) DO UPDATE SET days = excluded.days,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&rule.agency_id)
        .bind(&rule.record_type)
        .bind(rule.days)
        .bind(rule.updated_at)
        .bind(&rule.updated_by)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await
    }

    async fn delete_retention_rule(&self, agency_id: &str, record_type: &str) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let done = sqlx::query("DELETE FROM retention_rules WHERE agency_id = $1 AND record_type = $2")
            .bind(agency_id)
            .bind(record_type)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_conversations(
        &self,
        agency_id: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> $crate::StoreResult<Vec<$crate::PurgedConversation>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // One statement: the messages go with their conversation (ON
        // DELETE CASCADE), and a hold placed meanwhile is seen.
        let rows = sqlx::query(
            "DELETE FROM conversations WHERE id IN (
                 SELECT c.id FROM conversations c JOIN people p ON p.id = c.owner
                 WHERE p.agency_id = $1 AND c.updated_at < $2
                   AND NOT EXISTS (SELECT 1 FROM legal_holds h
                                   WHERE h.person_id = c.owner AND h.released_at IS NULL)
                 ORDER BY c.updated_at LIMIT $3)
             RETURNING id, owner",
        )
        .bind(agency_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let purged = rows
            .iter()
            .map(|row| {
                Ok($crate::PurgedConversation {
                    id: sqlx::Row::try_get(row, "id")?,
                    owner: sqlx::Row::try_get(row, "owner")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(sql_unavailable)?;
        if purged.is_empty() {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(purged);
        }
        $crate::audit::add_pending_detail(
            "conversations",
            $crate::serde_json::json!(purged.iter().map(|c| &c.id).collect::<Vec<_>>()),
        );
        Self::sql_finish(transaction).await?;
        Ok(purged)
    }

    async fn purge_usage(&self, agency_id: &str, before: chrono::DateTime<chrono::Utc>) -> $crate::StoreResult<u64> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let done = sqlx::query(
            "DELETE FROM request_records WHERE agency_id = $1 AND at < $2
               AND NOT EXISTS (SELECT 1 FROM legal_holds h
                               WHERE h.person_id = request_records.actor AND h.released_at IS NULL)",
        )
        .bind(agency_id)
        .bind(before)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        if done.rows_affected() == 0 {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(0);
        }
        $crate::audit::add_pending_detail("records", $crate::serde_json::json!(done.rows_affected()));
        Self::sql_finish(transaction).await?;
        Ok(done.rows_affected())
    }

    async fn create_legal_hold(&self, hold: $crate::NewLegalHold) -> $crate::StoreResult<$crate::LegalHold> {
        $crate::check_text("matter", &hold.matter)?;
        $crate::check_text("reason", &hold.reason)?;
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let row = $crate::LegalHold {
            id: $crate::new_id(),
            agency_id: hold.agency_id,
            person_id: hold.person_id,
            matter: hold.matter,
            reason: hold.reason,
            created_by: hold.created_by,
            created_at: $crate::now(),
            released_by: None,
            released_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO legal_holds (id, agency_id, person_id, matter, reason, created_by, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS
                 (SELECT 1 FROM people WHERE id = $3 AND agency_id = $2)",
        )
        .bind(&row.id)
        .bind(&row.agency_id)
        .bind(&row.person_id)
        .bind(&row.matter)
        .bind(&row.reason)
        .bind(&row.created_by)
        .bind(row.created_at)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        if inserted.rows_affected() == 0 {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Err($crate::StoreError::NotFound { what: "person" });
        }
        Self::sql_finish(transaction).await?;
        Ok(row)
    }

    async fn release_legal_hold(
        &self,
        agency_id: &str,
        hold_id: &str,
        released_by: &str,
    ) -> $crate::StoreResult<Option<$crate::LegalHold>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let row = sqlx::query(&format!(
            "UPDATE legal_holds SET released_by = $3, released_at = $4
             WHERE id = $1 AND agency_id = $2 AND released_at IS NULL RETURNING {SQL_HOLD_COLUMNS}"
        ))
        .bind(hold_id)
        .bind(agency_id)
        .bind(released_by)
        .bind($crate::now())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = row else {
            transaction.rollback().await.map_err(sql_unavailable)?;
            return Ok(None);
        };
        let hold = sql_legal_hold_from_row(&row).map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(Some(hold))
    }

    async fn list_legal_holds(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::LegalHold>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_HOLD_COLUMNS} FROM legal_holds WHERE agency_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_legal_hold_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn active_holds(&self, person_id: &str) -> $crate::StoreResult<Vec<$crate::LegalHold>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_HOLD_COLUMNS} FROM legal_holds WHERE person_id = $1 AND released_at IS NULL
             ORDER BY created_at"
        ))
        .bind(person_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_legal_hold_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn erase_person(&self, person_id: &str, account: bool) -> $crate::StoreResult<$crate::ErasureReport> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // The write lock first (SQLite), and the person must exist.
        let exists = sqlx::query("UPDATE people SET status = status WHERE id = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if exists.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "person" });
        }
        Self::sql_refuse_if_held(&mut transaction, person_id).await?;
        let mut report = $crate::ErasureReport::default();
        report.messages = sqlx::query(
            "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE owner = $1)",
        )
        .bind(person_id)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?
        .rows_affected();
        report.conversations = sqlx::query("DELETE FROM conversations WHERE owner = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?
            .rows_affected();
        report.feedback = sqlx::query("DELETE FROM message_feedback WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?
            .rows_affected();
        sqlx::query("DELETE FROM person_preferences WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        // The person's own collections go with their documents, files and
        // passages (ON DELETE CASCADE); every index is told.
        let owned: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT d.id, d.collection_id FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE c.owner_kind = 'person' AND c.owner_id = $1 ORDER BY d.id",
        )
        .bind(person_id)
        .fetch_all(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        for (document, collection) in &owned {
            Self::sql_log_change(&mut transaction, *document, *collection, "remove").await?;
        }
        report.documents = owned.len() as u64;
        report.collections = sqlx::query("DELETE FROM collections WHERE owner_kind = 'person' AND owner_id = $1")
            .bind(person_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?
            .rows_affected();
        if account {
            sqlx::query(
                "UPDATE people SET email = $2, display_name = 'Erased account', status = 'disabled',
                     external_id = NULL, password_hash = NULL, totp_secret = NULL, totp_confirmed_at = NULL
                 WHERE id = $1",
            )
            .bind(person_id)
            .bind(format!("erased-{person_id}@invalid"))
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
            for statement in [
                "UPDATE api_keys SET revoked_at = $2 WHERE person_id = $1 AND revoked_at IS NULL",
                "UPDATE sessions SET revoked_at = $2 WHERE person_id = $1 AND revoked_at IS NULL",
            ] {
                sqlx::query(statement)
                    .bind(person_id)
                    .bind($crate::now())
                    .execute(&mut *transaction)
                    .await
                    .map_err(sql_unavailable)?;
            }
        sqlx::query("UPDATE identity_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
            report.account = true;
        }
        $crate::audit::add_pending_detail("removed", $crate::serde_json::json!(&report));
        Self::sql_finish(transaction).await?;
        Ok(report)
    }
}
    };
}
