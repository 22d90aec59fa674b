//! The SQL of [`BreakGlassStore`](crate::BreakGlassStore), shared by both
//! databases; expanded by [`impl_sql_store!`](crate::impl_sql_store).

/// Implements [`BreakGlassStore`](crate::BreakGlassStore) for `$store`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_break_glass_store {
    ($store:ident, $db:ty, $row:ty) => {
        const SQL_BREAK_GLASS_COLUMNS: &str =
            "id, agency_id, requested_by, subject_id, conversation_id, justification, \
     minutes, status, decided_by, decided_at, expires_at, created_at, reads, last_read_at";

        fn sql_break_glass_from_row(row: &$row) -> Result<$crate::BreakGlass, sqlx::Error> {
            let status: String = sqlx::Row::try_get(row, "status")?;
            Ok($crate::BreakGlass {
                id: sqlx::Row::try_get(row, "id")?,
                agency_id: sqlx::Row::try_get(row, "agency_id")?,
                requested_by: sqlx::Row::try_get(row, "requested_by")?,
                subject_id: sqlx::Row::try_get(row, "subject_id")?,
                conversation_id: sqlx::Row::try_get(row, "conversation_id")?,
                justification: sqlx::Row::try_get(row, "justification")?,
                minutes: sqlx::Row::try_get(row, "minutes")?,
                status: $crate::BreakGlassStatus::parse(&status)
                    .ok_or_else(|| sqlx::Error::Decode(format!("break-glass status `{status}`").into()))?,
                decided_by: sqlx::Row::try_get(row, "decided_by")?,
                decided_at: sqlx::Row::try_get(row, "decided_at")?,
                expires_at: sqlx::Row::try_get(row, "expires_at")?,
                created_at: sqlx::Row::try_get(row, "created_at")?,
                reads: sqlx::Row::try_get(row, "reads")?,
                last_read_at: sqlx::Row::try_get(row, "last_read_at")?,
            })
        }

        impl $store {
            /// Takes the row's write lock (and SQLite's) before anything is read.
            async fn sql_lock_break_glass(
                transaction: &mut sqlx::Transaction<'_, $db>,
                id: &str,
            ) -> $crate::StoreResult<()> {
                sqlx::query("UPDATE break_glass SET reads = reads WHERE id = $1")
                    .bind(id)
                    .execute(&mut **transaction)
                    .await
                    .map_err(sql_unavailable)?;
                Ok(())
            }

            /// Request `id` (of `agency_id` when given).
            async fn sql_break_glass_one(
                executor: impl sqlx::Executor<'_, Database = $db>,
                id: &str,
                agency_id: Option<&str>,
            ) -> $crate::StoreResult<Option<$crate::BreakGlass>> {
                sqlx::query(&format!(
                    "SELECT {SQL_BREAK_GLASS_COLUMNS} FROM break_glass
                     WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR agency_id = $2)"
                ))
                .bind(id)
                .bind(agency_id)
                .fetch_optional(executor)
                .await
                .map_err(sql_unavailable)?
                .map(|row| sql_break_glass_from_row(&row))
                .transpose()
                .map_err(sql_unavailable)
            }

            async fn sql_break_glass_where(
                executor: impl sqlx::Executor<'_, Database = $db>,
                condition: &str,
                value: &str,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::BreakGlass>> {
                // `condition` is one of the fixed texts of the callers.
                sqlx::query(&format!(
                    "SELECT {SQL_BREAK_GLASS_COLUMNS} FROM break_glass WHERE {condition} = $1
             ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(value)
                .bind(i64::from(limit))
                .fetch_all(executor)
                .await
                .map_err(sql_unavailable)?
                .iter()
                .map(sql_break_glass_from_row)
                .collect::<Result<_, _>>()
                .map_err(sql_unavailable)
            }
        }

        #[async_trait::async_trait]
        impl $crate::BreakGlassStore for $store {
            async fn create_break_glass(
                &self,
                request: $crate::NewBreakGlass,
            ) -> $crate::StoreResult<$crate::BreakGlass> {
                $crate::check_text("justification", &request.justification)?;
                let now = $crate::now();
                let grant = $crate::BreakGlass {
                    id: $crate::new_id(),
                    agency_id: request.agency_id,
                    requested_by: request.requested_by,
                    subject_id: request.subject_id,
                    conversation_id: request.conversation_id,
                    justification: request.justification,
                    minutes: request.minutes,
                    status: if request.open_now {
                        $crate::BreakGlassStatus::Approved
                    } else {
                        $crate::BreakGlassStatus::Pending
                    },
                    decided_by: None,
                    decided_at: request.open_now.then_some(now),
                    expires_at: request
                        .open_now
                        .then(|| now + chrono::Duration::minutes(request.minutes)),
                    created_at: now,
                    reads: 0,
                    last_read_at: None,
                };
                let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
                sqlx::query(&format!(
                    "INSERT INTO break_glass ({SQL_BREAK_GLASS_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(&grant.id)
                .bind(&grant.agency_id)
                .bind(&grant.requested_by)
                .bind(&grant.subject_id)
                .bind(&grant.conversation_id)
                .bind(&grant.justification)
                .bind(grant.minutes)
                .bind(grant.status.as_str())
                .bind(&grant.decided_by)
                .bind(grant.decided_at)
                .bind(grant.expires_at)
                .bind(grant.created_at)
                .bind(grant.reads)
                .bind(grant.last_read_at)
                .execute(&mut *transaction)
                .await
                .map_err(|error| sql_write_error(error, "break-glass request"))?;
                Self::sql_finish(transaction).await?;
                Ok(grant)
            }

            async fn decide_break_glass(
                &self,
                agency_id: &str,
                id: &str,
                decided_by: &str,
                approve: bool,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Option<$crate::BreakGlass>> {
                let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
                // Writing first takes SQLite's write lock at once: a read
                // followed by a write could fail if another connection wrote
                // in between.
                Self::sql_lock_break_glass(&mut transaction, id).await?;
                let Some(mut grant) =
                    Self::sql_break_glass_one(&mut *transaction, id, Some(agency_id)).await?
                else {
                    return Ok(None);
                };
                if grant.status != $crate::BreakGlassStatus::Pending {
                    return Ok(None);
                }
                grant.status = if approve {
                    $crate::BreakGlassStatus::Approved
                } else {
                    $crate::BreakGlassStatus::Refused
                };
                grant.decided_by = Some(decided_by.to_owned());
                grant.decided_at = Some(at);
                grant.expires_at = approve.then(|| at + chrono::Duration::minutes(grant.minutes));
                // Only a request still pending is decided (two approvers racing:
                // the second finds it decided).
                let changed = sqlx::query(
                    "UPDATE break_glass SET status = $2, decided_by = $3, decided_at = $4, expires_at = $5
             WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(grant.status.as_str())
                .bind(decided_by)
                .bind(at)
                .bind(grant.expires_at)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
                if changed.rows_affected() == 0 {
                    return Ok(None);
                }
                Self::sql_finish(transaction).await?;
                Ok(Some(grant))
            }

            async fn get_break_glass(
                &self,
                agency_id: &str,
                id: &str,
            ) -> $crate::StoreResult<Option<$crate::BreakGlass>> {
                Self::sql_break_glass_one(&self.pool, id, Some(agency_id)).await
            }

            async fn list_break_glass(
                &self,
                agency_id: &str,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::BreakGlass>> {
                Self::sql_break_glass_where(&self.pool, "agency_id", agency_id, limit).await
            }

            async fn break_glass_about(
                &self,
                subject_id: &str,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::BreakGlass>> {
                Self::sql_break_glass_where(&self.pool, "subject_id", subject_id, limit).await
            }

            async fn note_break_glass_read(
                &self,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<bool> {
                let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
                Self::sql_lock_break_glass(&mut transaction, id).await?;
                let open = Self::sql_break_glass_one(&mut *transaction, id, None)
                    .await?
                    .is_some_and(|grant| grant.is_open(at));
                if !open {
                    return Ok(false);
                }
                sqlx::query("UPDATE break_glass SET reads = reads + 1, last_read_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&mut *transaction)
                    .await
                    .map_err(sql_unavailable)?;
                Self::sql_finish(transaction).await?;
                Ok(true)
            }
        }
    };
}
