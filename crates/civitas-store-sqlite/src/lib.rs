//! SQLite implementation of [`Store`]: the embedded default.
//!
//! One file in the data directory, WAL journal, foreign keys on, a busy
//! timeout so that concurrent writers wait instead of failing. Migrations in
//! `migrations/` are embedded in the binary and applied by [`SqliteStore::open`].

use std::str::FromStr;
use std::time::Duration;

use civitas_store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Seals and opens content (see `civitas_store::crypt`).
    keys: std::sync::Arc<civitas_store::crypt::Keyring>,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`)
    /// and applies pending migrations; content is sealed with data keys
    /// wrapped by `keys`' master key.
    pub async fn open(
        url: &str,
        max_connections: u32,
        keys: std::sync::Arc<civitas_store::crypt::Keyring>,
    ) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("database.url: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // The worker thread runs ahead by this many rows instead of 50,
            // so long reads (an audit verification) switch threads less.
            .row_buffer_size(1024);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = SqliteStore { pool, keys };
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

civitas_store::impl_sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "sqlite");
