//! The SQL of [`WorkspaceStore`](crate::WorkspaceStore), shared by both
//! databases; expanded by [`impl_sql_store!`](crate::impl_sql_store).

/// Implements [`WorkspaceStore`](crate::WorkspaceStore) for `$store`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_workspace_store {
    ($store:ident, $db:ty, $row:ty) => {
fn sql_feedback_from_row(row: &$row) -> Result<$crate::Feedback, sqlx::Error> {
    Ok($crate::Feedback {
        message_id: sqlx::Row::try_get(row, "message_id")?,
        conversation_id: sqlx::Row::try_get(row, "conversation_id")?,
        person_id: sqlx::Row::try_get(row, "person_id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        model: sqlx::Row::try_get(row, "model")?,
        rating: sqlx::Row::try_get(row, "rating")?,
        comment: sqlx::Row::try_get(row, "comment")?,
        updated_at: sqlx::Row::try_get(row, "updated_at")?,
    })
}

#[async_trait::async_trait]
impl $crate::WorkspaceStore for $store {
    async fn search_conversations(
        &self,
        owner: &str,
        query: &str,
        limit: u32,
    ) -> $crate::StoreResult<Vec<$crate::Conversation>> {
        $crate::check_text("query", query)?;
        // Titles and messages are sealed, so the search runs here, over
        // the owner's conversations from the most recently active, a page
        // at a time, until `limit` are found.
        const PAGE: i64 = 50;
        let needle = query.to_lowercase();
        let mut found = Vec::new();
        let mut offset = 0i64;
        while found.len() < limit as usize {
            let rows = sqlx::query(
                "SELECT id, owner, title, model, classification, created_at, updated_at, key_id
                 FROM conversations WHERE owner = $1 ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3",
            )
            .bind(owner)
            .bind(PAGE)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(sql_unavailable)?;
            offset += PAGE;
            let last_page = (rows.len() as i64) < PAGE;
            let mut page = Vec::with_capacity(rows.len());
            for row in &rows {
                match self.sql_open_conversation(row).await {
                    Ok(conversation) => {
                        let in_title = conversation
                            .title
                            .as_deref()
                            .is_some_and(|title| title.to_lowercase().contains(&needle));
                        page.push((conversation, in_title));
                    }
                    // Shredded content matches nothing.
                    Err($crate::StoreError::Destroyed { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            // The messages are read only when a title did not settle it:
            // then the page's in one query, contents only (the metadata is
            // never searched).
            let wanted = limit as usize - found.len();
            let settled_by_titles = page.iter().take(wanted).all(|(_, in_title)| *in_title) && page.len() >= wanted;
            let mut mentioned = std::collections::HashSet::new();
            if !settled_by_titles {
                let messages = sqlx::query(
                    "SELECT m.id, m.conversation_id, m.content, m.key_id FROM messages m
                     WHERE m.conversation_id IN (SELECT id FROM conversations WHERE owner = $1
                         ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3)",
                )
                .bind(owner)
                .bind(PAGE)
                .bind(offset - PAGE)
                .fetch_all(&self.pool)
                .await
                .map_err(sql_unavailable)?;
                for message in &messages {
                    let field = |name: &str| -> $crate::StoreResult<Option<String>> {
                        sqlx::Row::try_get(message, name).map_err(sql_unavailable)
                    };
                    let conversation_id = field("conversation_id")?.unwrap_or_default();
                    if mentioned.contains(&conversation_id) {
                        continue;
                    }
                    let id = field("id")?.unwrap_or_default();
                    let aad = $crate::crypt::field_aad("messages", &id, "content");
                    let content = field("content")?.unwrap_or_default();
                    match self.sql_open_field(field("key_id")?.as_deref(), content, &aad).await {
                        Ok(content) if content.to_lowercase().contains(&needle) => {
                            mentioned.insert(conversation_id);
                        }
                        Ok(_) | Err($crate::StoreError::Destroyed { .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            for (conversation, in_title) in page {
                if in_title || mentioned.contains(&conversation.id) {
                    found.push(conversation);
                    if found.len() >= limit as usize {
                        break;
                    }
                }
            }
            if last_page {
                break;
            }
        }
        Ok(found)
    }

async fn set_classification(
    &self,
    owner: &str,
    conversation_id: &str,
    level: &str,
) -> $crate::StoreResult<bool> {
    $crate::check_text("classification", level)?;
    let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
    let done = sqlx::query("UPDATE conversations SET classification = $3 WHERE id = $1 AND owner = $2")
        .bind(conversation_id)
        .bind(owner)
        .bind(level)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
    Self::sql_finish(transaction).await?;
    Ok(done.rows_affected() > 0)
}

    async fn rename_conversation(
        &self,
        owner: &str,
        conversation_id: &str,
        title: &str,
    ) -> $crate::StoreResult<bool> {
        $crate::check_text("title", title)?;
        let key = self.sql_owner_sealing_key(owner).await?;
        let sealed = key.seal(title, &$crate::crypt::field_aad("conversations", conversation_id, "title"))?;
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let done = sqlx::query(
            "UPDATE conversations SET title = $3, updated_at = $4, key_id = $5 WHERE id = $1 AND owner = $2",
        )
            .bind(conversation_id)
            .bind(owner)
            .bind(sealed)
            .bind($crate::now())
            .bind(&key.id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_conversation(&self, owner: &str, conversation_id: &str) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // The write lock first (SQLite), then the legal-hold check.
        let owned = sqlx::query("UPDATE conversations SET updated_at = updated_at WHERE id = $1 AND owner = $2")
            .bind(conversation_id)
            .bind(owner)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if owned.rows_affected() == 0 {
            return Ok(false);
        }
        Self::sql_refuse_if_held(&mut transaction, owner).await?;
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
            .bind(conversation_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query("DELETE FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(true)
    }

    async fn replace_messages_from(
        &self,
        conversation_id: &str,
        from_seq: i64,
        messages: Vec<$crate::NewMessage>,
    ) -> $crate::StoreResult<Vec<$crate::Message>> {
        let key = self.sql_conversation_sealing_key(conversation_id).await?;
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let next = Self::sql_lock_conversation(&mut transaction, conversation_id).await?;
        if from_seq < 0 || from_seq > next {
            return Err($crate::StoreError::Invalid(format!(
                "message {from_seq} is not in the conversation"
            )));
        }
        if from_seq < next {
            // Replacing removes messages: not while their owner is on hold.
            let owner: String = sqlx::query_scalar("SELECT owner FROM conversations WHERE id = $1")
                .bind(conversation_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
            Self::sql_refuse_if_held(&mut transaction, &owner).await?;
        }
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND seq >= $2")
            .bind(conversation_id)
            .bind(from_seq)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let stored = Self::insert_messages(&mut transaction, conversation_id, from_seq, messages, &key).await?;
        Self::sql_finish(transaction).await?;
        Ok(stored)
    }

    async fn get_message(&self, message_id: &str) -> $crate::StoreResult<Option<$crate::Message>> {
        let row = sqlx::query(
            "SELECT id, conversation_id, seq, role, content, metadata, created_at, key_id FROM messages WHERE id = $1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        match row {
            Some(row) => Ok(Some(self.sql_open_message(&row).await?)),
            None => Ok(None),
        }
    }

    async fn put_feedback(&self, feedback: &$crate::Feedback) -> $crate::StoreResult<()> {
        if let Some(comment) = &feedback.comment {
            $crate::check_text("comment", comment)?;
        }
        if !matches!(feedback.rating, -1 | 1) {
            return Err($crate::StoreError::Invalid("a rating is 1 or -1".to_owned()));
        }
        sqlx::query(
            "INSERT INTO message_feedback (message_id, person_id, conversation_id, agency_id, model,
                 rating, comment, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (message_id, person_id) DO UPDATE SET rating = excluded.rating,
                 comment = excluded.comment, updated_at = excluded.updated_at",
        )
        .bind(&feedback.message_id)
        .bind(&feedback.person_id)
        .bind(&feedback.conversation_id)
        .bind(&feedback.agency_id)
        .bind(&feedback.model)
        .bind(feedback.rating)
        .bind(&feedback.comment)
        .bind(feedback.updated_at)
        .execute(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn list_feedback(
        &self,
        person_id: &str,
        conversation_id: &str,
    ) -> $crate::StoreResult<Vec<$crate::Feedback>> {
        let rows = sqlx::query(
            "SELECT message_id, person_id, conversation_id, agency_id, model, rating, comment, updated_at
             FROM message_feedback WHERE person_id = $1 AND conversation_id = $2",
        )
        .bind(person_id)
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_feedback_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn get_preferences(&self, person_id: &str) -> $crate::StoreResult<$crate::Preferences> {
        let row = sqlx::query("SELECT language, default_model FROM person_preferences WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        let Some(row) = row else {
            return Ok($crate::Preferences::default());
        };
        Ok($crate::Preferences {
            language: sqlx::Row::try_get(&row, "language").map_err(sql_unavailable)?,
            default_model: sqlx::Row::try_get(&row, "default_model").map_err(sql_unavailable)?,
        })
    }

    async fn put_preferences(
        &self,
        person_id: &str,
        preferences: &$crate::Preferences,
    ) -> $crate::StoreResult<()> {
        sqlx::query(
            "INSERT INTO person_preferences (person_id, language, default_model, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (person_id) DO UPDATE SET language = excluded.language,
                 default_model = excluded.default_model, updated_at = excluded.updated_at",
        )
        .bind(person_id)
        .bind(&preferences.language)
        .bind(&preferences.default_model)
        .bind($crate::now())
        .execute(&self.pool)
        .await
        .map_err(|error| sql_write_error(error, "person"))?;
        Ok(())
    }

    async fn get_agency_rules(&self, agency_id: &str) -> $crate::StoreResult<Option<$crate::AgencyRules>> {
        let row = sqlx::query(
            "SELECT agency_id, text, version, updated_at, updated_by FROM agency_rules WHERE agency_id = $1",
        )
        .bind(agency_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let read = |row: &$row| -> Result<$crate::AgencyRules, sqlx::Error> {
            Ok($crate::AgencyRules {
                agency_id: sqlx::Row::try_get(row, "agency_id")?,
                text: sqlx::Row::try_get(row, "text")?,
                version: sqlx::Row::try_get(row, "version")?,
                updated_at: sqlx::Row::try_get(row, "updated_at")?,
                updated_by: sqlx::Row::try_get(row, "updated_by")?,
            })
        };
        read(&row).map(Some).map_err(sql_unavailable)
    }

    async fn put_agency_rules(&self, rules: &$crate::AgencyRules) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        $crate::check_text("rules", &rules.text)?;
        sqlx::query(
            "INSERT INTO agency_rules (agency_id, text, version, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agency_id) DO UPDATE SET text = excluded.text, version = excluded.version,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&rules.agency_id)
        .bind(&rules.text)
        .bind(&rules.version)
        .bind(rules.updated_at)
        .bind(&rules.updated_by)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "agency"))?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn accept_rules(
        &self,
        person_id: &str,
        agency_id: &str,
        version: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO rules_acceptances (person_id, version, agency_id, accepted_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (person_id, version) DO NOTHING",
        )
        .bind(person_id)
        .bind(version)
        .bind(agency_id)
        .bind(at)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "person"))?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn daily_usage(
        &self,
        owner: &$crate::UsageOwner,
        since: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<Vec<$crate::DailyUsage>> {
        let (column, value) = match owner {
            $crate::UsageOwner::Person(id) => ("actor", id),
            $crate::UsageOwner::Agency(id) => ("agency_id", id),
        };
        // The day in UTC: SQLite keeps times as text starting with the
        // date, PostgreSQL as timestamps.
        let day = if $crate::Store::backend(self) == "postgres" {
            "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        } else {
            "substr(at, 1, 10)"
        };
        // `column` and `day` are fixed texts above, never caller input.
        let rows = sqlx::query(&format!(
            "SELECT {day} AS day, model, COUNT(*) AS requests,
                 CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
                 CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens,
                 CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros
             FROM request_records WHERE {column} = $1 AND at >= $2 AND model IS NOT NULL
             GROUP BY {day}, model ORDER BY day, model"
        ))
        .bind(value)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let read = |row: &$row| -> Result<$crate::DailyUsage, sqlx::Error> {
            Ok($crate::DailyUsage {
                day: sqlx::Row::try_get(row, "day")?,
                model: sqlx::Row::try_get(row, "model")?,
                requests: sqlx::Row::try_get(row, "requests")?,
                prompt_tokens: sqlx::Row::try_get(row, "prompt_tokens")?,
                completion_tokens: sqlx::Row::try_get(row, "completion_tokens")?,
                cost_micros: sqlx::Row::try_get(row, "cost_micros")?,
            })
        };
        rows.iter().map(read).collect::<Result<_, _>>().map_err(sql_unavailable)
    }

    async fn rules_accepted_at(
        &self,
        person_id: &str,
        version: &str,
    ) -> $crate::StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        sqlx::query_scalar("SELECT accepted_at FROM rules_acceptances WHERE person_id = $1 AND version = $2")
            .bind(person_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)
    }
}
    };
}
