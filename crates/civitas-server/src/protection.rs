//! The server's side of data protection at rest: the master key that
//! wraps every agency's data keys, and the retention purge.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use civitas_audit::Action;
use civitas_config::{Config, SecretLocation};
use civitas_store::crypt::{Keyring, MasterKey};
use civitas_store::Store;
use serde_json::json;

/// The keyring of `config`: the master key from
/// `data_protection.master_key` (or the file `master-key` in the data
/// directory, created on first start) and the previous master keys.
pub fn load_keyring(config: &Config) -> Result<Arc<Keyring>, String> {
    let settings = &config.data_protection;
    let master = if settings.master_key.is_empty() {
        let path = config.data_dir().join("master-key");
        let text = read_or_create(&path, &|| {
            MasterKey::generate()
                .map(|key| key.to_text())
                .map_err(|e| e.to_string())
        })?;
        MasterKey::from_text(&text).ok_or_else(|| format!("{} does not hold a master key", path.display()))?
    } else {
        read_master_key("data_protection.master_key", &settings.master_key)?
    };
    let previous = settings
        .previous_master_keys
        .iter()
        .map(|location| read_master_key("data_protection.previous_master_keys", location))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keyring::new(master, previous))
}

fn read_master_key(setting: &str, location: &str) -> Result<MasterKey, String> {
    let location = SecretLocation::parse(location).map_err(|error| format!("{setting}: {error}"))?;
    let secret = location
        .read()
        .map_err(|error| format!("{setting}: {error}"))?
        .ok_or_else(|| format!("{setting}: nothing found at {location:?}"))?;
    MasterKey::from_text(secret.expose())
        .ok_or_else(|| format!("{setting}: not a master key (32 bytes in base64)"))
}

/// The text of the key file at `path`, which is created (mode 0600) with
/// `make()` when absent. When another process creates it first, theirs is
/// used.
pub fn read_or_create(path: &Path, make: &dyn Fn() -> Result<String, String>) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let text = make()?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|error| format!("{}: {error}", parent.display()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            let written = options
                .open(path)
                .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()));
            match written {
                Ok(()) => Ok(text),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_or_create(path, make),
                Err(error) => Err(format!("{}: {error}", path.display())),
            }
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// Conversations removed per transaction by the purge.
const PURGE_BATCH: u32 = 200;

/// What one purge removed.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct PurgeReport {
    pub conversations: u64,
    pub usage_records: u64,
    /// Knowledge documents, with their files and passages.
    pub documents: u64,
}

/// Applies every agency's retention rules once: conversations last active
/// before their limit and request records older than theirs are removed
/// (except those of people on legal hold), each batch with its
/// `data.purged` record in the same transaction (which conversations,
/// never their content).
pub async fn purge_once(store: &dyn Store) -> Result<PurgeReport, civitas_store::StoreError> {
    purge_as_of(store, civitas_store::now()).await
}

/// [`purge_once`] as if it were `now` (what is due then is removed).
pub async fn purge_as_of(
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PurgeReport, civitas_store::StoreError> {
    let mut report = PurgeReport::default();
    for rule in store.all_retention_rules().await? {
        let before = now - chrono::Duration::days(rule.days);
        let entry = |details| {
            let mut entry = crate::audit::system_entry(Action::Purge, details);
            entry.agency_id = Some(rule.agency_id.clone());
            entry
        };
        match rule.record_type.as_str() {
            "conversations" => loop {
                let details =
                    json!({ "record_type": "conversations", "retention_days": rule.days, "before": before });
                let (purged, _) = civitas_store::with_audit(
                    vec![entry(details)],
                    store.purge_conversations(&rule.agency_id, before, PURGE_BATCH),
                )
                .await;
                let purged = purged?;
                report.conversations += purged.len() as u64;
                if purged.len() < PURGE_BATCH as usize {
                    break;
                }
            },
            "usage" => {
                let details =
                    json!({ "record_type": "usage", "retention_days": rule.days, "before": before });
                let (purged, _) = civitas_store::with_audit(
                    vec![entry(details)],
                    store.purge_usage(&rule.agency_id, before),
                )
                .await;
                report.usage_records += purged?;
            }
            "documents" => loop {
                let details =
                    json!({ "record_type": "documents", "retention_days": rule.days, "before": before });
                let (purged, _) = civitas_store::with_audit(
                    vec![entry(details)],
                    store.purge_documents(&rule.agency_id, before, PURGE_BATCH),
                )
                .await;
                let purged = purged?;
                report.documents += purged.len() as u64;
                if purged.len() < PURGE_BATCH as usize {
                    break;
                }
            },
            _ => {}
        }
    }
    Ok(report)
}

/// Runs [`purge_once`] every `data_protection.purge_every_seconds` (first
/// a minute after start). Replicas may all run it: a conversation is
/// deleted, and recorded, by one of them only.
pub fn start_purge(store: Arc<dyn Store>, every_seconds: u64) -> Option<tokio::task::JoinHandle<()>> {
    if every_seconds == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60.min(every_seconds))).await;
        let mut interval = tokio::time::interval(Duration::from_secs(every_seconds));
        loop {
            interval.tick().await;
            match purge_once(store.as_ref()).await {
                Ok(report) if report != PurgeReport::default() => {
                    tracing::info!(
                        conversations = report.conversations,
                        usage_records = report.usage_records,
                        documents = report.documents,
                        "retention purge"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "retention purge failed; it runs again at the next interval")
                }
            }
        }
    }))
}
