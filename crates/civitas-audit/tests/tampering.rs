//! A log is verified intact, and every kind of tampering is found and
//! named with its sequence number: a record modified, deleted, inserted,
//! reordered, the chain recomputed after a change (caught by the signed
//! checkpoint), records cut from the end, a forged checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use civitas_audit::merkle::CompactTree;
use civitas_audit::{
    verify, Action, ActorKind, AuditKey, Checkpoint, Entry, Outcome, Problem, Record, GENESIS,
};
use serde_json::json;

fn entry(i: u64) -> Entry {
    Entry {
        at: Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap() + Duration::seconds(i as i64),
        actor_kind: ActorKind::Person,
        actor_id: format!("person-{}", i % 3),
        agency_id: Some("agency-1".to_owned()),
        action: if i.is_multiple_of(2) {
            Action::ModelCall
        } else {
            Action::SignIn
        },
        target: None,
        outcome: Outcome::Success,
        source_address: Some("10.1.2.3".to_owned()),
        user_agent: Some("Mozilla/5.0".to_owned()),
        request_id: Some(format!("req-{i}")),
        details: json!({"tokens": i}),
    }
}

/// A log of `n` records with checkpoints at 4 and at `n`.
fn log(n: u64, key: &AuditKey) -> (Vec<Record>, Vec<Checkpoint>) {
    let mut records = Vec::new();
    let mut prev = GENESIS;
    let mut tree = CompactTree::new();
    let mut checkpoints = Vec::new();
    for seq in 1..=n {
        let record = Record::chain(seq, entry(seq), prev);
        prev = record.hash;
        tree.push(record.leaf_hash());
        if seq == 4 || seq == n {
            checkpoints.push(Checkpoint::sign(key, seq, tree.root(), record.at));
        }
        records.push(record);
    }
    (records, checkpoints)
}

/// Recomputes every hash after a change, as a forger with database access
/// but without the signing key would.
fn rechain(records: &mut [Record]) {
    let mut prev = GENESIS;
    for record in records.iter_mut() {
        record.prev_hash = prev;
        record.hash = record.computed_hash();
        prev = record.hash;
    }
}

#[test]
fn an_untouched_log_is_intact() {
    let key = AuditKey::generate();
    let (records, checkpoints) = log(10, &key);
    let report = verify(records, &checkpoints, &[key.public()]);
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.records, report.last_seq, report.checkpoints), (10, 10, 2));
    assert_eq!(report.root_hash, checkpoints[1].root_hash);
}

#[test]
fn each_tampering_is_named() {
    let key = AuditKey::generate();
    let keys = [key.public()];
    let (records, checkpoints) = log(10, &key);

    let mut modified = records.clone();
    modified[5].outcome = Outcome::Denied;
    let report = verify(modified, &checkpoints, &keys);
    assert!(
        report.problems.contains(&Problem::Modified { seq: 6 }),
        "{:?}",
        report.problems
    );

    let mut deleted = records.clone();
    deleted.remove(6);
    let report = verify(deleted, &checkpoints, &keys);
    assert!(
        report.problems.contains(&Problem::Missing { from: 7, to: 7 }),
        "{:?}",
        report.problems
    );
    assert!(report.problems.contains(&Problem::BrokenLink { seq: 8 }));

    let mut inserted = records.clone();
    let forged = Record::chain(3, entry(99), inserted[2].hash);
    inserted.insert(3, forged);
    let report = verify(inserted, &checkpoints, &keys);
    assert!(
        report
            .problems
            .contains(&Problem::OutOfOrder { seq: 4, expected: 5 }),
        "{:?}",
        report.problems
    );

    let mut reordered = records.clone();
    reordered.swap(1, 2);
    let report = verify(reordered, &checkpoints, &keys);
    assert!(
        report
            .problems
            .contains(&Problem::OutOfOrder { seq: 2, expected: 4 }),
        "{:?}",
        report.problems
    );
    assert!(report.problems.contains(&Problem::BrokenLink { seq: 3 }));

    // A forger who rewrites record 2 and recomputes the chain: the chain
    // holds, the signed checkpoints do not.
    let mut rewritten = records.clone();
    rewritten[1].details = json!({"tokens": 0});
    rechain(&mut rewritten);
    let report = verify(rewritten, &checkpoints, &keys);
    assert_eq!(
        report.problems,
        vec![
            Problem::CheckpointMismatch { tree_size: 4 },
            Problem::CheckpointMismatch { tree_size: 10 }
        ]
    );

    let mut truncated = records.clone();
    truncated.truncate(8);
    let report = verify(truncated, &checkpoints, &keys);
    assert_eq!(
        report.problems,
        vec![Problem::CheckpointBeyondLog {
            tree_size: 10,
            records: 8
        }]
    );

    // A checkpoint signed by another key, or altered, is not trusted.
    let stranger = AuditKey::generate();
    let mut forged = checkpoints.clone();
    forged[1] = Checkpoint::sign(&stranger, 10, forged[1].root_hash, forged[1].at);
    let report = verify(records.clone(), &forged, &keys);
    assert!(
        matches!(report.problems[..], [Problem::BadSignature { tree_size: 10, .. }]),
        "{:?}",
        report.problems
    );
    let mut shifted = checkpoints.clone();
    shifted[0].tree_size = 5;
    let report = verify(records, &shifted, &keys);
    assert!(report.problems.contains(&Problem::BadSignature {
        tree_size: 5,
        reason: "the signature does not match".to_owned()
    }));
}

