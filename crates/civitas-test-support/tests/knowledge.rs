//! Knowledge through the real server: collections, uploads of every kind
//! of file with their ingestion in the background, refusals with their
//! reasons, de-duplication, versions, hybrid search with access applied
//! inside it, sharing, deletion reaching the index; on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use civitas_knowledge::samples::{docx, pdf, DocxBlock};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp, TestPerson};
use reqwest::Method;
use serde_json::{json, Value};

const LEAVE: &str = include_str!("../../civitas-knowledge/demo/en/leave.md");

/// A multipart body by hand (the test client has no multipart feature).
async fn upload(
    app: &TestApp,
    key: &str,
    collection: i64,
    name: &str,
    bytes: &[u8],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let boundary = "civitas-test-boundary-7f3a";
    let mut body = Vec::new();
    let mut part = |headers: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"collection\"".into(),
        collection.to_string().as_bytes(),
    );
    for (field, value) in extra {
        part(
            format!("Content-Disposition: form-data; name=\"{field}\""),
            value.as_bytes(),
        );
    }
    part(
        format!("Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream"),
        bytes,
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    app.client
        .post(app.url("/v1/documents"))
        .bearer_auth(key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response, expected: u16) -> Value {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates a collection described by `body`; its id.
async fn new_collection(app: &TestApp, key: &str, body: Value) -> i64 {
    json_of(
        app.call(Method::POST, "/v1/collections", key, Some(&body)).await,
        201,
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// Waits until the document is ready or failed.
async fn settled(app: &TestApp, key: &str, id: i64) -> Value {
    for _ in 0..600 {
        let document = json_of(
            app.call(Method::GET, &format!("/v1/documents/{id}"), key, None)
                .await,
            200,
        )
        .await;
        if document["status"] == "ready" || document["status"] == "failed" {
            return document;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("document {id} was not ingested within 60 s");
}

async fn search(app: &TestApp, key: &str, body: Value) -> Vec<Value> {
    json_of(app.call(Method::POST, "/v1/search", key, Some(&body)).await, 200).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn people(app: &TestApp) -> (TestPerson, TestPerson, String) {
    let agency = app.default_agency().await;
    let group = app.new_group(&agency, "Readers", &[]).await;
    let owner = app
        .new_person(&agency, "owner@example.gov", &["member"], &[], None)
        .await;
    let reader = app
        .new_person(&agency, "reader@example.gov", &["member"], &[&group], None)
        .await;
    (owner, reader, group)
}

async fn knowledge_end_to_end(postgres: bool) {
    let Some(app) = spawn_app_with(AppOptions {
        postgres,
        tweak: std::sync::Arc::new(|config| config.knowledge.demo_collection = false),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let (owner, reader, group) = people(&app).await;
    let created = json_of(
        app.call(
            Method::POST,
            "/v1/collections",
            &owner.key,
            Some(&json!({"name": "Handbook", "description": "HR"})),
        )
        .await,
        201,
    )
    .await;
    let collection = created["id"].as_i64().unwrap();

    // Every kind of file, and files that must be refused with a reason.
    let leave = json_of(
        upload(
            &app,
            &owner.key,
            collection,
            "leave.md",
            LEAVE.as_bytes(),
            &[("metadata", r#"{"source":"hr"}"#)],
        )
        .await,
        201,
    )
    .await;
    assert_eq!(leave["outcome"], "created");
    let pages = vec![
        vec![
            "Mileage allowance".to_owned(),
            "Staff using their own car are paid 0.58 per kilometre.".to_owned(),
        ],
        vec![
            "Hotels".to_owned(),
            "The nightly hotel ceiling in the capital is 150 euros.".to_owned(),
        ],
    ];
    let travel = json_of(
        upload(&app, &owner.key, collection, "travel.pdf", &pdf(&pages), &[]).await,
        201,
    )
    .await;
    let word = docx(&[
        DocxBlock::Heading(1, "Phishing".into()),
        DocxBlock::Paragraph("Forward suspicious messages to the SOC-REPORT mailbox within one hour.".into()),
    ]);
    let security = json_of(
        upload(&app, &owner.key, collection, "security.docx", &word, &[]).await,
        201,
    )
    .await;
    let scanned = json_of(
        upload(&app, &owner.key, collection, "scan.pdf", &pdf(&[vec![]]), &[]).await,
        201,
    )
    .await;
    let refused = json_of(
        upload(&app, &owner.key, collection, "tool.exe", b"MZ\0\0\x90binary", &[]).await,
        415,
    )
    .await;
    assert_eq!(refused["error"]["code"], "unsupported_file_type");
    assert_eq!(refused["error"]["param"], "file");
    assert!(refused["error"]["request_id"].is_string(), "{refused}");
    let missing = json_of(
        upload(&app, &owner.key, 999_999, "a.txt", b"text", &[]).await,
        404,
    )
    .await;
    assert_eq!(missing["error"]["code"], "not_found");
    let bad_metadata = json_of(
        upload(
            &app,
            &owner.key,
            collection,
            "b.txt",
            b"text",
            &[("metadata", "[1,2]")],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(bad_metadata["error"]["param"], "metadata");

    let leave = settled(&app, &owner.key, leave["id"].as_i64().unwrap()).await;
    assert_eq!(leave["status"], "ready", "{leave}");
    assert!(leave["chunks"].as_i64().unwrap() >= 5, "{leave}");
    assert_eq!(leave["language"], "en");
    assert_eq!(leave["metadata"]["source"], "hr");
    let travel = settled(&app, &owner.key, travel["id"].as_i64().unwrap()).await;
    assert_eq!(
        (travel["status"].as_str(), travel["pages"].as_i64()),
        (Some("ready"), Some(2)),
        "{travel}"
    );
    assert_eq!(
        settled(&app, &owner.key, security["id"].as_i64().unwrap()).await["status"],
        "ready"
    );
    let scanned = settled(&app, &owner.key, scanned["id"].as_i64().unwrap()).await;
    assert_eq!(scanned["status"], "failed");
    assert_eq!(scanned["error"]["code"], "no_text_layer");
    assert!(
        scanned["error"]["message"].as_str().unwrap().contains("OCR"),
        "{scanned}"
    );

    // Identical bytes are not ingested twice.
    let again = json_of(
        upload(
            &app,
            &owner.key,
            collection,
            "copy-of-leave.md",
            LEAVE.as_bytes(),
            &[],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (again["outcome"].as_str(), again["id"].as_i64()),
        (Some("duplicate"), leave["id"].as_i64())
    );

    // Passages keep their pages and sections.
    let chunks = json_of(
        app.call(
            Method::GET,
            &format!("/v1/chunks/{}", travel["id"]),
            &owner.key,
            None,
        )
        .await,
        200,
    )
    .await;
    let hotel = chunks["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|chunk| chunk["content"].as_str().unwrap().contains("150 euros"))
        .unwrap();
    assert_eq!(hotel["metadata"]["page_start"], 2);
    assert_eq!(hotel["metadata"]["document_name"], "travel.pdf");

    // Search, each method; the answer is at the top.
    let embeddings = civitas_test_support::test_models_dir()
        .is_some_and(|dir| dir.join(civitas_test_support::EMBEDDING_MODEL).exists());
    let mut methods = vec!["lexical"];
    if embeddings {
        methods.extend(["semantic", "hybrid"]);
    }
    for method in methods {
        let hits = search(&app, &owner.key, json!({"prompt": "How many days of annual leave can be carried over to next year?", "collections": [collection], "method": method, "k": 5})).await;
        assert!(!hits.is_empty(), "{method}");
        assert!(
            hits.iter()
                .take(3)
                .any(|hit| hit["chunk"]["content"].as_str().unwrap().contains("carried over")),
            "{method}: {hits:#?}"
        );
        assert_eq!(hits[0]["method"], method);
        assert_eq!(hits[0]["chunk"]["object"], "chunk");
    }
    let hits = search(
        &app,
        &owner.key,
        json!({"prompt": "SOC-REPORT mailbox phishing", "method": "lexical"}),
    )
    .await;
    assert_eq!(hits[0]["chunk"]["metadata"]["document_name"], "security.docx");

    // Someone else sees nothing of a private collection, not even that it
    // exists; shared with their group for reading, they search it but
    // cannot change it.
    let hidden = json_of(
        app.call(
            Method::GET,
            &format!("/v1/collections/{collection}"),
            &reader.key,
            None,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(hidden["error"]["code"], "not_found");
    json_of(
        app.call(
            Method::POST,
            "/v1/search",
            &reader.key,
            Some(&json!({"prompt": "leave", "collections": [collection]})),
        )
        .await,
        404,
    )
    .await;
    assert!(search(
        &app,
        &reader.key,
        json!({"prompt": "annual leave carried over", "method": "lexical"})
    )
    .await
    .is_empty());
    json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/collections/{collection}"),
            &owner.key,
            Some(&json!({"shares": [{"group_id": group, "access": "read"}]})),
        )
        .await,
        204,
    )
    .await;
    let hits = search(
        &app,
        &reader.key,
        json!({"prompt": "annual leave carried over", "method": "lexical"}),
    )
    .await;
    assert!(!hits.is_empty());
    let forbidden = json_of(
        app.call(
            Method::DELETE,
            &format!("/v1/documents/{}", leave["id"]),
            &reader.key,
            None,
        )
        .await,
        403,
    )
    .await;
    assert_eq!(forbidden["error"]["code"], "permission_denied");

    // Bad searches say what is wrong.
    let bad = json_of(
        app.call(
            Method::POST,
            "/v1/search",
            &owner.key,
            Some(&json!({"prompt": "x", "method": "fuzzy"})),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(bad["error"]["param"], "method");
    let bad = json_of(
        app.call(
            Method::POST,
            "/v1/search",
            &owner.key,
            Some(&json!({"prompt": "x", "k": 0})),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(bad["error"]["param"], "limit");

    // Deleting reaches the index at once.
    json_of(
        app.call(
            Method::DELETE,
            &format!("/v1/documents/{}", leave["id"]),
            &owner.key,
            None,
        )
        .await,
        204,
    )
    .await;
    json_of(
        app.call(
            Method::GET,
            &format!("/v1/documents/{}", leave["id"]),
            &owner.key,
            None,
        )
        .await,
        404,
    )
    .await;
    let hits = search(
        &app,
        &owner.key,
        json!({"prompt": "annual leave carried over", "method": "lexical", "k": 50}),
    )
    .await;
    assert!(
        hits.iter().all(|hit| hit["chunk"]["document_id"] != leave["id"]),
        "{hits:#?}"
    );
    json_of(
        app.call(
            Method::DELETE,
            &format!("/v1/collections/{collection}"),
            &owner.key,
            None,
        )
        .await,
        204,
    )
    .await;
    assert!(search(
        &app,
        &owner.key,
        json!({"prompt": "hotel ceiling", "method": "lexical"})
    )
    .await
    .is_empty());
    let listed = json_of(
        app.call(Method::GET, "/v1/collections", &owner.key, None).await,
        200,
    )
    .await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != collection));
    app.shutdown().await;
}

#[tokio::test]
async fn knowledge_round_trip_on_sqlite() {
    knowledge_end_to_end(false).await;
}

#[tokio::test]
async fn knowledge_round_trip_on_postgres() {
    if std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL is unset; PostgreSQL knowledge test skipped");
        return;
    }
    knowledge_end_to_end(true).await;
}

#[tokio::test]
async fn the_demo_handbook_is_loaded_on_first_start_and_answers_at_once() {
    let Some(app) = spawn_app_with(AppOptions {
        tweak: std::sync::Arc::new(|config| config.knowledge.demo_collection = true),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    // Loaded in the background at start: its ten files arrive one by one.
    let mut documents = Vec::new();
    for _ in 0..100 {
        let listed = json_of(app.call(Method::GET, "/v1/collections", key, None).await, 200).await;
        let demo = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "Agency handbook (demo)")
            .cloned();
        if let Some(demo) = demo {
            assert_eq!(demo["visibility"], "public");
            let path = format!("/v1/documents?collection={}", demo["id"]);
            let listed = json_of(app.call(Method::GET, &path, key, None).await, 200).await;
            documents = listed["data"].as_array().unwrap().clone();
            if documents.len() == 10 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(documents.len(), 10);
    for document in &documents {
        let settled = settled(&app, key, document["id"].as_i64().unwrap()).await;
        assert_eq!(settled["status"], "ready", "{settled}");
    }
    let hits = search(
        &app,
        key,
        json!({"prompt": "Which weekday is the anchor day for teams?", "method": "lexical"}),
    )
    .await;
    assert_eq!(
        hits[0]["chunk"]["metadata"]["document_name"], "en-telework.md",
        "{hits:#?}"
    );
    let hits = search(
        &app,
        key,
        json!({"prompt": "combien de jours de télétravail par semaine", "method": "lexical"}),
    )
    .await;
    assert_eq!(
        hits[0]["chunk"]["metadata"]["document_name"], "fr-teletravail.md",
        "{hits:#?}"
    );
    app.shutdown().await;
}

/// The events of a streamed answer, parsed.
fn sse_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn answers_cite_only_retrieved_sources_and_say_when_nothing_supports_them() {
    let Some(app) = spawn_app_with(AppOptions::default()).await else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    let collection = new_collection(&app, key, json!({"name": "HR"})).await;
    let uploaded = json_of(
        upload(&app, key, collection, "leave.md", LEAVE.as_bytes(), &[]).await,
        201,
    )
    .await;
    assert_eq!(
        settled(&app, key, uploaded["id"].as_i64().unwrap()).await["status"],
        "ready"
    );
    let question = "How many days of unused annual leave may be carried over?";
    let body = json!({
        "model": app.model,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 60,
        "temperature": 0,
        "civitas": {"collections": [collection], "k": 3, "method": "lexical"},
    });
    let answer = json_of(
        app.call(Method::POST, "/v1/chat/completions", key, Some(&body))
            .await,
        200,
    )
    .await;
    let sources = answer["sources"].as_array().unwrap();
    assert!(!sources.is_empty() && sources.len() <= 3, "{answer}");
    assert!(
        sources
            .iter()
            .any(|source| source["content"].as_str().unwrap().contains("carried over")),
        "{answer}"
    );
    for (n, source) in sources.iter().enumerate() {
        assert_eq!(source["index"], n + 1);
        assert_eq!(source["document_name"], "leave.md");
        assert_eq!(source["document_id"], uploaded["id"]);
    }
    assert_eq!(answer["grounding"]["supported"], true);
    // Whatever the model wrote, every citation left names a source.
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    for cited in answer["grounding"]["cited"].as_array().unwrap() {
        assert!(
            (1..=sources.len() as u64).contains(&cited.as_u64().unwrap()),
            "{answer}"
        );
    }
    for number in content
        .split('[')
        .skip(1)
        .filter_map(|part| part.split(']').next())
    {
        if let Ok(number) = number.trim().parse::<usize>() {
            assert!((1..=sources.len()).contains(&number), "{content}");
        }
    }
    // The model saw the sources: they are in the stored conversation.
    let conversations = json_of(app.call(Method::GET, "/v1/conversations", key, None).await, 200).await;
    let id = conversations["data"][0]["id"].as_str().unwrap().to_owned();
    let messages = json_of(
        app.call(
            Method::GET,
            &format!("/v1/conversations/{id}/messages"),
            key,
            None,
        )
        .await,
        200,
    )
    .await;
    let system = messages["data"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("[1] leave.md") && system.contains("cite"),
        "{system}"
    );

    // Streamed: the sources come first.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = app
        .call(Method::POST, "/v1/chat/completions", key, Some(&streamed))
        .await;
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(
        events[0]["sources"].as_array().unwrap().len(),
        sources.len(),
        "{:?}",
        events[0]
    );
    assert!(events
        .iter()
        .skip(1)
        .any(|event| event["choices"][0]["delta"]["content"].is_string()));

    // Nothing retrieved: said plainly, no model asked, no source invented.
    let mut nothing = body.clone();
    nothing["messages"] = json!([{"role": "user", "content": "zyxwv qwrtp"}]);
    let answer = json_of(
        app.call(Method::POST, "/v1/chat/completions", key, Some(&nothing))
            .await,
        200,
    )
    .await;
    assert_eq!(answer["sources"], json!([]));
    assert_eq!(answer["grounding"]["supported"], false);
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("cannot answer"));

    // Collections the caller may not read are not found; bad options say so.
    let mut foreign = body.clone();
    foreign["civitas"]["collections"] = json!([999_999]);
    let refused = json_of(
        app.call(Method::POST, "/v1/chat/completions", key, Some(&foreign))
            .await,
        404,
    )
    .await;
    assert_eq!(refused["error"]["param"], "collections");
    let mut bad = body.clone();
    bad["civitas"]["k"] = json!(0);
    let refused = json_of(
        app.call(Method::POST, "/v1/chat/completions", key, Some(&bad))
            .await,
        400,
    )
    .await;
    assert_eq!(refused["error"]["param"], "civitas.k");
    app.shutdown().await;
}

/// Two replicas on one PostgreSQL database, each with its own index: a
/// document ingested through one is found through the other within the
/// sync interval, once, and its deletion reaches the other index too.
#[tokio::test]
async fn replicas_index_what_the_other_ingested_and_forget_what_it_deleted() {
    if std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset; replica test skipped");
        return;
    }
    let Some(first) = spawn_app_with(AppOptions {
        postgres: true,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let Some(second) = spawn_app_with(AppOptions {
        postgres: true,
        database_url: first.database_url.clone(),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    let collection = new_collection(&first, key, json!({"name": "Shared"})).await;
    let uploaded = json_of(
        upload(&first, key, collection, "leave.md", LEAVE.as_bytes(), &[]).await,
        201,
    )
    .await;
    let id = uploaded["id"].as_i64().unwrap();
    assert_eq!(settled(&first, key, id).await["status"], "ready");
    // Ingested once, by whichever replica took the job.
    let chunks = json_of(
        second
            .call(Method::GET, &format!("/v1/chunks/{id}?limit=1000"), key, None)
            .await,
        200,
    )
    .await;
    let positions: Vec<i64> = chunks["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, (0..positions.len() as i64).collect::<Vec<_>>());
    let query = json!({"prompt": "unused annual leave carried over", "collections": [collection], "method": "lexical"});
    let mut found = false;
    for _ in 0..100 {
        for replica in [&first, &second] {
            found = !search(replica, key, query.clone()).await.is_empty();
            if !found {
                break;
            }
        }
        if found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "both replicas find the document within 10 s");
    json_of(
        first
            .call(Method::DELETE, &format!("/v1/documents/{id}"), key, None)
            .await,
        204,
    )
    .await;
    let mut gone = false;
    for _ in 0..100 {
        gone = search(&second, key, query.clone()).await.is_empty();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the other replica forgets the deleted document within 10 s");
    second.shutdown().await;
    first.shutdown().await;
}

/// The workspace asks a question of several collections at once; the
/// choice stays with the conversation and with an edited question; a
/// question none of them speaks of is answered plainly without a model;
/// documents past their agency's retention leave the store and the index.
#[tokio::test]
async fn the_workspace_asks_several_collections_and_retention_reaches_the_index() {
    let Some(app) = spawn_app_with(AppOptions {
        embeddings: false,
        tweak: std::sync::Arc::new(|config| config.models.max_output_tokens = 48),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    let mut collections = Vec::new();
    for (name, file, text) in [
        ("HR", "leave.md", LEAVE),
        (
            "IT",
            "passwords.md",
            "# Passwords\n\nA password is changed every 180 days and has at least 14 characters.\n",
        ),
    ] {
        let id = new_collection(&app, key, json!({"name": name, "visibility": "public"})).await;
        let uploaded = json_of(upload(&app, key, id, file, text.as_bytes(), &[]).await, 201).await;
        let document = uploaded["id"].as_i64().unwrap();
        assert_eq!(settled(&app, key, document).await["status"], "ready");
        collections.push((id, document));
    }
    let (hr, it) = (collections[0].0.to_string(), collections[1].0.to_string());
    let agency = app.default_agency().await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    app.new_person(
        &agency,
        "agent@example.gov",
        &["member"],
        &[&group],
        Some("Vélo-rouge-sous-la-pluie"),
    )
    .await;
    let session =
        civitas_test_support::browser::sign_in(&app, "agent@example.gov", "Vélo-rouge-sous-la-pluie").await;
    let created = session
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "unclassified"),
                ("collection", &hr),
                ("collection", &it),
                ("collection", "not-an-id"),
                (
                    "content",
                    "How many days of unused annual leave may be carried over?",
                ),
            ],
        )
        .await;
    assert_eq!(created.status(), 303, "{}", created.text().await.unwrap());
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = location
        .trim_start_matches("/c/")
        .split('#')
        .next()
        .unwrap()
        .to_owned();
    let checked = |page: &str, collection: &str| {
        page.contains(&format!(
            "id=\"collection-{collection}\" type=\"checkbox\" name=\"collection\" value=\"{collection}\" checked"
        ))
    };
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(checked(&page, &hr) && checked(&page, &it), "both stay chosen");
    assert!(page.contains("leave.md"), "the sources are listed");
    // Edited and sent again: asked of the same collections.
    let edited = session
        .post(
            &app,
            &format!("/c/{id}/edit"),
            &[("content", "How long must a password be?")],
        )
        .await;
    assert_eq!(edited.status(), 303);
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(checked(&page, &hr) && checked(&page, &it), "the edit keeps them");
    assert!(page.contains("passwords.md"), "{page}");
    // Nothing in the collections speaks of it: said so, no model asked.
    let replied = session
        .post(
            &app,
            &format!("/c/{id}/reply"),
            &[("collection", &hr), ("content", "zyxwv qwrtp")],
        )
        .await;
    assert_eq!(replied.status(), 303);
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(
        page.contains("None of the chosen collections holds a passage about this question"),
        "{page}"
    );
    assert!(checked(&page, &hr) && !checked(&page, &it));

    // Retention: documents last changed more than a day ago go, from the
    // store and from the search.
    let rule = json_of(
        app.call(
            Method::PUT,
            &format!("/api/admin/agencies/{agency}/retention"),
            key,
            Some(&json!({"record_type": "documents", "days": 1})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rule["record_type"], "documents");
    let report = civitas_server::protection::purge_as_of(
        app.store.as_ref(),
        civitas_store::now() + chrono::Duration::days(2),
    )
    .await
    .unwrap();
    assert_eq!(report.documents, 2);
    let gone = app
        .call(
            Method::GET,
            &format!("/v1/documents/{}", collections[0].1),
            key,
            None,
        )
        .await;
    assert_eq!(gone.status(), 404);
    let mut hits = Vec::new();
    for _ in 0..100 {
        hits = search(
            &app,
            key,
            json!({"prompt": "annual leave carried over", "method": "lexical"}),
        )
        .await;
        if hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hits.is_empty(), "{hits:?}");
    app.shutdown().await;
}

/// Search narrowed to documents, dates and metadata, inside the search.
#[tokio::test]
async fn search_is_narrowed_by_document_date_and_metadata() {
    let Some(app) = spawn_app_with(AppOptions {
        embeddings: false,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    let collection = new_collection(&app, key, json!({"name": "Rules"})).await;
    let mut ids = Vec::new();
    for (name, text, metadata) in [
        (
            "decree.md",
            "# Parking\n\nParking permits are renewed in March.\n",
            r#"{"source":"decree","year":2026}"#,
        ),
        (
            "memo.md",
            "# Parking\n\nParking permits for visitors are issued at the desk.\n",
            r#"{"source":"memo"}"#,
        ),
    ] {
        let uploaded = json_of(
            upload(
                &app,
                key,
                collection,
                name,
                text.as_bytes(),
                &[("metadata", metadata)],
            )
            .await,
            201,
        )
        .await;
        let id = uploaded["id"].as_i64().unwrap();
        assert_eq!(settled(&app, key, id).await["status"], "ready");
        ids.push(id);
    }
    let names = |hits: Vec<Value>| {
        let mut names: Vec<String> = hits
            .iter()
            .map(|hit| {
                hit["chunk"]["metadata"]["document_name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    };
    let base = json!({"prompt": "parking permits", "method": "lexical", "collections": [collection]});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    // Each narrowing is applied before ranking (the index reads the
    // document's own metadata, stored sealed).
    for attempt in 0..50 {
        if names(search(&app, key, base.clone()).await).len() == 2 {
            break;
        }
        assert!(attempt < 49, "both documents are searchable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        names(search(&app, key, with(json!({"metadata": {"source": "decree"}}))).await),
        ["decree.md"]
    );
    assert_eq!(
        names(search(&app, key, with(json!({"metadata": {"year": 2026}}))).await),
        ["decree.md"]
    );
    assert_eq!(
        names(search(&app, key, with(json!({"documents": [ids[1]]}))).await),
        ["memo.md"]
    );
    assert!(
        search(&app, key, with(json!({"created_after": "2999-01-01T00:00:00Z"})))
            .await
            .is_empty()
    );
    assert_eq!(
        names(search(&app, key, with(json!({"created_before": "2999-01-01T00:00:00Z"}))).await),
        ["decree.md", "memo.md"]
    );
    let refused = json_of(
        app.call(
            Method::POST,
            "/v1/search",
            key,
            Some(&with(json!({"metadata": {"source": {"x": 1}}}))),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(refused["error"]["param"], "metadata");
    let refused = json_of(
        app.call(
            Method::POST,
            "/v1/search",
            key,
            Some(&with(json!({"created_after": "last week"}))),
        )
        .await,
        400,
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("created_after"),
        "{refused}"
    );
    app.shutdown().await;
}

/// A reranker (a provider's `/rerank`, vLLM's and Cohere's shape) orders
/// the passages found; when it fails they keep their order.
#[tokio::test]
async fn a_configured_reranker_orders_the_passages_and_its_failure_changes_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let failing = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Value::Null));
    let router = {
        let (failing, seen) = (Arc::clone(&failing), Arc::clone(&seen));
        axum::Router::new().route(
            "/v1/rerank",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (failing, seen) = (Arc::clone(&failing), Arc::clone(&seen));
                async move {
                    *seen.lock().unwrap() = body.clone();
                    if failing.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
                    }
                    let results: Vec<Value> = body["documents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(index, text)| {
                            let visitors = text.as_str().unwrap().contains("visitors");
                            json!({"index": index, "relevance_score": if visitors { 0.9 } else { 0.1 }})
                        })
                        .collect();
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"results": results})),
                    )
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let Some(app) = spawn_app_with(AppOptions {
        embeddings: false,
        providers: vec![civitas_config::ProviderConfig {
            name: "reranker".to_owned(),
            base_url: format!("http://{address}/v1"),
            models: vec!["bge-reranker".to_owned()],
            allow_internal: true,
            ..civitas_config::ProviderConfig::default()
        }],
        tweak: Arc::new(|config| {
            config.knowledge.rerank_provider = "reranker".to_owned();
            config.knowledge.rerank_model = "bge-reranker".to_owned();
        }),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let key = civitas_test_support::TEST_KEY;
    let collection = new_collection(&app, key, json!({"name": "Rules"})).await;
    for (name, text) in [
        (
            "decree.md",
            "# Parking\n\nParking permits are renewed in March.\n",
        ),
        (
            "memo.md",
            "# Parking\n\nParking permits for visitors are issued at the desk.\n",
        ),
    ] {
        let uploaded = json_of(
            upload(&app, key, collection, name, text.as_bytes(), &[]).await,
            201,
        )
        .await;
        assert_eq!(
            settled(&app, key, uploaded["id"].as_i64().unwrap()).await["status"],
            "ready"
        );
    }
    let body = json!({"prompt": "parking permits renewed", "method": "lexical", "collections": [collection], "k": 1});
    let mut hits = Vec::new();
    for _ in 0..50 {
        hits = search(&app, key, body.clone()).await;
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // BM25 alone puts the decree first ("renewed"); the reranker prefers
    // the memo, and its relevance is the score. One passage is kept of
    // the candidates it was given.
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0]["chunk"]["metadata"]["document_name"], "memo.md",
        "{hits:?}"
    );
    assert!((hits[0]["score"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked["model"], "bge-reranker");
    assert_eq!(asked["query"], "parking permits renewed");
    assert_eq!(asked["documents"].as_array().unwrap().len(), 2);
    failing.store(true, Ordering::SeqCst);
    let hits = search(&app, key, body).await;
    assert_eq!(
        hits[0]["chunk"]["metadata"]["document_name"], "decree.md",
        "{hits:?}"
    );
    app.shutdown().await;
}
