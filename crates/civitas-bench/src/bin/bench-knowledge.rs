//! Knowledge: retrieval quality and speed, in process (the same
//! extraction, chunking, analysis and index the server uses).
//!
//! - `eval`: recall@5 and MRR (first relevant passage in the top 10) of
//!   lexical, semantic and hybrid search over the labelled questions of
//!   the demo handbook and the synthetic corpus, per language. A passage
//!   is relevant when it belongs to the expected document and holds one
//!   of the question's evidence strings.
//! - `search`: latency (p50, p99) of each method at N passages of
//!   synthetic text with random unit vectors, 8 of 10 collections allowed
//!   by the filter, and the index's memory.
//! - `ingest`: pages per second of extraction and chunking (and with
//!   embeddings, when the model is given) for a generated PDF and DOCX.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use civitas_knowledge::analyze::Language;
use civitas_knowledge::index::DocumentInfo;
use civitas_knowledge::{
    chunk_blocks, extract, ChunkOptions, Filter, Format, Index, IndexedChunk, Limits, Method, SearchRequest,
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Eval {
        /// The handbook questions (JSON Lines).
        #[arg(long, default_value = "tests/knowledge/questions.jsonl")]
        questions: PathBuf,
        /// A synthetic corpus written by tests/knowledge/make_corpus.py
        /// (with its questions.jsonl).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// The models folder holding all-minilm-l6-v2 (semantic, hybrid).
        #[arg(long)]
        models: Option<PathBuf>,
        /// Print each question whose answer was not in the top 5.
        #[arg(long)]
        misses: bool,
        /// Keep passage vectors in this file between runs (they take most
        /// of the time).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Hybrid fusion: `rrf`, or `relative:W` (W the lexical weight).
        #[arg(long, default_value = "relative:0.6")]
        fusion: String,
    },
    Search {
        /// Passages in the index.
        #[arg(long, default_value_t = 10_000)]
        chunks: usize,
        #[arg(long, default_value_t = 500)]
        queries: usize,
    },
    Ingest {
        /// Pages of the generated PDF (and about as much text in the DOCX).
        #[arg(long, default_value_t = 200)]
        pages: usize,
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Args::parse().command {
        Command::Eval {
            questions,
            corpus,
            models,
            misses,
            cache,
            fusion,
        } => {
            let fusion = match fusion.strip_prefix("relative:") {
                Some(weight) => civitas_knowledge::Fusion::Relative {
                    lexical_weight: weight.parse()?,
                },
                None => civitas_knowledge::Fusion::Rrf,
            };
            eval(
                &questions,
                corpus.as_deref(),
                models.as_deref(),
                misses,
                cache.as_deref(),
                fusion,
            )
        }
        Command::Search { chunks, queries } => search(chunks, queries),
        Command::Ingest { pages, models } => ingest(pages, models.as_deref()),
    }
}

fn embedder(models: Option<&Path>) -> Result<Option<civitas_inference::embed::Embedder>> {
    let Some(models) = models else { return Ok(None) };
    let installed = civitas_inference::ModelStore::new(models)
        .installed("all-minilm-l6-v2")
        .context("all-minilm-l6-v2 is not installed in the models folder")?;
    Ok(Some(civitas_inference::embed::Embedder::load(&installed)?))
}

/// A vector for `text`, cut to the model's window like the server does.
fn embed(embedder: &civitas_inference::embed::Embedder, text: &str) -> Option<Vec<f32>> {
    let mut text = text.to_owned();
    let limit = embedder.max_tokens().saturating_sub(2);
    loop {
        let tokens = embedder.tokenize(&text).len();
        if tokens <= limit || text.len() < 16 {
            break;
        }
        let mut cut = (text.len() * limit / tokens * 9 / 10).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    embedder.embed(&text).ok().map(|(vector, _)| vector)
}

/// Vectors by the SHA-256 of their text, kept between runs.
#[derive(Default)]
struct Vectors {
    known: std::collections::HashMap<String, Vec<f32>>,
    added: bool,
}

impl Vectors {
    fn load(path: Option<&Path>) -> Vectors {
        let known = path
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Vectors { known, added: false }
    }

    fn get(&mut self, embedder: &civitas_inference::embed::Embedder, text: &str) -> Option<Vec<f32>> {
        let key = civitas_knowledge::content_hash(text.as_bytes());
        if let Some(vector) = self.known.get(&key) {
            return Some(vector.clone());
        }
        let vector = embed(embedder, text)?;
        self.known.insert(key, vector.clone());
        self.added = true;
        Some(vector)
    }

    fn save(&self, path: Option<&Path>) -> Result<()> {
        if let (Some(path), true) = (path, self.added) {
            std::fs::write(path, serde_json::to_string(&self.known)?)?;
        }
        Ok(())
    }
}

struct Passage {
    document: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct Question {
    id: String,
    lang: String,
    question: String,
    #[serde(default)]
    evidence: Vec<String>,
    document: Option<String>,
    #[serde(default)]
    unanswerable: bool,
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Adds one document's passages to `index` under `collection`.
fn add_document(
    index: &mut Index,
    passages: &mut Vec<Passage>,
    embedder: Option<&civitas_inference::embed::Embedder>,
    vectors: &mut Vectors,
    collection: i64,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let format = Format::detect(name, bytes).map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    let extracted =
        extract(format, bytes, &Limits::default()).map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    let sample: String = extracted
        .blocks
        .iter()
        .take(200)
        .map(|block| block.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let language = Language::detect(&sample);
    let document_id = passages.len() as i64 * 1_000 + 1;
    let mut chunks = Vec::new();
    for chunk in chunk_blocks(&extracted.blocks, ChunkOptions::default()) {
        let id = passages.len() as i64;
        let vector = embedder.and_then(|embedder| vectors.get(embedder, &chunk.indexed_text(Some(name))));
        chunks.push(IndexedChunk {
            chunk_id: id,
            document_id,
            collection_id: collection,
            text: civitas_knowledge::index_text(name, &chunk.section, &chunk.text),
            language,
            vector,
        });
        passages.push(Passage {
            document: name.to_owned(),
            text: normalize(&chunk.text),
        });
    }
    index.insert_document(
        document_id,
        DocumentInfo {
            collection_id: collection,
            level_rank: 0,
            created_at: 0,
            metadata: Vec::new(),
        },
        chunks,
    );
    Ok(())
}

fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).context("a question does not parse"))
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Score {
    questions: usize,
    found: usize,
    reciprocal: f64,
}

fn eval(
    questions: &Path,
    corpus: Option<&Path>,
    models: Option<&Path>,
    misses: bool,
    cache: Option<&Path>,
    fusion: civitas_knowledge::Fusion,
) -> Result<()> {
    let embedder = embedder(models)?;
    let mut vectors = Vectors::load(cache);
    let dimensions = embedder.as_ref().map_or(0, |embedder| embedder.dimensions());
    let mut index = Index::new(dimensions);
    let mut passages = Vec::new();
    let started = Instant::now();
    for (name, text) in civitas_knowledge::DEMO {
        add_document(
            &mut index,
            &mut passages,
            embedder.as_ref(),
            &mut vectors,
            1,
            name,
            text.as_bytes(),
        )?;
    }
    let mut sets = vec![("handbook", 1i64, read_questions(questions)?)];
    if let Some(corpus) = corpus {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.file_name().is_some_and(|name| name != "questions.jsonl"))
            .collect();
        files.sort();
        for path in &files {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            add_document(
                &mut index,
                &mut passages,
                embedder.as_ref(),
                &mut vectors,
                2,
                &name,
                &std::fs::read(path)?,
            )?;
        }
        sets.push(("synthetic", 2, read_questions(&corpus.join("questions.jsonl"))?));
    }
    vectors.save(cache)?;
    println!(
        "indexed {} passages in {:.1} s (embeddings: {})",
        index.len(),
        started.elapsed().as_secs_f64(),
        if embedder.is_some() {
            "all-minilm-l6-v2"
        } else {
            "none"
        }
    );
    let mut methods = vec![Method::Lexical];
    if embedder.is_some() {
        methods.extend([Method::Semantic, Method::Hybrid]);
    }
    println!("| corpus | language | questions | method | recall@5 | MRR@10 |");
    println!("|---|---|---|---|---|---|");
    let mut overall: Vec<(Method, Score)> =
        methods.iter().map(|method| (*method, Score::default())).collect();
    for (corpus, collection, questions) in &sets {
        let filter = Filter {
            collections: HashSet::from([*collection]),
            max_level_rank: u8::MAX,
            ..Filter::default()
        };
        for language in ["en", "fr"] {
            let asked: Vec<&Question> = questions
                .iter()
                .filter(|q| q.lang == language && !q.unanswerable)
                .collect();
            if asked.is_empty() {
                continue;
            }
            for (slot, method) in methods.iter().enumerate() {
                let mut score = Score::default();
                for question in &asked {
                    let vector = embedder
                        .as_ref()
                        .and_then(|embedder| vectors.get(embedder, &question.question));
                    let hits = index.search(&SearchRequest {
                        query: &question.question,
                        vector: vector.as_deref(),
                        method: *method,
                        k: 10,
                        rrf_k: 60.0,
                        fusion,
                        score_threshold: None,
                        filter: &filter,
                    });
                    let evidence: Vec<String> =
                        question.evidence.iter().map(|text| normalize(text)).collect();
                    let rank = hits.iter().position(|hit| {
                        let passage = &passages[hit.chunk_id as usize];
                        question.document.as_deref() == Some(passage.document.as_str())
                            && evidence.iter().any(|text| passage.text.contains(text.as_str()))
                    });
                    score.questions += 1;
                    if let Some(rank) = rank {
                        score.reciprocal += 1.0 / (rank as f64 + 1.0);
                        if rank < 5 {
                            score.found += 1;
                        }
                    }
                    if misses && rank.is_none_or(|rank| rank >= 5) {
                        println!("  miss {method:?} {}: {}", question.id, question.question);
                    }
                }
                println!(
                    "| {corpus} | {language} | {} | {method:?} | {:.3} | {:.3} |",
                    score.questions,
                    score.found as f64 / score.questions as f64,
                    score.reciprocal / score.questions as f64
                );
                let total = &mut overall[slot].1;
                total.questions += score.questions;
                total.found += score.found;
                total.reciprocal += score.reciprocal;
            }
        }
    }
    for (method, score) in overall {
        println!(
            "| all | all | {} | {method:?} | {:.3} | {:.3} |",
            score.questions,
            score.found as f64 / score.questions as f64,
            score.reciprocal / score.questions as f64
        );
    }
    Ok(())
}

/// A small deterministic generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| {
            text.split_whitespace()
                .nth(1)
                .and_then(|pages| pages.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn search(chunks: usize, queries: usize) -> Result<()> {
    const DIMENSIONS: usize = 384;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // A vocabulary with a Zipf-like use: a few words everywhere, most rare.
    let vocabulary: Vec<String> = (0..30_000).map(|n| format!("w{n:05}x")).collect();
    let word = |rng: &mut Rng| {
        let u = rng.unit().max(1e-6);
        let rank = ((vocabulary.len() as f32).powf(u) as usize).min(vocabulary.len() - 1);
        vocabulary[rank].clone()
    };
    let before = resident_bytes();
    let started = Instant::now();
    let mut index = Index::new(DIMENSIONS);
    let per_document = 10;
    for document in 0..chunks.div_ceil(per_document) {
        let mut passages = Vec::with_capacity(per_document);
        for n in 0..per_document {
            let text: Vec<String> = (0..150).map(|_| word(&mut rng)).collect();
            let mut vector: Vec<f32> = (0..DIMENSIONS).map(|_| rng.unit() - 0.5).collect();
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            vector.iter_mut().for_each(|v| *v /= norm);
            passages.push(IndexedChunk {
                chunk_id: (document * per_document + n) as i64,
                document_id: document as i64,
                collection_id: (document % 10) as i64,
                text: text.join(" "),
                language: Language::En,
                vector: Some(vector),
            });
        }
        index.insert_document(
            document as i64,
            DocumentInfo {
                collection_id: (document % 10) as i64,
                level_rank: 0,
                created_at: 0,
                metadata: Vec::new(),
            },
            passages,
        );
    }
    let built = started.elapsed();
    let after = resident_bytes();
    println!(
        "{} passages indexed in {:.1} s; index {:.0} MiB by its own count, process resident +{:.0} MiB",
        index.len(),
        built.as_secs_f64(),
        index.memory_bytes() as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0
    );
    let filter = Filter {
        collections: (0..8).collect(),
        max_level_rank: u8::MAX,
        ..Filter::default()
    };
    println!("| passages | method | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        let mut times = Vec::with_capacity(queries);
        for _ in 0..queries {
            let query: Vec<String> = (0..8).map(|_| word(&mut rng)).collect();
            let query = query.join(" ");
            let mut vector: Vec<f32> = (0..DIMENSIONS).map(|_| rng.unit() - 0.5).collect();
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            vector.iter_mut().for_each(|v| *v /= norm);
            let started = Instant::now();
            let hits = index.search(&SearchRequest {
                query: &query,
                vector: Some(&vector),
                method,
                k: 10,
                rrf_k: 60.0,
                fusion: civitas_knowledge::Fusion::Rrf,
                score_threshold: None,
                filter: &filter,
            });
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(hits);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {} | {method:?} | {:.2} | {:.2} | {:.2} |",
            index.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(0.0)
        );
    }
    Ok(())
}

fn ingest(pages: usize, models: Option<&Path>) -> Result<()> {
    let embedder = embedder(models)?;
    let sentences = [
        "The agency reimburses travel by train in second class for journeys under four hours.",
        "Les agents peuvent télétravailler jusqu'à trois jours par semaine avec l'accord de leur responsable.",
        "Case files are kept for seven years after closure and then transferred to the archives.",
        "Every incident must be reported to the security desk within one hour of its discovery.",
    ];
    let page_lines = |page: usize| -> Vec<String> {
        let mut lines = vec![format!("Section {page}")];
        for line in 0..40 {
            if line % 8 == 7 {
                lines.push(String::new());
            } else {
                lines.push(sentences[(page + line) % sentences.len()].to_owned());
            }
        }
        lines
    };
    let pdf = civitas_knowledge::samples::pdf(&(0..pages).map(page_lines).collect::<Vec<_>>());
    let mut blocks = Vec::new();
    for page in 0..pages {
        blocks.push(civitas_knowledge::samples::DocxBlock::Heading(
            2,
            format!("Section {page}"),
        ));
        // The page's text without its title, a paragraph per group of lines.
        let lines = page_lines(page);
        for paragraph in lines[1..]
            .split(|line| line.is_empty())
            .filter(|group| !group.is_empty())
        {
            blocks.push(civitas_knowledge::samples::DocxBlock::Paragraph(
                paragraph.join(" "),
            ));
        }
    }
    let docx = civitas_knowledge::samples::docx(&blocks);
    println!("| format | pages | bytes | extract + chunk | pages/s | passages | with embeddings | pages/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (format, bytes) in [(Format::Pdf, &pdf), (Format::Docx, &docx)] {
        let started = Instant::now();
        let extracted =
            extract(format, bytes, &Limits::default()).map_err(|error| anyhow::anyhow!("{error}"))?;
        let chunks = chunk_blocks(&extracted.blocks, ChunkOptions::default());
        let plain = started.elapsed().as_secs_f64();
        let embedded = embedder.as_ref().map(|embedder| {
            let started = Instant::now();
            for chunk in &chunks {
                std::hint::black_box(embed(embedder, &chunk.indexed_text(None)));
            }
            plain + started.elapsed().as_secs_f64()
        });
        println!(
            "| {} | {pages} | {} | {:.3} s | {:.0} | {} | {} | {} |",
            format.as_str(),
            bytes.len(),
            plain,
            pages as f64 / plain,
            chunks.len(),
            embedded.map_or("-".to_owned(), |seconds| format!("{seconds:.1} s")),
            embedded.map_or("-".to_owned(), |seconds| format!("{:.1}", pages as f64 / seconds)),
        );
    }
    Ok(())
}