/// A log whose key changes after record 4: checkpoints at 4 (old key) and
/// at 8 (new key), the rotation at record 5.
fn rotated_log(
    old: &AuditKey,
    new: &AuditKey,
    rotation: civitas_audit::KeyRotation,
) -> (Vec<Record>, Vec<Checkpoint>) {
    let mut records = Vec::new();
    let mut prev = GENESIS;
    let mut tree = CompactTree::new();
    let mut checkpoints = Vec::new();
    for seq in 1..=8 {
        let mut entry = entry(seq);
        if seq == 5 {
            entry.action = Action::KeyRotation;
            entry.actor_kind = ActorKind::System;
            entry.details = serde_json::to_value(&rotation).unwrap();
        }
        let record = Record::chain(seq, entry, prev);
        prev = record.hash;
        tree.push(record.leaf_hash());
        if seq == 4 {
            checkpoints.push(Checkpoint::sign(old, seq, tree.root(), record.at));
        }
        if seq == 8 {
            checkpoints.push(Checkpoint::sign(new, seq, tree.root(), record.at));
        }
        records.push(record);
    }
    (records, checkpoints)
}

#[test]
fn a_rotated_key_is_trusted_through_the_rotation_either_way() {
    let old = AuditKey::generate();
    let new = AuditKey::generate();
    let (records, checkpoints) = rotated_log(&old, &new, civitas_audit::KeyRotation::sign(&old, &new));
    for trusted in [old.public(), new.public()] {
        let report = verify(records.clone(), &checkpoints, &[trusted]);
        assert!(report.is_intact(), "{:?}", report.problems);
    }
    // A key the rotation does not link to trusts nothing.
    let stranger = AuditKey::generate();
    let report = verify(records, &checkpoints, &[stranger.public()]);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report
        .problems
        .iter()
        .all(|problem| matches!(problem, Problem::BadSignature { .. })));
}

#[test]
fn a_forged_rotation_is_named_and_lends_no_trust() {
    let old = AuditKey::generate();
    let new = AuditKey::generate();
    let forger = AuditKey::generate();
    // The forger claims to be the old key's successor without the old key.
    let mut forged = civitas_audit::KeyRotation::sign(&forger, &forger);
    forged.old_key_id = old.key_id();
    forged.old_public_key = old.public().public_key;
    let (records, checkpoints) = rotated_log(&old, &forger, forged);
    let report = verify(records, &checkpoints, &[old.public()]);
    assert!(
        report.problems.contains(&Problem::BadKeyRotation { seq: 5 }),
        "{:?}",
        report.problems
    );
    assert!(report
        .problems
        .iter()
        .any(|problem| matches!(problem, Problem::BadSignature { tree_size: 8, .. })));
    let _ = new;
}
