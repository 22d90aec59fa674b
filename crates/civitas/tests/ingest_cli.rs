//! `civitas ingest` and `civitas index rebuild` on a real database: a
//! folder queued into a new collection (unsupported and hidden files
//! skipped with their reason), nothing added twice, indexes rebuilt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use civitas_store::{NewAgency, Store};

fn civitas(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civitas"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIVITAS_DATA_DIR", data_dir);
    command
}

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn open(data: &std::path::Path) -> std::sync::Arc<dyn Store> {
    let config = civitas_config::Config {
        data_dir: data.display().to_string(),
        ..civitas_config::Config::default()
    };
    let keys = civitas_server::protection::load_keyring(&config).unwrap();
    let url = format!("sqlite://{}", data.join("civitas.db").display());
    std::sync::Arc::new(
        civitas_store_sqlite::SqliteStore::open(&url, 2, keys)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_folder_is_queued_once_into_its_collection_and_indexes_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, text) = run(civitas(&data).arg("migrate"));
    assert!(ok, "{text}");
    let store = open(&data).await;
    let agency = store
        .create_agency(NewAgency {
            slug: "archives".to_owned(),
            name: "Archives".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let folder = dir.path().join("handbook");
    std::fs::create_dir_all(folder.join("annexes")).unwrap();
    std::fs::write(folder.join("leave.md"), "# Leave\n\nTwenty-five days a year.\n").unwrap();
    std::fs::write(
        folder.join("annexes/travel.pdf"),
        civitas_knowledge::samples::pdf(&[vec!["Mileage is paid at 0.58 per kilometre.".to_owned()]]),
    )
    .unwrap();
    std::fs::write(folder.join("annexes/notes.txt"), "Keep case files seven years.").unwrap();
    std::fs::write(folder.join("tool.exe"), b"MZ\0\0\x90binary").unwrap();
    std::fs::write(folder.join(".hidden.md"), "# secret draft").unwrap();

    let (ok, text) = run(civitas(&data)
        .args(["ingest", "--collection", "Handbook", "--agency", "archives"])
        .arg(&folder));
    assert!(ok, "{text}");
    assert!(text.contains("created collection"), "{text}");
    assert_eq!(text.matches("queued   ").count(), 3, "{text}");
    assert!(
        text.contains("skipped  ") && text.contains("tool.exe") && text.contains("supported: PDF"),
        "{text}"
    );
    assert!(!text.contains(".hidden"), "{text}");
    assert!(text.contains("3 files queued"), "{text}");

    // Again: the same collection, nothing added twice.
    let (ok, text) = run(civitas(&data)
        .args(["ingest", "--collection", "Handbook", "--agency", "archives"])
        .arg(&folder));
    assert!(ok, "{text}");
    assert!(!text.contains("created collection"), "{text}");
    assert_eq!(text.matches("same as  document").count(), 3, "{text}");
    assert!(text.contains("0 files queued"), "{text}");

    let collections = store.list_collections(&agency.id).await.unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(
        (
            collections[0].name.as_str(),
            collections[0].owner_kind.as_str(),
            collections[0].documents
        ),
        ("Handbook", "agency", 3)
    );
    let documents = store.list_documents(collections[0].id, 0, 10).await.unwrap();
    let mut names: Vec<&str> = documents.iter().map(|document| document.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["leave.md", "notes.txt", "travel.pdf"]);
    assert!(documents.iter().all(|document| document.status == "queued"));
    assert_eq!(
        documents.iter().find(|d| d.name == "travel.pdf").unwrap().format,
        "pdf"
    );

    let (ok, text) = run(civitas(&data).args(["index", "rebuild"]));
    assert!(ok && text.contains("0 documents will be indexed again"), "{text}");
    let (ok, text) = run(civitas(&data).args(["index", "rebuild", "--reingest"]));
    assert!(ok && text.contains("3 documents queued"), "{text}");
    let (ok, text) = run(civitas(&data)
        .args(["ingest", "--collection", "X", "--agency", "nowhere"])
        .arg(&folder));
    assert!(!ok && text.contains("no agency `nowhere`"), "{text}");

    let records = store.audit_records(1, 1_000).await.unwrap();
    let cli: Vec<_> = records
        .iter()
        .filter(|record| record.details["via"] == "cli")
        .collect();
    assert_eq!(cli.len(), 4, "two ingests and two rebuilds are recorded");
    store.close().await;
}
