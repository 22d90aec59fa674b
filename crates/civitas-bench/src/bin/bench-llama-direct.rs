//! The ceiling: the model driven through llama.cpp with no server around
//! it, with the same context layout and batching as the Civitas engine.
//!
//! `bench-llama-direct --model PATH [--streams 1] [--threads 2]`

use std::num::NonZeroU32;
use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Parser;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

#[derive(Parser)]
struct Args {
    /// GGUF file.
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 1)]
    streams: u32,
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Words of context before the question.
    #[arg(long, default_value_t = 300)]
    filler_words: usize,
    /// Tokens generated per stream.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Instead of the throughput run: measure time to first token this many
    /// times (one stream, tokenization included) and report the median.
    #[arg(long)]
    ttft_runs: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut backend = LlamaBackend::init()?;
    backend.void_logs();
    let load_start = Instant::now();
    let model = LlamaModel::load_from_file(&backend, &args.model, &LlamaModelParams::default())?;
    let load_seconds = load_start.elapsed().as_secs_f64();
    let streams = args.streams.max(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(4096 * streams))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(streams)
        .with_n_threads(args.threads)
        .with_n_threads_batch(args.threads);
    let mut context = model.new_context(&backend, params)?;
    let prompt = civitas_bench::chatml(&civitas_bench::question(args.filler_words));
    if let Some(runs) = args.ttft_runs {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            context.clear_kv_cache();
            let start = Instant::now();
            let tokens = model.vocab().tokenize(prompt.as_bytes(), false, true);
            let mut batch = LlamaBatch::new(tokens.len().max(512), 1);
            for (position, token) in tokens.iter().enumerate() {
                batch.add(*token, position as i32, &[0], position + 1 == tokens.len())?;
            }
            context.decode(&mut batch)?;
            let mut sampler = LlamaSampler::greedy();
            let first = sampler.sample(&context, batch.n_tokens() - 1);
            let _piece = model.vocab().token_to_piece(first, false, None);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let prompt_tokens = model.vocab().tokenize(prompt.as_bytes(), false, true).len();
        println!(
            "{}",
            serde_json::json!({
                "engine": "llama.cpp direct",
                "prompt_tokens": prompt_tokens,
                "runs": times.len(),
                "time_to_first_token_median_ms": civitas_bench::quantile(&times, 0.5),
                "time_to_first_token_p90_ms": civitas_bench::quantile(&times, 0.9),
            })
        );
        return Ok(());
    }
    let tokens = model.vocab().tokenize(prompt.as_bytes(), false, true);
    let mut batch = LlamaBatch::new(512, streams as i32);
    let mut samplers: Vec<LlamaSampler> = (0..streams).map(|_| LlamaSampler::greedy()).collect();

    let start = Instant::now();
    // Prompt: each stream's prompt in chunks of 512, as the engine does.
    let mut last_index = vec![0_i32; streams as usize];
    let mut first_token_seconds = None;
    for stream in 0..streams as i32 {
        for chunk_start in (0..tokens.len()).step_by(512) {
            batch.clear();
            let end = (chunk_start + 512).min(tokens.len());
            for (offset, token) in tokens[chunk_start..end].iter().enumerate() {
                let position = chunk_start + offset;
                let last = position + 1 == tokens.len();
                batch.add(*token, position as i32, &[stream], last)?;
                if last {
                    last_index[stream as usize] = offset as i32;
                }
            }
            context.decode(&mut batch)?;
        }
        let token = samplers[stream as usize].sample(&context, last_index[stream as usize]);
        last_index[stream as usize] = token.0;
        first_token_seconds.get_or_insert(start.elapsed().as_secs_f64());
    }
    let prefill_seconds = start.elapsed().as_secs_f64();
    let generation_start = Instant::now();
    let mut positions = vec![tokens.len() as i32; streams as usize];
    let mut next: Vec<_> = last_index
        .iter()
        .map(|&id| llama_cpp_2::token::LlamaToken(id))
        .collect();
    for _ in 1..args.tokens {
        batch.clear();
        for stream in 0..streams as usize {
            batch.add(next[stream], positions[stream], &[stream as i32], true)?;
            positions[stream] += 1;
        }
        context
            .decode(&mut batch)
            .map_err(|error| anyhow!("decode: {error}"))?;
        for stream in 0..streams as usize {
            next[stream] = samplers[stream].sample(&context, stream as i32);
        }
    }
    let generation_seconds = generation_start.elapsed().as_secs_f64();
    let generated = f64::from(args.tokens - 1) * f64::from(streams);
    let report = serde_json::json!({
        "engine": "llama.cpp direct",
        "streams": streams,
        "threads": args.threads,
        "load_seconds": load_seconds,
        "prompt_tokens_per_stream": tokens.len(),
        "prompt_tokens_per_second": (tokens.len() as f64 * f64::from(streams)) / prefill_seconds,
        "time_to_first_token_ms": first_token_seconds.unwrap_or(prefill_seconds) * 1000.0,
        "generation_tokens_per_second": generated / generation_seconds,
        "wall_seconds": prefill_seconds + generation_seconds,
        "peak_rss_mib": civitas_bench::peak_rss_mib(),
    });
    println!("{report}");
    Ok(())
}
