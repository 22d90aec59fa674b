//! `civitas audit` on a real database: verify, export, verify the export,
//! prove a record, prove consistency; tampering done in the SQLite file is
//! named and makes the command fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use civitas_audit::merkle::{verify_consistency, verify_inclusion};
use civitas_audit::record::hex_hash::from_hex;
use civitas_audit::{Action, ActorKind, AuditKey, Checkpoint, CompactTree, Entry, Outcome};
use civitas_store::{AuditStore, Store};

fn civitas(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civitas"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIVITAS_DATA_DIR", data_dir);
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn entry(index: u64) -> Entry {
    Entry {
        at: civitas_store::now(),
        actor_kind: ActorKind::Person,
        actor_id: format!("person-{index}"),
        agency_id: Some("agency".to_owned()),
        action: Action::SignIn,
        target: None,
        outcome: Outcome::Success,
        source_address: Some("203.0.113.9".to_owned()),
        user_agent: None,
        request_id: None,
        details: serde_json::json!({ "index": index }),
    }
}

#[tokio::test]
async fn verify_export_prove_and_find_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // The installation's key, as `civitas serve` would make it.
    let key = AuditKey::generate();
    std::fs::write(data.join("audit-signing-key"), key.to_text()).unwrap();
    let url = format!("sqlite://{}", data.join("civitas.db").display());
    let store = civitas_store_sqlite::SqliteStore::open(&url, 2, civitas_store::crypt::Keyring::ephemeral())
        .await
        .unwrap();
    store.append_audit((1..=6).map(entry).collect()).await.unwrap();
    let records = store.audit_records(1, 100).await.unwrap();
    let mut tree = CompactTree::new();
    for record in &records {
        tree.push(record.leaf_hash());
        if tree.size() == 4 || tree.size() == 6 {
            store
                .add_checkpoint(&Checkpoint::sign(
                    &key,
                    tree.size(),
                    tree.root(),
                    civitas_store::now(),
                ))
                .await
                .unwrap();
        }
    }

    let verified = civitas(data).args(["audit", "verify"]).output().unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("the audit log is intact"));
    // The verification itself is now in the log.
    let after = store.audit_records(7, 10).await.unwrap();
    assert_eq!(after[0].action, "audit.verification");

    let export = data.join("audit.jsonl");
    let exported = civitas(data)
        .args(["audit", "export", "--out", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", text(&exported));
    let public = key.public().public_key;
    let offline = civitas(data)
        .args([
            "audit",
            "verify",
            "--export",
            export.to_str().unwrap(),
            "--public-key",
            &public,
        ])
        .output()
        .unwrap();
    assert!(offline.status.success(), "{}", text(&offline));
    let stranger = AuditKey::generate().public().public_key;
    let wrong_key = civitas(data)
        .args([
            "audit",
            "verify",
            "--export",
            export.to_str().unwrap(),
            "--public-key",
            &stranger,
        ])
        .output()
        .unwrap();
    assert!(!wrong_key.status.success());
    assert!(
        text(&wrong_key).contains("not validly signed"),
        "{}",
        text(&wrong_key)
    );

    // An inclusion proof against the latest checkpoint, checked here.
    let proved = civitas(data).args(["audit", "prove", "3"]).output().unwrap();
    assert!(proved.status.success(), "{}", text(&proved));
    let proof: serde_json::Value = serde_json::from_slice(&proved.stdout).unwrap();
    assert_eq!(proof["tree_size"], 6);
    let hashes: Vec<_> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| from_hex(hash.as_str().unwrap()).unwrap())
        .collect();
    let leaf = from_hex(proof["leaf_hash"].as_str().unwrap()).unwrap();
    let root = from_hex(proof["root_hash"].as_str().unwrap()).unwrap();
    assert_eq!(root, tree.root());
    assert_eq!(leaf, records[2].leaf_hash());
    verify_inclusion(2, 6, &leaf, &hashes, &root).unwrap();
    let consistent = civitas(data)
        .args(["audit", "consistency", "4", "6"])
        .output()
        .unwrap();
    assert!(consistent.status.success(), "{}", text(&consistent));
    let answer: serde_json::Value = serde_json::from_slice(&consistent.stdout).unwrap();
    let path: Vec<_> = answer["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| from_hex(hash.as_str().unwrap()).unwrap())
        .collect();
    let old = from_hex(answer["from"]["root_hash"].as_str().unwrap()).unwrap();
    verify_consistency(4, 6, &old, &root, &path).unwrap();

    // Someone with the database file edits record 2 and removes record 5.
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "DROP TRIGGER audit_records_no_update",
        "DROP TRIGGER audit_records_no_delete",
        "UPDATE audit_records SET actor_id = 'someone-else' WHERE seq = 2",
        "DELETE FROM audit_records WHERE seq = 5",
    ] {
        sqlx::query(statement).execute(&raw).await.unwrap();
    }
    let caught = civitas(data).args(["audit", "verify"]).output().unwrap();
    assert!(!caught.status.success());
    let said = text(&caught);
    assert!(said.contains("record 2 was modified"), "{said}");
    assert!(said.contains("record 5 is missing"), "{said}");
    // The export made before still verifies on its own.
    let still = civitas(data)
        .args(["audit", "verify", "--export", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(still.status.success(), "{}", text(&still));
    store.close().await;
}

#[tokio::test]
async fn a_rotated_key_keeps_every_checkpoint_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let old = AuditKey::generate();
    std::fs::write(data.join("audit-signing-key"), old.to_text()).unwrap();
    let url = format!("sqlite://{}", data.join("civitas.db").display());
    let store = civitas_store_sqlite::SqliteStore::open(&url, 2, civitas_store::crypt::Keyring::ephemeral())
        .await
        .unwrap();
    store.append_audit((1..=3).map(entry).collect()).await.unwrap();
    let sign = |key: &AuditKey, records: &[civitas_audit::Record]| {
        let mut tree = CompactTree::new();
        for record in records {
            tree.push(record.leaf_hash());
        }
        Checkpoint::sign(key, tree.size(), tree.root(), civitas_store::now())
    };
    let before = store.audit_records(1, 100).await.unwrap();
    store.add_checkpoint(&sign(&old, &before)).await.unwrap();

    let rotated = civitas(data).args(["audit", "rotate-key"]).output().unwrap();
    assert!(rotated.status.success(), "{}", text(&rotated));
    let new = AuditKey::from_text(&std::fs::read_to_string(data.join("audit-signing-key")).unwrap()).unwrap();
    assert_ne!(new.key_id(), old.key_id());
    assert!(text(&rotated).contains(&new.key_id()), "{}", text(&rotated));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("audit-signing-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key file is for its owner only");
    }
    // The rotation is in the log, and the next checkpoint is the new key's.
    let all = store.audit_records(1, 100).await.unwrap();
    let rotation = all
        .iter()
        .find(|record| record.action == "audit.key_rotation")
        .unwrap();
    assert_eq!(rotation.details["old_key_id"], old.key_id());
    assert_eq!(rotation.details["new_key_id"], new.key_id());
    store.add_checkpoint(&sign(&new, &all)).await.unwrap();

    // The installation's (new) key verifies the old key's checkpoint
    // through the rotation; so does the old key alone, pinned earlier.
    let verified = civitas(data).args(["audit", "verify"]).output().unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
    let pinned = civitas(data)
        .args(["audit", "verify", "--public-key", &old.public().public_key])
        .output()
        .unwrap();
    assert!(pinned.status.success(), "{}", text(&pinned));

    // With the key in the environment, the new key must go to a file.
    let from_env = civitas(data)
        .env("CIVITAS__AUDIT__SIGNING_KEY", "env::CIVITAS_TEST_AUDIT_KEY")
        .env("CIVITAS_TEST_AUDIT_KEY", new.to_text())
        .args(["audit", "rotate-key"])
        .output()
        .unwrap();
    assert!(!from_env.status.success());
    assert!(text(&from_env).contains("--out"), "{}", text(&from_env));
    store.close().await;
}
