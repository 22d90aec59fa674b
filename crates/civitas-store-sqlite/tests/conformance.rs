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

/// Tampering done in the SQLite file itself is refused, then found.
#[tokio::test]
async fn tampering_in_sqlite_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = SqliteStore::open(&url, 2).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let sql = move |statement: String| {
        let raw = raw.clone();
        Box::pin(async move {
            sqlx::query(&statement)
                .execute(&raw)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }) as futures::future::BoxFuture<'static, Result<(), String>>
    };
    civitas_store::conformance::tampering_in_the_database_is_found(
        &store,
        &sql,
        &[
            "DROP TRIGGER audit_records_no_update",
            "DROP TRIGGER audit_records_no_delete",
        ],
    )
    .await;
}
