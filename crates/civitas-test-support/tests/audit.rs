//! The audit log through the real server: sign-ins (accepted and
//! refused), administration changes, a refusal across agencies, a model
//! call, an export; each recorded with who, where and which request, never
//! with content; checkpoints signed and published; the whole log verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use civitas_audit::{verify, Record};
use civitas_store::AuditFilter;
use civitas_test_support::browser::sign_in;
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";
const SECRET_QUESTION: &str = "What is the budget line for the Operation Bluebird?";

fn options() -> AppOptions {
    AppOptions {
        embeddings: false,
        tweak: std::sync::Arc::new(|config| {
            // Answers of the tiny model stay short, so the suite stays fast.
            config.models.max_output_tokens = 96;
            config.audit.checkpoint_every_records = 5;
            config.audit.checkpoint_every_seconds = 1;
        }),
        ..AppOptions::default()
    }
}

async fn all_records(app: &TestApp) -> Vec<Record> {
    app.store.audit_records(1, 100_000).await.unwrap()
}

fn find<'a>(records: &'a [Record], action: &str) -> Vec<&'a Record> {
    records.iter().filter(|record| record.action == action).collect()
}

#[tokio::test]
async fn what_people_do_is_recorded_without_content_and_the_log_verifies() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("audited").await;
    let other = app.new_agency("elsewhere").await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    let member = app
        .new_person(
            &agency,
            "clerk@audited.example.gov",
            &["member"],
            &[&group],
            Some(PASSWORD),
        )
        .await;

    // A change of roles, recorded with the state before and what was asked.
    app.admin(
        Method::PUT,
        &format!("/api/admin/agencies/{agency}/people/{}/roles", member.id),
        Some(&json!({ "roles": ["member", "auditor"] })),
    )
    .await;

    // Refused and accepted sign-ins.
    let refused = app
        .client
        .post(app.url("/auth/login"))
        .header("user-agent", "AuditTest/1.0")
        .json(&json!({ "email": "clerk@audited.example.gov", "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let session = sign_in(&app, "clerk@audited.example.gov", PASSWORD).await;

    // A model call with a question that must never reach the log.
    let answer = app
        .call(
            Method::POST,
            "/v1/chat/completions",
            &member.key,
            Some(&json!({ "model": app.model, "messages": [{ "role": "user", "content": SECRET_QUESTION }], "max_tokens": 8 })),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let request_id = answer.headers()["x-request-id"].to_str().unwrap().to_owned();

    // A member reaching for another agency: refused, recorded.
    let reached = app
        .call(
            Method::GET,
            &format!("/api/admin/agencies/{other}/people"),
            &member.key,
            None,
        )
        .await;
    assert_eq!(reached.status(), 404);

    // An export from the workspace.
    let created = session
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "unclassified"),
                ("content", "Hello"),
            ],
        )
        .await;
    let conversation = created.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/c/")
        .split('#')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        session
            .get(&app, &format!("/c/{conversation}/export.json"))
            .await
            .status(),
        200
    );

    // The model call's record is written off the request path: wait for it.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = all_records(&app).await;
        if records
            .iter()
            .any(|record| record.request_id.as_deref() == Some(request_id.as_str()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let failed = find(&records, "auth.sign_in_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].actor_id, "email:clerk@audited.example.gov");
    assert_eq!(failed[0].user_agent.as_deref(), Some("AuditTest/1.0"));
    assert_eq!(failed[0].details["reason"], "invalid_credentials");
    assert!(failed[0]
        .source_address
        .as_deref()
        .is_some_and(|address| address.starts_with("127.")));
    let signed_in = find(&records, "auth.sign_in");
    assert!(signed_in.iter().any(|record| record.actor_id == member.id));

    let changes = find(&records, "admin.change");
    assert!(
        changes.iter().any(|record| record.target.as_deref()
            == Some(&format!("/api/admin/agencies/{agency}/people")[..])
            && record.details["method"] == "POST"),
        "{changes:?}"
    );
    assert!(!find(&records, "key.created").is_empty());
    let roles_changed = changes
        .iter()
        .find(|record| {
            record.target.as_deref()
                == Some(&format!("/api/admin/agencies/{agency}/people/{}/roles", member.id)[..])
        })
        .expect("the change of roles is recorded");
    assert_eq!(roles_changed.details["before"]["roles"][0]["role"], "member");
    assert_eq!(roles_changed.details["before"]["groups"], json!([group]));
    assert_eq!(
        roles_changed.details["after"]["roles"],
        json!(["member", "auditor"])
    );
    // The person's creation is recorded with what was asked, the password
    // masked.
    let created = changes
        .iter()
        .find(|record| record.details["after"]["email"] == "clerk@audited.example.gov")
        .expect("the creation is recorded with its fields");
    assert_eq!(created.details["after"]["password"], "***");

    let denied = find(&records, "policy.denied");
    assert!(
        denied.iter().any(|record| record.actor_id == member.id
            && record.target.as_deref() == Some(&format!("agency:{other}")[..])),
        "{denied:?}"
    );

    let of_request = |action: &str| {
        records.iter().find(|record| {
            record.request_id.as_deref() == Some(request_id.as_str()) && record.action == action
        })
    };
    // The member's key was used for the first time by that call.
    let first_use = of_request("key.first_used").expect("the key's first use is recorded");
    assert_eq!(
        first_use.target.as_deref(),
        Some(&format!("key:{}", member.key_id)[..])
    );
    let call = of_request("model.call").expect("the model call is recorded");
    assert_eq!(call.action, "model.call");
    assert_eq!(call.actor_id, member.id);
    assert_eq!(call.agency_id.as_deref(), Some(agency.as_str()));
    assert_eq!(call.target.as_deref(), Some(&format!("model:{}", app.model)[..]));
    assert!(call.details["completion_tokens"].as_i64().unwrap() > 0);
    assert_eq!(call.details["weights_sha256"].as_str().unwrap().len(), 64);

    let exports = find(&records, "data.export");
    assert!(exports
        .iter()
        .any(|record| record.target.as_deref() == Some(&format!("conversation:{conversation}")[..])));

    // Content never reaches the log.
    for record in &records {
        let encoded = String::from_utf8_lossy(&record.canonical()).into_owned();
        assert!(!encoded.contains("Operation Bluebird"), "content in {record:?}");
        assert!(!encoded.contains(PASSWORD), "a password in {record:?}");
        assert!(!encoded.contains(&member.key), "a key in {record:?}");
    }

    // A checkpoint is signed and published; the whole log verifies with it.
    // (Up to 30 s: on a loaded machine the signing task can lag.)
    let mut published = Value::Null;
    for _ in 0..300 {
        let response = app
            .client
            .get(app.url("/v1/audit/checkpoints/latest"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            published = response.json().await.unwrap();
            if published["tree_size"].as_u64().unwrap() >= records.len() as u64 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        published["tree_size"].as_u64().unwrap() >= records.len() as u64,
        "{published}"
    );
    let key = civitas_audit::PublicKey {
        key_id: published["key_id"].as_str().unwrap().to_owned(),
        public_key: published["public_key"].as_str().unwrap().to_owned(),
    };
    let checkpoints = app.store.checkpoints().await.unwrap();
    let latest = checkpoints.last().unwrap();
    assert_eq!(latest.signature, published["signature"].as_str().unwrap());
    latest.verify(std::slice::from_ref(&key)).unwrap();
    let everything = all_records(&app).await;
    assert!(!find(&everything, "audit.checkpoint").is_empty());
    let report = verify(everything, &checkpoints, &[key]);
    assert!(report.is_intact(), "{:?}", report.problems);

    // The answer's provenance points at its audit record, and signs.
    let messages = app.store.list_messages(&conversation).await.unwrap();
    let answer = messages
        .iter()
        .rev()
        .find(|message| message.role == "assistant")
        .unwrap();
    let provenance: Value = session
        .get(&app, &format!("/v1/messages/{}/provenance", answer.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(provenance["model"], app.model.as_str());
    assert_eq!(provenance["provider"], "civitas");
    assert_eq!(provenance["weights_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(provenance["classification"], "unclassified");
    assert!(provenance["usage"]["completion_tokens"].as_i64().unwrap() > 0);
    assert_eq!(provenance["generation"]["parameters"]["temperature"], "1");
    assert_eq!(provenance["data_protection"]["decision"], "allow");
    assert_eq!(provenance["data_protection"]["level"], "unclassified");
    assert!(
        provenance["generation"]["parameters"]["max_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(provenance["usage"]["energy_microwatt_hours"].as_i64().unwrap() > 0);
    assert!(provenance["usage"]["emissions_micrograms_co2e"].as_i64().unwrap() > 0);
    let model_calls = app
        .store
        .search_audit(
            &AuditFilter {
                request_id: provenance["request_id"].as_str().map(str::to_owned),
                ..AuditFilter::default()
            },
            5,
        )
        .await
        .unwrap();
    assert_eq!(provenance["audit"]["seq"], model_calls[0].seq);
    let dossier: Value = session
        .get(
            &app,
            &format!("/v1/messages/{}/provenance?format=dossier", answer.id),
        )
        .await
        .json()
        .await
        .unwrap();
    let signer = civitas_audit::PublicKey {
        key_id: dossier["signature"]["key_id"].as_str().unwrap().to_owned(),
        public_key: dossier["signature"]["public_key"].as_str().unwrap().to_owned(),
    };
    let signed = civitas_audit::record::canonical_json(&dossier["document"]);
    assert!(signer.verifies(signed.as_bytes(), dossier["signature"]["value"].as_str().unwrap()));
    let mut altered = dossier["document"].clone();
    altered["provenance"]["model"] = json!("another-model");
    let altered = civitas_audit::record::canonical_json(&altered);
    assert!(!signer.verifies(
        altered.as_bytes(),
        dossier["signature"]["value"].as_str().unwrap()
    ));
    // Someone else's answer answers as missing.
    let stranger = app
        .new_person(&agency, "other@audited.example.gov", &["member"], &[], None)
        .await;
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/v1/messages/{}/provenance", answer.id),
            &stranger.key,
            None
        )
        .await
        .status(),
        404
    );

    // Prometheus shows the append latency and the checkpoint's time.
    let metrics = app
        .call(Method::GET, "/metrics", civitas_test_support::TEST_KEY, None)
        .await
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(value("civitas_audit_append_seconds_count") > 0.0, "{metrics}");
    assert!(
        value("civitas_audit_last_checkpoint_unix_seconds") > 1.7e9,
        "{metrics}"
    );

    // Search by actor and action, as an auditor would.
    let filter = AuditFilter {
        actor_id: Some(member.id.clone()),
        action: Some("model.call".to_owned()),
        ..AuditFilter::default()
    };
    // The API call and the workspace's answer.
    assert_eq!(app.store.search_audit(&filter, 10).await.unwrap().len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn auditors_search_page_and_export_their_agency_only() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        ..options()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("inspected").await;
    let other = app.new_agency("elsewhere").await;
    let auditor = app
        .new_person(
            &agency,
            "auditor@inspected.example.gov",
            &["auditor"],
            &[],
            Some(PASSWORD),
        )
        .await;
    let member = app
        .new_person(
            &agency,
            "clerk@inspected.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    let outsider = app
        .new_person(
            &other,
            "auditor@elsewhere.example.gov",
            &["auditor"],
            &[],
            Some(PASSWORD),
        )
        .await;
    for _ in 0..3 {
        let refused = app
            .client
            .post(app.url("/auth/login"))
            .json(&json!({ "email": "clerk@inspected.example.gov", "password": "wrong password again" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    }
    // Records made in the agency by an administrator's changes and by the
    // member reaching elsewhere.
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/admin/agencies/{other}/groups"),
            &member.key,
            None
        )
        .await
        .status(),
        404
    );
    let base = format!("/api/admin/agencies/{agency}/audit");
    let search = |query: &str| {
        let path = format!("{base}/records?{query}");
        let (app, key) = (&app, auditor.key.clone());
        async move { app.call(Method::GET, &path, &key, None).await }
    };
    let page: Value = search("action=policy.denied").await.json().await.unwrap();
    let denied = page["data"].as_array().unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["actor_id"], member.id.as_str());
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["hash"].as_str().unwrap().len(), 64);

    // Pages go back in time.
    let first: Value = search("limit=2").await.json().await.unwrap();
    let next = first["next_before_seq"].as_u64().unwrap();
    let second: Value = search(&format!("limit=2&before_seq={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(second["data"][0]["seq"].as_u64().unwrap() < next);
    let bad = search("outcome=maybe").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["param"], "outcome");
    assert_eq!(search("action=nope").await.status(), 400);
    assert_eq!(search("limit=0").await.status(), 400);

    // Only auditors of this agency.
    assert_eq!(
        app.call(Method::GET, &format!("{base}/records"), &member.key, None)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.call(Method::GET, &format!("{base}/records"), &outsider.key, None)
            .await
            .status(),
        404
    );
    let theirs: Value = app
        .call(
            Method::GET,
            &format!("/api/admin/agencies/{other}/audit/records"),
            &outsider.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|record| record["agency_id"] == other.as_str()));

    // Exports, themselves recorded.
    let jsonl = app
        .call(
            Method::GET,
            &format!("{base}/export?format=jsonl"),
            &auditor.key,
            None,
        )
        .await;
    assert_eq!(jsonl.status(), 200);
    assert!(jsonl.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let text = jsonl.text().await.unwrap();
    let records: Vec<Record> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!records.is_empty());
    assert!(records.iter().all(|record| record.computed_hash() == record.hash));
    let ocsf = app
        .call(
            Method::GET,
            &format!("{base}/export?format=ocsf&action=auth.sign_in_failed"),
            &auditor.key,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = ocsf
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(events
        .iter()
        .all(|event| event["class_uid"] == 3002 && event["status_id"] == 2));
    assert_eq!(
        app.call(
            Method::GET,
            &format!("{base}/export?format=csv"),
            &auditor.key,
            None
        )
        .await
        .status(),
        400
    );
    let exports: Value = search("action=data.export").await.json().await.unwrap();
    assert!(exports["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|record| record["target"] == format!("audit:{agency}")
            && record["actor_id"] == auditor.id.as_str()));

    let status: Value = app
        .call(Method::GET, &format!("{base}/status"), &auditor.key, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(status["records"].as_u64().unwrap() > 5);

    // The console page.
    let session = sign_in(&app, "auditor@inspected.example.gov", PASSWORD).await;
    let page = session.get(&app, "/audit?outcome=denied").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("policy.denied") && html.contains(&member.id),
        "{html}"
    );
    assert!(html.contains("href=\"/audit\""), "auditors see the link");
    let bad_date = session.get(&app, "/audit?since=yesterday").await;
    assert_eq!(bad_date.status(), 422);
    let clerk = sign_in(&app, "clerk@inspected.example.gov", PASSWORD).await;
    assert_eq!(clerk.get(&app, "/audit").await.status(), 403);
    assert!(!clerk
        .get(&app, "/")
        .await
        .text()
        .await
        .unwrap()
        .contains("href=\"/audit\""));
    app.shutdown().await;
}
