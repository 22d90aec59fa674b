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
    Some(
        PostgresStore::open(&url, 4, civitas_store::crypt::Keyring::ephemeral())
            .await
            .unwrap(),
    )
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
    let store = PostgresStore::open(&url, 2, civitas_store::crypt::Keyring::ephemeral())
        .await
        .unwrap();
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

/// Content is sealed in the database itself, and a new master key takes
/// over the data keys without losing anything.
#[tokio::test]
async fn content_is_sealed_and_master_keys_rotate() {
    use civitas_store::crypt::{Keyring, MasterKey};
    use civitas_store::{DataProtectionStore, NewConversation, NewMessage, Store};
    let Some(url) = fresh_url().await else { return };
    let old = MasterKey::generate().unwrap();
    let old_text = old.to_text();
    let store = PostgresStore::open(&url, 2, Keyring::new(old, Vec::new()))
        .await
        .unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let read = move |statement: String| {
        let raw = raw.clone();
        Box::pin(async move {
            let rows = sqlx::query(&statement)
                .fetch_all(&raw)
                .await
                .map_err(|error| error.to_string())?;
            rows.iter()
                .map(|row| sqlx::Row::try_get::<Option<String>, _>(row, 0).map_err(|error| error.to_string()))
                .collect()
        }) as futures::future::BoxFuture<'static, Result<Vec<Option<String>>, String>>
    };
    civitas_store::conformance::content_is_sealed_at_rest(&store, &read).await;
    civitas_store::conformance::knowledge_is_sealed_at_rest(&store, &read).await;
    let (kept, _) = store
        .create_conversation(
            NewConversation {
                owner: "service-account".to_owned(),
                title: None,
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![NewMessage {
                role: "user".to_owned(),
                content: "kept through the rotation".to_owned(),
                metadata: None,
            }],
        )
        .await
        .unwrap();
    store.close().await;
    // The new master key with the old one beside it: re-wrap.
    let new = MasterKey::generate().unwrap();
    let new_text = new.to_text();
    let both = PostgresStore::open(
        &url,
        2,
        Keyring::new(new, vec![MasterKey::from_text(&old_text).unwrap()]),
    )
    .await
    .unwrap();
    assert!(both.rewrap_data_keys().await.unwrap() >= 2);
    assert_eq!(both.rewrap_data_keys().await.unwrap(), 0);
    both.close().await;
    // The new key alone reads everything; the old one alone nothing.
    let new_only = PostgresStore::open(
        &url,
        2,
        Keyring::new(MasterKey::from_text(&new_text).unwrap(), Vec::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        new_only.list_messages(&kept.id).await.unwrap()[0].content,
        "kept through the rotation"
    );
    new_only.close().await;
    let old_only = PostgresStore::open(
        &url,
        2,
        Keyring::new(MasterKey::from_text(&old_text).unwrap(), Vec::new()),
    )
    .await
    .unwrap();
    assert!(matches!(
        old_only.list_messages(&kept.id).await,
        Err(civitas_store::StoreError::Key(_))
    ));
}

async fn fresh_url() -> Option<String> {
    let Ok(admin_url) = std::env::var("CIVITAS_TEST_DATABASE_URL") else {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset, PostgreSQL sealing test skipped");
        return None;
    };
    Some(
        civitas_store_postgres::testing::create_fresh_database(&admin_url)
            .await
            .unwrap(),
    )
}
