//! Through the real server: clearances in the model-call decision, the
//! decision recorded with every model call, retention and its purge,
//! legal holds, access-request export, erasure, and data keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_store::{AuditFilter, NewConversation, NewMessage};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const PRIVATE: &str = "Mme Aurélie Vasseur, 12 rue des Lilas, conteste la décision 2026-044.";

fn options() -> AppOptions {
    AppOptions {
        embeddings: false,
        tweak: std::sync::Arc::new(|config| {
            config.models.max_output_tokens = 8;
            // People without a clearance of their own work up to the lowest
            // level only.
            config.data_protection.default_clearance = "unclassified".to_owned();
        }),
        ..AppOptions::default()
    }
}

async fn records(app: &TestApp, action: &str) -> Vec<civitas_audit::Record> {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        ..AuditFilter::default()
    };
    app.store.search_audit(&filter, 1000).await.unwrap()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn conversation_of(app: &TestApp, owner: &str) -> civitas_store::Conversation {
    app.store
        .create_conversation(
            NewConversation {
                owner: owner.to_owned(),
                title: Some("Recours gracieux".to_owned()),
                model: app.model.clone(),
                classification: "unclassified".to_owned(),
            },
            vec![NewMessage {
                role: "user".to_owned(),
                content: PRIVATE.to_owned(),
                metadata: None,
            }],
        )
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn clearance_decides_and_every_model_call_records_its_decision() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("cleared").await;
    let group = app.new_group(&agency, "caseworkers", &[&app.model]).await;
    let member = app
        .new_person(
            &agency,
            "member@cleared.example.gov",
            &["member"],
            &[&group],
            None,
        )
        .await;
    let admin = app
        .new_person(&agency, "admin@cleared.example.gov", &["agency-admin"], &[], None)
        .await;
    let chat = |text: &str| json!({ "model": app.model, "messages": [{"role": "user", "content": text}], "max_tokens": 4 });

    // Unmarked text at the lowest level: allowed, and the decision is kept
    // with the model call.
    let (status, _) = json_of(
        app.call(
            Method::POST,
            "/v1/chat/completions",
            &member.key,
            Some(&chat("Bonjour")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    // A CUI marking puts the text above the member's clearance.
    let (status, body) = json_of(
        app.call(
            Method::POST,
            "/v1/chat/completions",
            &member.key,
            Some(&chat("CUI//SP-PRVCY\nSummarise the case file.")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "clearance_insufficient");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("your clearance is UNCLASSIFIED"), "{message}");
    assert!(body["error"]["request_id"].is_string());
    let denied = records(&app, "policy.denied").await;
    let refusal = denied
        .iter()
        .find(|record| record.actor_id == member.id && record.details["reason"] == "clearance")
        .expect("a clearance refusal");
    assert_eq!(refusal.details["level"], "cui");
    assert_eq!(refusal.details["clearance"], "unclassified");
    assert!(!refusal.details.to_string().contains("Summarise"));

    // Bad clearances are refused; a real one is kept and applies at once.
    let path = format!("/api/admin/agencies/{agency}/people/{}/clearance", member.id);
    let (status, body) = json_of(
        app.call(
            Method::PUT,
            &path,
            &admin.key,
            Some(&json!({"clearance": "cosmic"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("clearance"))
    );
    let (status, _) = json_of(
        app.call(
            Method::PUT,
            &path,
            &member.key,
            Some(&json!({"clearance": "cui"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let (_, me) = json_of(app.call(Method::GET, "/v1/me", &member.key, None).await).await;
    assert_eq!(me["clearance"], "unclassified");
    let (status, body) = json_of(
        app.call(Method::PUT, &path, &admin.key, Some(&json!({"clearance": "cui"})))
            .await,
    )
    .await;
    assert_eq!((status, body["clearance"].as_str()), (200, Some("cui")));
    let (_, me) = json_of(app.call(Method::GET, "/v1/me", &member.key, None).await).await;
    assert_eq!(me["clearance"], "cui");
    let (status, body) = json_of(
        app.call(
            Method::POST,
            "/v1/chat/completions",
            &member.key,
            Some(&chat("CUI//SP-PRVCY\nSummarise the case file.")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Every model call carries its decision in the audit log.
    // (written off the request path: wait for them)
    let mut calls = Vec::new();
    for _ in 0..100 {
        calls = records(&app, "model.call")
            .await
            .into_iter()
            .filter(|record| {
                record.actor_id == member.id && record.outcome == civitas_audit::Outcome::Success
            })
            .collect();
        if calls.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(calls.len(), 2);
    let levels: Vec<&str> = calls
        .iter()
        .map(|record| record.details["data_protection"]["level"].as_str().unwrap())
        .collect();
    assert!(
        levels.contains(&"unclassified") && levels.contains(&"cui"),
        "{levels:?}"
    );
    for call in &calls {
        let decision = &call.details["data_protection"];
        assert_eq!(decision["decision"], "allow");
        assert_eq!(decision["model"], "local");
        assert_eq!(decision["jurisdiction"], "local");
    }
}

#[tokio::test]
async fn retention_holds_export_erasure_and_data_keys() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        ..options()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("records").await;
    let other = app.new_agency("other-records").await;
    let admin = app
        .new_person(&agency, "admin@records.example.gov", &["agency-admin"], &[], None)
        .await;
    let auditor = app
        .new_person(&agency, "auditor@records.example.gov", &["auditor"], &[], None)
        .await;
    let held = app
        .new_person(&agency, "held@records.example.gov", &["member"], &[], None)
        .await;
    let leaver = app
        .new_person(&agency, "leaver@records.example.gov", &["member"], &[], None)
        .await;
    let outsider = app
        .new_person(&other, "someone@other.example.gov", &["member"], &[], None)
        .await;
    let held_conversation = conversation_of(&app, &held.id).await;
    let leaver_conversation = conversation_of(&app, &leaver.id).await;
    let base = format!("/api/admin/agencies/{agency}");

    // Retention: bad rules are refused with their parameter named.
    for (body, param) in [
        (json!({"record_type": "everything", "days": 30}), "record_type"),
        (json!({"record_type": "conversations", "days": 0}), "days"),
    ] {
        let (status, answer) = json_of(
            app.call(Method::PUT, &format!("{base}/retention"), &admin.key, Some(&body))
                .await,
        )
        .await;
        assert_eq!(
            (status, answer["error"]["param"].as_str()),
            (400, Some(param)),
            "{answer}"
        );
    }
    let (status, rule) = json_of(
        app.call(
            Method::PUT,
            &format!("{base}/retention"),
            &admin.key,
            Some(&json!({"record_type": "conversations", "days": 30})),
        )
        .await,
    )
    .await;
    assert_eq!((status, rule["days"].as_i64()), (200, Some(30)));
    let (status, _) = json_of(
        app.call(
            Method::PUT,
            &format!("{base}/retention"),
            &auditor.key,
            Some(&json!({"record_type": "usage", "days": 30})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);

    // A legal hold (an auditor may place one), checked input first.
    let hold_path = format!("{base}/legal-holds");
    let hold =
        |person: &str, reason: &str| json!({"person_id": person, "matter": "CAA-2026-17", "reason": reason});
    let (status, _) = json_of(
        app.call(
            Method::POST,
            &hold_path,
            &auditor.key,
            Some(&hold(&held.id, "short")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = json_of(
        app.call(
            Method::POST,
            &hold_path,
            &auditor.key,
            Some(&hold(&outsider.id, "Litigation before the administrative court")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, placed) = json_of(
        app.call(
            Method::POST,
            &hold_path,
            &auditor.key,
            Some(&hold(&held.id, "Litigation before the administrative court")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{placed}");

    // The purge, as of 31 days from now: the held person's conversation
    // stays, the other goes, and the purge says which.
    let later = civitas_store::now() + chrono::Duration::days(31);
    let report = civitas_server::protection::purge_as_of(app.store.as_ref(), later)
        .await
        .unwrap();
    assert_eq!(report.conversations, 1);
    assert!(app
        .store
        .get_conversation(&held_conversation.id)
        .await
        .unwrap()
        .is_some());
    assert!(app
        .store
        .get_conversation(&leaver_conversation.id)
        .await
        .unwrap()
        .is_none());
    let purged = records(&app, "data.purged").await;
    assert_eq!(purged.len(), 1);
    assert_eq!(
        purged[0].details["conversations"],
        json!([leaver_conversation.id])
    );
    assert_eq!(purged[0].agency_id.as_deref(), Some(agency.as_str()));

    // Erasure is refused while the hold applies.
    let erase = |person: &str| format!("{base}/people/{person}/erasure");
    let (status, body) = json_of(
        app.call(
            Method::POST,
            &erase(&held.id),
            &admin.key,
            Some(&json!({"reference": "DPO-2026-9", "account": true})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("legal_hold_active")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("CAA-2026-17"));

    // An access request: everything about the person, recorded first.
    let (status, export) = json_of(
        app.call(
            Method::GET,
            &format!("{base}/people/{}/export", held.id),
            &admin.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(export["object"], "person_export");
    assert_eq!(export["person"]["id"], held.id.as_str());
    assert_eq!(export["conversations"][0]["messages"][0]["content"], PRIVATE);
    assert_eq!(export["legal_holds"][0]["matter"], "CAA-2026-17");
    // What was done to them is there too, whoever did it: the refused
    // erasure above, made by the administrator.
    let about_them: Vec<&str> = export["audit_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["actor_id"] != held.id.as_str())
        .map(|record| record["action"].as_str().unwrap())
        .collect();
    assert!(about_them.contains(&"data.erased"), "{about_them:?}");
    let (status, _) = json_of(
        app.call(
            Method::GET,
            &format!("{base}/people/{}/export", held.id),
            &auditor.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let exports = records(&app, "data.export").await;
    assert!(exports.iter().any(
        |record| record.target.as_deref() == Some(&format!("person:{}", held.id))
            && record.details["kind"] == "access_request"
    ));
    assert!(!exports
        .iter()
        .any(|record| record.details.to_string().contains("Vasseur")));

    // Released, the erasure goes through: content gone, account closed,
    // its key refused.
    let (status, _) = json_of(
        app.call(
            Method::POST,
            &format!("{hold_path}/{}/release", placed["id"].as_str().unwrap()),
            &auditor.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, report) = json_of(
        app.call(
            Method::POST,
            &erase(&held.id),
            &admin.key,
            Some(&json!({"reference": "DPO-2026-9", "account": true})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["conversations"].as_u64(), report["account"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(app
        .store
        .get_conversation(&held_conversation.id)
        .await
        .unwrap()
        .is_none());
    let (status, _) = json_of(app.call(Method::GET, "/v1/models", &held.key, None).await).await;
    assert_eq!(status, 401);
    let succeeded = |records: Vec<civitas_audit::Record>| {
        records
            .into_iter()
            .filter(|record| record.outcome == civitas_audit::Outcome::Success)
            .collect::<Vec<_>>()
    };
    let erased = records(&app, "data.erased").await;
    assert_eq!(erased.len(), 2, "the refused attempt and the erasure");
    let done = succeeded(erased);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].details["removed"]["conversations"], 1);
    assert_eq!(done[0].details["after"]["reference"], "DPO-2026-9");
    assert_eq!(
        succeeded(records(&app, "data.legal_hold").await).len(),
        2,
        "placed and released"
    );

    // Data keys: listed per agency, rotated on request, recorded.
    let (status, keys) = json_of(
        app.call(Method::GET, &format!("{base}/data-keys"), &admin.key, None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let first = keys["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|key| key["agency_id"] == agency.as_str()));
    let (status, rotated) = json_of(
        app.call(
            Method::POST,
            &format!("{base}/data-keys/rotate"),
            &admin.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_ne!(rotated["id"].as_str().unwrap(), first);
    let (_, keys) = json_of(
        app.call(Method::GET, &format!("{base}/data-keys"), &admin.key, None)
            .await,
    )
    .await;
    let state_of = |id: &str| {
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|key| key["id"] == id)
            .map(|key| key["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&first).as_deref(), Some("previous"));
    assert_eq!(succeeded(records(&app, "data.key").await).len(), 1);
}

#[tokio::test]
async fn the_pre_send_preview_shows_what_was_found_and_what_will_be_done() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";
    let agency = app.new_agency("preview").await;
    let group = app.new_group(&agency, "caseworkers", &[&app.model]).await;
    let member = app
        .new_person(
            &agency,
            "member@preview.example.gov",
            &["member"],
            &[&group],
            Some(PASSWORD),
        )
        .await;
    let session = civitas_test_support::browser::sign_in(&app, "member@preview.example.gov", PASSWORD).await;
    let preview = |fields: Vec<(&'static str, String)>| {
        let session = session.clone();
        let app = &app;
        async move {
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            json_of(session.post(app, "/preview", &fields).await).await
        }
    };
    let text = "Please write to Jeanne Martin, SSN 536-22-1234, about her file.";
    let (status, answer) = preview(vec![
        ("content", text.to_owned()),
        ("model", app.model.clone()),
        ("classification", "unclassified".to_owned()),
    ])
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "local");
    assert_eq!(answer["allowed"], true);
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("Nothing leaves the agency"));
    let segments = answer["segments"].as_array().unwrap();
    let whole: String = segments
        .iter()
        .map(|segment| segment["text"].as_str().unwrap())
        .collect();
    assert_eq!(whole, text, "the pieces make the message again");
    let ssn = segments
        .iter()
        .find(|segment| segment["entity"] == "US_SSN")
        .expect("the SSN is found");
    assert_eq!(ssn["text"], "536-22-1234");
    assert_eq!(ssn["label"], "US Social Security number");
    assert!(answer["detected"]
        .as_array()
        .unwrap()
        .iter()
        .any(|found| found["entity"] == "PERSON"));

    // A marking above the person's clearance: refused, and said why; the
    // only level offered is the one they are cleared for.
    let (status, answer) = preview(vec![
        ("content", "CUI//SP-PRVCY\nCase notes.".to_owned()),
        ("model", app.model.clone()),
        ("classification", "unclassified".to_owned()),
    ])
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (answer["action"].as_str(), answer["allowed"].as_bool()),
        (Some("deny"), Some(false))
    );
    assert_eq!(answer["level"]["id"], "cui");
    assert_eq!(answer["level"]["raised"], true);
    assert!(
        answer["message"].as_str().unwrap().contains("your clearance is"),
        "{answer}"
    );
    assert_eq!(answer["levels"].as_array().unwrap().len(), 1);

    // Bad input gets a clear error; nothing is stored or recorded.
    let (status, answer) = preview(vec![
        ("content", "Hello".to_owned()),
        ("model", app.model.clone()),
        ("classification", "cosmic".to_owned()),
    ])
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, _) = preview(vec![
        ("content", "Hello".to_owned()),
        ("model", "no-such-model".to_owned()),
        ("classification", "unclassified".to_owned()),
    ])
    .await;
    assert_eq!(status, 403);
    let (status, _) = preview(vec![
        ("content", "Hello".to_owned()),
        ("conversation", "not-mine".to_owned()),
    ])
    .await;
    assert_eq!(status, 404);
    let forged = civitas_test_support::browser::client()
        .post(app.url("/preview"))
        .header("cookie", &session.cookie)
        .form(&[("csrf_token", "forged"), ("content", "Hello")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(app
        .store
        .list_conversations(&member.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(records(&app, "policy.denied").await.is_empty());

    // Cleared for CUI, the person raises a conversation's level when
    // replying; a lower level picked later does not lower it.
    app.store.set_clearance(&member.id, Some("cui")).await.unwrap();
    app.store
        .create_legal_hold(civitas_store::NewLegalHold {
            agency_id: agency.clone(),
            person_id: member.id.clone(),
            matter: "CAA-2026-17".to_owned(),
            reason: "Litigation before the administrative court".to_owned(),
            created_by: "test".to_owned(),
        })
        .await
        .unwrap();
    let settings = session.get(&app, "/settings").await.text().await.unwrap();
    assert!(
        settings.contains("You may work with information up to CUI"),
        "{settings}"
    );
    assert!(settings.contains("A legal hold applies to your conversations (CAA-2026-17)"));
    let conversation = conversation_of(&app, &member.id).await;
    let reply = session
        .post(
            &app,
            &format!("/c/{}/reply", conversation.id),
            &[("content", "And the next step?"), ("classification", "cui")],
        )
        .await;
    assert!(reply.status().is_redirection(), "{}", reply.status());
    let raised = app
        .store
        .get_conversation(&conversation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raised.classification, "cui");
    let (status, answer) = preview(vec![
        ("content", "Thanks".to_owned()),
        ("conversation", conversation.id.clone()),
        ("classification", "unclassified".to_owned()),
    ])
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["level"]["id"], "cui");
    assert_eq!(answer["levels"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn markings_a_model_wrote_in_a_stored_answer_do_not_lock_the_conversation() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";
    let agency = app.new_agency("echo").await;
    let group = app.new_group(&agency, "caseworkers", &[&app.model]).await;
    let member = app
        .new_person(
            &agency,
            "member@echo.example.gov",
            &["member"],
            &[&group],
            Some(PASSWORD),
        )
        .await;
    // A stored conversation whose answer (the model's) has capitals that
    // read as a marking above every level.
    let (conversation, _) = app
        .store
        .create_conversation(
            NewConversation {
                owner: member.id.clone(),
                title: Some("Libraries".to_owned()),
                model: app.model.clone(),
                classification: "unclassified".to_owned(),
            },
            vec![
                NewMessage {
                    role: "user".to_owned(),
                    content: "Write about libraries.".to_owned(),
                    metadata: None,
                },
                NewMessage {
                    role: "assistant".to_owned(),
                    content: "THE SECRET OF LIBRARIES: TOP SECRET readers.".to_owned(),
                    metadata: None,
                },
            ],
        )
        .await
        .unwrap();
    let session = civitas_test_support::browser::sign_in(&app, "member@echo.example.gov", PASSWORD).await;
    let reply = session
        .post(
            &app,
            &format!("/c/{}/reply", conversation.id),
            &[("content", "Go on.")],
        )
        .await;
    assert!(reply.status().is_redirection(), "{}", reply.status());
    let stored = app.store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(stored.len(), 4, "answered");
    assert_eq!(
        app.store
            .get_conversation(&conversation.id)
            .await
            .unwrap()
            .unwrap()
            .classification,
        "unclassified"
    );
    // Through the API every message is the client's: the same text in an
    // "assistant" message is a marking like any other.
    let (status, body) = json_of(
        app.call(
            Method::POST,
            "/v1/chat/completions",
            &member.key,
            Some(&json!({
                "model": app.model,
                "max_tokens": 4,
                "messages": [
                    {"role": "user", "content": "Write about libraries."},
                    {"role": "assistant", "content": "TOP SECRET//NOFORN notes"},
                    {"role": "user", "content": "Go on."}
                ]
            })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("classification_not_allowed"))
    );
}
