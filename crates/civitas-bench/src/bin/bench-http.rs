//! Load against a running Civitas server.
//!
//! `bench-http inference --url URL --key KEY --model NAME --streams 4`
//!   concurrent streamed chat completions: time to first token, prompt and
//!   generation speed, the server's peak memory (`--pid`).
//! `bench-http overhead --url URL --key KEY --path /v1/models --rate 1000 --seconds 20`
//!   an open-loop fixed request rate; latency is measured from each
//!   request's scheduled time (no coordinated omission).

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

async fn overhead(
    url: String,
    key: String,
    path: String,
    body: Option<String>,
    rate: u32,
    seconds: u32,
) -> Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
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
            let response = request.send().await;
            let ok = match response {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            (ok, scheduled.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        let (ok, latency) = task.await?;
        if !ok {
            failures += 1;
        }
        latencies.push(latency);
    }
    latencies.sort_by(f64::total_cmp);
    let report = json!({
        "path": path,
        "rate_per_second": rate,
        "requests": total,
        "failures": failures,
        "p50_ms": civitas_bench::quantile(&latencies, 0.50),
        "p99_ms": civitas_bench::quantile(&latencies, 0.99),
        "max_ms": latencies.last(),
    });
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
        } => overhead(url, key, path, body, rate, seconds).await,
    }
}
