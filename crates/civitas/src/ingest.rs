//! `civitas ingest` and `civitas index`: bulk loading of files into a
//! collection, and rebuilding the replicas' search indexes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use civitas_config::Config;
use civitas_store::{NewCollection, NewUpload, Store, UploadOutcome};

use crate::cli::IndexCommand;
use crate::commands::open_store;

/// Every file under `paths`, in a stable order; hidden ones skipped.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(path) = stack.pop() {
        let metadata = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|entry| {
                    !entry
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if metadata.is_file() {
            out.push(path);
        }
    }
    Ok(out)
}

pub async fn ingest(
    config: &Config,
    paths: &[PathBuf],
    collection: &str,
    agency: &str,
    wait: bool,
) -> Result<()> {
    let files = files(paths)?;
    let store = open_store(config).await?;
    let result = queue(config, store.as_ref(), &files, collection, agency, wait).await;
    store.close().await;
    result
}

async fn queue(
    config: &Config,
    store: &dyn Store,
    files: &[PathBuf],
    name: &str,
    agency_slug: &str,
    wait: bool,
) -> Result<()> {
    let agency = store
        .get_agency_by_slug(agency_slug)
        .await?
        .ok_or_else(|| anyhow!("no agency `{agency_slug}`"))?;
    let existing = store
        .list_collections(&agency.id)
        .await?
        .into_iter()
        .find(|collection| collection.owner_kind == "agency" && collection.name == name);
    let collection = match existing {
        Some(collection) => collection,
        None => {
            let level = config
                .classifications
                .first()
                .map(|level| level.id.clone())
                .unwrap_or_default();
            let created = store
                .create_collection(NewCollection {
                    agency_id: agency.id.clone(),
                    owner_kind: "agency".to_owned(),
                    owner_id: String::new(),
                    name: name.to_owned(),
                    description: None,
                    classification: level,
                    created_by: "civitas ingest".to_owned(),
                })
                .await?;
            println!(
                "created collection {} ({name}) in agency {agency_slug}",
                created.id
            );
            created
        }
    };
    let limit = config.knowledge.max_file_bytes;
    let (mut queued, mut skipped) = (Vec::new(), 0usize);
    for path in files {
        let display = path.display();
        let size = std::fs::metadata(path)
            .map(|metadata| metadata.len())
            .unwrap_or(0);
        if size > limit {
            println!("skipped  {display}: {size} bytes, over knowledge.max_file_bytes ({limit})");
            skipped += 1;
            continue;
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {display}"))?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let format = match civitas_knowledge::Format::detect(&file_name, &bytes) {
            Ok(format) => format,
            Err(error) => {
                println!("skipped  {display}: {error}");
                skipped += 1;
                continue;
            }
        };
        let outcome = store
            .add_upload(NewUpload {
                collection_id: collection.id,
                name: file_name,
                metadata: Some(serde_json::json!({"source_path": path.display().to_string()}).to_string()),
                classification: None,
                content_hash: civitas_knowledge::content_hash(&bytes),
                format: format.as_str().to_owned(),
                bytes,
                created_by: "civitas ingest".to_owned(),
            })
            .await
            .with_context(|| format!("cannot store {display}"))?;
        match outcome {
            UploadOutcome::Created(document) => {
                println!("queued   {display} (document {})", document.id);
                queued.push(document.id);
            }
            UploadOutcome::NewVersion(document) => {
                println!(
                    "queued   {display} (document {}, version {})",
                    document.id, document.version
                );
                queued.push(document.id);
            }
            UploadOutcome::Duplicate(document) => {
                println!(
                    "same as  document {} ({}): {display} not added",
                    document.id, document.name
                );
            }
        }
    }
    let entry = civitas_server::audit::system_entry(
        civitas_audit::Action::DocumentAccess,
        serde_json::json!({"via": "cli", "command": "ingest", "collection_id": collection.id,
                           "queued": queued.len(), "skipped": skipped}),
    );
    store.append_audit(vec![entry]).await?;
    println!(
        "{} files queued into collection {} ({name}); {skipped} skipped. A running server ingests them.",
        queued.len(),
        collection.id
    );
    if wait && !queued.is_empty() {
        wait_for(store, &queued).await?;
    }
    Ok(())
}

async fn wait_for(store: &dyn Store, documents: &[i64]) -> Result<()> {
    let mut last = String::new();
    loop {
        let (mut ready, mut failed, mut pending) = (0, 0, 0);
        for id in documents {
            match store.get_document(*id).await? {
                Some(document) if document.status == "ready" => ready += 1,
                Some(document) if document.status == "failed" => {
                    failed += 1;
                    let line = format!(
                        "failed   {} ({}): {}",
                        document.name,
                        document.error_code.unwrap_or_default(),
                        document.error_message.unwrap_or_default()
                    );
                    if !last.contains(&line) {
                        println!("{line}");
                        last.push_str(&line);
                    }
                }
                _ => pending += 1,
            }
        }
        if pending == 0 {
            println!("{ready} ingested, {failed} failed");
            if failed > 0 {
                bail!("{failed} files could not be ingested");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn index(config: &Config, command: IndexCommand) -> Result<()> {
    let IndexCommand::Rebuild { reingest } = command;
    let store = open_store(config).await?;
    let result = async {
        let count = if reingest { store.requeue_all().await? } else { store.reindex_all().await? };
        let entry = civitas_server::audit::system_entry(
            civitas_audit::Action::CollectionAccess,
            serde_json::json!({"via": "cli", "command": "index rebuild", "reingest": reingest, "documents": count}),
        );
        store.append_audit(vec![entry]).await?;
        if reingest {
            println!("{count} documents queued for ingestion again; the running servers extract, cut and embed them");
        } else {
            println!("{count} documents will be indexed again by every replica within knowledge.sync_every_seconds");
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    store.close().await;
    result
}
