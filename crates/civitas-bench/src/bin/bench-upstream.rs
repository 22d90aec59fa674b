//! An instant OpenAI-compatible upstream for gateway benchmarks: every
//! chat completion is answered at once with a fixed completion, or, when
//! streamed, with `--chunks` chunks `--gap-ms` apart and `[DONE]`.
//!
//! `bench-upstream --listen 127.0.0.1:18090 --chunks 10 --gap-ms 20`

use std::time::Duration;

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: String,
    /// Chunks of a streamed answer.
    #[arg(long, default_value_t = 10)]
    chunks: u32,
    /// Milliseconds between two chunks.
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-stub","object":"chat.completion","created":0,"model":"stub-model","system_fingerprint":null,"choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour.","refusal":null},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;

fn chunk(text: &str, finish: Option<&str>) -> Bytes {
    let finish = finish.map_or("null".to_owned(), |reason| format!("\"{reason}\""));
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"stub-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":{finish}}}]}}\n\n"
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let Args {
        listen,
        chunks,
        gap_ms,
    } = Args::parse();
    let gap = Duration::from_millis(gap_ms);
    let chat = move |body: Bytes| async move {
        let streamed = body.windows(13).any(|window| window == b"\"stream\":true")
            || body.windows(14).any(|window| window == b"\"stream\": true");
        if !streamed {
            return ([("content-type", "application/json")], COMPLETION).into_response();
        }
        let events = futures::stream::unfold(0u32, move |sent| async move {
            if sent > chunks {
                return None;
            }
            if sent > 0 {
                tokio::time::sleep(gap).await;
            }
            let bytes = if sent == chunks {
                let mut last = chunk("", Some("stop")).to_vec();
                last.extend_from_slice(b"data: [DONE]\n\n");
                Bytes::from(last)
            } else {
                chunk("mot ", None)
            };
            Some((Ok::<_, std::convert::Infallible>(bytes), sent + 1))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap_or_default()
    };
    let router = Router::new().route("/v1/chat/completions", post(chat)).route(
        "/v1/models",
        get(|| async {
            (
                [("content-type", "application/json")],
                r#"{"object":"list","data":[]}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
