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
