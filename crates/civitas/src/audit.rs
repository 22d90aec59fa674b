//! `civitas audit`: verify the log (from the database or from an export),
//! export it, and print inclusion and consistency proofs.

use std::io::{BufRead, BufWriter, Write};

use anyhow::{anyhow, bail, Context, Result};
use civitas_audit::merkle::{
    consistency_proof, inclusion_proof, root, verify_consistency, verify_inclusion, Hash,
};
use civitas_audit::record::hex_hash::to_hex;
use civitas_audit::{Action, Checkpoint, PublicKey, Record, Report, Verifier};
use civitas_config::Config;
use civitas_store::Store;
use serde_json::{json, Value};

use crate::cli::AuditCommand;

/// Records read from the database at a time.
const PAGE: u32 = 10_000;

pub async fn run(config: &Config, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify {
            export: Some(path),
            public_keys,
            json,
        } => {
            let report = verify_export(&path, &public_keys)?;
            print_report(&report, json)
        }
        AuditCommand::Verify {
            export: None,
            public_keys,
            json,
        } => {
            let store = crate::commands::open_store(config).await?;
            let result = verify_database(config, store.as_ref(), &public_keys).await;
            store.close().await;
            print_report(&result?, json)
        }
        AuditCommand::Export { out } => {
            let store = crate::commands::open_store(config).await?;
            let result = export(config, store.as_ref(), &out).await;
            store.close().await;
            result
        }
        AuditCommand::Prove { seq, size } => {
            let store = crate::commands::open_store(config).await?;
            let result = prove(store.as_ref(), seq, size).await;
            store.close().await;
            result
        }
        AuditCommand::RotateKey { out } => {
            let store = crate::commands::open_store(config).await?;
            let result = rotate_key(config, store.as_ref(), out).await;
            store.close().await;
            result
        }
        AuditCommand::Consistency { from, to } => {
            let store = crate::commands::open_store(config).await?;
            let result = consistency(store.as_ref(), from, to).await;
            store.close().await;
            result
        }
    }
}

/// Where the new key goes: `--out`, else the configured key file, else the
/// data directory's `audit-signing-key`.
fn key_destination(config: &Config, out: Option<std::path::PathBuf>) -> Result<std::path::PathBuf> {
    if let Some(out) = out {
        return Ok(out);
    }
    if config.audit.signing_key.is_empty() {
        return Ok(config.data_dir().join("audit-signing-key"));
    }
    match civitas_config::SecretLocation::parse(&config.audit.signing_key).map_err(|error| anyhow!(error))? {
        civitas_config::SecretLocation::File(path) => Ok(path),
        civitas_config::SecretLocation::Env(name) => bail!(
            "audit.signing_key is read from the environment variable {name}; \
             run with --out FILE, then put that file's content in {name}"
        ),
    }
}

/// Writes `key` to `path` (mode 0600) through a temporary file renamed over
/// it, so a reader never sees half a key.
fn write_key(path: &std::path::Path, key: &civitas_audit::AuditKey) -> Result<()> {
    let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temporary = path.with_extension(format!("new-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{}\n", key.to_text()).as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("writing the new key to {}", path.display()));
    }
    Ok(())
}

/// Records a new signing key in the log (signed by the old and the new
/// key), then puts it in place of the old one. The record comes first: if
/// the key cannot be written, the old key simply stays in use.
async fn rotate_key(config: &Config, store: &dyn Store, out: Option<std::path::PathBuf>) -> Result<()> {
    let destination = key_destination(config, out)?;
    let old = civitas_server::audit::Auditor::load(config).map_err(|error| anyhow!(error))?;
    let new = civitas_audit::AuditKey::generate();
    let rotation = civitas_audit::KeyRotation::sign(&old.key, &new);
    let details = serde_json::to_value(&rotation).context("encoding the rotation")?;
    let record = civitas_server::audit::system_entry(Action::KeyRotation, details);
    let written = store
        .append_audit(vec![record])
        .await
        .context("recording the rotation in the audit log")?;
    write_key(&destination, &new)?;
    let seq = written.first().map_or(0, |record| record.seq);
    println!(
        "audit key rotated: {} -> {} (audit record {seq}); new key in {}",
        rotation.old_key_id,
        rotation.new_key_id,
        destination.display()
    );
    println!("restart every replica so that new checkpoints are signed with the new key");
    Ok(())
}

