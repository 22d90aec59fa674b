//! `civitas data-keys` and `civitas retention` on a real database, with
//! the master key the binary creates: rotate, re-encrypt, a new master
//! key taken over by `rewrap`, a refused and a real destruction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use civitas_store::{NewAgency, NewConversation, NewMessage, NewPerson, Store, StoreError};

fn civitas(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civitas"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIVITAS_DATA_DIR", data_dir);
    command
}

fn run(command: &mut Command) -> (bool, String) {
    let output: Output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn open(data: &std::path::Path, previous: &[std::path::PathBuf]) -> std::sync::Arc<dyn Store> {
    let mut config = civitas_config::Config {
        data_dir: data.display().to_string(),
        ..civitas_config::Config::default()
    };
    if let Some(master) = previous.first() {
        config.data_protection.master_key = format!("file::{}", master.display());
    }
    let keys = civitas_server::protection::load_keyring(&config).unwrap();
    let url = format!("sqlite://{}", data.join("civitas.db").display());
    std::sync::Arc::new(
        civitas_store_sqlite::SqliteStore::open(&url, 2, keys)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn data_keys_rotate_reencrypt_rewrap_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, text) = run(civitas(data).arg("migrate"));
    assert!(ok, "{text}");
    assert!(
        data.join("master-key").exists(),
        "the master key is created on first use"
    );
    let store = open(data, &[]).await;
    let agency = store
        .create_agency(NewAgency {
            slug: "archives".to_owned(),
            name: "Archives".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let person = store
        .create_person(NewPerson {
            agency_id: agency.id.clone(),
            email: "clerk@archives.example.gov".to_owned(),
            display_name: "Clerk".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: None,
        })
        .await
        .unwrap();
    let (conversation, _) = store
        .create_conversation(
            NewConversation {
                owner: person.id.clone(),
                title: Some("Dossier 17".to_owned()),
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![NewMessage {
                role: "user".to_owned(),
                content: "Pièce confidentielle".to_owned(),
                metadata: None,
            }],
        )
        .await
        .unwrap();
    store.close().await;

    let (ok, text) = run(civitas(data).args(["data-keys", "rotate", "--agency", &agency.id]));
    assert!(ok, "{text}");
    let (ok, text) = run(civitas(data).args(["data-keys", "reencrypt", "--batch", "1"]));
    assert!(ok, "{text}");
    assert!(text.contains("2 rows re-sealed"), "{text}");
    let (ok, text) = run(civitas(data).args(["data-keys", "list"]));
    assert!(ok, "{text}");
    assert!(text.contains("active") && text.contains("previous"), "{text}");

    // A new master key: configured with the old one beside it, `rewrap`
    // moves every data key; the new key alone then reads everything.
    let new_key = data.join("master-key-2");
    let (ok, text) = run(civitas(data)
        .args(["data-keys", "new-master-key", "--out"])
        .arg(&new_key));
    assert!(ok, "{text}");
    let (ok, text) = run(civitas(data)
        .args(["data-keys", "new-master-key", "--out"])
        .arg(&new_key));
    assert!(!ok && text.contains("never overwritten"), "{text}");
    let config = data.join("civitas.toml");
    std::fs::write(
        &config,
        format!(
            "[data_protection]\nmaster_key = \"file::{}\"\nprevious_master_keys = [\"file::{}\"]\n",
            new_key.display(),
            data.join("master-key").display()
        ),
    )
    .unwrap();
    let (ok, text) = run(civitas(data)
        .env("CIVITAS_CONFIG", &config)
        .args(["data-keys", "rewrap"]));
    assert!(ok, "{text}");
    assert!(text.contains("2 data keys re-wrapped"), "{text}");
    let store = open(data, std::slice::from_ref(&new_key)).await;
    assert_eq!(
        store.list_messages(&conversation.id).await.unwrap()[0].content,
        "Pièce confidentielle"
    );
    store.close().await;

    // Destruction needs the agency repeated; then the content is gone.
    let (ok, text) = run(civitas(data)
        .env(
            "CIVITAS__DATA_PROTECTION__MASTER_KEY",
            format!("file::{}", new_key.display()),
        )
        .args([
            "data-keys",
            "destroy",
            "--agency",
            &agency.id,
            "--confirm",
            "other",
        ]));
    assert!(!ok && text.contains("nothing was destroyed"), "{text}");
    let (ok, text) = run(civitas(data)
        .env(
            "CIVITAS__DATA_PROTECTION__MASTER_KEY",
            format!("file::{}", new_key.display()),
        )
        .args([
            "data-keys",
            "destroy",
            "--agency",
            &agency.id,
            "--confirm",
            &agency.id,
        ]));
    assert!(ok, "{text}");
    let store = open(data, &[new_key]).await;
    assert!(matches!(
        store.list_messages(&conversation.id).await,
        Err(StoreError::Destroyed { .. })
    ));
    let actions: Vec<String> = store
        .audit_records(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.action == "data.key")
        .map(|record| {
            record.details["operation"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for operation in ["rotate", "reencrypt", "retire", "rewrap", "destroy"] {
        assert!(
            actions.iter().any(|done| done == operation),
            "{operation} in {actions:?}"
        );
    }
    assert!(store
        .list_data_keys()
        .await
        .unwrap()
        .iter()
        .any(|key| key.state == "destroyed"));
    store.close().await;

    let (ok, text) = run(civitas(data)
        .env("CIVITAS__DATA_PROTECTION__MASTER_KEY", "env::NOT_SET_ANYWHERE")
        .args(["retention", "purge"]));
    assert!(!ok && text.contains("nothing found"), "{text}");
}
