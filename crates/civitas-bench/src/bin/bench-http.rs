//! Load against a running Civitas server.
//!
//! `bench-http inference --url URL --key KEY --model NAME --streams 4`
//!   concurrent streamed chat completions: time to first token, prompt and
//!   generation speed, the server's peak memory (`--pid`).
//! `bench-http overhead --url URL --key KEY --path /v1/models --rate 1000 --seconds 20`
//!   an open-loop fixed request rate; latency is measured from each
//!   request's scheduled time (no coordinated omission); p50/p90/p99 and
//!   the success rate, and with `--stream` the time to the first byte and
//!   the gaps between chunks.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Inference {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        model: String,
        #[arg(long, default_value_t = 1)]
        streams: usize,
        #[arg(long, default_value_t = 300)]
        filler_words: usize,
        #[arg(long, default_value_t = 128)]
        tokens: u32,
        /// Server process id, to report its peak memory.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Sequential one-token requests: median time to first token.
    Ttft {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        model: String,
        #[arg(long, default_value_t = 0)]
        filler_words: usize,
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    Overhead {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "/v1/models")]
        path: String,
        /// JSON body: POST instead of GET.
        #[arg(long)]
        body: Option<String>,
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u32,
        /// The body asks for a stream: also report the time to the first
        /// byte and the gaps between chunks, and count an answer without
        /// `[DONE]` as failed.
        #[arg(long)]
        stream: bool,
        /// A name for this run in the report.
        #[arg(long)]
        label: Option<String>,
    },
}

struct StreamResult {
    /// Seconds (from the start) at which each content chunk arrived.
    chunk_times: Vec<f64>,
    first_token: f64,
    last_token: f64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

async fn one_stream(
    client: reqwest::Client,
    url: String,
    key: String,
    body: Value,
    start: Instant,
) -> Result<StreamResult> {
    let response = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("status {}: {}", response.status(), response.text().await?);
    }
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let (mut first, mut last) = (None, 0.0);
    let mut chunk_times = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let value: Value = serde_json::from_str(data)?;
            if value["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                let now = start.elapsed().as_secs_f64();
                first.get_or_insert(now);
                last = now;
                chunk_times.push(now);
            }
            if let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
                prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
                completion_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok(StreamResult {
        chunk_times,
        first_token: first.unwrap_or(last),
        last_token: last,
        prompt_tokens,
        completion_tokens,
    })
}

async fn inference(
    url: String,
    key: String,
    model: String,
    streams: usize,
    filler_words: usize,
    tokens: u32,
    pid: Option<u32>,
) -> Result<()> {
    let client = reqwest::Client::new();
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": civitas_bench::question(filler_words)}],
        "temperature": 0,
        "max_tokens": tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // Warm-up request (not measured).
    one_stream(client.clone(), url.clone(), key.clone(), json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": true}), Instant::now()).await?;
    let start = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            tokio::spawn(one_stream(
                client.clone(),
                url.clone(),
                key.clone(),
                body.clone(),
                start,
            ))
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await??);
    }
    let generated: u64 = results
        .iter()
        .map(|r| r.completion_tokens.saturating_sub(1))
        .sum();
    let first = results
        .iter()
        .map(|r| r.first_token)
        .fold(f64::INFINITY, f64::min);
    let last = results.iter().map(|r| r.last_token).fold(0.0, f64::max);
    let prompt_tokens: u64 = results.iter().map(|r| r.prompt_tokens).sum();
    // Steady state: from the moment every stream is generating until the
    // first one ends, every chunk is one token of a decode step shared by
    // all streams.
    let all_generating = results.iter().map(|r| r.first_token).fold(0.0, f64::max);
    let first_done = results.iter().map(|r| r.last_token).fold(f64::INFINITY, f64::min);
    let steady_tokens: usize = results
        .iter()
        .map(|r| {
            r.chunk_times
                .iter()
                .filter(|&&t| t > all_generating && t <= first_done)
                .count()
        })
        .sum();
    let steady_rate = if first_done > all_generating {
        steady_tokens as f64 / (first_done - all_generating)
    } else {
        f64::NAN
    };
    let report = json!({
        "engine": "civitas serve",
        "wall_seconds": last,
        "steady_generation_tokens_per_second": steady_rate,
        "streams": streams,
        "prompt_tokens_per_stream": results[0].prompt_tokens,
        "completion_tokens_per_stream": results.iter().map(|r| r.completion_tokens).collect::<Vec<_>>(),
        "time_to_first_token_ms": first * 1000.0,
        "prompt_tokens_per_second": prompt_tokens as f64 / results.iter().map(|r| r.first_token).fold(0.0, f64::max),
        "generation_tokens_per_second": generated as f64 / (last - first),
        "server_peak_rss_mib": pid.and_then(|pid| civitas_bench::rss_field(pid, "VmHWM")),
    });
    println!("{report}");
    Ok(())
}