/// The keys to trust: those given, else the installation's.
fn trusted_keys(config: &Config, given: &[String]) -> Result<Vec<PublicKey>> {
    if !given.is_empty() {
        return given.iter().map(|text| parse_public_key(text)).collect();
    }
    let auditor = civitas_server::audit::Auditor::load(config).map_err(|error| anyhow!(error))?;
    Ok(auditor.public_keys())
}

fn parse_public_key(text: &str) -> Result<PublicKey> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| anyhow!("`{text}` is not a base64 Ed25519 public key of 32 bytes"))?;
    Ok(PublicKey::from_bytes(bytes))
}

/// Reads every record in order, page by page, handing each to `each`.
async fn each_record(store: &dyn Store, mut each: impl FnMut(&Record)) -> Result<()> {
    let mut next = 1;
    loop {
        let page = store.audit_records(next, PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        next = last.seq + 1;
        for record in &page {
            each(record);
        }
    }
}

async fn verify_database(config: &Config, store: &dyn Store, given: &[String]) -> Result<Report> {
    let keys = trusted_keys(config, given)?;
    let checkpoints = store.checkpoints().await?;
    // Hashing runs on its own thread while the next page is read and
    // decoded: the two halves of the work overlap on two cores.
    let (pages, mut to_verify) = tokio::sync::mpsc::channel::<Vec<Record>>(2);
    let verifying = std::thread::spawn(move || {
        let mut verifier = Verifier::new(&checkpoints, &keys);
        while let Some(page) = to_verify.blocking_recv() {
            for record in &page {
                verifier.push(record);
            }
        }
        verifier.finish()
    });
    let mut next = 1;
    let read = loop {
        let page = match store.audit_records(next, PAGE).await {
            Ok(page) => page,
            Err(error) => break Err(error),
        };
        let Some(last) = page.last() else { break Ok(()) };
        next = last.seq + 1;
        if pages.send(page).await.is_err() {
            break Ok(());
        }
    };
    drop(pages);
    let report = verifying
        .join()
        .map_err(|_| anyhow!("the verification stopped unexpectedly"))?;
    read?;
    let outcome = if report.is_intact() {
        civitas_audit::Outcome::Success
    } else {
        civitas_audit::Outcome::Failure
    };
    let mut entry = civitas_server::audit::system_entry(
        Action::Verification,
        json!({
            "records": report.records,
            "checkpoints": report.checkpoints,
            "problems": report.problems.len(),
            "root_hash": to_hex(&report.root_hash),
        }),
    );
    entry.outcome = outcome;
    store.append_audit(vec![entry]).await?;
    Ok(report)
}

fn verify_export(path: &std::path::Path, given: &[String]) -> Result<Report> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header: Value = serde_json::from_str(
        &lines
            .next()
            .ok_or_else(|| anyhow!("{} is empty", path.display()))??,
    )?;
    if header["type"] != "civitas.audit.export" {
        bail!("{} is not an export of `civitas audit export`", path.display());
    }
    let checkpoints: Vec<Checkpoint> = serde_json::from_value(header["checkpoints"].clone())?;
    let keys = if given.is_empty() {
        serde_json::from_value(header["public_keys"].clone())?
    } else {
        given
            .iter()
            .map(|text| parse_public_key(text))
            .collect::<Result<Vec<_>>>()?
    };
    let mut verifier = Verifier::new(&checkpoints, &keys);
    for (number, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("line {} of {} is not a record", number + 2, path.display()))?;
        verifier.push(&record);
    }
    Ok(verifier.finish())
}

fn print_report(report: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!(
            "{} records (last {}), {} checkpoints, tree head {}",
            report.records,
            report.last_seq,
            report.checkpoints,
            to_hex(&report.root_hash)
        );
        for problem in &report.problems {
            println!("PROBLEM: {problem}");
        }
    }
    if report.is_intact() {
        if !json {
            println!("the audit log is intact");
        }
        Ok(())
    } else {
        bail!("the audit log is not intact: {} problems", report.problems.len())
    }
}

