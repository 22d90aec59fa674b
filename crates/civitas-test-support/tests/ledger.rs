//! Limit counters on leases, on SQLite and PostgreSQL: two replicas
//! sharing one database admit exactly the limit together, leases not used
//! go back to the database, and a replica's own charges refuse at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use civitas_server::ledger::{Ledger, LEASE};
use civitas_store::{LimitKind, Limits, Store};

/// A fresh store, or `None` (with a notice) when PostgreSQL is not set up.
async fn store(postgres: bool, dir: &tempfile::TempDir) -> Option<Arc<dyn Store>> {
    let keyring = civitas_test_support::test_keyring();
    if postgres {
        let Ok(admin) = std::env::var("CIVITAS_TEST_DATABASE_URL") else {
            eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset; PostgreSQL ledger test skipped");
            return None;
        };
        let url = civitas_store_postgres::testing::create_fresh_database(&admin)
            .await
            .unwrap();
        Some(Arc::new(
            civitas_store_postgres::PostgresStore::open(&url, 4, keyring)
                .await
                .unwrap(),
        ))
    } else {
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        Some(Arc::new(
            civitas_store_sqlite::SqliteStore::open(&url, 4, keyring)
                .await
                .unwrap(),
        ))
    }
}

fn per_minute(scope: &str, requests: i64) -> Limits {
    Limits {
        scope: scope.to_owned(),
        agency_id: "agency".to_owned(),
        requests_per_minute: Some(requests),
        tokens_per_minute: None,
        tokens_per_day: None,
        cost_per_month_micros: None,
    }
}

/// A fixed moment, so that no minute ends during a test.
fn moment() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 5).unwrap()
}

async fn minute_requests(store: &dyn Store, scope: &str) -> i64 {
    store.usage_counters(&[scope.to_owned()]).await.unwrap()[0].minute_requests
}

async fn two_replicas_admit_exactly_the_limit(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = store(postgres, &dir).await else {
        return;
    };
    let limits = vec![per_minute("agency:shared", 1_000), per_minute("key:busy", 5_000)];
    let replicas = [Ledger::default(), Ledger::default()];
    let now = moment();
    let mut admitted = 0;
    let mut refused = 0;
    // Bursts on both replicas at once, until both refuse.
    for _ in 0..60 {
        let attempts = (0..50).map(|n| replicas[n % 2].admit(store.as_ref(), &limits, 1, now));
        for outcome in futures::future::join_all(attempts).await {
            match outcome.unwrap() {
                Ok(()) => admitted += 1,
                Err(hit) => {
                    assert_eq!(
                        (hit.scope.as_str(), hit.kind),
                        ("agency:shared", LimitKind::RequestsPerMinute)
                    );
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(admitted, 1_000, "refused {refused}");
    assert_eq!(minute_requests(store.as_ref(), "agency:shared").await, 1_000);
    assert_eq!(minute_requests(store.as_ref(), "key:busy").await, 1_000);
    // The next minute starts from zero.
    let fresh = Ledger::default();
    let next_minute = now + chrono::Duration::seconds(60);
    assert!(fresh
        .admit(store.as_ref(), &limits, 1, next_minute)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(minute_requests(store.as_ref(), "agency:shared").await, 1);
}

#[tokio::test]
async fn two_replicas_on_one_sqlite_database_admit_exactly_the_limit() {
    two_replicas_admit_exactly_the_limit(false).await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_database_admit_exactly_the_limit() {
    two_replicas_admit_exactly_the_limit(true).await;
}

async fn unused_leases_go_back(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = store(postgres, &dir).await else {
        return;
    };
    let limits = vec![per_minute("key:quiet", 1_000)];
    let ledger = Ledger::default();
    let now = moment();
    // Leases of 1, 2 then 4 requests: after 4 admissions, 3 are unused.
    for _ in 0..4 {
        assert!(ledger
            .admit(store.as_ref(), &limits, 1, now)
            .await
            .unwrap()
            .is_ok());
    }
    assert_eq!(minute_requests(store.as_ref(), "key:quiet").await, 7);
    // Nothing goes back before the lease has expired...
    assert_eq!(ledger.sweep(store.as_ref(), now).await, 0);
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    // ...then the sweeper gives the 3 back.
    assert_eq!(ledger.sweep(store.as_ref(), now).await, 3);
    assert_eq!(minute_requests(store.as_ref(), "key:quiet").await, 4);
    assert_eq!(ledger.sweep(store.as_ref(), now).await, 0);
    // An identity change (a new version) takes a new lease at once.
    assert!(ledger
        .admit(store.as_ref(), &limits, 2, now)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(minute_requests(store.as_ref(), "key:quiet").await, 5);
}

#[tokio::test]
async fn unused_leases_go_back_to_sqlite() {
    unused_leases_go_back(false).await;
}

#[tokio::test]
async fn unused_leases_go_back_to_postgres() {
    unused_leases_go_back(true).await;
}

#[tokio::test]
async fn a_replicas_own_charges_refuse_before_the_database_knows_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(false, &dir).await.unwrap();
    let limits = vec![Limits {
        requests_per_minute: None,
        tokens_per_day: Some(100),
        ..per_minute("person:thrifty", 0)
    }];
    let ledger = Ledger::default();
    let now = moment();
    // Leases of 1, 2 then 4: three requests are left on this replica.
    for _ in 0..4 {
        assert!(ledger
            .admit(store.as_ref(), &limits, 1, now)
            .await
            .unwrap()
            .is_ok());
    }
    ledger.charged(&["person:thrifty".to_owned()], 100, 0, now).await;
    let hit = ledger
        .admit(store.as_ref(), &limits, 1, now)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (hit.kind, hit.scope.as_str()),
        (LimitKind::TokensPerDay, "person:thrifty")
    );
    // The database was charged nothing: another replica still admits.
    let other = Ledger::default();
    assert!(other
        .admit(store.as_ref(), &limits, 1, now)
        .await
        .unwrap()
        .is_ok());
}
