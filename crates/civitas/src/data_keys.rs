//! `civitas data-keys ...` and `civitas retention purge`: the operator's
//! side of encryption at rest and retention. Every change is recorded in
//! the audit log in its own transaction.

use anyhow::{anyhow, bail, Context, Result};
use civitas_audit::Action;
use civitas_config::Config;
use civitas_store::crypt::MasterKey;
use serde_json::json;

use crate::cli::{DataKeysCommand, RetentionCommand};
use crate::commands::open_store;

/// Rotated keys retire only after every replica stopped sealing with them
/// (they look again within `KEY_CACHE_TTL`).
const RETIRE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

fn entry(action: Action, agency: Option<&str>, details: serde_json::Value) -> civitas_audit::Entry {
    let mut entry = civitas_server::audit::system_entry(action, details);
    entry.agency_id = agency.map(str::to_owned);
    entry
}

pub async fn run(config: &Config, command: DataKeysCommand) -> Result<()> {
    if let DataKeysCommand::NewMasterKey { out } = &command {
        let key = MasterKey::generate().map_err(|error| anyhow!("{error}"))?;
        if out.exists() {
            bail!("{} exists; a master key is never overwritten", out.display());
        }
        civitas_server::protection::read_or_create(out, &|| Ok(key.to_text()))
            .map_err(|error| anyhow!(error))?;
        println!("new master key {} written to {}", key.id(), out.display());
        println!("next: set data_protection.master_key to it, move the old location to previous_master_keys, restart, run `civitas data-keys rewrap`");
        return Ok(());
    }
    let store = open_store(config).await?;
    let result = async {
        match command {
            DataKeysCommand::List => {
                println!(
                    "{:<38} {:<38} {:<10} {:<18} {:>8}  created",
                    "id", "agency", "state", "master key", "sealed"
                );
                for key in store.list_data_keys().await? {
                    let agency = if key.agency_id.is_empty() { "(none)" } else { &key.agency_id };
                    println!(
                        "{:<38} {:<38} {:<10} {:<18} {:>8}  {}",
                        key.id,
                        agency,
                        key.state,
                        key.master_key_id,
                        key.sealed_rows,
                        key.created_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
            DataKeysCommand::Rotate { agency } => {
                if store.get_agency(&agency).await?.is_none() {
                    bail!("no agency `{agency}`");
                }
                let record = entry(Action::DataKey, Some(&agency), json!({ "operation": "rotate" }));
                let (key, _) = civitas_store::with_audit(vec![record], store.rotate_data_key(&agency)).await;
                let key = key?;
                println!("agency {agency}: new active data key {}", key.id);
                println!("older content stays readable; `civitas data-keys reencrypt` moves it to the new key");
            }
            DataKeysCommand::Reencrypt { batch } => {
                if batch == 0 {
                    bail!("--batch must be at least 1");
                }
                let mut total = 0u64;
                loop {
                    let done = store.reencrypt(batch).await?;
                    total += done;
                    if done == 0 {
                        break;
                    }
                }
                let record = entry(Action::DataKey, None, json!({ "operation": "retire" }));
                let ended_before = civitas_store::now() - RETIRE_AFTER;
                let (retired, _) =
                    civitas_store::with_audit(vec![record], store.retire_data_keys(ended_before)).await;
                let retired = retired?;
                store
                    .append_audit(vec![entry(
                        Action::DataKey,
                        None,
                        json!({ "operation": "reencrypt", "rows": total }),
                    )])
                    .await?;
                println!("{total} rows re-sealed with their agency's active key");
                println!("{} data keys retired (nothing sealed with them any more)", retired.len());
            }
            DataKeysCommand::Rewrap => {
                let record = entry(Action::DataKey, None, json!({ "operation": "rewrap" }));
                let (count, _) = civitas_store::with_audit(vec![record], store.rewrap_data_keys()).await;
                println!("{} data keys re-wrapped with the current master key", count?);
                println!("once every replica runs with it, the previous master key can be removed and destroyed");
            }
            DataKeysCommand::Destroy { agency, confirm } => {
                if agency != confirm {
                    bail!("--confirm must repeat the agency's id; nothing was destroyed");
                }
                let record = entry(Action::DataKey, Some(&agency), json!({ "operation": "destroy" }));
                let (destroyed, _) = civitas_store::with_audit(vec![record], store.destroy_data_keys(&agency)).await;
                let destroyed = destroyed?;
                if destroyed.is_empty() {
                    bail!("agency `{agency}` has no data key to destroy");
                }
                println!(
                    "{} data keys of agency {agency} destroyed: its sealed content can no longer be read",
                    destroyed.len()
                );
                println!("backups hold copies wrapped by the current master key: rotate it and rewrap to make those unreadable too");
            }
            DataKeysCommand::NewMasterKey { .. } => {}
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

pub async fn retention(config: &Config, command: RetentionCommand) -> Result<()> {
    let RetentionCommand::Purge = command;
    let store = open_store(config).await?;
    let report = civitas_server::protection::purge_once(store.as_ref())
        .await
        .context("the purge failed; what it removed before is recorded")?;
    store.close().await;
    println!(
        "removed {} conversations, {} usage records and {} knowledge documents due under the retention schedules",
        report.conversations, report.usage_records, report.documents
    );
    Ok(())
}
