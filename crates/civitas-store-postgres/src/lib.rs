//! PostgreSQL implementation of [`Store`]: for installations at scale and
//! for many replicas sharing one database.
//!
//! Migrations in `migrations/` are embedded in the binary and applied by
//! [`PostgresStore::open`]; concurrent appends to one conversation are
//! serialised by a row lock on the conversation.

use std::time::Duration;

use civitas_store::{StoreError, StoreResult};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Seals and opens content (see `civitas_store::crypt`).
    keys: std::sync::Arc<civitas_store::crypt::Keyring>,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl PostgresStore {
    /// Connects to `url` (`postgres://...`) and applies pending migrations;
    /// content is sealed with data keys wrapped by `keys`' master key.
    pub async fn open(
        url: &str,
        max_connections: u32,
        keys: std::sync::Arc<civitas_store::crypt::Keyring>,
    ) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(unavailable)?;
        let store = PostgresStore { pool, keys };
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
}

civitas_store::impl_sql_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow, "postgres");

/// Helpers for tests that need their own database.
pub mod testing {
    use sqlx::Connection;

    /// Creates a new, empty database on the server of `admin_url` and
    /// returns its URL. Names are unique, so test runs never share state.
    pub async fn create_fresh_database(admin_url: &str) -> Result<String, sqlx::Error> {
        let name = format!("civitas_test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(admin_url).await?;
        // A database name cannot be a bind parameter; this one is generated
        // from a UUID above and contains only [a-z0-9_].
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await?;
        connection.close().await?;
        let base = match admin_url.rfind('/') {
            Some(slash) if slash > "postgres://".len() => &admin_url[..slash],
            _ => admin_url,
        };
        Ok(format!("{base}/{name}"))
    }
}
