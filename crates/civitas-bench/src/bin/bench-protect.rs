//! The detection engine's speed: a prompt of about 1,000 tokens (English
//! and French case notes with identifiers, secrets and markings mixed
//! into ordinary prose) analysed over and over; prints the median and
//! worst time per prompt and the throughput.
//!
//! `bench-protect [--rounds 2000]`

use std::time::Instant;

use anyhow::Result;
use civitas_protect::{analyze, Options};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// How many times the prompt is analysed.
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
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
