//! `/v1/protect/analyze` and `/v1/protect/anonymize` through the real
//! server: character offsets on multi-byte text, each operator, a keyed
//! hash stable within the installation, and every bad input named.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(path, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn analyze_and_anonymize_in_presidio_shapes() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let text = "Élodie, née le 3 mars 1984 : écrire à élodie.dupre@exemple.fr ou SSN 536-22-1234.";
    let (status, found) = post(&app, "/v1/protect/analyze", json!({ "text": text })).await;
    assert_eq!(status, 200, "{found}");
    let chars: Vec<char> = text.chars().collect();
    let slice = |result: &Value| -> String {
        let (start, end) = (
            result["start"].as_u64().unwrap() as usize,
            result["end"].as_u64().unwrap() as usize,
        );
        chars[start..end].iter().collect()
    };
    let by_type = |kind: &str| {
        found
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["entity_type"] == kind)
            .cloned()
    };
    // Offsets count characters, as Presidio's do.
    assert_eq!(
        slice(&by_type("EMAIL_ADDRESS").unwrap()),
        "élodie.dupre@exemple.fr"
    );
    assert_eq!(slice(&by_type("US_SSN").unwrap()), "536-22-1234");
    assert_eq!(slice(&by_type("DATE_OF_BIRTH").unwrap()), "3 mars 1984");
    let (_, only) = post(
        &app,
        "/v1/protect/analyze",
        json!({ "text": text, "entities": ["US_SSN"], "language": "en" }),
    )
    .await;
    assert_eq!(only.as_array().unwrap().len(), 1);

    let (status, anonymized) = post(&app, "/v1/protect/anonymize", json!({ "text": text })).await;
    assert_eq!(status, 200, "{anonymized}");
    assert_eq!(
        anonymized["text"],
        "Élodie, née le <DATE_OF_BIRTH> : écrire à <EMAIL_ADDRESS> ou SSN <US_SSN>."
    );
    let out: Vec<char> = anonymized["text"].as_str().unwrap().chars().collect();
    for item in anonymized["items"].as_array().unwrap() {
        let (start, end) = (
            item["start"].as_u64().unwrap() as usize,
            item["end"].as_u64().unwrap() as usize,
        );
        let piece: String = out[start..end].iter().collect();
        assert_eq!(piece, format!("<{}>", item["entity_type"].as_str().unwrap()));
    }
    let operators = json!({
        "US_SSN": { "type": "mask", "masking_char": "#", "keep_last": 4 },
        "EMAIL_ADDRESS": { "type": "hash" },
        "DEFAULT": { "type": "replace", "new_value": "[removed]" },
    });
    let (status, custom) = post(
        &app,
        "/v1/protect/anonymize",
        json!({ "text": text, "operators": operators }),
    )
    .await;
    assert_eq!(status, 200, "{custom}");
    let custom_text = custom["text"].as_str().unwrap();
    assert!(custom_text.contains("SSN #######1234."), "{custom_text}");
    assert!(custom_text.contains("née le [removed]"), "{custom_text}");
    assert!(custom_text.contains("<EMAIL_ADDRESS:"), "{custom_text}");
    assert!(!custom_text.contains("dupre"));
    // The keyed hash is stable within the installation.
    let (_, again) = post(
        &app,
        "/v1/protect/anonymize",
        json!({ "text": text, "operators": operators }),
    )
    .await;
    assert_eq!(again["text"], custom["text"]);

    // Findings given by the caller (character offsets).
    let given = json!([{ "entity_type": "PERSON_NAME_LIKE", "start": 0, "end": 6, "score": 1.0 }]);
    let (status, refused) = post(
        &app,
        "/v1/protect/anonymize",
        json!({ "text": text, "analyzer_results": given }),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["param"].as_str()),
        (400, Some("analyzer_results[0]"))
    );
    let given = json!([{ "entity_type": "US_SSN", "start": 0, "end": 6, "score": 1.0 }]);
    let (status, replaced) = post(
        &app,
        "/v1/protect/anonymize",
        json!({ "text": text, "analyzer_results": given }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(replaced["text"].as_str().unwrap().starts_with("<US_SSN>, née"));

    // Bad input: each named, with the request id.
    for (path, body, param) in [
        (
            "/v1/protect/analyze",
            json!({ "text": text, "language": "de" }),
            "language",
        ),
        (
            "/v1/protect/analyze",
            json!({ "text": text, "entities": ["NOPE"] }),
            "entities",
        ),
        (
            "/v1/protect/analyze",
            json!({ "text": text, "score_threshold": 2 }),
            "score_threshold",
        ),
        (
            "/v1/protect/anonymize",
            json!({ "text": text, "operators": { "US_SSN": { "type": "shred" } } }),
            "operators.US_SSN",
        ),
        (
            "/v1/protect/anonymize",
            json!({ "text": text, "operators": { "US_SSN": { "type": "mask", "masking_char": "##" } } }),
            "operators.US_SSN",
        ),
        (
            "/v1/protect/anonymize",
            json!({ "text": text, "operators": { "NOPE": { "type": "redact" } } }),
            "operators.NOPE",
        ),
        (
            "/v1/protect/anonymize",
            json!({ "text": text, "analyzer_results": [{ "entity_type": "US_SSN", "start": 5, "end": 500, "score": 1 }] }),
            "analyzer_results[0]",
        ),
        (
            "/v1/protect/anonymize",
            json!({ "text": text, "analyzer_results": [
                { "entity_type": "US_SSN", "start": 0, "end": 6, "score": 1 },
                { "entity_type": "US_SSN", "start": 3, "end": 9, "score": 1 }
            ] }),
            "analyzer_results",
        ),
    ] {
        let (status, answer) = post(&app, path, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
        assert!(answer["error"]["request_id"].is_string());
    }
    let (status, answer) = post(&app, "/v1/protect/analyze", json!({ "text": text, "extra": 1 })).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_request_body"))
    );
    let anonymous = app
        .client
        .post(app.url("/v1/protect/analyze"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.shutdown().await;
}
