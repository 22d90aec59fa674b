//! A provider outside the agency never sees personal data: the gateway
//! sends placeholders and puts the values back in the answer, streamed or
//! not, even when a placeholder arrives cut across chunks. The provider
//! here is a small local OpenAI-compatible server that answers with the
//! question it received (a remote provider cannot run on this machine).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use civitas_test_support::{spawn_app_with, AppOptions, TEST_KEY};
use serde_json::{json, Value};

const QUESTION: &str = "Summarise the file of Jeanne Martin (SSN 536-22-1234, jeanne.martin@example.gov).";

type Seen = Arc<Mutex<Vec<Value>>>;

/// Answers with the last message it received, in chunks of three
/// characters when asked to stream.
async fn echo(State(seen): State<Seen>, Json(request): Json<Value>) -> axum::response::Response {
    seen.lock().unwrap().push(request.clone());
    let said = request["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = request["model"].clone();
    if request["stream"] == json!(true) {
        let characters: Vec<char> = said.chars().collect();
        let mut body = String::new();
        for piece in characters.chunks(3) {
            let piece: String = piece.iter().collect();
            let chunk = json!({ "id": "echo", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{ "index": 0, "delta": { "content": piece }, "finish_reason": null }] });
            body.push_str(&format!("data: {chunk}\n\n"));
        }
        let last = json!({ "id": "echo", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] });
        body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    Json(json!({
        "id": "echo", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": said }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20 }
    }))
    .into_response()
}

#[tokio::test]
async fn personal_data_leaves_as_placeholders_and_comes_back() {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let echo_server = Router::new()
        .route("/v1/chat/completions", post(echo))
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, echo_server).await });
    let provider = |name: &str, pseudonymize: bool, accreditation: &str| civitas_config::ProviderConfig {
        name: name.to_owned(),
        base_url: format!("http://{address}/v1"),
        api_key: String::new(),
        models: vec![format!("{name}-model")],
        allow_internal: true,
        timeout_seconds: 30,
        pseudonymize,
        accreditation: accreditation.to_owned(),
        jurisdiction: String::new(),
        ..civitas_config::ProviderConfig::default()
    };
    let Some(gateway) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        providers: vec![provider("cloud", true, ""), provider("agency", false, "cui")],
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let ask = |model: &str, stream: bool| json!({ "model": model, "messages": [{ "role": "user", "content": QUESTION }], "stream": stream });

    let answer: Value = gateway
        .post_json("/v1/chat/completions", &ask("cloud-model", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"], QUESTION,
        "restored for the person"
    );
    let sent = seen.lock().unwrap().last().unwrap().clone();
    let sent_text = sent["messages"][0]["content"].as_str().unwrap().to_owned();
    assert_eq!(
        sent_text,
        "Summarise the file of <PERSON_1> (SSN <US_SSN_1>, <EMAIL_ADDRESS_1>)."
    );

    // Streamed in pieces of three characters: placeholders arrive cut.
    let streamed = gateway
        .client
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(&ask("cloud-model", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streamed.trim_end().ends_with("data: [DONE]"), "{streamed}");
    let text: String = streamed
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, QUESTION);
    assert!(
        !streamed.contains("<PERSON_1>") && !streamed.contains("<US_SSN"),
        "{streamed}"
    );

    // A provider the agency runs itself, configured so, gets the text as is.
    gateway
        .post_json("/v1/chat/completions", &ask("agency-model", false))
        .await;
    let sent = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(sent["messages"][0]["content"], QUESTION);
    // A marked prompt goes only to a model accredited for its level, and
    // a marking no level lists goes nowhere; each refusal is recorded.
    let marked = |model: &str, marking: &str| json!({ "model": model, "messages": [{ "role": "user", "content": format!("{marking}\nCase notes of the inspection.") }] });
    let before = seen.lock().unwrap().len();
    let refused = gateway
        .post_json("/v1/chat/completions", &marked("cloud-model", "CUI//SP-PRVCY"))
        .await;
    assert_eq!(refused.status(), 403);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "classification_not_allowed");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("accredited up to UNCLASSIFIED"));
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "the provider received nothing"
    );
    let allowed = gateway
        .post_json("/v1/chat/completions", &marked("agency-model", "CUI//SP-PRVCY"))
        .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(seen.lock().unwrap().len(), before + 1);
    let beyond = gateway
        .post_json(
            "/v1/chat/completions",
            &marked("agency-model", "TOP SECRET//NOFORN"),
        )
        .await;
    assert_eq!(beyond.status(), 403);
    assert_eq!(seen.lock().unwrap().len(), before + 1);
    let denials: Vec<_> = gateway
        .store
        .audit_records(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.action == "policy.denied" && record.details["reason"] == "classification")
        .collect();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!(denials[0].details["level"], "cui");
    assert_eq!(denials[1].details["beyond_every_level"], true);
    assert!(denials
        .iter()
        .all(|record| !record.details.to_string().contains("inspection")));

    // Each model call records the decision it was made under: what was
    // replaced (counted per type, never the values) and where it went.
    let mut calls = Vec::new();
    for _ in 0..100 {
        calls = gateway
            .store
            .audit_records(1, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|record| {
                record.action == "model.call" && record.outcome == civitas_audit::Outcome::Success
            })
            .collect();
        if calls.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cloud = calls
        .iter()
        .find(|record| record.target.as_deref() == Some("model:cloud-model"))
        .expect("a call to the cloud model");
    let decision = &cloud.details["data_protection"];
    assert_eq!(decision["decision"], "allow_pseudonymized");
    assert_eq!(decision["model"], "cloud");
    assert_eq!(decision["jurisdiction"], "external");
    assert_eq!(decision["replaced"]["US_SSN"], 1);
    assert!(decision["replaced"]["PERSON"].as_u64().unwrap() >= 1);
    let agency_call = calls
        .iter()
        .find(|record| record.target.as_deref() == Some("model:agency-model"))
        .expect("a call to the agency's model");
    assert_eq!(agency_call.details["data_protection"]["decision"], "allow");
    assert_eq!(agency_call.details["data_protection"]["pseudonymized"], false);

    // Nothing of the question reached any record.
    let records = gateway.store.audit_records(1, 10_000).await.unwrap();
    assert!(records
        .iter()
        .all(|record| !record.details.to_string().contains("536-22-1234")));
    gateway.shutdown().await;
}
