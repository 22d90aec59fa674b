//! The shared conformance suite on a fresh PostgreSQL database per test.
//!
//! Needs `CIVITAS_TEST_DATABASE_URL` (a server where the user may create
//! databases, e.g. `postgres://postgres@127.0.0.1:5432/test`); without it
//! each test prints a notice and passes without running, and `.ci/run`
//! always sets it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_store_postgres::PostgresStore;

async fn fresh_store() -> Option<PostgresStore> {
    let Ok(admin_url) = std::env::var("CIVITAS_TEST_DATABASE_URL") else {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset, PostgreSQL conformance skipped");
        return None;
    };
    let url = civitas_store_postgres::testing::create_fresh_database(&admin_url)
        .await
        .unwrap();
    Some(PostgresStore::open(&url, 4).await.unwrap())
}

civitas_store::conformance_tests!(fresh_store());

/// Tampering done in the PostgreSQL database itself is refused, then found.
#[tokio::test]
async fn tampering_in_postgres_is_found() {
    let Ok(admin_url) = std::env::var("CIVITAS_TEST_DATABASE_URL") else {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset, PostgreSQL tampering test skipped");
        return;
    };
    let url = civitas_store_postgres::testing::create_fresh_database(&admin_url)
        .await
        .unwrap();
    let store = PostgresStore::open(&url, 2).await.unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
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
        &["ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only"],
    )
    .await;
}
