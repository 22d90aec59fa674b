//! The SQL of [`IdentityStore`](crate::IdentityStore), shared by SQLite and
//! PostgreSQL like the rest of `sql_impl.rs`. Expanded by
//! `impl_sql_store!`; relies on its `sql_unavailable`.

/// Implements [`IdentityStore`](crate::IdentityStore) for `$store`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_sql_identity_store {
    ($store:ident, $db:ty, $row:ty) => {
/// Maps unique and foreign-key violations to clear store errors.
fn sql_write_error(error: sqlx::Error, conflict: &str) -> $crate::StoreError {
    if let sqlx::Error::Database(database) = &error {
        if database.is_unique_violation() {
            return $crate::StoreError::Conflict(conflict.to_owned());
        }
        if database.is_foreign_key_violation() {
            return $crate::StoreError::Invalid("a referenced record does not exist".to_owned());
        }
    }
    sql_unavailable(error)
}

fn sql_json_list(value: &Option<Vec<String>>) -> Option<String> {
    value.as_ref().map(|items| $crate::encode_list(items))
}

fn sql_parse_list(value: Option<String>) -> Option<Vec<String>> {
    value.map(|text| $crate::decode_list(&text))
}

/// `$1, $2, ..., $n` starting after `skip` parameters.
fn sql_placeholders(count: usize, skip: usize) -> String {
    (1..=count).map(|n| format!("${}", n + skip)).collect::<Vec<_>>().join(", ")
}

fn sql_agency_from_row(row: &$row) -> Result<$crate::Agency, sqlx::Error> {
    Ok($crate::Agency {
        id: sqlx::Row::try_get(row, "id")?,
        slug: sqlx::Row::try_get(row, "slug")?,
        name: sqlx::Row::try_get(row, "name")?,
        parent_id: sqlx::Row::try_get(row, "parent_id")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
    })
}

fn sql_group_from_row(row: &$row) -> Result<$crate::Group, sqlx::Error> {
    Ok($crate::Group {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        name: sqlx::Row::try_get(row, "name")?,
        external_id: sqlx::Row::try_get(row, "external_id")?,
        models: Vec::new(),
        created_at: sqlx::Row::try_get(row, "created_at")?,
    })
}

const SQL_PERSON_COLUMNS: &str = "id, agency_id, email, display_name, kind, status, external_id, clearance, created_at";

fn sql_person_from_row(row: &$row) -> Result<$crate::Person, sqlx::Error> {
    Ok($crate::Person {
        id: sqlx::Row::try_get(row, "id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        email: sqlx::Row::try_get(row, "email")?,
        display_name: sqlx::Row::try_get(row, "display_name")?,
        kind: sqlx::Row::try_get(row, "kind")?,
        status: sqlx::Row::try_get(row, "status")?,
        external_id: sqlx::Row::try_get(row, "external_id")?,
        clearance: sqlx::Row::try_get(row, "clearance")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
    })
}

/// The key columns of `api_keys k`, named as `sql_key_from_row` reads them.
const SQL_KEY_COLUMNS_K: &str = "k.id, k.prefix, k.person_id, k.agency_id, k.name, k.kind, k.models,
    k.ip_ranges, k.expires_at, k.revoked_at, k.last_used_at, k.created_by, k.created_at";

/// The person columns of `people p`, prefixed for `sql_person_from_prefixed_row`.
const SQL_PERSON_COLUMNS_P: &str = "p.id AS p_id, p.agency_id AS p_agency_id, p.email AS p_email,
    p.display_name AS p_display_name, p.kind AS p_kind, p.status AS p_status,
    p.external_id AS p_external_id, p.clearance AS p_clearance, p.created_at AS p_created_at";

fn sql_person_from_prefixed_row(row: &$row) -> Result<$crate::Person, sqlx::Error> {
    Ok($crate::Person {
        id: sqlx::Row::try_get(row, "p_id")?,
        agency_id: sqlx::Row::try_get(row, "p_agency_id")?,
        email: sqlx::Row::try_get(row, "p_email")?,
        display_name: sqlx::Row::try_get(row, "p_display_name")?,
        kind: sqlx::Row::try_get(row, "p_kind")?,
        status: sqlx::Row::try_get(row, "p_status")?,
        external_id: sqlx::Row::try_get(row, "p_external_id")?,
        clearance: sqlx::Row::try_get(row, "p_clearance")?,
        created_at: sqlx::Row::try_get(row, "p_created_at")?,
    })
}

const SQL_KEY_COLUMNS: &str = "id, prefix, person_id, agency_id, name, kind, models, ip_ranges, expires_at,
    revoked_at, last_used_at, created_by, created_at";

fn sql_key_from_row(row: &$row) -> Result<$crate::ApiKey, sqlx::Error> {
    Ok($crate::ApiKey {
        id: sqlx::Row::try_get(row, "id")?,
        prefix: sqlx::Row::try_get(row, "prefix")?,
        person_id: sqlx::Row::try_get(row, "person_id")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        name: sqlx::Row::try_get(row, "name")?,
        kind: sqlx::Row::try_get(row, "kind")?,
        models: sql_parse_list(sqlx::Row::try_get(row, "models")?),
        ip_ranges: sql_parse_list(sqlx::Row::try_get(row, "ip_ranges")?),
        expires_at: sqlx::Row::try_get(row, "expires_at")?,
        revoked_at: sqlx::Row::try_get(row, "revoked_at")?,
        last_used_at: sqlx::Row::try_get(row, "last_used_at")?,
        created_by: sqlx::Row::try_get(row, "created_by")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
    })
}

fn sql_limits_from_row(row: &$row) -> Result<$crate::Limits, sqlx::Error> {
    Ok($crate::Limits {
        scope: sqlx::Row::try_get(row, "scope")?,
        agency_id: sqlx::Row::try_get(row, "agency_id")?,
        requests_per_minute: sqlx::Row::try_get(row, "requests_per_minute")?,
        tokens_per_minute: sqlx::Row::try_get(row, "tokens_per_minute")?,
        tokens_per_day: sqlx::Row::try_get(row, "tokens_per_day")?,
        cost_per_month_micros: sqlx::Row::try_get(row, "cost_per_month_micros")?,
    })
}

fn sql_counter_from_row(row: &$row) -> Result<$crate::UsageCounter, sqlx::Error> {
    Ok($crate::UsageCounter {
        scope: sqlx::Row::try_get(row, "scope")?,
        minute: sqlx::Row::try_get(row, "minute")?,
        minute_requests: sqlx::Row::try_get(row, "minute_requests")?,
        minute_tokens: sqlx::Row::try_get(row, "minute_tokens")?,
        day: sqlx::Row::try_get(row, "day")?,
        day_tokens: sqlx::Row::try_get(row, "day_tokens")?,
        month: sqlx::Row::try_get(row, "month")?,
        month_cost_micros: sqlx::Row::try_get(row, "month_cost_micros")?,
    })
}

fn sql_session_from_row(row: &$row) -> Result<$crate::Session, sqlx::Error> {
    Ok($crate::Session {
        id_hash: sqlx::Row::try_get(row, "id_hash")?,
        person_id: sqlx::Row::try_get(row, "person_id")?,
        csrf_token: sqlx::Row::try_get(row, "csrf_token")?,
        created_at: sqlx::Row::try_get(row, "created_at")?,
        last_seen_at: sqlx::Row::try_get(row, "last_seen_at")?,
        expires_at: sqlx::Row::try_get(row, "expires_at")?,
        revoked_at: sqlx::Row::try_get(row, "revoked_at")?,
    })
}

fn sql_collect<T>(rows: &[$row], map: fn(&$row) -> Result<T, sqlx::Error>) -> $crate::StoreResult<Vec<T>> {
    rows.iter().map(map).collect::<Result<_, _>>().map_err(sql_unavailable)
}

impl $store {
    /// Fills `models` of each group.
    async fn sql_attach_models(&self, groups: &mut [$crate::Group]) -> $crate::StoreResult<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = groups.iter().map(|group| group.id.as_str()).collect();
        let statement = format!(
            "SELECT group_id, model FROM group_models WHERE group_id IN ({}) ORDER BY model",
            sql_placeholders(ids.len(), 0)
        );
        let mut query = sqlx::query(&statement);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(sql_unavailable)?;
        for row in &rows {
            let group_id: String = sqlx::Row::try_get(row, "group_id").map_err(sql_unavailable)?;
            let model: String = sqlx::Row::try_get(row, "model").map_err(sql_unavailable)?;
            if let Some(group) = groups.iter_mut().find(|group| group.id == group_id) {
                group.models.push(model);
            }
        }
        Ok(())
    }

    /// Replaces the memberships of one group (`by_group`) or of one person
    /// with `others`, all or nothing; everything must be in `agency_id`.
    async fn sql_replace_memberships(
        &self,
        agency_id: &str,
        owner: &str,
        others: &[String],
        by_group: bool,
    ) -> $crate::StoreResult<()> {
        let (lock, clear, insert, what, other) = if by_group {
            (
                "UPDATE agency_groups SET id = id WHERE agency_id = $1 AND id = $2",
                "DELETE FROM group_members WHERE group_id = $1",
                "INSERT INTO group_members (group_id, person_id)
                 SELECT $1, id FROM people WHERE id = $2 AND agency_id = $3",
                "group",
                "person",
            )
        } else {
            (
                "UPDATE people SET id = id WHERE agency_id = $1 AND id = $2",
                "DELETE FROM group_members WHERE person_id = $1",
                "INSERT INTO group_members (group_id, person_id)
                 SELECT id, $1 FROM agency_groups WHERE id = $2 AND agency_id = $3",
                "person",
                "group",
            )
        };
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query(lock)
            .bind(agency_id)
            .bind(owner)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what });
        }
        sqlx::query(clear)
            .bind(owner)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let mut unique: Vec<&String> = others.iter().collect();
        unique.sort();
        unique.dedup();
        for id in unique {
            let inserted = sqlx::query(insert)
                .bind(owner)
                .bind(id)
                .bind(agency_id)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
            if inserted.rows_affected() == 0 {
                return Err($crate::StoreError::Invalid(format!("no {other} `{id}` in this agency")));
            }
        }
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    /// Moves the identity version: every server reloads cached grants.
    async fn sql_bump_version(transaction: &mut sqlx::Transaction<'_, $db>) -> $crate::StoreResult<()> {
        sqlx::query("UPDATE identity_version SET version = version + 1 WHERE id = 1")
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn sql_bump_version_now(&self) -> $crate::StoreResult<()> {
        sqlx::query("UPDATE identity_version SET version = version + 1 WHERE id = 1")
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    /// Reads the counter of `scope`, creating it, and locks its row until
    /// the transaction ends (a row lock in PostgreSQL, the write lock in
    /// SQLite).
    async fn sql_lock_counter(
        transaction: &mut sqlx::Transaction<'_, $db>,
        scope: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<$crate::UsageCounter> {
        let empty = $crate::UsageCounter::empty(scope, now);
        sqlx::query(
            "INSERT INTO usage_counters (scope, minute, minute_requests, minute_tokens, day, day_tokens,
                 month, month_cost_micros)
             VALUES ($1, $2, 0, 0, $3, 0, $4, 0) ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(&empty.minute)
        .bind(&empty.day)
        .bind(&empty.month)
        .execute(&mut **transaction)
        .await
        .map_err(sql_unavailable)?;
        sqlx::query("UPDATE usage_counters SET scope = scope WHERE scope = $1")
            .bind(scope)
            .execute(&mut **transaction)
            .await
            .map_err(sql_unavailable)?;
        let row = sqlx::query(
            "SELECT scope, minute, minute_requests, minute_tokens, day, day_tokens, month, month_cost_micros
             FROM usage_counters WHERE scope = $1",
        )
        .bind(scope)
        .fetch_one(&mut **transaction)
        .await
        .map_err(sql_unavailable)?;
        sql_counter_from_row(&row).map_err(sql_unavailable)
    }

    async fn sql_write_counter(
        transaction: &mut sqlx::Transaction<'_, $db>,
        counter: &$crate::UsageCounter,
    ) -> $crate::StoreResult<()> {
        sqlx::query(
            "UPDATE usage_counters SET minute = $2, minute_requests = $3, minute_tokens = $4, day = $5,
                 day_tokens = $6, month = $7, month_cost_micros = $8
             WHERE scope = $1",
        )
        .bind(&counter.scope)
        .bind(&counter.minute)
        .bind(counter.minute_requests)
        .bind(counter.minute_tokens)
        .bind(&counter.day)
        .bind(counter.day_tokens)
        .bind(&counter.month)
        .bind(counter.month_cost_micros)
        .execute(&mut **transaction)
        .await
        .map_err(sql_unavailable)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl $crate::IdentityStore for $store {
    async fn create_agency(&self, agency: $crate::NewAgency) -> $crate::StoreResult<$crate::Agency> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        $crate::check_text("name", &agency.name)?;
        let row = $crate::Agency {
            id: $crate::new_id(),
            slug: agency.slug,
            name: agency.name,
            parent_id: agency.parent_id,
            created_at: $crate::now(),
        };
        sqlx::query("INSERT INTO agencies (id, slug, name, parent_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&row.id)
            .bind(&row.slug)
            .bind(&row.name)
            .bind(&row.parent_id)
            .bind(row.created_at)
            .execute(&mut *transaction)
            .await
            .map_err(|error| sql_write_error(error, "an agency with this slug already exists"))?;
        Self::sql_finish(transaction).await?;
        Ok(row)
    }

    async fn get_agency(&self, id: &str) -> $crate::StoreResult<Option<$crate::Agency>> {
        let row = sqlx::query("SELECT id, slug, name, parent_id, created_at FROM agencies WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        row.as_ref().map(sql_agency_from_row).transpose().map_err(sql_unavailable)
    }

    async fn get_agency_by_slug(&self, slug: &str) -> $crate::StoreResult<Option<$crate::Agency>> {
        let row = sqlx::query("SELECT id, slug, name, parent_id, created_at FROM agencies WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        row.as_ref().map(sql_agency_from_row).transpose().map_err(sql_unavailable)
    }

    async fn list_agencies(&self) -> $crate::StoreResult<Vec<$crate::Agency>> {
        let rows = sqlx::query("SELECT id, slug, name, parent_id, created_at FROM agencies ORDER BY slug")
            .fetch_all(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        sql_collect(&rows, sql_agency_from_row)
    }

    async fn agency_ancestors(&self, id: &str) -> $crate::StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "WITH RECURSIVE chain (id, parent_id, depth) AS (
                 SELECT id, parent_id, 0 FROM agencies WHERE id = $1
                 UNION ALL
                 SELECT agencies.id, agencies.parent_id, chain.depth + 1
                 FROM agencies JOIN chain ON agencies.id = chain.parent_id
                 WHERE chain.depth < 32
             )
             SELECT id FROM chain ORDER BY depth",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)
    }

    async fn create_group(
        &self,
        agency_id: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> $crate::StoreResult<$crate::Group> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        $crate::check_text("name", name)?;
        let row = $crate::Group {
            id: $crate::new_id(),
            agency_id: agency_id.to_owned(),
            name: name.to_owned(),
            external_id: external_id.map(str::to_owned),
            models: Vec::new(),
            created_at: $crate::now(),
        };
        sqlx::query(
            "INSERT INTO agency_groups (id, agency_id, name, external_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.id)
        .bind(&row.agency_id)
        .bind(&row.name)
        .bind(&row.external_id)
        .bind(row.created_at)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "this agency already has a group with this name"))?;
        Self::sql_finish(transaction).await?;
        Ok(row)
    }

    async fn get_group(&self, agency_id: &str, group_id: &str) -> $crate::StoreResult<Option<$crate::Group>> {
        let row = sqlx::query(
            "SELECT id, agency_id, name, external_id, created_at FROM agency_groups
             WHERE agency_id = $1 AND id = $2",
        )
        .bind(agency_id)
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let mut groups = vec![sql_group_from_row(&row).map_err(sql_unavailable)?];
        self.sql_attach_models(&mut groups).await?;
        Ok(groups.pop())
    }

    async fn list_groups(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::Group>> {
        let rows = sqlx::query(
            "SELECT id, agency_id, name, external_id, created_at FROM agency_groups
             WHERE agency_id = $1 ORDER BY name",
        )
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut groups = sql_collect(&rows, sql_group_from_row)?;
        self.sql_attach_models(&mut groups).await?;
        Ok(groups)
    }

    async fn set_group_models(
        &self,
        agency_id: &str,
        group_id: &str,
        models: &[String],
    ) -> $crate::StoreResult<$crate::Group> {
        for model in models {
            $crate::check_text("models", model)?;
        }
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query("UPDATE agency_groups SET id = id WHERE agency_id = $1 AND id = $2")
            .bind(agency_id)
            .bind(group_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "group" });
        }
        sqlx::query("DELETE FROM group_models WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let mut unique: Vec<&String> = models.iter().collect();
        unique.sort();
        unique.dedup();
        for model in unique {
            sqlx::query("INSERT INTO group_models (group_id, model) VALUES ($1, $2)")
                .bind(group_id)
                .bind(model)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        self.get_group(agency_id, group_id)
            .await?
            .ok_or($crate::StoreError::NotFound { what: "group" })
    }

    async fn update_group(
        &self,
        agency_id: &str,
        group_id: &str,
        name: Option<&str>,
        external_id: Option<&str>,
    ) -> $crate::StoreResult<$crate::Group> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        if let Some(name) = name {
            $crate::check_text("name", name)?;
        }
        let touched = sqlx::query(
            "UPDATE agency_groups SET name = COALESCE($3, name), external_id = COALESCE($4, external_id)
             WHERE agency_id = $1 AND id = $2",
        )
        .bind(agency_id)
        .bind(group_id)
        .bind(name)
        .bind(external_id)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "this agency already has a group with this name"))?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "group" });
        }
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        self.get_group(agency_id, group_id)
            .await?
            .ok_or($crate::StoreError::NotFound { what: "group" })
    }

    async fn delete_group(&self, agency_id: &str, group_id: &str) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let owned = sqlx::query("UPDATE agency_groups SET id = id WHERE agency_id = $1 AND id = $2")
            .bind(agency_id)
            .bind(group_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        if owned.rows_affected() == 0 {
            return Ok(false);
        }
        for statement in [
            "DELETE FROM group_members WHERE group_id = $1",
            "DELETE FROM group_models WHERE group_id = $1",
            "DELETE FROM limits WHERE scope = 'group:' || $1",
            "DELETE FROM agency_groups WHERE id = $1",
        ] {
            sqlx::query(statement)
                .bind(group_id)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        }
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        Ok(true)
    }

    async fn group_members(&self, agency_id: &str, group_id: &str) -> $crate::StoreResult<Vec<$crate::Person>> {
        let rows = sqlx::query(
            "SELECT p.id, p.agency_id, p.email, p.display_name, p.kind, p.status, p.external_id, p.clearance, p.created_at
             FROM people p JOIN group_members m ON m.person_id = p.id
             JOIN agency_groups g ON g.id = m.group_id
             WHERE g.agency_id = $1 AND g.id = $2 ORDER BY p.email",
        )
        .bind(agency_id)
        .bind(group_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        sql_collect(&rows, sql_person_from_row)
    }

    async fn set_group_members(
        &self,
        agency_id: &str,
        group_id: &str,
        person_ids: &[String],
    ) -> $crate::StoreResult<()> {
        self.sql_replace_memberships(agency_id, group_id, person_ids, true).await
    }

    async fn create_person(&self, person: $crate::NewPerson) -> $crate::StoreResult<$crate::Person> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        $crate::check_text("display_name", &person.display_name)?;
        $crate::check_text("email", &person.email)?;
        let row = $crate::Person {
            id: $crate::new_id(),
            agency_id: person.agency_id,
            email: person.email,
            display_name: person.display_name,
            kind: person.kind,
            status: person.status,
            external_id: person.external_id,
            clearance: None,
            created_at: $crate::now(),
        };
        sqlx::query(
            "INSERT INTO people (id, agency_id, email, display_name, kind, status, external_id,
                 password_hash, failed_logins, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)",
        )
        .bind(&row.id)
        .bind(&row.agency_id)
        .bind(&row.email)
        .bind(&row.display_name)
        .bind(&row.kind)
        .bind(&row.status)
        .bind(&row.external_id)
        .bind(&person.password_hash)
        .bind(row.created_at)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "someone already has this e-mail address"))?;
        Self::sql_finish(transaction).await?;
        Ok(row)
    }

    async fn get_person(&self, id: &str) -> $crate::StoreResult<Option<$crate::Person>> {
        let row = sqlx::query(&format!("SELECT {SQL_PERSON_COLUMNS} FROM people WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        row.as_ref().map(sql_person_from_row).transpose().map_err(sql_unavailable)
    }

    async fn get_person_by_email(&self, email: &str) -> $crate::StoreResult<Option<$crate::Person>> {
        let row = sqlx::query(&format!("SELECT {SQL_PERSON_COLUMNS} FROM people WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        row.as_ref().map(sql_person_from_row).transpose().map_err(sql_unavailable)
    }

    async fn list_people(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::Person>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_PERSON_COLUMNS} FROM people WHERE agency_id = $1 ORDER BY email"
        ))
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        sql_collect(&rows, sql_person_from_row)
    }

    async fn update_person(
        &self,
        agency_id: &str,
        id: &str,
        update: $crate::PersonUpdate,
    ) -> $crate::StoreResult<$crate::Person> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        if let Some(name) = &update.display_name {
            $crate::check_text("display_name", name)?;
        }
        let touched = sqlx::query(
            "UPDATE people SET display_name = COALESCE($3, display_name), status = COALESCE($4, status),
                 email = COALESCE($5, email), external_id = COALESCE($6, external_id)
             WHERE agency_id = $1 AND id = $2",
        )
        .bind(agency_id)
        .bind(id)
        .bind(&update.display_name)
        .bind(&update.status)
        .bind(&update.email)
        .bind(&update.external_id)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "someone already has this e-mail address"))?;
        if touched.rows_affected() == 0 {
            return Err($crate::StoreError::NotFound { what: "person" });
        }
        Self::sql_finish(transaction).await?;
        self.get_person(id).await?.ok_or($crate::StoreError::NotFound { what: "person" })
    }

    async fn set_memberships(
        &self,
        agency_id: &str,
        person_id: &str,
        group_ids: &[String],
    ) -> $crate::StoreResult<()> {
        self.sql_replace_memberships(agency_id, person_id, group_ids, false).await
    }

    async fn set_roles(&self, person_id: &str, agency_id: &str, roles: &[String]) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query("DELETE FROM role_assignments WHERE person_id = $1 AND agency_id = $2")
            .bind(person_id)
            .bind(agency_id)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        let mut unique: Vec<&String> = roles.iter().collect();
        unique.sort();
        unique.dedup();
        for role in unique {
            sqlx::query("INSERT INTO role_assignments (person_id, agency_id, role) VALUES ($1, $2, $3)")
                .bind(person_id)
                .bind(agency_id)
                .bind(role)
                .execute(&mut *transaction)
                .await
                .map_err(|error| sql_write_error(error, "duplicate role"))?;
        }
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn grants(&self, person_id: &str) -> $crate::StoreResult<$crate::Grants> {
        let role_rows = sqlx::query(
            "SELECT agency_id, role FROM role_assignments WHERE person_id = $1 ORDER BY agency_id, role",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut roles = Vec::with_capacity(role_rows.len());
        for row in &role_rows {
            roles.push($crate::RoleGrant {
                agency_id: sqlx::Row::try_get(row, "agency_id").map_err(sql_unavailable)?,
                role: sqlx::Row::try_get(row, "role").map_err(sql_unavailable)?,
            });
        }
        let group_rows = sqlx::query(
            "SELECT g.id, g.agency_id, g.name, g.external_id, g.created_at
             FROM agency_groups g JOIN group_members m ON m.group_id = g.id
             WHERE m.person_id = $1 ORDER BY g.name",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let mut groups = sql_collect(&group_rows, sql_group_from_row)?;
        self.sql_attach_models(&mut groups).await?;
        Ok($crate::Grants { roles, groups })
    }

    async fn role_is_held(&self, role: &str) -> $crate::StoreResult<bool> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM role_assignments WHERE role = $1")
            .bind(role)
            .fetch_one(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(count > 0)
    }

    async fn credentials(&self, person_id: &str) -> $crate::StoreResult<$crate::Credentials> {
        let row = sqlx::query(
            "SELECT id, password_hash, totp_secret, totp_confirmed_at, failed_logins, locked_until
             FROM people WHERE id = $1",
        )
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?
        .ok_or($crate::StoreError::NotFound { what: "person" })?;
        let read = |row: &$row| -> Result<$crate::Credentials, sqlx::Error> {
            Ok($crate::Credentials {
                person_id: sqlx::Row::try_get(row, "id")?,
                password_hash: sqlx::Row::try_get(row, "password_hash")?,
                totp_secret: sqlx::Row::try_get(row, "totp_secret")?,
                totp_confirmed: sqlx::Row::try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(
                    row,
                    "totp_confirmed_at",
                )?
                .is_some(),
                failed_logins: sqlx::Row::try_get(row, "failed_logins")?,
                locked_until: sqlx::Row::try_get(row, "locked_until")?,
            })
        };
        read(&row).map_err(sql_unavailable)
    }

    async fn set_password_hash(&self, person_id: &str, hash: &str) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query("UPDATE people SET password_hash = $2 WHERE id = $1")
            .bind(person_id)
            .bind(hash)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn record_login_failure(
        &self,
        person_id: &str,
        locked_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> $crate::StoreResult<i64> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "UPDATE people SET failed_logins = failed_logins + 1,
                 locked_until = COALESCE($2, locked_until)
             WHERE id = $1",
        )
        .bind(person_id)
        .bind(locked_until)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let count: i64 = sqlx::query_scalar("SELECT failed_logins FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_one(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(count)
    }

    async fn reset_login_failures(&self, person_id: &str) -> $crate::StoreResult<()> {
        sqlx::query("UPDATE people SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(person_id)
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn set_totp(&self, person_id: &str, secret: Option<&str>, confirmed: bool) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let confirmed_at = confirmed.then($crate::now);
        sqlx::query("UPDATE people SET totp_secret = $2, totp_confirmed_at = $3 WHERE id = $1")
            .bind(person_id)
            .bind(secret)
            .bind(confirmed_at)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn create_api_key(&self, key: $crate::NewApiKey) -> $crate::StoreResult<$crate::ApiKey> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        $crate::check_text("name", &key.name)?;
        let row = $crate::ApiKey {
            id: format!("key_{}", $crate::new_id().replace('-', "")),
            prefix: key.prefix,
            person_id: key.person_id,
            agency_id: key.agency_id,
            name: key.name,
            kind: key.kind,
            models: key.models,
            ip_ranges: key.ip_ranges,
            expires_at: key.expires_at,
            revoked_at: None,
            last_used_at: None,
            created_by: key.created_by,
            created_at: $crate::now(),
        };
        sqlx::query(
            "INSERT INTO api_keys (id, secret_hash, prefix, person_id, agency_id, name, kind, models,
                 ip_ranges, expires_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&row.id)
        .bind(&key.secret_hash)
        .bind(&row.prefix)
        .bind(&row.person_id)
        .bind(&row.agency_id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(sql_json_list(&row.models))
        .bind(sql_json_list(&row.ip_ranges))
        .bind(row.expires_at)
        .bind(&row.created_by)
        .bind(row.created_at)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "this key already exists"))?;
        Self::sql_finish(transaction).await?;
        Ok(row)
    }

    async fn key_holder(
        &self,
        secret_hash: &str,
    ) -> $crate::StoreResult<Option<$crate::Holder<$crate::ApiKey>>> {
        let row = sqlx::query(&format!(
            "SELECT {SQL_KEY_COLUMNS_K}, {SQL_PERSON_COLUMNS_P},
                 (SELECT version FROM identity_version WHERE id = 1) AS identity_version
             FROM api_keys k JOIN people p ON p.id = k.person_id WHERE k.secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let read = |row: &$row| -> Result<$crate::Holder<$crate::ApiKey>, sqlx::Error> {
            Ok($crate::Holder {
                credential: sql_key_from_row(row)?,
                person: sql_person_from_prefixed_row(row)?,
                version: sqlx::Row::try_get(row, "identity_version")?,
            })
        };
        read(&row).map(Some).map_err(sql_unavailable)
    }

    async fn session_holder(
        &self,
        id_hash: &str,
    ) -> $crate::StoreResult<Option<$crate::Holder<$crate::Session>>> {
        let row = sqlx::query(&format!(
            "SELECT s.id_hash, s.person_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                 s.revoked_at, {SQL_PERSON_COLUMNS_P},
                 (SELECT version FROM identity_version WHERE id = 1) AS identity_version
             FROM sessions s JOIN people p ON p.id = s.person_id WHERE s.id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let read = |row: &$row| -> Result<$crate::Holder<$crate::Session>, sqlx::Error> {
            Ok($crate::Holder {
                credential: sql_session_from_row(row)?,
                person: sql_person_from_prefixed_row(row)?,
                version: sqlx::Row::try_get(row, "identity_version")?,
            })
        };
        read(&row).map(Some).map_err(sql_unavailable)
    }

    async fn find_api_key(&self, secret_hash: &str) -> $crate::StoreResult<Option<$crate::ApiKey>> {
        let row = sqlx::query(&format!("SELECT {SQL_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1"))
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        row.as_ref().map(sql_key_from_row).transpose().map_err(sql_unavailable)
    }

    async fn get_api_key(&self, agency_id: &str, key_id: &str) -> $crate::StoreResult<Option<$crate::ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {SQL_KEY_COLUMNS} FROM api_keys WHERE agency_id = $1 AND id = $2"
        ))
        .bind(agency_id)
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        row.as_ref().map(sql_key_from_row).transpose().map_err(sql_unavailable)
    }

    async fn list_api_keys(
        &self,
        agency_id: &str,
        person_id: Option<&str>,
    ) -> $crate::StoreResult<Vec<$crate::ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {SQL_KEY_COLUMNS} FROM api_keys
             WHERE agency_id = $1 AND ($2 IS NULL OR person_id = $2) ORDER BY created_at, id"
        ))
        .bind(agency_id)
        .bind(person_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        sql_collect(&rows, sql_key_from_row)
    }

    async fn revoke_api_key(
        &self,
        agency_id: &str,
        key_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE agency_id = $1 AND id = $2",
        )
        .bind(agency_id)
        .bind(key_id)
        .bind(at)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(touched.rows_affected() > 0)
    }

    async fn touch_api_key(&self, key_id: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        // Of two first uses racing, one finds the key unused.
        let first = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND last_used_at IS NULL")
            .bind(key_id)
            .bind(at)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?
            .rows_affected()
            > 0;
        if first {
            Self::sql_finish(transaction).await?;
            return Ok(true);
        }
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(key_id)
            .bind(at)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        transaction.commit().await.map_err(sql_unavailable)?;
        Ok(false)
    }

    async fn create_session(&self, session: &$crate::Session) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, person_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.id_hash)
        .bind(&session.person_id)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "session exists"))?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str) -> $crate::StoreResult<Option<$crate::Session>> {
        let row = sqlx::query(
            "SELECT id_hash, person_id, csrf_token, created_at, last_seen_at, expires_at, revoked_at
             FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        row.as_ref().map(sql_session_from_row).transpose().map_err(sql_unavailable)
    }

    async fn touch_session(&self, id_hash: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        Ok(())
    }

    async fn revoke_session(&self, id_hash: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id_hash = $1")
            .bind(id_hash)
            .bind(at)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn revoke_sessions_of(
        &self,
        person_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<u64> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched =
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE person_id = $1 AND revoked_at IS NULL")
                .bind(person_id)
                .bind(at)
                .execute(&mut *transaction)
                .await
                .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        Ok(touched.rows_affected())
    }

    async fn create_oidc_state(&self, state: &$crate::OidcState) -> $crate::StoreResult<()> {
        sqlx::query("DELETE FROM oidc_states WHERE created_at < $1")
            .bind(state.created_at - chrono::Duration::days(1))
            .execute(&self.pool)
            .await
            .map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO oidc_states (state_hash, provider, nonce, code_verifier, return_to, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&state.state_hash)
        .bind(&state.provider)
        .bind(&state.nonce)
        .bind(&state.code_verifier)
        .bind(&state.return_to)
        .bind(state.created_at)
        .execute(&self.pool)
        .await
        .map_err(|error| sql_write_error(error, "state exists"))?;
        Ok(())
    }

    async fn consume_oidc_state(
        &self,
        state_hash: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<$crate::ConsumedState> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let claimed = sqlx::query(
            "UPDATE oidc_states SET consumed_at = $2 WHERE state_hash = $1 AND consumed_at IS NULL",
        )
        .bind(state_hash)
        .bind(at)
        .execute(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        let row = sqlx::query(
            "SELECT state_hash, provider, nonce, code_verifier, return_to, created_at
             FROM oidc_states WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(sql_unavailable)?;
        Self::sql_finish(transaction).await?;
        let Some(row) = row else {
            return Ok($crate::ConsumedState::Unknown);
        };
        if claimed.rows_affected() == 0 {
            return Ok($crate::ConsumedState::AlreadyUsed);
        }
        let read = |row: &$row| -> Result<$crate::OidcState, sqlx::Error> {
            Ok($crate::OidcState {
                state_hash: sqlx::Row::try_get(row, "state_hash")?,
                provider: sqlx::Row::try_get(row, "provider")?,
                nonce: sqlx::Row::try_get(row, "nonce")?,
                code_verifier: sqlx::Row::try_get(row, "code_verifier")?,
                return_to: sqlx::Row::try_get(row, "return_to")?,
                created_at: sqlx::Row::try_get(row, "created_at")?,
            })
        };
        Ok($crate::ConsumedState::Fresh(read(&row).map_err(sql_unavailable)?))
    }

    async fn set_limits(&self, limits: &$crate::Limits) -> $crate::StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        sqlx::query(
            "INSERT INTO limits (scope, agency_id, requests_per_minute, tokens_per_minute, tokens_per_day,
                 cost_per_month_micros)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope) DO UPDATE SET requests_per_minute = excluded.requests_per_minute,
                 tokens_per_minute = excluded.tokens_per_minute, tokens_per_day = excluded.tokens_per_day,
                 cost_per_month_micros = excluded.cost_per_month_micros",
        )
        .bind(&limits.scope)
        .bind(&limits.agency_id)
        .bind(limits.requests_per_minute)
        .bind(limits.tokens_per_minute)
        .bind(limits.tokens_per_day)
        .bind(limits.cost_per_month_micros)
        .execute(&mut *transaction)
        .await
        .map_err(|error| sql_write_error(error, "limits exist"))?;
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn delete_limits(&self, agency_id: &str, scope: &str) -> $crate::StoreResult<bool> {
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let touched = sqlx::query("DELETE FROM limits WHERE agency_id = $1 AND scope = $2")
            .bind(agency_id)
            .bind(scope)
            .execute(&mut *transaction)
            .await
            .map_err(sql_unavailable)?;
        Self::sql_bump_version(&mut transaction).await?;
        Self::sql_finish(transaction).await?;
        Ok(touched.rows_affected() > 0)
    }

    async fn list_limits(&self, agency_id: &str) -> $crate::StoreResult<Vec<$crate::Limits>> {
        let rows = sqlx::query(
            "SELECT scope, agency_id, requests_per_minute, tokens_per_minute, tokens_per_day,
                 cost_per_month_micros
             FROM limits WHERE agency_id = $1 ORDER BY scope",
        )
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_unavailable)?;
        sql_collect(&rows, sql_limits_from_row)
    }

    async fn limits_for(&self, scopes: &[String]) -> $crate::StoreResult<Vec<$crate::Limits>> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "SELECT scope, agency_id, requests_per_minute, tokens_per_minute, tokens_per_day,
                 cost_per_month_micros
             FROM limits WHERE scope IN ({}) ORDER BY scope",
            sql_placeholders(scopes.len(), 0)
        );
        let mut query = sqlx::query(&statement);
        for scope in scopes {
            query = query.bind(scope);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(sql_unavailable)?;
        sql_collect(&rows, sql_limits_from_row)
    }

    async fn lease(
        &self,
        limits: &[$crate::Limits],
        want: i64,
        returned: Option<&$crate::Returned>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<Result<$crate::Lease, $crate::LimitHit>> {
        if limits.is_empty() {
            return Ok(Ok($crate::Lease {
                granted: want.max(0),
                counters: Vec::new(),
            }));
        }
        // Locks are taken in scope order, so two leases never wait on each
        // other in a cycle.
        let mut order: Vec<usize> = (0..limits.len()).collect();
        order.sort_by(|a, b| limits[*a].scope.cmp(&limits[*b].scope));
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        let mut counters: Vec<Option<$crate::UsageCounter>> = vec![None; limits.len()];
        let mut granted = want.max(0);
        let mut refusal = None;
        for &index in &order {
            let mut counter = Self::sql_lock_counter(&mut transaction, &limits[index].scope, now).await?;
            if let Some(returned) = returned {
                counter = counter.given_back(&returned.minute, returned.requests, now);
            }
            match counter.grant(&limits[index], want, now) {
                Ok((_, room)) => granted = granted.min(room),
                Err(hit) => refusal = refusal.or(Some(hit)),
            }
            counters[index] = Some(counter);
        }
        let counters: Vec<$crate::UsageCounter> = counters.into_iter().flatten().collect();
        if let Some(hit) = refusal {
            if returned.is_some() {
                for counter in &counters {
                    Self::sql_write_counter(&mut transaction, counter).await?;
                }
                Self::sql_finish(transaction).await?;
            } else {
                transaction.rollback().await.map_err(sql_unavailable)?;
            }
            return Ok(Err(hit));
        }
        let mut leased = Vec::with_capacity(counters.len());
        for counter in counters {
            let mut next = counter.rolled(now);
            next.minute_requests += granted;
            Self::sql_write_counter(&mut transaction, &next).await?;
            leased.push(next);
        }
        Self::sql_finish(transaction).await?;
        Ok(Ok($crate::Lease {
            granted,
            counters: leased,
        }))
    }

    async fn charge(
        &self,
        scopes: &[String],
        tokens: i64,
        cost_micros: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> $crate::StoreResult<()> {
        if scopes.is_empty() || (tokens == 0 && cost_micros == 0) {
            return Ok(());
        }
        let mut ordered: Vec<&String> = scopes.iter().collect();
        ordered.sort();
        ordered.dedup();
        let mut transaction = self.pool.begin().await.map_err(sql_unavailable)?;
        for scope in ordered {
            let counter = Self::sql_lock_counter(&mut transaction, scope, now).await?;
            Self::sql_write_counter(&mut transaction, &counter.charged(tokens, cost_micros, now)).await?;
        }
        Self::sql_finish(transaction).await?;
        Ok(())
    }

    async fn usage_counters(&self, scopes: &[String]) -> $crate::StoreResult<Vec<$crate::UsageCounter>> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "SELECT scope, minute, minute_requests, minute_tokens, day, day_tokens, month, month_cost_micros
             FROM usage_counters WHERE scope IN ({}) ORDER BY scope",
            sql_placeholders(scopes.len(), 0)
        );
        let mut query = sqlx::query(&statement);
        for scope in scopes {
            query = query.bind(scope);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(sql_unavailable)?;
        sql_collect(&rows, sql_counter_from_row)
    }

    async fn usage_breakdown(
        &self,
        filter: &$crate::UsageFilter,
        by: $crate::UsageDimension,
    ) -> $crate::StoreResult<Vec<$crate::UsageGroupRow>> {
        let group = match by {
            $crate::UsageDimension::Model => "model",
            $crate::UsageDimension::Person => "actor",
            $crate::UsageDimension::Key => "COALESCE(key_id, '')",
            $crate::UsageDimension::Request => "request_id",
            $crate::UsageDimension::Day if $crate::Store::backend(self) == "postgres" => {
                "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            $crate::UsageDimension::Day => "substr(at, 1, 10)",
        };
        // Every condition is a fixed text; values are bound in order.
        let mut conditions = vec!["model IS NOT NULL".to_owned(), "at >= $1".to_owned()];
        let mut values: Vec<&str> = Vec::new();
        for (condition, value) in [
            ("agency_id = ?", &filter.agency_id),
            ("actor = ?", &filter.person_id),
            ("key_id = ?", &filter.key_id),
            ("model = ?", &filter.model),
            (
                "actor IN (SELECT person_id FROM group_members WHERE group_id = ?)",
                &filter.group_id,
            ),
        ] {
            if let Some(value) = value {
                values.push(value);
                conditions.push(condition.replace('?', &format!("${}", values.len() + 1)));
            }
        }
        if filter.until.is_some() {
            conditions.push(format!("at < ${}", values.len() + 2));
        }
        let sql = format!(
            "SELECT {group} AS grouped, model, COUNT(*) AS requests,
                 CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
                 CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens,
                 CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros
             FROM request_records WHERE {}
             GROUP BY {group}, model ORDER BY grouped, model LIMIT 10000",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&sql).bind(filter.since);
        for value in values {
            query = query.bind(value);
        }
        if let Some(until) = filter.until {
            query = query.bind(until);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(sql_unavailable)?;
        let read = |row: &$row| -> Result<$crate::UsageGroupRow, sqlx::Error> {
            Ok($crate::UsageGroupRow {
                group: sqlx::Row::try_get(row, "grouped")?,
                usage: $crate::UsageRow {
                    model: sqlx::Row::try_get(row, "model")?,
                    requests: sqlx::Row::try_get(row, "requests")?,
                    prompt_tokens: sqlx::Row::try_get(row, "prompt_tokens")?,
                    completion_tokens: sqlx::Row::try_get(row, "completion_tokens")?,
                    cost_micros: sqlx::Row::try_get(row, "cost_micros")?,
                },
            })
        };
        rows.iter().map(read).collect::<Result<_, _>>().map_err(sql_unavailable)
    }
}
    };
}
