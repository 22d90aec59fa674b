//! `civitas protect analyze FILE`: the detection engine on a file, for an
//! analyst or a records officer checking a document before it is shared.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use civitas_protect::{analyze, Entity, Language, Options};

use crate::cli::ProtectCommand;

/// Files larger than this are refused (read whole into memory).
const MAX_BYTES: u64 = 16 * 1024 * 1024;

pub fn run(command: ProtectCommand) -> Result<()> {
    let ProtectCommand::Analyze {
        file,
        language,
        entities,
        threshold,
        json,
    } = command;
    let mut bytes = Vec::new();
    std::fs::File::open(&file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        bail!("{} is larger than 16 MiB; split it first", file.display());
    }
    let text = String::from_utf8(bytes).map_err(|error| {
        anyhow!(
            "{} is not UTF-8 text (byte {})",
            file.display(),
            error.utf8_error().valid_up_to()
        )
    })?;
    let language = match Language::parse(&language) {
        Some(Language::Any) => Language::detect(&text),
        Some(language) => language,
        None => bail!("--language is en, fr or auto"),
    };
    let entities = entities
        .iter()
        .map(|name| Entity::parse(name).ok_or_else(|| anyhow!("unknown entity type `{name}`")))
        .collect::<Result<Vec<_>>>()?;
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold is from 0 to 1");
    }
    let findings = analyze(
        &text,
        &Options {
            language,
            entities,
            threshold,
        },
    );
    for finding in &findings {
        let value = &text[finding.start..finding.end];
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "entity_type": finding.entity.as_str(),
                    "start": finding.start,
                    "end": finding.end,
                    "score": finding.score,
                    "recognizer": finding.recognizer,
                    "text": value,
                })
            );
        } else {
            let line = text[..finding.start].matches('\n').count() + 1;
            let column = text[..finding.start]
                .rsplit('\n')
                .next()
                .map_or(0, |before| before.chars().count())
                + 1;
            println!(
                "{line}:{column}\t{}\t{:.2}\t{}\t{}",
                finding.entity.as_str(),
                finding.score,
                finding.recognizer,
                value.replace('\n', "\\n")
            );
        }
    }
    if !json {
        eprintln!("{} found in {}", findings.len(), file.display());
    }
    Ok(())
}
