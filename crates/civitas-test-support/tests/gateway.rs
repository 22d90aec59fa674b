//! The gateway against real local upstreams that misbehave on purpose:
//! refused connections, 500, 429, 400, an answer that never begins, a
//! stream that breaks off, a client that goes away; fail-over, retries,
//! cool-down and probing; Azure OpenAI's and Anthropic's conventions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use civitas_config::{ProviderConfig, ProviderKind, RouteConfig, RouteStrategy};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use futures::StreamExt;
use serde_json::{json, Value};

/// How a local upstream behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Answer,
    Fail500,
    Limit429,
    Reject400,
    /// Accepts and never answers.
    Hang,
    /// Streams two chunks, then drops the connection.
    BreakOff,
    /// Streams a chunk every 50 ms until the client goes.
    Endless,
    /// A recorded answer: its content type and body.
    Fixture(&'static str, &'static str),
}

struct Upstream {
    name: &'static str,
    behaviour: std::sync::Mutex<Behaviour>,
    requests: AtomicUsize,
    /// The last request's body and headers.
    seen: std::sync::Mutex<Option<(HeaderMap, Value, String)>>,
    /// An endless stream was dropped by its client.
    gone: Arc<AtomicBool>,
}

impl Upstream {
    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn completion(name: &str, model: &str) -> Value {
    json!({
        "id": format!("chatcmpl-{name}"), "object": "chat.completion", "created": 1_764_000_000, "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answered by {name}")},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    })
}

fn chunk(text: &str) -> String {
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

/// Marks the endless stream as dropped (its client went away).
struct Watch(Arc<AtomicBool>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn handle(
    State(upstream): State<Arc<Upstream>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> Response {
    upstream.requests.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    *upstream.seen.lock().unwrap() = Some((headers, request.clone(), uri.to_string()));
    let behaviour = *upstream.behaviour.lock().unwrap();
    let model = request["model"].as_str().unwrap_or("m").to_owned();
    match behaviour {
        Behaviour::Answer if request["stream"] == true => {
            // The usage chunk OpenAI sends last when asked for it.
            let usage = if request["stream_options"]["include_usage"] == true {
                let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                   "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
                format!("data: {usage}\n\n")
            } else {
                String::new()
            };
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(format!(
                    "{}{}{usage}data: [DONE]\n\n",
                    chunk("answered by "),
                    chunk(upstream.name)
                )))
                .unwrap()
        }
        Behaviour::Answer => Json(completion(upstream.name, &model)).into_response(),
        Behaviour::Fail500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "boom"}})),
        )
            .into_response(),
        Behaviour::Limit429 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            Json(json!({"error": {"message": "slow down"}})),
        )
            .into_response(),
        Behaviour::Reject400 => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "temperature is out of range"}})),
        )
            .into_response(),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Behaviour::BreakOff => {
            // Two chunks, a pause (so that they are on their way), then
            // the connection fails.
            let pieces = futures::stream::unfold(0, |step| async move {
                match step {
                    0 => Some((Ok(axum::body::Bytes::from(chunk("half "))), 1)),
                    1 => Some((Ok(axum::body::Bytes::from(chunk("an answer"))), 2)),
                    2 => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Some((Err(std::io::Error::other("the upstream fell over")), 3))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(pieces))
                .unwrap()
        }
        Behaviour::Fixture(content_type, body) => Response::builder()
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
        Behaviour::Endless => {
            let watch = Watch(Arc::clone(&upstream.gone));
            let ticks = futures::stream::unfold(watch, |watch| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk("more "))),
                    watch,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(ticks))
                .unwrap()
        }
    }
}

/// Starts a local upstream; its address.
async fn upstream(name: &'static str, behaviour: Behaviour) -> (Arc<Upstream>, String) {
    let state = Arc::new(Upstream {
        name,
        behaviour: std::sync::Mutex::new(behaviour),
        requests: AtomicUsize::new(0),
        seen: std::sync::Mutex::new(None),
        gone: Arc::new(AtomicBool::new(false)),
    });
    let router = Router::new()
        .route("/v1/chat/completions", post(handle))
        .route("/openai/deployments/{deployment}/chat/completions", post(handle))
        .route("/v1/messages", post(handle))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (state, format!("http://{address}"))
}