async fn export(config: &Config, store: &dyn Store, out: &std::path::Path) -> Result<()> {
    let keys = trusted_keys(config, &[])?;
    let checkpoints = store.checkpoints().await?;
    let file = std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut writer = BufWriter::new(file);
    let header = json!({
        "type": "civitas.audit.export",
        "version": 1,
        "exported_at": civitas_store::now(),
        "public_keys": keys,
        "checkpoints": checkpoints,
    });
    writeln!(writer, "{header}")?;
    let mut written = 0u64;
    let mut failure = None;
    each_record(store, |record| {
        if failure.is_some() {
            return;
        }
        match serde_json::to_string(record) {
            Ok(line) => {
                if let Err(error) = writeln!(writer, "{line}") {
                    failure = Some(anyhow!(error));
                }
                written += 1;
            }
            Err(error) => failure = Some(anyhow!(error)),
        }
    })
    .await?;
    if let Some(error) = failure {
        return Err(error);
    }
    writer.flush()?;
    let entry = civitas_server::audit::system_entry(Action::Export, json!({"audit_records": written}));
    store.append_audit(vec![entry]).await?;
    println!(
        "{written} records and {} checkpoints written to {}",
        checkpoints.len(),
        out.display()
    );
    Ok(())
}

/// The leaf hashes of records 1 to `size`.
async fn leaves(store: &dyn Store, size: u64) -> Result<Vec<Hash>> {
    civitas_server::audit::leaf_hashes(store, size)
        .await
        .map_err(|error| anyhow!(error))
}

async fn checkpoint_of(store: &dyn Store, size: Option<u64>) -> Result<(u64, Option<Checkpoint>)> {
    let checkpoints = store.checkpoints().await?;
    match size {
        Some(size) => Ok((
            size,
            checkpoints
                .into_iter()
                .find(|checkpoint| checkpoint.tree_size == size),
        )),
        None => {
            let latest = checkpoints
                .into_iter()
                .last()
                .ok_or_else(|| anyhow!("no checkpoint yet; give --size"))?;
            Ok((latest.tree_size, Some(latest)))
        }
    }
}

async fn prove(store: &dyn Store, seq: u64, size: Option<u64>) -> Result<()> {
    let (size, checkpoint) = checkpoint_of(store, size).await?;
    if seq == 0 || seq > size {
        bail!("record {seq} is not among the first {size} records");
    }
    let leaves = leaves(store, size).await?;
    let head = root(&leaves);
    if let Some(checkpoint) = &checkpoint {
        if checkpoint.root_hash != head {
            bail!("the records no longer match the checkpoint at {size}; run `civitas audit verify`");
        }
    }
    let index = (seq - 1) as usize;
    let proof = inclusion_proof(&leaves, index);
    verify_inclusion(index as u64, size, &leaves[index], &proof, &head)
        .map_err(|error| anyhow!("{error}"))?;
    let answer = json!({
        "seq": seq,
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": to_hex(&leaves[index]),
        "root_hash": to_hex(&head),
        "proof": proof.iter().map(to_hex).collect::<Vec<_>>(),
        "checkpoint": checkpoint,
    });
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

async fn consistency(store: &dyn Store, from: u64, to: u64) -> Result<()> {
    if from == 0 || from > to {
        bail!("give two tree sizes with 0 < FROM <= TO");
    }
    let leaves = leaves(store, to).await?;
    let old = root(&leaves[..from as usize]);
    let new = root(&leaves);
    let proof = consistency_proof(&leaves, from as usize);
    verify_consistency(from, to, &old, &new, &proof).map_err(|error| anyhow!("{error}"))?;
    let answer = json!({
        "from": {"tree_size": from, "root_hash": to_hex(&old)},
        "to": {"tree_size": to, "root_hash": to_hex(&new)},
        "proof": proof.iter().map(to_hex).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
