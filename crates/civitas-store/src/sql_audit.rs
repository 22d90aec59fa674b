//! The SQL of [`AuditStore`](crate::AuditStore), shared by both
//! databases; expanded by [`impl_sql_store!`](crate::impl_sql_store).

/// Implements [`AuditStore`](crate::AuditStore) for `$store`, and
/// `sql_finish`, the commit every change goes through (it writes the
/// pending audit records first).
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_audit_store {
    ($store:ident, $db:ty, $row:ty) => {
fn sql_audit_from_row(row: &$row) -> Result<$crate::civitas_audit::Record, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("audit record: {what}").into());
    let hash = |column: &str| -> Result<$crate::civitas_audit::Hash, sqlx::Error> {
        let text: String = sqlx::Row::try_get(row, column)?;
        $crate::civitas_audit::record::hex_hash::from_hex(&text).ok_or_else(|| bad(column))
    };
    let actor_kind: String = sqlx::Row::try_get(row, "actor_kind")?;
    let outcome: String = sqlx::Row::try_get(row, "outcome")?;
    let details: String = sqlx::Row::try_get(row, "details")?;
    let seq: i64 = sqlx::Row::try_get(row, "seq")?;
    Ok($crate::civitas_audit::Record {
        seq: u64::try_from(seq).map_err(|_| bad("seq"))?,
        at: sqlx::Row::try_get(row, "at")?,
        actor_kind: $crate::civitas_audit::ActorKind::parse(&actor_kind).ok_or_else(|| bad("actor_kind"))?,
        actor_id: sqlx::Row::try_get(row, "actor_id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        action: sqlx::Row::try_get(row, "action")?,
        target: sqlx::Row::try_get(row, "target")?,
        outcome: $crate::civitas_audit::Outcome::parse(&outcome).ok_or_else(|| bad("outcome"))?,
        source_address: sqlx::Row::try_get(row, "source_address")?,
        user_agent: sqlx::Row::try_get(row, "user_agent")?,
        request_id: sqlx::Row::try_get(row, "request_id")?,
        details: $crate::serde_json::from_str(&details).map_err(|_| bad("details"))?,
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
    })
}

fn sql_checkpoint_from_row(row: &$row) -> Result<$crate::civitas_audit::Checkpoint, sqlx::Error> {
    let root: String = sqlx::Row::try_get(row, "root_hash")?;
    let size: i64 = sqlx::Row::try_get(row, "tree_size")?;
    Ok($crate::civitas_audit::Checkpoint {
        tree_size: u64::try_from(size).unwrap_or_default(),
        root_hash: $crate::civitas_audit::record::hex_hash::from_hex(&root)
            .ok_or_else(|| sqlx::Error::Decode("checkpoint root".into()))?,
        at: sqlx::Row::try_get(row, "at")?,
        key_id: sqlx::Row::try_get(row, "key_id")?,
        signature: sqlx::Row::try_get(row, "signature")?,
    })
}

const SQL_AUDIT_COLUMNS: &str = "seq, at, actor_kind, actor_id, agency_id, action, target, outcome,
    source_address, user_agent, request_id, details, prev_hash, hash";

impl $store {
    /// Chains `entries` after the head of the log, inside `transaction`
    /// (which then holds the head's lock until it ends).
    async fn sql_append_audit(
        transaction: &mut sqlx::Transaction<'_, $db>,
        entries: Vec<$crate::civitas_audit::Entry>,
    ) -> $crate::StoreResult<Vec<$crate::civitas_audit::Record>> {
        use chrono::SubsecRound;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        let (seq, hash): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        let mut seq = u64::try_from(seq).unwrap_or_default();
        let mut prev = $crate::civitas_audit::record::hex_hash::from_hex(&hash)
            .ok_or_else(|| $crate::StoreError::Invalid("the audit head is unreadable".to_owned()))?;
        let mut records = Vec::with_capacity(entries.len());
        for mut entry in entries {
            entry.at = entry.at.trunc_subsecs(6);
            if !entry.details.is_object() {
                return Err($crate::StoreError::Invalid("audit details must be an object".to_owned()));
            }
            seq += 1;
            let record = $crate::civitas_audit::Record::chain(seq, entry, prev);
            for text in [&record.actor_id, &record.action] {
                $crate::check_text("audit record", text)?;
            }
            prev = record.hash;
            records.push(record);
        }
        // Many rows per statement: a group commit pays one round trip per
        // chunk, not per record (14 values a row, well under the limits of
        // both databases).
        for chunk in records.chunks(64) {
            let mut insert = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO audit_records ({SQL_AUDIT_COLUMNS}) "));
            insert.push_values(chunk, |mut row, record| {
                row.push_bind(record.seq as i64)
                    .push_bind(record.at)
                    .push_bind(record.actor_kind.as_str())
                    .push_bind(record.actor_id.clone())
                    .push_bind(record.agency_id.clone())
                    .push_bind(record.action.clone())
                    .push_bind(record.target.clone())
                    .push_bind(record.outcome.as_str())
                    .push_bind(record.source_address.clone())
                    .push_bind(record.user_agent.clone())
                    .push_bind(record.request_id.clone())
                    .push_bind($crate::civitas_audit::record::canonical_json(&record.details))
                    .push_bind($crate::civitas_audit::record::hex_hash::to_hex(&record.prev_hash))
                    .push_bind($crate::civitas_audit::record::hex_hash::to_hex(&record.hash));
            });
            insert
                .build()
                .execute(&mut **transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq as i64)
            .bind($crate::civitas_audit::record::hex_hash::to_hex(&prev))
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        $crate::audit::appended(started.elapsed().as_secs_f64());
        Ok(records)
    }

    /// Commits `transaction` with the audit records pending for this
    /// action written in it: both or neither.
    async fn sql_finish(mut transaction: sqlx::Transaction<'_, $db>) -> $crate::StoreResult<()> {
        let pending = $crate::audit::take_pending();
        Self::sql_append_audit(&mut transaction, pending).await?;
        transaction.commit().await.map_err(sql_unavailable)
    }
}

#[async_trait::async_trait]
impl $crate::AuditStore for $store {
    async fn append_audit(&self, entries: Vec<$crate::civitas_audit::Entry>) -> $crate::StoreResult<Vec<$crate::civitas_audit::Record>> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let records = Self::sql_append_audit(&mut transaction, entries).await?;
        transaction.commit().await.map_err(sql_unavailable)?;
        Ok(records)
    }

    async fn audit_records(&self, from_seq: u64, limit: u32) -> $crate::StoreResult<Vec<$crate::civitas_audit::Record>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_AUDIT_COLUMNS} FROM audit_records WHERE seq >= $1 ORDER BY seq LIMIT $2"
        ))
        .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_audit_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn search_audit(
        &self,
        filter: &$crate::AuditFilter,
        limit: u32,
    ) -> $crate::StoreResult<Vec<$crate::civitas_audit::Record>> {
        // Every condition is a fixed text; the values are bound.
        let mut conditions = Vec::new();
        let mut index = 0;
        let mut next = || {
            index += 1;
            format!("${index}")
        };
        if filter.since.is_some() {
            conditions.push(format!("at >= {}", next()));
        }
        if filter.until.is_some() {
            conditions.push(format!("at < {}", next()));
        }
        if filter.actor_id.is_some() {
            conditions.push(format!("actor_id = {}", next()));
        }
        if filter.agency_id.is_some() {
            conditions.push(format!("agency_id = {}", next()));
        }
        if filter.action.is_some() {
            conditions.push(format!("action = {}", next()));
        }
        if filter.outcome.is_some() {
            conditions.push(format!("outcome = {}", next()));
        }
        if filter.before_seq.is_some() {
            conditions.push(format!("seq < {}", next()));
        }
        if filter.request_id.is_some() {
            conditions.push(format!("request_id = {}", next()));
        }
        if filter.target_contains.is_some() {
            conditions.push(format!("target LIKE {} ESCAPE '\\'", next()));
        }
        let limit_param = next();
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {SQL_AUDIT_COLUMNS} FROM audit_records {clause} ORDER BY seq DESC LIMIT {limit_param}"
        );
        let mut query = sqlx::query(&sql);
        if let Some(since) = filter.since {
            query = query.bind(since);
        }
        if let Some(until) = filter.until {
            query = query.bind(until);
        }
        for value in [&filter.actor_id, &filter.agency_id, &filter.action, &filter.outcome]
            .into_iter()
            .flatten()
        {
            query = query.bind(value.clone());
        }
        if let Some(before) = filter.before_seq {
            query = query.bind(i64::try_from(before).unwrap_or(i64::MAX));
        }
        if let Some(request_id) = &filter.request_id {
            query = query.bind(request_id.clone());
        }
        if let Some(text) = &filter.target_contains {
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for character in text.chars() {
                if matches!(character, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(character);
            }
            pattern.push('%');
            query = query.bind(pattern);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_audit_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }

    async fn audit_head(&self) -> $crate::StoreResult<(u64, $crate::civitas_audit::Hash)> {
        let (seq, hash): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        let hash = $crate::civitas_audit::record::hex_hash::from_hex(&hash)
            .ok_or_else(|| $crate::StoreError::Invalid("the audit head is unreadable".to_owned()))?;
        Ok((u64::try_from(seq).unwrap_or_default(), hash))
    }

    async fn add_checkpoint(&self, checkpoint: &$crate::civitas_audit::Checkpoint) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let added = sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, at, key_id, signature)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(i64::try_from(checkpoint.tree_size).unwrap_or(i64::MAX))
        .bind($crate::civitas_audit::record::hex_hash::to_hex(&checkpoint.root_hash))
        .bind(checkpoint.at)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.signature)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?
        .rows_affected()
            > 0;
        if added {
            Self::sql_finish(transaction).await?;
        } else {
            transaction.commit().await.map_err(sql_unavailable)?;
        }
        Ok(added)
    }

    async fn checkpoints(&self) -> $crate::StoreResult<Vec<$crate::civitas_audit::Checkpoint>> {
        let rows = sqlx::query(
            "SELECT tree_size, root_hash, at, key_id, signature FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        rows.iter()
            .map(sql_checkpoint_from_row)
            .collect::<Result<_, _>>()
            .map_err(sql_unavailable)
    }
}
    };
}
