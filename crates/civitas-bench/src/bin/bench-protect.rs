//! The detection engine's speed: a prompt of about 1,000 tokens (English
//! and French case notes with identifiers, secrets and markings mixed
//! into ordinary prose) analysed over and over; prints the median and
//! worst time per prompt and the throughput.
//!
//! `bench-protect [--rounds 2000]`, or `bench-protect --corpus FILE` for
//! precision, recall and F2 per type and language over a labelled corpus.

use std::time::Instant;

use anyhow::Result;
use civitas_protect::{analyze, Options};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// How many times the prompt is analysed.
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
    /// Instead: precision, recall and F2 over this labelled corpus.
    #[arg(long)]
    corpus: Option<String>,
    /// Instead: print the prompt (for a peer to analyse the same text).
    #[arg(long)]
    dump_prompt: bool,
}

const PARAGRAPHS: &[&str] = &[
    "The applicant, born 12/03/1984, asks for a review of the housing decision of 4 May. \
     Her SSN is 536-22-1234 and she can be reached at (202) 456-1111 or jeanne.martin@example.gov.",
    "Le demandeur, né le 3 mars 1984, conteste la décision du 4 mai. Numéro de sécurité sociale : \
     184127645108925, téléphone 06 12 34 56 78, courriel jean.dupont@exemple.fr.",
    "Payment was made with card 4111 1111 1111 1111 to IBAN FR14 2004 1010 0505 0001 3M02 606; \
     the routing number 011000015 and account number 12345678901 were provided for the refund.",
    "The committee met on Tuesday to review twelve applications for the programme; three were \
     approved, two were deferred for more information, and the next meeting is in room 204 at 2 pm.",
    "La société (SIREN 732 829 320) et son établissement SIRET 732 829 320 00074 ont répondu dans \
     les délais ; le dossier est transmis au service instructeur pour avis.",
    "CUI//SP-PRVCY The server at 192.168.10.24 logged a connection with token \
     AKIAIOSFODNN7EXAMPLE and DATABASE_URL=postgres://app:Sup3rS3cret@db.internal:5432/cases.",
];

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(corpus) = &args.corpus {
        return evaluate(corpus);
    }
    // About 1,000 tokens: ~4.5 KB of mixed text.
    let mut prompt = String::new();
    while prompt.len() < 4500 {
        for paragraph in PARAGRAPHS {
            prompt.push_str(paragraph);
            prompt.push_str("\n\n");
        }
    }
    if std::env::var_os("PER_RECOGNIZER").is_some() {
        per_recognizer(&prompt);
    }
    if args.dump_prompt {
        print!("{prompt}");
        return Ok(());
    }
    let options = Options::default();
    let findings = analyze(&prompt, &options).len();
    let mut times = Vec::with_capacity(args.rounds);
    let started = Instant::now();
    for _ in 0..args.rounds {
        let one = Instant::now();
        let found = analyze(&prompt, &options);
        times.push(one.elapsed().as_secs_f64());
        std::hint::black_box(found);
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let worst = times[times.len() - 1];
    println!(
        "{}",
        serde_json::json!({
            "prompt_bytes": prompt.len(),
            "findings_per_prompt": findings,
            "rounds": args.rounds,
            "median_ms": (median * 1e3 * 1000.0).round() / 1000.0,
            "worst_ms": (worst * 1e3 * 1000.0).round() / 1000.0,
            "prompts_per_s": (args.rounds as f64 / total).round(),
            "mb_per_s": ((prompt.len() * args.rounds) as f64 / total / 1e6 * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

#[allow(dead_code)]
fn per_recognizer(prompt: &str) {
    for recognizer in civitas_protect::RECOGNIZERS.iter() {
        let started = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(recognizer.regex().find_iter(prompt).count());
        }
        eprintln!(
            "{:>24} {:.3} ms",
            recognizer.name,
            started.elapsed().as_secs_f64() * 1e3 / 200.0
        );
    }
}

/// Counts of one entity type in one language.
#[derive(Default)]
struct Tally {
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
}

impl Tally {
    fn scores(&self) -> (f64, f64, f64) {
        let found = (self.true_positives + self.false_positives) as f64;
        let actual = (self.true_positives + self.false_negatives) as f64;
        let precision = if found == 0.0 {
            1.0
        } else {
            self.true_positives as f64 / found
        };
        let recall = if actual == 0.0 {
            1.0
        } else {
            self.true_positives as f64 / actual
        };
        let f2 = if precision + recall == 0.0 {
            0.0
        } else {
            5.0 * precision * recall / (4.0 * precision + recall)
        };
        (precision, recall, f2)
    }
}

/// Precision, recall and F2 per type and language over a labelled corpus
/// (JSON lines: language, text, entities with character offsets). A
/// finding counts when its type is the label's and the spans overlap.
fn evaluate(path: &str) -> Result<()> {
    use std::collections::BTreeMap;
    let corpus = std::fs::read_to_string(path)?;
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut texts = 0;
    let started = Instant::now();
    for line in corpus.lines().filter(|line| !line.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)?;
        let text = record["text"].as_str().unwrap_or_default();
        let language = record["language"].as_str().unwrap_or("en").to_owned();
        let options = Options {
            language: civitas_protect::Language::parse(&language).unwrap_or(civitas_protect::Language::Any),
            ..Options::default()
        };
        let chars: Vec<usize> = text
            .char_indices()
            .map(|(at, _)| at)
            .chain([text.len()])
            .collect();
        let to_chars = |byte: usize| chars.partition_point(|&at| at < byte);
        let mut predicted: Vec<(String, usize, usize, bool)> = analyze(text, &options)
            .into_iter()
            .map(|finding| {
                (
                    finding.entity.as_str().to_owned(),
                    to_chars(finding.start),
                    to_chars(finding.end),
                    false,
                )
            })
            .collect();
        texts += 1;
        for label in record["entities"].as_array().into_iter().flatten() {
            let kind = label["type"].as_str().unwrap_or_default().to_owned();
            let (start, end) = (
                label["start"].as_u64().unwrap_or(0) as usize,
                label["end"].as_u64().unwrap_or(0) as usize,
            );
            let tally = tallies.entry((kind.clone(), language.clone())).or_default();
            let hit = predicted
                .iter_mut()
                .find(|(found, from, to, used)| !*used && *found == kind && *from < end && start < *to);
            match hit {
                Some(prediction) => {
                    prediction.3 = true;
                    tally.true_positives += 1;
                }
                None => tally.false_negatives += 1,
            }
        }
        for (kind, _, _, used) in predicted {
            if !used {
                tallies
                    .entry((kind, language.clone()))
                    .or_default()
                    .false_positives += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut total = Tally::default();
    for ((kind, language), tally) in &tallies {
        let (precision, recall, f2) = tally.scores();
        println!(
            "{}",
            serde_json::json!({
                "entity_type": kind, "language": language,
                "support": tally.true_positives + tally.false_negatives,
                "false_positives": tally.false_positives,
                "precision": (precision * 1000.0).round() / 1000.0,
                "recall": (recall * 1000.0).round() / 1000.0,
                "f2": (f2 * 1000.0).round() / 1000.0,
            })
        );
        total.true_positives += tally.true_positives;
        total.false_positives += tally.false_positives;
        total.false_negatives += tally.false_negatives;
    }
    let (precision, recall, f2) = total.scores();
    println!(
        "{}",
        serde_json::json!({
            "entity_type": "ALL", "texts": texts,
            "support": total.true_positives + total.false_negatives,
            "false_positives": total.false_positives,
            "precision": (precision * 1000.0).round() / 1000.0,
            "recall": (recall * 1000.0).round() / 1000.0,
            "f2": (f2 * 1000.0).round() / 1000.0,
            "seconds": (elapsed * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}
