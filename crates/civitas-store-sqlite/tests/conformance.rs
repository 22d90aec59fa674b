//! The shared conformance suite on a fresh SQLite file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_store_sqlite::SqliteStore;

async fn fresh_store() -> Option<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    // Keep the directory for the life of the test process.
    std::mem::forget(dir);
    Some(SqliteStore::open(&url, 4).await.unwrap())
}

civitas_store::conformance_tests!(fresh_store());
