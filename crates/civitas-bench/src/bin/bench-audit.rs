//! The audit log's speed on SQLite: appends one record per transaction
//! and in group commits, then grows the log to `--records` and times
//! `civitas audit verify` over it (chain, Merkle tree, checkpoint
//! signatures), reading the database like an inspector would.
//!
//! `bench-audit --civitas PATH [--records 1000000] [--batch 512]`

use std::time::Instant;

use anyhow::{bail, Result};
use civitas_audit::{Action, ActorKind, AuditKey, Checkpoint, CompactTree, Entry, Outcome};
use civitas_store::{AuditStore, Store};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The civitas binary (for `civitas audit verify`).
    #[arg(long)]
    civitas: String,
    /// Records in the log that is verified.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records per transaction in the group-commit run.
    #[arg(long, default_value_t = 512)]
    batch: usize,
}

fn entry(index: u64) -> Entry {
    Entry {
        at: civitas_store::now(),
        actor_kind: ActorKind::Key,
        actor_id: format!("0193a1b2-0000-7000-8000-{:012x}", index % 5000),
        agency_id: Some("0193a1b2-0000-7000-8000-00000000a9e1".to_owned()),
        action: Action::ModelCall,
        target: Some("model:qwen2.5-1.5b-instruct".to_owned()),
        outcome: Outcome::Success,
        source_address: Some("10.20.30.40".to_owned()),
        user_agent: Some("OpenAI/Python 1.99.0".to_owned()),
        request_id: Some(format!("0193a1b2-{index:08x}-7000-8000-000000000000")),
        details: json!({
            "route": "/v1/chat/completions",
            "weights_sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "prompt_tokens": 412,
            "completion_tokens": 128,
            "latency_ms": 1534,
            "status": 200,
        }),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("civitas.db").display());
    let store =
        civitas_store_sqlite::SqliteStore::open(&url, 4, civitas_store::crypt::Keyring::ephemeral()).await?;
    let mut written = 0u64;

    let single = 2_000u64;
    let started = Instant::now();
    for _ in 0..single {
        store.append_audit(vec![entry(written)]).await?;
        written += 1;
    }
    let one_by_one = single as f64 / started.elapsed().as_secs_f64();

    let grouped = 100_000u64.min(args.records.saturating_sub(written));
    let started = Instant::now();
    let mut done = 0;
    while done < grouped {
        let size = (args.batch as u64).min(grouped - done);
        store
            .append_audit((0..size).map(|i| entry(written + i)).collect())
            .await?;
        written += size;
        done += size;
    }
    let group_commit = grouped as f64 / started.elapsed().as_secs_f64();

    while written < args.records {
        let size = 4096.min(args.records - written);
        store
            .append_audit((0..size).map(|i| entry(written + i)).collect())
            .await?;
        written += size;
    }
    // Checkpoints as the server makes them, every 1,000 records.
    let key = AuditKey::generate();
    std::fs::write(dir.path().join("audit-signing-key"), key.to_text())?;
    let mut tree = CompactTree::new();
    let mut next = 1;
    loop {
        let page = store.audit_records(next, 10_000).await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for record in &page {
            tree.push(record.leaf_hash());
            if tree.size().is_multiple_of(1000) {
                store
                    .add_checkpoint(&Checkpoint::sign(
                        &key,
                        tree.size(),
                        tree.root(),
                        civitas_store::now(),
                    ))
                    .await?;
            }
        }
    }
    store.close().await;
    let size = std::fs::metadata(dir.path().join("civitas.db"))?.len();

    let started = Instant::now();
    let output = std::process::Command::new(&args.civitas)
        .args(["audit", "verify"])
        .env("CIVITAS_DATA_DIR", dir.path())
        .output()?;
    let verify_seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("verify failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    println!(
        "{}",
        json!({
            "append_one_per_transaction_per_s": one_by_one.round(),
            "append_group_commit_per_s": group_commit.round(),
            "group_commit_batch": args.batch,
            "records_verified": written,
            "checkpoints_verified": written / 1000,
            "verify_seconds": (verify_seconds * 100.0).round() / 100.0,
            "database_mib": size / (1024 * 1024),
        })
    );
    Ok(())
}
