//! Conformance of the audit log's storage.

use chrono::Utc;
use civitas_audit::{verify, Action, ActorKind, AuditKey, Checkpoint, CompactTree, Entry, Outcome};
use serde_json::json;

use crate::{with_audit, AuditFilter, NewAgency, NewPerson, Store, StoreError};

fn entry(actor: &str, action: Action, outcome: Outcome) -> Entry {
    Entry {
        at: Utc::now(),
        actor_kind: ActorKind::Person,
        actor_id: actor.to_owned(),
        agency_id: Some("agency-audit".to_owned()),
        action,
        target: Some("person:x".to_owned()),
        outcome,
        source_address: Some("192.0.2.7".to_owned()),
        user_agent: Some("Mozilla/5.0 (X11) « test »".to_owned()),
        request_id: Some(crate::new_id()),
        details: json!({"after": {"status": "active", "roles": ["member"]}, "n": 1.5}),
    }
}

/// Every record so far, in order.
async fn all_records(store: &dyn Store) -> Vec<civitas_audit::Record> {
    all_records_by_seq(store).await
}

pub async fn audit_records_chain_and_read_back_exactly(store: &dyn Store) {
    let actor = crate::new_id();
    let written = store
        .append_audit(vec![
            entry(&actor, Action::SignIn, Outcome::Success),
            entry(&actor, Action::Export, Outcome::Success),
        ])
        .await
        .unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(written[1].seq, written[0].seq + 1);
    assert_eq!(written[1].prev_hash, written[0].hash);
    let read = store.audit_records(written[0].seq, 2).await.unwrap();
    assert_eq!(read, written, "a record reads back exactly as written");
    assert!(read.iter().all(|record| record.computed_hash() == record.hash));
    let (head, hash) = store.audit_head().await.unwrap();
    assert!(head >= written[1].seq);
    if head == written[1].seq {
        assert_eq!(hash, written[1].hash);
    }
    let report = verify(all_records(store).await, &[], &[]);
    assert!(report.is_intact(), "{:?}", report.problems);
    let bad = entry(&actor, Action::Export, Outcome::Success);
    let bad = Entry {
        details: json!(["not", "an", "object"]),
        ..bad
    };
    assert!(matches!(
        store.append_audit(vec![bad]).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn an_action_and_its_record_commit_together_or_not_at_all(store: &dyn Store) {
    let actor = crate::new_id();
    let agency = store
        .create_agency(NewAgency {
            slug: format!("audit-{}", &crate::new_id()[30..]),
            name: "Audit agency".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let email = format!("{}@audit.example.gov", crate::new_id());
    let person = |email: &str| NewPerson {
        agency_id: agency.id.clone(),
        email: email.to_owned(),
        display_name: "Audited".to_owned(),
        kind: "person".to_owned(),
        status: "active".to_owned(),
        external_id: None,
        password_hash: None,
    };
    let (created, left) = with_audit(
        vec![entry(&actor, Action::AdminChange, Outcome::Success)],
        store.create_person(person(&email)),
    )
    .await;
    let created = created.unwrap();
    assert!(left.is_empty(), "the change did not take its record");
    let filter = AuditFilter {
        actor_id: Some(actor.clone()),
        ..AuditFilter::default()
    };
    assert_eq!(store.search_audit(&filter, 10).await.unwrap().len(), 1);

    // The action fails: no record.
    let (duplicate, left) = with_audit(
        vec![entry(&actor, Action::AdminChange, Outcome::Success)],
        store.create_person(person(&email)),
    )
    .await;
    assert!(duplicate.is_err());
    // Not written: handed back, for the caller to record the failure.
    assert_eq!(left.len(), 1);
    assert_eq!(store.search_audit(&filter, 10).await.unwrap().len(), 1);

    // The record cannot be written: the action does not happen.
    let unwritable = Entry {
        details: json!("not an object"),
        ..entry(&actor, Action::AdminChange, Outcome::Success)
    };
    let other = format!("{}@audit.example.gov", crate::new_id());
    let (refused, _) = with_audit(vec![unwritable], store.create_person(person(&other))).await;
    assert!(refused.is_err());
    assert!(
        store.get_person_by_email(&other).await.unwrap().is_none(),
        "the action committed without its record"
    );
    assert!(store.get_person(&created.id).await.unwrap().is_some());

    // Nothing changed: the entries are handed back to be written alone.
    let (_, left) = with_audit(
        vec![entry(&actor, Action::Export, Outcome::Success)],
        store.get_person(&created.id),
    )
    .await;
    assert_eq!(left.len(), 1);
}

pub async fn audit_search_filters_and_pages(store: &dyn Store) {
    let actor = crate::new_id();
    let other = crate::new_id();
    let mut entries = Vec::new();
    for index in 0..5 {
        let outcome = if index % 2 == 0 {
            Outcome::Success
        } else {
            Outcome::Denied
        };
        entries.push(entry(&actor, Action::PolicyDenied, outcome));
    }
    entries.push(entry(&other, Action::SignIn, Outcome::Success));
    store.append_audit(entries).await.unwrap();
    let mine = AuditFilter {
        actor_id: Some(actor.clone()),
        ..AuditFilter::default()
    };
    let found = store.search_audit(&mine, 100).await.unwrap();
    assert_eq!(found.len(), 5);
    assert!(
        found.windows(2).all(|pair| pair[0].seq > pair[1].seq),
        "newest first"
    );
    let denied = AuditFilter {
        outcome: Some("denied".to_owned()),
        ..mine.clone()
    };
    assert_eq!(store.search_audit(&denied, 100).await.unwrap().len(), 2);
    let page = store.search_audit(&mine, 2).await.unwrap();
    let next = AuditFilter {
        before_seq: Some(page[1].seq),
        ..mine.clone()
    };
    let rest = store.search_audit(&next, 100).await.unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest[0].seq < page[1].seq);
    let window = AuditFilter {
        since: Some(Utc::now() + chrono::Duration::hours(1)),
        ..mine.clone()
    };
    assert!(store.search_audit(&window, 100).await.unwrap().is_empty());
    let by_action = AuditFilter {
        action: Some("auth.sign_in".to_owned()),
        actor_id: Some(other.clone()),
        agency_id: Some("agency-audit".to_owned()),
        until: Some(Utc::now() + chrono::Duration::hours(1)),
        ..AuditFilter::default()
    };
    assert_eq!(store.search_audit(&by_action, 100).await.unwrap().len(), 1);
    // A target that mentions someone, whatever its shape; LIKE's wildcards
    // in the text are taken literally.
    let subject = crate::new_id();
    let mut about = entry(&other, Action::AdminChange, Outcome::Success);
    about.target = Some(format!("/api/admin/agencies/a/people/{subject}/roles"));
    let mut wildcard = entry(&other, Action::AdminChange, Outcome::Success);
    wildcard.target = Some("person:50%_off".to_owned());
    store.append_audit(vec![about, wildcard]).await.unwrap();
    let mentioning = |text: &str| AuditFilter {
        target_contains: Some(text.to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .search_audit(&mentioning(&subject), 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.search_audit(&mentioning("50%_"), 100).await.unwrap().len(),
        1
    );
    assert!(store
        .search_audit(&mentioning("5_%"), 100)
        .await
        .unwrap()
        .is_empty());
}

pub async fn concurrent_appends_keep_one_unbroken_chain(store: &dyn Store) {
    let actor = crate::new_id();
    let appends = (0..16).map(|_| {
        store.append_audit(vec![
            entry(&actor, Action::ModelCall, Outcome::Success),
            entry(&actor, Action::ModelCall, Outcome::Success),
        ])
    });
    for result in futures::future::join_all(appends).await {
        result.unwrap();
    }
    let records = all_records(store).await;
    let report = verify(records.clone(), &[], &[]);
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(
        records.iter().filter(|record| record.actor_id == actor).count(),
        32
    );
}

pub async fn checkpoints_are_kept_once_per_size(store: &dyn Store) {
    store
        .append_audit(vec![entry(&crate::new_id(), Action::SignOut, Outcome::Success)])
        .await
        .unwrap();
    let records = all_records(store).await;
    let mut tree = CompactTree::new();
    for record in &records {
        tree.push(record.leaf_hash());
    }
    let key = AuditKey::generate();
    let at = crate::now();
    let checkpoint = Checkpoint::sign(&key, tree.size(), tree.root(), at);
    let actor = crate::new_id();
    let (added, left) = with_audit(
        vec![entry(&actor, Action::Checkpoint, Outcome::Success)],
        store.add_checkpoint(&checkpoint),
    )
    .await;
    assert!(added.unwrap());
    assert!(left.is_empty(), "the checkpoint's record commits with it");
    // Another replica signing the same size adds nothing, nor a record.
    let again = Checkpoint::sign(&key, tree.size(), [1; 32], at);
    let (added, left) = with_audit(
        vec![entry(&actor, Action::Checkpoint, Outcome::Success)],
        store.add_checkpoint(&again),
    )
    .await;
    assert!(!added.unwrap());
    assert_eq!(left.len(), 1);
    let filter = AuditFilter {
        actor_id: Some(actor),
        ..AuditFilter::default()
    };
    assert_eq!(store.search_audit(&filter, 10).await.unwrap().len(), 1);
    let stored = store.checkpoints().await.unwrap();
    let ours: Vec<_> = stored
        .iter()
        .filter(|stored| stored.tree_size == tree.size())
        .collect();
    assert_eq!(ours, vec![&checkpoint], "the first checkpoint of a size stays");
    let report = verify(records, &stored, &[key.public()]);
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.checkpoints, 1);
}

/// Runs one SQL statement directly on the database, as someone with
/// access to it (not through the store).
pub type RawSql<'a> = &'a (dyn Fn(String) -> futures::future::BoxFuture<'static, Result<(), String>> + Sync);

/// Tampering done directly in the database is refused by the database
/// while its guard is in place, and found by verification once an
/// intruder has removed the guard: `unguard` holds the statements that
/// remove it on this database.
pub async fn tampering_in_the_database_is_found(store: &dyn Store, sql: RawSql<'_>, unguard: &[&str]) {
    let actor = crate::new_id();
    let entries = (0..10)
        .map(|_| entry(&actor, Action::ModelCall, Outcome::Success))
        .collect();
    store.append_audit(entries).await.unwrap();
    let key = AuditKey::generate();
    let records = all_records(store).await;
    let mut tree = CompactTree::new();
    for record in &records {
        tree.push(record.leaf_hash());
    }
    let checkpoint = Checkpoint::sign(&key, tree.size(), tree.root(), crate::now());
    store.add_checkpoint(&checkpoint).await.unwrap();
    let keys = [key.public()];
    let report = verify(records.clone(), &store.checkpoints().await.unwrap(), &keys);
    assert!(report.is_intact(), "{:?}", report.problems);

    // The guard: no update, no delete.
    let refused = sql("UPDATE audit_records SET outcome = 'denied' WHERE seq = 3".to_owned()).await;
    assert!(refused.unwrap_err().contains("append-only"));
    let refused = sql("DELETE FROM audit_records WHERE seq = 7".to_owned()).await;
    assert!(refused.unwrap_err().contains("append-only"));
    let refused = sql("DELETE FROM audit_checkpoints".to_owned()).await;
    assert!(refused.unwrap_err().contains("append-only"));

    // An intruder removes the guard and edits the log.
    for statement in unguard {
        sql((*statement).to_owned()).await.unwrap();
    }
    sql("UPDATE audit_records SET outcome = 'denied' WHERE seq = 3".to_owned())
        .await
        .unwrap();
    sql("DELETE FROM audit_records WHERE seq = 7".to_owned())
        .await
        .unwrap();
    let report = verify(
        all_records_by_seq(store).await,
        &store.checkpoints().await.unwrap(),
        &keys,
    );
    assert!(
        report
            .problems
            .contains(&civitas_audit::Problem::Modified { seq: 3 }),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .contains(&civitas_audit::Problem::Missing { from: 7, to: 7 }),
        "{:?}",
        report.problems
    );
    assert!(report
        .problems
        .contains(&civitas_audit::Problem::BrokenLink { seq: 8 }));
    assert!(
        report
            .problems
            .contains(&civitas_audit::Problem::CheckpointBeyondLog {
                tree_size: 10,
                records: 9
            }),
        "{:?}",
        report.problems
    );
}

/// Every record, in the order of their sequence numbers, gaps included.
async fn all_records_by_seq(store: &dyn Store) -> Vec<civitas_audit::Record> {
    let mut records: Vec<civitas_audit::Record> = Vec::new();
    loop {
        let next = records.last().map_or(1, |record| record.seq + 1);
        let page = store.audit_records(next, 500).await.unwrap();
        if page.is_empty() {
            return records;
        }
        records.extend(page);
    }
}

pub async fn break_glass_opens_once_for_its_time_and_counts_reads_with_their_record(store: &dyn Store) {
    use crate::{BreakGlassStatus, NewBreakGlass};
    let agency = store
        .create_agency(NewAgency {
            slug: format!("glass-{}", &crate::new_id()[30..]),
            name: "Glass agency".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let person = |name: &str| NewPerson {
        agency_id: agency.id.clone(),
        email: format!("{name}-{}@glass.example.gov", crate::new_id()),
        display_name: name.to_owned(),
        kind: "person".to_owned(),
        status: "active".to_owned(),
        external_id: None,
        password_hash: None,
    };
    let admin = store.create_person(person("admin")).await.unwrap();
    let subject = store.create_person(person("subject")).await.unwrap();
    let request = |open_now| NewBreakGlass {
        agency_id: agency.id.clone(),
        requested_by: admin.id.clone(),
        subject_id: subject.id.clone(),
        conversation_id: None,
        justification: "Records request under the public records act, case 2026-118".to_owned(),
        minutes: 30,
        open_now,
    };
    let pending = store.create_break_glass(request(false)).await.unwrap();
    assert_eq!(pending.status, BreakGlassStatus::Pending);
    assert!(!pending.is_open(Utc::now()));
    // Nothing is read under a pending request.
    assert!(!store
        .note_break_glass_read(&pending.id, Utc::now())
        .await
        .unwrap());
    // Another agency's id does not reach it.
    assert!(store
        .decide_break_glass("other-agency", &pending.id, "approver", true, Utc::now())
        .await
        .unwrap()
        .is_none());
    let at = crate::now();
    let approved = store
        .decide_break_glass(&agency.id, &pending.id, "approver", true, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.status, BreakGlassStatus::Approved);
    assert_eq!(approved.expires_at, Some(at + chrono::Duration::minutes(30)));
    // Decided once: a second decision finds nothing pending.
    assert!(store
        .decide_break_glass(&agency.id, &pending.id, "approver", false, at)
        .await
        .unwrap()
        .is_none());
    // A read commits with its record.
    let actor = crate::new_id();
    let (read, left) = with_audit(
        vec![entry(&actor, Action::BreakGlass, Outcome::Success)],
        store.note_break_glass_read(&pending.id, at + chrono::Duration::minutes(1)),
    )
    .await;
    assert!(read.unwrap());
    assert!(left.is_empty(), "the read did not take its record");
    let filter = AuditFilter {
        actor_id: Some(actor.clone()),
        ..AuditFilter::default()
    };
    assert_eq!(store.search_audit(&filter, 10).await.unwrap().len(), 1);
    // After its time, nothing more is read and nothing is recorded with it.
    let (late, left) = with_audit(
        vec![entry(&actor, Action::BreakGlass, Outcome::Success)],
        store.note_break_glass_read(&pending.id, at + chrono::Duration::minutes(31)),
    )
    .await;
    assert!(!late.unwrap());
    assert_eq!(left.len(), 1);
    let stored = store
        .get_break_glass(&agency.id, &pending.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.reads, 1);
    assert_eq!(stored.last_read_at, Some(at + chrono::Duration::minutes(1)));

    let refused = store.create_break_glass(request(false)).await.unwrap();
    let refused = store
        .decide_break_glass(&agency.id, &refused.id, "approver", false, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.status, BreakGlassStatus::Refused);
    assert!(refused.expires_at.is_none());
    let open = store.create_break_glass(request(true)).await.unwrap();
    assert!(open.is_open(Utc::now()));
    let listed = store.list_break_glass(&agency.id, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|grant| grant.id.as_str()).collect::<Vec<_>>(),
        vec![open.id.as_str(), refused.id.as_str(), pending.id.as_str()]
    );
    assert_eq!(store.break_glass_about(&subject.id, 10).await.unwrap().len(), 3);
    assert!(store.break_glass_about(&admin.id, 10).await.unwrap().is_empty());
    // A justification a database would mangle is refused.
    let mut bad = request(true);
    bad.justification = "nul\0".to_owned();
    assert!(matches!(
        store.create_break_glass(bad).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
}