fn deployment(name: &str, base: &str, model: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        base_url: format!("{base}/v1"),
        models: vec![model.to_owned()],
        allow_internal: true,
        timeout_seconds: 30,
        first_byte_timeout_seconds: 1,
        pseudonymize: false,
        ..ProviderConfig::default()
    }
}

/// A port nothing listens on.
fn closed() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

async fn gateway(
    providers: Vec<ProviderConfig>,
    tweak: impl Fn(&mut civitas_config::Config) + Send + Sync + 'static,
) -> Option<TestApp> {
    spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        providers,
        tweak: Arc::new(move |config| {
            config.gateway.retry_backoff_ms = 10;
            tweak(config);
        }),
        ..AppOptions::default()
    })
    .await
}

async fn ask(app: &TestApp, model: &str, stream: bool) -> reqwest::Response {
    app.post_json(
        "/v1/chat/completions",
        &json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "stream": stream}),
    )
    .await
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{text}"
    );
    assert_eq!(status, status_of(&body), "{text}");
    body["error"].clone()
}

fn status_of(body: &Value) -> u16 {
    match body["error"]["code"].as_str().unwrap_or_default() {
        "upstream_unavailable" => 503,
        "upstream_timeout" => 504,
        "upstream_rate_limited" => 429,
        "upstream_rejected" => 400,
        "upstream_error" => 502,
        _ => 0,
    }
}