async fn ttft(url: String, key: String, model: String, filler_words: usize, runs: usize) -> Result<()> {
    let client = reqwest::Client::new();
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": civitas_bench::question(filler_words)}],
        "temperature": 0,
        "max_tokens": 1,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let mut times = Vec::with_capacity(runs);
    let mut prompt_tokens = 0;
    for _ in 0..runs.max(1) + 1 {
        let result = one_stream(
            client.clone(),
            url.clone(),
            key.clone(),
            body.clone(),
            Instant::now(),
        )
        .await?;
        prompt_tokens = result.prompt_tokens;
        times.push(result.first_token * 1000.0);
    }
    times.remove(0); // warm-up
    times.sort_by(f64::total_cmp);
    // The server's own account: time to first token minus model compute.
    let metrics = client
        .get(format!("{url}/metrics"))
        .bearer_auth(&key)
        .send()
        .await?
        .text()
        .await?;
    let metric = |name: &str| {
        metrics.lines().find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
    };
    let overhead_mean_ms = match (
        metric("civitas_time_to_first_token_overhead_seconds_sum "),
        metric("civitas_time_to_first_token_overhead_seconds_count "),
    ) {
        (Some(sum), Some(count)) if count > 0.0 => Some(sum / count * 1000.0),
        _ => None,
    };
    let report = json!({
        "engine": "civitas serve",
        "server_time_to_first_token_overhead_mean_ms": overhead_mean_ms,
        "prompt_tokens": prompt_tokens,
        "runs": times.len(),
        "time_to_first_token_median_ms": civitas_bench::quantile(&times, 0.5),
        "time_to_first_token_p90_ms": civitas_bench::quantile(&times, 0.9),
    });
    println!("{report}");
    Ok(())
}

/// What one request of the overhead run saw.
struct Sample {
    ok: bool,
    /// From its scheduled time to the whole answer.
    total_ms: f64,
    /// From its scheduled time to the first byte of the body.
    first_byte_ms: f64,
    /// Gaps between body chunks (streams).
    gaps_ms: Vec<f64>,
}

#[allow(clippy::too_many_arguments, reason = "one flag each")]
async fn overhead(
    url: String,
    key: String,
    path: String,
    body: Option<String>,
    rate: u32,
    seconds: u32,
    stream: bool,
    label: Option<String>,
) -> Result<()> {
    // A request not answered in 30 s counts as failed.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?;
    let target = format!("{url}{path}");
    let total = u64::from(rate) * u64::from(seconds);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for index in 0..total {
        let scheduled = start + interval * index as u32;
        tokio::time::sleep_until(scheduled).await;
        let request = match &body {
            Some(body) => client
                .post(&target)
                .header("content-type", "application/json")
                .body(body.clone()),
            None => client.get(&target),
        }
        .bearer_auth(&key);
        tasks.push(tokio::spawn(async move {
            let since = |at: tokio::time::Instant| at.duration_since(scheduled).as_secs_f64() * 1000.0;
            let mut sample = Sample {
                ok: false,
                total_ms: 0.0,
                first_byte_ms: 0.0,
                gaps_ms: Vec::new(),
            };
            if let Ok(response) = request.send().await {
                let mut ok = response.status().is_success();
                let mut body = response.bytes_stream();
                let mut last: Option<tokio::time::Instant> = None;
                let mut text = Vec::new();
                while let Some(chunk) = body.next().await {
                    let now = tokio::time::Instant::now();
                    match chunk {
                        Ok(bytes) => text.extend_from_slice(&bytes),
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                    match last {
                        None => sample.first_byte_ms = since(now),
                        Some(previous) => sample
                            .gaps_ms
                            .push(now.duration_since(previous).as_secs_f64() * 1000.0),
                    }
                    last = Some(now);
                }
                if stream {
                    ok &= text.windows(12).any(|window| window == b"data: [DONE]");
                }
                sample.ok = ok;
            }
            sample.total_ms = since(tokio::time::Instant::now());
            sample
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut first_bytes = Vec::with_capacity(tasks.len());
    let mut gaps = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let sample = task.await?;
        if !sample.ok {
            failures += 1;
        }
        latencies.push(sample.total_ms);
        first_bytes.push(sample.first_byte_ms);
        gaps.extend(sample.gaps_ms);
    }
    for list in [&mut latencies, &mut first_bytes, &mut gaps] {
        list.sort_by(f64::total_cmp);
    }
    let q = |list: &[f64], at: f64| civitas_bench::quantile(list, at);
    let mut report = json!({
        "label": label,
        "path": path,
        "rate_per_second": rate,
        "requests": total,
        "failures": failures,
        "success_rate": (total - failures) as f64 / total.max(1) as f64,
        "p50_ms": q(&latencies, 0.50),
        "p90_ms": q(&latencies, 0.90),
        "p99_ms": q(&latencies, 0.99),
        "max_ms": latencies.last(),
    });
    if stream {
        report["first_byte_p50_ms"] = json!(q(&first_bytes, 0.50));
        report["first_byte_p90_ms"] = json!(q(&first_bytes, 0.90));
        report["first_byte_p99_ms"] = json!(q(&first_bytes, 0.99));
        report["gap_p50_ms"] = json!(q(&gaps, 0.50));
        report["gap_p99_ms"] = json!(q(&gaps, 0.99));
    }
    println!("{report}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Mode::Inference {
            url,
            key,
            model,
            streams,
            filler_words,
            tokens,
            pid,
        } => inference(url, key, model, streams, filler_words, tokens, pid).await,
        Mode::Ttft {
            url,
            key,
            model,
            filler_words,
            runs,
        } => ttft(url, key, model, filler_words, runs).await,
        Mode::Overhead {
            url,
            key,
            path,
            body,
            rate,
            seconds,
            stream,
            label,
        } => overhead(url, key, path, body, rate, seconds, stream, label).await,
    }
}
