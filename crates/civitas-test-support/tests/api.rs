//! The OpenAI-compatible API through the real server and the real model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use civitas_test_support::{spawn_app, spawn_app_with, AppOptions, TestApp, TEST_KEY};
use futures::StreamExt;
use serde_json::{json, Value};

fn chat_body(app: &TestApp, prompt: &str) -> Value {
    json!({
        "model": app.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": 24,
    })
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let header_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], header_id, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().len() > 10, "{body}");
    body["error"].clone()
}

/// Reads an SSE body into its `data:` payloads.
async fn sse_payloads(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")))
        .map(|data| data.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn health_is_public_and_ready_reports_the_model() {
    let Some(app) = spawn_app().await else { return };
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["model"], app.model);
    assert_eq!(ready["database"], "sqlite");
    app.shutdown().await;
}

#[tokio::test]
async fn api_routes_need_a_valid_key() {
    let Some(app) = spawn_app().await else { return };
    let missing = app.client.get(app.url("/v1/models")).send().await.unwrap();
    assert!(missing.headers().get("www-authenticate").is_some());
    assert_eq!(error_of(missing, 401).await["code"], "missing_api_key");
    let wrong = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong, 401).await["code"], "invalid_api_key");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 401);
    app.shutdown().await;
}

#[tokio::test]
async fn models_are_listed_and_unknown_models_are_404() {
    let Some(app) = spawn_app().await else { return };
    let list: Value = app.get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], app.model);
    let one = app.get(&format!("/v1/models/{}", app.model)).await;
    assert_eq!(one.status(), 200);
    let missing = app.get("/v1/models/gpt-imaginary").await;
    assert_eq!(error_of(missing, 404).await["code"], "model_not_found");
    let mut body = chat_body(&app, "hi");
    body["model"] = json!("gpt-imaginary");
    let chat = app.post_json("/v1/chat/completions", &body).await;
    let error = error_of(chat, 404).await;
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    app.shutdown().await;
}

#[tokio::test]
async fn chat_completion_answers_and_is_stored() {
    let Some(app) = spawn_app().await else { return };
    let response = app
        .post_json(
            "/v1/chat/completions",
            &chat_body(&app, "What is the capital of France?"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let conversation_id = response.headers()["x-civitas-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!content.trim().is_empty());
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 5);
    let completion_tokens = usage["completion_tokens"].as_u64().unwrap();
    assert!(completion_tokens > 0 && completion_tokens <= 24);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + completion_tokens
    );

    let messages = app.store.list_messages(&conversation_id).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].content, "What is the capital of France?");
    assert_eq!(messages[1].role, "assistant");
    assert_eq!(messages[1].content, content);

    // The request record is written off the request path: wait for it.
    let record = app.wait_for_record(&request_id).await;
    let record = record.expect("request record");
    assert_eq!(record.status, 200);
    assert_eq!(record.completion_tokens as u64, completion_tokens);
    assert_eq!(record.model_sha256.as_deref().map(str::len), Some(64));
    app.shutdown().await;
}

#[tokio::test]
async fn streaming_matches_non_streaming_with_the_same_seed() {
    let Some(app) = spawn_app().await else { return };
    let mut body = chat_body(&app, "Write one sentence about rivers.");
    body["temperature"] = json!(0.8);
    body["seed"] = json!(42);
    body["max_tokens"] = json!(30);
    let plain: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let expected = plain["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = app.post_json("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let payloads = sse_payloads(response).await;
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|payload| serde_json::from_str(payload).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, expected);
    let finish: Vec<&Value> = chunks
        .iter()
        .filter(|chunk| !chunk["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finish.len(), 1);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage_chunk["usage"], plain["usage"]);
    app.shutdown().await;
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_end_generation() {
    let Some(app) = spawn_app().await else { return };
    let mut body = chat_body(&app, "Count from one to twenty in words, separated by commas.");
    body["max_tokens"] = json!(5);
    let short: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(short["choices"][0]["finish_reason"], "length");
    assert_eq!(short["usage"]["completion_tokens"], 5);

    body["max_tokens"] = json!(40);
    let full: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let text = full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() > 12, "greedy answer too short to test stop: {text:?}");
    // A stop sequence taken from the middle of the greedy answer.
    let stop: String = chars[8..11].iter().collect();
    let cut = text.find(&stop).unwrap();
    body["stop"] = json!([stop]);
    let stopped: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert_eq!(stopped["choices"][0]["message"]["content"], text[..cut]);
    app.shutdown().await;
}

#[tokio::test]
async fn json_schema_output_parses_and_validates() {
    let Some(app) = spawn_app().await else { return };
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "population": {"type": "integer"},
            "coastal": {"type": "boolean"}
        },
        "required": ["city", "population", "coastal"],
        "additionalProperties": false
    });
    let body = json!({
        "model": app.model,
        "messages": [{"role": "user", "content": "Describe Marseille as JSON."}],
        "temperature": 0.7,
        "seed": 7,
        "max_tokens": 200,
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": true}}
    });
    let response: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let content = response["choices"][0]["message"]["content"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("not JSON ({e}): {content}"));
    let object = parsed.as_object().unwrap();
    assert_eq!(object.len(), 3, "{content}");
    assert!(object["city"].is_string());
    assert!(object["population"].is_i64() || object["population"].is_u64());
    assert!(object["coastal"].is_boolean());

    let body = json!({
        "model": app.model,
        "messages": [{"role": "user", "content": "Give me a JSON object about cats."}],
        "max_tokens": 120,
        "response_format": {"type": "json_object"}
    });
    let response: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let content = response["choices"][0]["message"]["content"].as_str().unwrap();
    // Constrained from the first token, even when cut short by max_tokens.
    assert!(content.trim_start().starts_with('{'), "{content}");
    if response["choices"][0]["finish_reason"] == "stop" {
        assert!(
            serde_json::from_str::<Value>(content).unwrap().is_object(),
            "{content}"
        );
    }
    app.shutdown().await;
}