#[tokio::test]
async fn a_request_fails_over_past_dead_and_failing_deployments_and_cools_them_down() {
    let (failing, failing_url) = upstream("failing", Behaviour::Fail500).await;
    let (hanging, hanging_url) = upstream("hanging", Behaviour::Hang).await;
    let (good, good_url) = upstream("good", Behaviour::Answer).await;
    let providers = vec![
        deployment("dead", &closed(), "big"),
        deployment("failing", &failing_url, "big"),
        deployment("hanging", &hanging_url, "big"),
        deployment("good", &good_url, "big"),
    ];
    let Some(app) = gateway(providers, |config| {
        config.gateway.retries = 3;
        config.gateway.cooldown_after_failures = 1;
        config.gateway.cooldown_seconds = 2;
    })
    .await
    else {
        return;
    };
    // Refused connection, 500, no answer within a second: the fourth
    // deployment answers.
    let answer: Value = ask(&app, "big", false).await.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"], "answered by good",
        "{answer}"
    );
    assert_eq!((failing.count(), hanging.count(), good.count()), (1, 1, 1));
    // The three failed once each and cool down: the next request goes
    // straight to the good one, streamed through chunk by chunk.
    let response = ask(&app, "big", true).await;
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    assert!(
        text.contains("answered by ") && text.contains("good") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    assert_eq!((failing.count(), hanging.count(), good.count()), (1, 1, 2));
    // After the cool-down one request probes the failing deployment; it
    // has recovered and takes traffic again.
    failing.set(Behaviour::Answer);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let answer: Value = ask(&app, "big", false).await.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"], "answered by failing",
        "{answer}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"civitas_upstream_attempts_total{provider="failing",outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"civitas_upstream_attempts_total{provider="good",outcome="answered"} 2"#));
    app.shutdown().await;
}

#[tokio::test]
async fn errors_keep_the_upstream_status_and_only_retryable_ones_are_retried() {
    let (limited, limited_url) = upstream("limited", Behaviour::Limit429).await;
    let (strict, strict_url) = upstream("strict", Behaviour::Reject400).await;
    let Some(app) = gateway(
        vec![
            deployment("limited", &limited_url, "limited-model"),
            deployment("strict", &strict_url, "strict-model"),
            deployment("dead", &closed(), "dead-model"),
        ],
        |config| {
            config.gateway.retries = 2;
            config.gateway.cooldown_after_failures = 10;
        },
    )
    .await
    else {
        return;
    };
    // 429 is retried (three attempts in all), then answered as such.
    let response = ask(&app, "limited-model", false).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let error = error_of(response, 429).await;
    assert_eq!(error["upstream_status"], 429);
    assert!(
        error["message"].as_str().unwrap().contains("slow down"),
        "{error}"
    );
    assert_eq!(limited.count(), 3);
    // A 400 is about the request: not retried, the provider's words kept.
    let response = ask(&app, "strict-model", false).await;
    assert_eq!(response.status(), 400);
    let error = error_of(response, 400).await;
    assert_eq!(
        (error["code"].as_str(), error["upstream_status"].as_u64()),
        (Some("upstream_rejected"), Some(400))
    );
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("temperature is out of range"));
    assert_eq!(strict.count(), 1);
    // Nobody listening: 503, and the request record says so.
    let response = ask(&app, "dead-model", false).await;
    assert_eq!(response.status(), 503);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let error = error_of(response, 503).await;
    assert!(error["upstream_status"].is_null());
    let record = app.wait_for_record(&request_id).await.unwrap();
    assert_eq!(
        (record.status, record.error_code.as_deref()),
        (503, Some("upstream_unavailable"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_never_retried_once_begun_and_a_client_that_goes_stops_the_upstream() {
    let (broken, broken_url) = upstream("broken", Behaviour::BreakOff).await;
    let (endless, endless_url) = upstream("endless", Behaviour::Endless).await;
    let (spare, spare_url) = upstream("spare", Behaviour::Answer).await;
    let Some(app) = gateway(
        vec![
            deployment("broken", &broken_url, "flaky"),
            deployment("spare", &spare_url, "flaky"),
            deployment("endless", &endless_url, "endless"),
        ],
        |config| config.gateway.retries = 2,
    )
    .await
    else {
        return;
    };
    // Half an answer then the connection drops: the client gets the half,
    // then an error event and no [DONE]; nothing is sent elsewhere.
    let text = ask(&app, "flaky", true).await.text().await.unwrap();
    assert!(text.contains("half ") && text.contains("an answer"), "{text}");
    assert!(text.contains(r#""code":"upstream_error""#), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!((broken.count(), spare.count()), (1, 0));
    // The client reads a little and goes: the upstream request is dropped.
    let response = ask(&app, "endless", true).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("more"));
    drop(body);
    let mut stopped = false;
    for _ in 0..100 {
        if endless.gone.load(Ordering::SeqCst) {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stopped,
        "the upstream stream was still being read after the client left"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn azure_and_anthropic_deployments_are_spoken_to_in_their_own_terms() {
    let (azure, azure_url) = upstream("azure", Behaviour::Answer).await;
    let (claude, claude_url) = upstream("claude", Behaviour::Answer).await;
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("azure"), "azure-secret").unwrap();
    std::fs::write(keys.path().join("claude"), "claude-secret").unwrap();
    let mut azure_deployment = deployment("azure-gov", &azure_url, "gpt-gov");
    azure_deployment.kind = ProviderKind::Azure;
    azure_deployment.base_url = azure_url.clone();
    azure_deployment.api_key = format!("file::{}", keys.path().join("azure").display());
    azure_deployment.model_map = [("gpt-gov".to_owned(), "gpt-4o-prod".to_owned())]
        .into_iter()
        .collect();
    let mut claude_deployment = deployment("anthropic", &claude_url, "claude-gov");
    claude_deployment.kind = ProviderKind::Anthropic;
    claude_deployment.api_key = format!("file::{}", keys.path().join("claude").display());
    claude_deployment.model_map = [("claude-gov".to_owned(), "claude-sonnet-4-5".to_owned())]
        .into_iter()
        .collect();
    let Some(app) = gateway(vec![azure_deployment, claude_deployment], |_| {}).await else {
        return;
    };
    let answer: Value = ask(&app, "gpt-gov", false).await.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "answered by azure");
    let (headers, body, uri) = azure.seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        uri,
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(headers["api-key"], "azure-secret");
    assert!(headers.get("authorization").is_none());
    assert_eq!(body["model"], "gpt-4o-prod");

    // Anthropic: the recorded request goes out as the Messages API wants
    // it, and the recorded answer comes back in OpenAI's shape.
    claude.set(Behaviour::Fixture(
        "application/json",
        include_str!("../../civitas-server/fixtures/anthropic/anthropic-response.json"),
    ));
    let request: Value = serde_json::from_str(include_str!(
        "../../civitas-server/fixtures/anthropic/openai-request.json"
    ))
    .unwrap();
    let expected: Value = serde_json::from_str(include_str!(
        "../../civitas-server/fixtures/anthropic/anthropic-request.json"
    ))
    .unwrap();
    let response = app.post_json("/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "claude-gov");
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "case_documents"
    );
    assert_eq!(answer["usage"]["total_tokens"], 253);
    let (headers, body, uri) = claude.seen.lock().unwrap().clone().unwrap();
    assert_eq!(uri, "/v1/messages");
    assert_eq!(headers["x-api-key"], "claude-secret");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(body, expected);
    // Streamed: Anthropic's events arrive as completion chunks.
    claude.set(Behaviour::Fixture(
        "text/event-stream",
        include_str!("../../civitas-server/fixtures/anthropic/anthropic-stream.sse"),
    ));
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let text = app
        .post_json("/v1/chat/completions", &streamed)
        .await
        .text()
        .await
        .unwrap();
    let (_, body, _) = claude.seen.lock().unwrap().clone().unwrap();
    assert_eq!(body["stream"], true);
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Let me check the documents.");
    assert!(chunks.iter().all(|chunk| chunk["model"] == "claude-gov"));
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    app.shutdown().await;
}

#[tokio::test]
async fn only_deployments_accredited_for_the_level_are_tried() {
    let (cloud, cloud_url) = upstream("cloud", Behaviour::Answer).await;
    let (agency, agency_url) = upstream("agency", Behaviour::Answer).await;
    let mut own = deployment("agency", &agency_url, "shared");
    own.accreditation = "cui".to_owned();
    let Some(app) = gateway(vec![deployment("cloud", &cloud_url, "shared"), own], |config| {
        config.gateway.routes.push(RouteConfig {
            model: "shared".to_owned(),
            strategy: RouteStrategy::Failover,
            deployments: vec!["cloud".to_owned(), "agency".to_owned()],
        });
    })
    .await
    else {
        return;
    };
    let answer: Value = ask(&app, "shared", false).await.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "answered by cloud");
    // Marked CUI: the cloud deployment is not accredited and is passed by.
    let marked = json!({"model": "shared", "messages": [{"role": "user", "content": "CUI//SP-PRVCY Summarise the file."}]});
    let answer: Value = app
        .post_json("/v1/chat/completions", &marked)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"], "answered by agency",
        "{answer}"
    );
    assert_eq!((cloud.count(), agency.count()), (1, 1));
    app.shutdown().await;
}

#[tokio::test]
async fn a_deployment_of_limited_capacity_queues_requests_and_refuses_past_its_queue() {
    let (slow, slow_url) = upstream("slow", Behaviour::Endless).await;
    let mut limited = deployment("slow", &slow_url, "slow-model");
    limited.max_concurrent = Some(1);
    let Some(app) = gateway(vec![limited], |config| config.gateway.max_queued = 1).await else {
        return;
    };
    // The first stream holds the only place.
    let first = ask(&app, "slow-model", true).await;
    let mut first = first.bytes_stream();
    assert!(first.next().await.unwrap().is_ok());
    // The second waits in the queue; a third finds it full.
    let waiting = {
        let (client, url, model) = (app.client.clone(), app.url("/v1/chat/completions"), "slow-model");
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(civitas_test_support::TEST_KEY)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "stream": true}))
                .send()
                .await
                .unwrap()
        })
    };
    let mut queued = false;
    for _ in 0..100 {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains(r#"civitas_queue_waiting{queue="slow",class="api"} 1"#) {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queued, "the second request is not waiting");
    let full = ask(&app, "slow-model", false).await;
    assert_eq!(full.status(), 429);
    assert_eq!(full.headers()["retry-after"], "1");
    let body: Value = full.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full");
    assert_eq!(slow.count(), 1);
    // The first client goes: the second gets its turn.
    drop(first);
    let second = waiting.await.unwrap();
    assert_eq!(second.status(), 200);
    let mut second = second.bytes_stream();
    assert!(second.next().await.unwrap().is_ok());
    assert_eq!(slow.count(), 2);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"civitas_queue_wait_seconds_count{queue="slow"} 2"#),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn past_its_requests_in_flight_the_server_answers_busy_at_once() {
    let (_slow, slow_url) = upstream("slow", Behaviour::Endless).await;
    let Some(app) = gateway(vec![deployment("slow", &slow_url, "slow-model")], |config| {
        config.server.max_in_flight = 1;
    })
    .await
    else {
        return;
    };
    // A stream holds the only place until it ends.
    let mut first = ask(&app, "slow-model", true).await.bytes_stream();
    assert!(first.next().await.unwrap().is_ok());
    let busy = app.get("/v1/models").await;
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["error"]["code"], "server_busy");
    assert!(!body["error"]["request_id"].as_str().unwrap().is_empty());
    // Health stays answerable; the place comes back when the stream goes.
    assert_eq!(app.get("/healthz").await.status(), 200);
    drop(first);
    let mut freed = false;
    for _ in 0..100 {
        if app.get("/v1/models").await.status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the place was not given back");
    app.shutdown().await;
}

#[tokio::test]
async fn batch_work_waits_behind_api_traffic_for_a_deployment_of_limited_capacity() {
    let (_slow, slow_url) = upstream("slow", Behaviour::Endless).await;
    let mut limited = deployment("slow", &slow_url, "slow-model");
    limited.max_concurrent = Some(1);
    let Some(app) = gateway(vec![limited], |_| {}).await else {
        return;
    };
    let send = |priority: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(civitas_test_support::TEST_KEY)
            .json(&json!({"model": "slow-model", "messages": [{"role": "user", "content": "Hello"}], "stream": true}));
        if let Some(priority) = priority {
            request = request.header("x-civitas-priority", priority);
        }
        tokio::spawn(request.send())
    };
    let waiting = |class: &'static str| {
        let app = &app;
        async move {
            for _ in 0..100 {
                let metrics = app.get("/metrics").await.text().await.unwrap();
                if metrics.contains(&format!(
                    r#"civitas_queue_waiting{{queue="slow",class="{class}"}} 1"#
                )) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    let mut holder = ask(&app, "slow-model", true).await.bytes_stream();
    assert!(holder.next().await.unwrap().is_ok());
    // Batch work queues first, API traffic after; the API request goes first.
    let batch = send(Some("batch"));
    assert!(waiting("batch").await);
    let api = send(None);
    assert!(waiting("api").await);
    drop(holder);
    let api = api.await.unwrap().unwrap();
    assert_eq!(api.status(), 200);
    let mut api = api.bytes_stream();
    assert!(api.next().await.unwrap().is_ok());
    assert!(!batch.is_finished(), "batch work went before API traffic");
    drop(api);
    let batch = batch.await.unwrap().unwrap();
    assert_eq!(batch.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_deployment_with_its_own_price_is_charged_it_instead_of_the_models() {
    let (premium, premium_url) = upstream("premium", Behaviour::Answer).await;
    let (plain, plain_url) = upstream("plain", Behaviour::Answer).await;
    let Some(app) = gateway(
        vec![
            ProviderConfig {
                input_per_million: Some(2.5),
                output_per_million: Some(10.0),
                ..deployment("premium", &premium_url, "priced-model")
            },
            deployment("plain", &plain_url, "plain-model"),
        ],
        |config| {
            config.prices = ["priced-model", "plain-model"]
                .into_iter()
                .map(|model| civitas_config::PriceConfig {
                    model: model.to_owned(),
                    input_per_million: 1.0,
                    output_per_million: 1.0,
                })
                .collect();
        },
    )
    .await
    else {
        return;
    };
    // Both answer 5 prompt and 3 answer tokens.
    let mut costs = Vec::new();
    for model in ["priced-model", "plain-model"] {
        let response = ask(&app, model, false).await;
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        costs.push(app.wait_for_record(&request_id).await.unwrap().cost_micros);
    }
    // 5 × 2.5 + 3 × 10 = 42.5 (rounded); 5 × 1 + 3 × 1 = 8.
    assert_eq!(costs, vec![43, 8]);
    assert_eq!((premium.count(), plain.count()), (1, 1));
    app.shutdown().await;
}

#[tokio::test]
async fn inline_images_reach_only_deployments_that_do_not_pseudonymize() {
    let (own, own_url) = upstream("own", Behaviour::Answer).await;
    let (cloud, cloud_url) = upstream("cloud", Behaviour::Answer).await;
    let Some(app) = gateway(
        vec![
            deployment("own", &own_url, "vision"),
            ProviderConfig {
                pseudonymize: true,
                ..deployment("cloud", &cloud_url, "cloud-vision")
            },
        ],
        |_| {},
    )
    .await
    else {
        return;
    };
    let image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";
    let with_part = |model: &str, part: Value| {
        json!({"model": model, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What does this form say?"}, part
        ]}]})
    };
    let picture = json!({"type": "image_url", "image_url": {"url": image, "detail": "high"}});
    // The agency's own server gets the image as it was sent.
    let response = app
        .post_json("/v1/chat/completions", &with_part("vision", picture.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let (_, sent, _) = own.seen.lock().unwrap().clone().unwrap();
    assert_eq!(sent["messages"][0]["content"][1], picture);
    // A deployment that pseudonymizes could not check it: refused, and
    // nothing is sent.
    let response = app
        .post_json("/v1/chat/completions", &with_part("cloud-vision", picture))
        .await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("invalid_parameter") && text.contains("pseudonymize"),
        "{text}"
    );
    assert_eq!(cloud.count(), 0);
    // An address to fetch, or a part of another type, is refused clearly.
    for (part, says) in [
        (
            json!({"type": "image_url", "image_url": {"url": "https://example.org/form.png"}}),
            "inline",
        ),
        (
            json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
            "input_audio",
        ),
    ] {
        let response = app
            .post_json("/v1/chat/completions", &with_part("vision", part))
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "messages[0].content", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    assert_eq!(own.count(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_streamed_answer_is_charged_its_tokens_whether_or_not_the_client_asked_for_usage() {
    let (priced, priced_url) = upstream("priced", Behaviour::Answer).await;
    let Some(app) = gateway(
        vec![ProviderConfig {
            input_per_million: Some(2.5),
            output_per_million: Some(10.0),
            ..deployment("priced", &priced_url, "streamed")
        }],
        |_| {},
    )
    .await
    else {
        return;
    };
    for client_asked in [false, true] {
        let mut body =
            json!({"model": "streamed", "messages": [{"role": "user", "content": "Hello"}], "stream": true});
        if client_asked {
            body["stream_options"] = json!({"include_usage": true});
        }
        let response = app.post_json("/v1/chat/completions", &body).await;
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let text = response.text().await.unwrap();
        assert!(
            text.contains("answered by ") && text.ends_with("data: [DONE]\n\n"),
            "{text}"
        );
        // The provider was asked for the usage either way; the client
        // sees it only when it asked.
        let (_, sent, _) = priced.seen.lock().unwrap().clone().unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert_eq!(text.contains("\"usage\""), client_asked, "{text}");
        let record = app.wait_for_record(&request_id).await.unwrap();
        assert_eq!(
            (record.prompt_tokens, record.completion_tokens, record.cost_micros),
            (5, 3, 43)
        );
    }
    app.shutdown().await;
}