fn weather_tool() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }
        }
    }])
}

#[tokio::test]
async fn forced_tool_calls_come_back_in_openai_shape() {
    let Some(app) = spawn_app().await else { return };
    let mut body = json!({
        "model": app.model,
        "messages": [{"role": "user", "content": "What is the weather in Lyon?"}],
        "tools": weather_tool(),
        "tool_choice": "required",
        "max_tokens": 60,
        "temperature": 0
    });
    let response: Value = app
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let choice = &response["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{response}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["city"].is_string());

    body["stream"] = json!(true);
    let payloads = sse_payloads(app.post_json("/v1/chat/completions", &body).await).await;
    let chunks: Vec<Value> = payloads
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let streamed_call = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .expect("a tool call delta");
    assert_eq!(streamed_call["function"]["name"], "get_weather");
    assert!(chunks
        .iter()
        .any(|chunk| chunk["choices"][0]["finish_reason"] == "tool_calls"));
    app.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_stable_codes_and_the_request_id() {
    let Some(app) = spawn_app().await else { return };
    let url = app.url("/v1/chat/completions");
    let send = |body: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = send("{\"model\": ").await.unwrap();
    assert_eq!(error_of(malformed, 400).await["code"], "invalid_request_body");
    let wrong_type = send(r#"{"model": "x", "messages": "hello"}"#).await.unwrap();
    let error = error_of(wrong_type, 400).await;
    assert_eq!(error["param"], "messages");
    let no_type = app
        .client
        .post(&url)
        .bearer_auth(TEST_KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_type, 415).await["code"], "unsupported_media_type");

    let mut body = chat_body(&app, "hi");
    body["n"] = json!(3);
    assert_eq!(
        error_of(app.post_json("/v1/chat/completions", &body).await, 400).await["param"],
        "n"
    );
    let mut body = chat_body(&app, "hi");
    body["temperature"] = json!(7);
    assert_eq!(
        error_of(app.post_json("/v1/chat/completions", &body).await, 400).await["param"],
        "temperature"
    );
    let mut body = chat_body(&app, "hi");
    body["messages"] = json!([]);
    assert_eq!(
        error_of(app.post_json("/v1/chat/completions", &body).await, 400).await["param"],
        "messages"
    );

    let huge = "word ".repeat(60_000);
    let too_big = app
        .post_json("/v1/chat/completions", &chat_body(&app, &huge))
        .await;
    assert_eq!(error_of(too_big, 413).await["code"], "payload_too_large");

    let long = "the state of the union ".repeat(500);
    let too_long = app
        .post_json("/v1/chat/completions", &chat_body(&app, &long))
        .await;
    let error = error_of(too_long, 400).await;
    assert_eq!(error["code"], "context_length_exceeded");

    let unknown = app.get("/v1/nothing-here").await;
    assert_eq!(error_of(unknown, 404).await["code"], "route_not_found");
    let wrong_method = app.get("/v1/chat/completions").await;
    assert_eq!(error_of(wrong_method, 405).await["code"], "method_not_allowed");

    // The server is still serving.
    assert_eq!(app.get("/v1/models").await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let Some(app) = spawn_app_with(AppOptions {
        slots: 1,
        queue_depth: 1,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let mut body = chat_body(&app, "Tell me a long story about a lighthouse keeper.");
    body["max_tokens"] = json!(150);
    body["temperature"] = json!(0.9);
    let requests = (0..6).map(|_| app.post_json("/v1/chat/completions", &body));
    let responses = futures::future::join_all(requests).await;
    let mut ok = 0;
    let mut limited = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(response.headers().get("retry-after").is_some());
                assert_eq!(error_of(response, 429).await["code"], "queue_full");
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1, "no request was served");
    assert!(limited >= 1, "the queue never filled");
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_slot() {
    let Some(app) = spawn_app_with(AppOptions {
        slots: 1,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let mut body = chat_body(&app, "Write a very long essay about bridges.");
    body["max_tokens"] = json!(500);
    body["temperature"] = json!(1.0);
    body["stream"] = json!(true);
    let response = app.post_json("/v1/chat/completions", &body).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut stream = response.bytes_stream();
    let _first = stream.next().await.unwrap().unwrap();
    drop(stream);
    let record = app.wait_for_record(&request_id).await;
    let record = record.expect("the cancelled request is recorded");
    assert_eq!(record.status, 499);
    assert!(record.completion_tokens < 500);
    // The engine notices the closed stream at its next step.
    let mut freed = false;
    for _ in 0..100 {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("civitas_inference_slots_in_use 0") {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the slot of a departed client was not freed");
    // The slot serves the next request.
    let next = app
        .post_json("/v1/chat/completions", &chat_body(&app, "Hello"))
        .await;
    assert_eq!(next.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_and_tokens() {
    let Some(app) = spawn_app().await else { return };
    let _ = app
        .post_json("/v1/chat/completions", &chat_body(&app, "Hi"))
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            "civitas_http_requests_total{route=\"/v1/chat/completions\",method=\"POST\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("civitas_completion_tokens_total"));
    assert!(metrics.contains("civitas_inference_queue_depth"));
    // The server's own share of the time to first token was observed once.
    assert!(
        metrics.contains("civitas_time_to_first_token_overhead_seconds_count 1"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn conversations_are_stored_in_postgres_too() {
    if std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset, PostgreSQL API test skipped");
        return;
    }
    let Some(app) = spawn_app_with(AppOptions {
        postgres: true,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let response = app
        .post_json("/v1/chat/completions", &chat_body(&app, "Bonjour !"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.store.backend(), "postgres");
    let listed: Value = app.get("/v1/conversations").await.json().await.unwrap();
    assert_eq!(listed["data"][0]["title"], "Bonjour !");
    let id = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let messages: Value = app
        .get(&format!("/v1/conversations/{id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages["data"].as_array().unwrap().len(), 2);
    let missing = app.get("/v1/conversations/not-a-conversation/messages").await;
    assert_eq!(error_of(missing, 404).await["code"], "not_found");
    app.shutdown().await;
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn vector(value: &Value) -> Vec<f64> {
    value["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn embeddings_are_normalised_and_capture_meaning() {
    let Some(app) = spawn_app().await else { return };
    let list: Value = app.get("/v1/models").await.json().await.unwrap();
    let Some(model) = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == civitas_test_support::EMBEDDING_MODEL)
        .map(|m| m["id"].as_str().unwrap().to_owned())
    else {
        eprintln!("notice: embedding model not installed; test skipped");
        return;
    };
    let body = json!({
        "model": model,
        "input": [
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly corporate tax filing deadlines were extended."
        ]
    });
    let response = app.post_json("/v1/embeddings", &body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let vectors: Vec<Vec<f64>> = data.iter().map(vector).collect();
    for (index, v) in vectors.iter().enumerate() {
        assert_eq!(v.len(), 384);
        assert_eq!(data[index]["index"], index);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let similar = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(similar > 0.6, "similar sentences scored {similar}");
    assert!(unrelated < 0.2, "unrelated sentences scored {unrelated}");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 20);

    // Base64 carries the same little-endian floats.
    let encoded: Value = app
        .post_json(
            "/v1/embeddings",
            &json!({"model": model, "input": "The cat sits on the mat.", "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let as_floats: Vec<f32> = vectors[0].iter().map(|v| *v as f32).collect();
    assert_eq!(decoded, as_floats);

    for (bad, param) in [
        (json!({"model": model, "input": [1, 2, 3]}), "input"),
        (json!({"model": model, "input": ""}), "input[0]"),
        (
            json!({"model": model, "input": "x", "dimensions": 64}),
            "dimensions",
        ),
        (json!({"model": model, "input": "word ".repeat(600)}), "input[0]"),
    ] {
        let error = error_of(app.post_json("/v1/embeddings", &bad).await, 400).await;
        assert_eq!(error["param"], param, "{error}");
    }
    let missing = app
        .post_json("/v1/embeddings", &json!({"model": "nope", "input": "x"}))
        .await;
    assert_eq!(error_of(missing, 404).await["code"], "model_not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish_then_stops() {
    let Some(app) = spawn_app().await else { return };
    let mut body = chat_body(&app, "Describe a town hall in a few sentences.");
    body["max_tokens"] = json!(40);
    body["stream"] = json!(true);
    let response = app.post_json("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let address = app.address.clone();
    let mut stream = response.bytes_stream();
    let mut text = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(!text.contains("[DONE]"), "the stream ended before shutdown began");
    // Shut down while the answer is still being generated.
    let shutdown = tokio::spawn(app.shutdown());
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: {text}"
    );
    shutdown.await.unwrap();
    let after = reqwest::Client::new()
        .get(format!("{address}/healthz"))
        .send()
        .await;
    assert!(
        after.is_err(),
        "the server still accepts connections after shutdown"
    );
}

/// A provider entry pointing at another running Civitas (the stand-in for
/// a remote inference server), with its key in a file.
fn provider_for(
    upstream: &TestApp,
    key_dir: &std::path::Path,
    allow_internal: bool,
) -> civitas_config::ProviderConfig {
    let key_file = key_dir.join("upstream-key");
    std::fs::write(&key_file, TEST_KEY).unwrap();
    civitas_config::ProviderConfig {
        name: "upstream".to_owned(),
        base_url: format!("{}/v1", upstream.address),
        api_key: format!("file::{}", key_file.display()),
        models: vec![upstream.model.clone()],
        allow_internal,
        timeout_seconds: 60,
        pseudonymize: true,
        accreditation: String::new(),
        jurisdiction: String::new(),
        ..civitas_config::ProviderConfig::default()
    }
}

#[tokio::test]
async fn chat_is_forwarded_to_a_remote_provider() {
    let Some(upstream) = spawn_app().await else { return };
    let keys = tempfile::tempdir().unwrap();
    let Some(gateway) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        providers: vec![provider_for(&upstream, keys.path(), true)],
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let models: Value = gateway.get("/v1/models").await.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], upstream.model);
    assert_eq!(models["data"][0]["owned_by"], "upstream");

    let mut body = chat_body(&gateway, "Name a river in France.");
    body["seed"] = json!(5);
    let response = gateway.post_json("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let forwarded: Value = response.json().await.unwrap();
    let direct: Value = upstream
        .post_json("/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        forwarded["choices"][0]["message"]["content"],
        direct["choices"][0]["message"]["content"]
    );
    let record = gateway
        .wait_for_record(&request_id)
        .await
        .expect("gateway request record");
    assert_eq!(record.model.as_deref(), Some(upstream.model.as_str()));
    assert!(record.completion_tokens > 0);

    body["stream"] = json!(true);
    let payloads = sse_payloads(gateway.post_json("/v1/chat/completions", &body).await).await;
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let streamed: String = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).unwrap())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        streamed,
        direct["choices"][0]["message"]["content"].as_str().unwrap()
    );

    // The provider's refusal comes back as such, with its status and words.
    body["stream"] = json!(false);
    body["temperature"] = json!(7);
    let refused = error_of(gateway.post_json("/v1/chat/completions", &body).await, 400).await;
    assert_eq!(refused["code"], "upstream_rejected");
    assert_eq!(refused["upstream_status"], 400);
    assert!(
        refused["message"].as_str().unwrap().contains("temperature"),
        "{refused}"
    );
    gateway.shutdown().await;
    upstream.shutdown().await;
}

#[tokio::test]
async fn internal_addresses_need_allow_internal_and_dead_providers_answer_503() {
    let Some(upstream) = spawn_app().await else { return };
    let keys = tempfile::tempdir().unwrap();
    let mut dead = provider_for(&upstream, keys.path(), true);
    dead.name = "dead".to_owned();
    dead.models = vec!["dead-model".to_owned()];
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    dead.base_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let Some(gateway) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        providers: vec![provider_for(&upstream, keys.path(), false), dead],
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let body = chat_body(&gateway, "hello");
    let refused = error_of(gateway.post_json("/v1/chat/completions", &body).await, 503).await;
    assert_eq!(refused["code"], "upstream_unavailable");
    let mut body = body;
    body["model"] = json!("dead-model");
    let unreachable = error_of(gateway.post_json("/v1/chat/completions", &body).await, 503).await;
    assert!(unreachable["message"]
        .as_str()
        .unwrap()
        .contains("could not be reached"));
    gateway.shutdown().await;
    upstream.shutdown().await;
}
