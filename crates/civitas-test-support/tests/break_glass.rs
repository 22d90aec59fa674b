//! Through the real server: break-glass access to someone's conversations
//! (justification, second approver, only the one who asked reads, every
//! step recorded, the person sees it), a key's first use and a limit's
//! refusals in the audit log, and usage filtered and broken down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_store::{AuditFilter, NewConversation, NewMessage};
use civitas_test_support::browser::sign_in;
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";
const PRIVATE: &str = "My appeal against the housing decision, case 44-B";
const WHY: &str = "Public records request PRR-2026-118: the requester asks for the exchanges on case 44-B.";

fn options() -> AppOptions {
    AppOptions {
        embeddings: false,
        tweak: std::sync::Arc::new(|config| {
            config.models.max_output_tokens = 96;
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

/// A conversation of `owner` holding [`PRIVATE`].
async fn private_conversation(app: &TestApp, owner: &str) -> civitas_store::Conversation {
    app.store
        .create_conversation(
            NewConversation {
                owner: owner.to_owned(),
                title: Some("Housing appeal".to_owned()),
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

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn break_glass_needs_a_reason_a_second_person_and_is_shown_to_the_person() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("glass").await;
    let other = app.new_agency("elsewhere").await;
    let member = app
        .new_person(
            &agency,
            "member@glass.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    let admin = app
        .new_person(&agency, "admin@glass.example.gov", &["agency-admin"], &[], None)
        .await;
    let second_admin = app
        .new_person(&agency, "admin2@glass.example.gov", &["agency-admin"], &[], None)
        .await;
    let auditor = app
        .new_person(&agency, "auditor@glass.example.gov", &["auditor"], &[], None)
        .await;
    let outsider = app
        .new_person(&other, "someone@elsewhere.example.gov", &["member"], &[], None)
        .await;
    let conversation = private_conversation(&app, &member.id).await;
    let base = format!("/api/admin/agencies/{agency}/break-glass");

    // Without break-glass, an administrator cannot read it.
    let direct = app
        .call(
            Method::GET,
            &format!("/v1/conversations/{}/messages", conversation.id),
            &admin.key,
            None,
        )
        .await;
    assert_eq!(direct.status(), 404);

    // Bad requests: a reason too short, oneself, someone of another agency,
    // a conversation that is not theirs, a duration out of range, a member.
    let ask = |person: &str, justification: &str, extra: Value| {
        let mut body = json!({ "person_id": person, "justification": justification });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    for (key, body, status, code) in [
        (
            &admin.key,
            ask(&member.id, "because", json!({})),
            400,
            "invalid_parameter",
        ),
        (
            &admin.key,
            ask(&admin.id, WHY, json!({})),
            400,
            "invalid_parameter",
        ),
        (&admin.key, ask(&outsider.id, WHY, json!({})), 404, "not_found"),
        (
            &admin.key,
            ask(&member.id, WHY, json!({ "conversation_id": "not-theirs" })),
            404,
            "not_found",
        ),
        (
            &admin.key,
            ask(&member.id, WHY, json!({ "minutes": 100000 })),
            400,
            "invalid_parameter",
        ),
        (
            &admin.key,
            ask(&member.id, WHY, json!({ "unknown": 1 })),
            400,
            "invalid_request_body",
        ),
        (
            &auditor.key,
            ask(&member.id, WHY, json!({})),
            403,
            "permission_denied",
        ),
        (
            &member.key,
            ask(&member.id, WHY, json!({})),
            403,
            "permission_denied",
        ),
    ] {
        let (got, answer) = json_of(app.call(Method::POST, &base, key, Some(&body)).await).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert!(answer["error"]["request_id"].is_string());
    }
    // Refused requests are recorded with their outcome.
    let refused = records(&app, "access.break_glass").await;
    assert!(refused
        .iter()
        .any(|record| record.outcome == civitas_audit::Outcome::Failure
            && record.details["error"] == "invalid_parameter"));
    assert!(refused
        .iter()
        .any(|record| record.outcome == civitas_audit::Outcome::Denied
            && record.details["error"] == "not_found"));

    // A proper request waits for a second person.
    let (status, grant) = json_of(
        app.call(
            Method::POST,
            &base,
            &admin.key,
            Some(&ask(&member.id, WHY, json!({ "minutes": 30 }))),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(grant["status"], "pending");
    let id = grant["id"].as_str().unwrap().to_owned();
    let read_path = format!("{base}/{id}/conversations");
    let (status, answer) = json_of(app.call(Method::GET, &read_path, &admin.key, None).await).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("break_glass_not_open"))
    );
    // A closed access tells nothing about which conversations exist.
    for conversation_id in [conversation.id.as_str(), "not-a-conversation"] {
        let (status, answer) = json_of(
            app.call(
                Method::GET,
                &format!("{read_path}/{conversation_id}"),
                &admin.key,
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (403, Some("break_glass_not_open"))
        );
    }
    let (status, answer) = json_of(
        app.call(Method::POST, &format!("{base}/{id}/approve"), &admin.key, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("second_approver_required"))
    );
    let (status, _) = json_of(
        app.call(Method::POST, &format!("{base}/{id}/approve"), &member.key, None)
            .await,
    )
    .await;
    assert_eq!(status, 403);
    let (status, approved) = json_of(
        app.call(Method::POST, &format!("{base}/{id}/approve"), &auditor.key, None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    let decided: chrono::DateTime<chrono::Utc> = approved["decided_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = approved["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - decided).num_minutes(), 30);
    let (status, answer) = json_of(
        app.call(
            Method::POST,
            &format!("{base}/{id}/refuse"),
            &second_admin.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    // Only the one who asked reads; every read is recorded.
    let (status, _) = json_of(app.call(Method::GET, &read_path, &second_admin.key, None).await).await;
    assert_eq!(status, 403);
    let (status, listed) = json_of(app.call(Method::GET, &read_path, &admin.key, None).await).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], conversation.id.as_str());
    let (status, opened) = json_of(
        app.call(
            Method::GET,
            &format!("{read_path}/{}", conversation.id),
            &admin.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["messages"][0]["content"], PRIVATE);
    let (status, _) = json_of(
        app.call(
            Method::GET,
            &format!("{read_path}/not-a-conversation"),
            &admin.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);

    let trail = records(&app, "access.break_glass").await;
    let phase = |name: &str| {
        trail
            .iter()
            .filter(|record| {
                record.details["phase"] == name && record.outcome == civitas_audit::Outcome::Success
            })
            .count()
    };
    assert_eq!((phase("requested"), phase("approved"), phase("read")), (1, 1, 2));
    let requested = trail
        .iter()
        .find(|record| {
            record.details["phase"] == "requested" && record.outcome == civitas_audit::Outcome::Success
        })
        .unwrap();
    assert_eq!(requested.actor_id, admin.id);
    assert_eq!(requested.agency_id.as_deref(), Some(agency.as_str()));
    assert_eq!(
        requested.target.as_deref(),
        Some(format!("person:{}", member.id).as_str())
    );
    assert_eq!(requested.details["justification"], WHY);
    assert!(requested.request_id.is_some());
    // The conversation's content is never in the log.
    let everything = app.store.audit_records(1, 100_000).await.unwrap();
    assert!(everything
        .iter()
        .all(|record| !record.details.to_string().contains("housing decision")));

    // The person sees who asked, why, who approved, and the reads.
    let (status, mine) = json_of(
        app.call(Method::GET, "/v1/me/break-glass", &member.key, None)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["data"][0]["justification"], WHY);
    assert_eq!(
        mine["data"][0]["requested_by_name"],
        "Test admin@glass.example.gov"
    );
    assert_eq!(
        mine["data"][0]["decided_by_name"],
        "Test auditor@glass.example.gov"
    );
    assert_eq!(mine["data"][0]["reads"], 2);
    assert_eq!(mine["data"][0]["open"], true);
    let (_, theirs) = json_of(
        app.call(Method::GET, "/v1/me/break-glass", &admin.key, None)
            .await,
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
    let session = sign_in(&app, "member@glass.example.gov", PASSWORD).await;
    let settings = session.get(&app, "/settings").await.text().await.unwrap();
    assert!(
        settings.contains("PRR-2026-118"),
        "the settings page shows the request"
    );
    assert!(settings.contains("Test admin@glass.example.gov"));

    // Administrators and auditors see the agency's requests.
    let (status, listed) = json_of(app.call(Method::GET, &base, &auditor.key, None).await).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"][0]["reads"], 2);
    let (status, _) = json_of(app.call(Method::GET, &base, &member.key, None).await).await;
    assert_eq!(status, 403);
    app.shutdown().await;
}

#[tokio::test]
async fn break_glass_through_the_pages() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("glasspages").await;
    let member = app
        .new_person(&agency, "member@pages.example.gov", &["member"], &[], None)
        .await;
    app.new_person(
        &agency,
        "admin@pages.example.gov",
        &["agency-admin"],
        &[],
        Some(PASSWORD),
    )
    .await;
    app.new_person(
        &agency,
        "auditor@pages.example.gov",
        &["auditor"],
        &[],
        Some(PASSWORD),
    )
    .await;
    let conversation = private_conversation(&app, &member.id).await;
    let page = format!("/admin/agencies/{agency}/break-glass");
    let admin = sign_in(&app, "admin@pages.example.gov", PASSWORD).await;
    let empty = admin.get(&app, &page).await;
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().contains("member@pages.example.gov"));

    // A short reason comes back next to its field, the form kept.
    let short = admin
        .post(
            &app,
            &page,
            &[
                ("person_id", &member.id),
                ("justification", "audit"),
                ("minutes", "20"),
            ],
        )
        .await;
    assert_eq!(short.status(), 422);
    let html = short.text().await.unwrap();
    assert!(html.contains("usa-error-message"));
    assert!(html.contains("aria-invalid=\"true\""));

    let asked = admin
        .post(
            &app,
            &page,
            &[
                ("person_id", &member.id),
                ("justification", WHY),
                ("minutes", "20"),
            ],
        )
        .await;
    assert_eq!(asked.status(), 303);
    let grant = app
        .store
        .list_break_glass(&agency, 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    // The auditor approves from the page.
    let auditor = sign_in(&app, "auditor@pages.example.gov", PASSWORD).await;
    let listing = auditor.get(&app, &page).await.text().await.unwrap();
    assert!(listing.contains(&format!("{}/approve", grant.id)));
    let approved = auditor
        .post(&app, &format!("{page}/{}/approve", grant.id), &[])
        .await;
    assert_eq!(approved.status(), 303);
    // The administrator reads.
    let read = admin
        .get(
            &app,
            &format!("{page}/{}?conversation={}", grant.id, conversation.id),
        )
        .await;
    assert_eq!(read.status(), 200);
    let html = read.text().await.unwrap();
    assert!(html.contains(PRIVATE), "the conversation is shown");
    assert!(
        html.contains("usa-alert--warning"),
        "with the warning that it is recorded"
    );
    // The auditor did not ask and cannot read.
    let not_theirs = auditor.get(&app, &format!("{page}/{}", grant.id)).await;
    assert_eq!(not_theirs.status(), 403);
    let stored = app
        .store
        .get_break_glass(&agency, &grant.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.reads, 2, "the list and the conversation");
    app.shutdown().await;
}

#[tokio::test]
async fn a_key_first_use_and_a_limit_hit_are_recorded_once_and_usage_breaks_down() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("metered").await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    let member = app
        .new_person(&agency, "clerk@metered.example.gov", &["member"], &[&group], None)
        .await;
    let other = app
        .new_person(&agency, "other@metered.example.gov", &["member"], &[&group], None)
        .await;
    for _ in 0..2 {
        let seen = app.call(Method::GET, "/v1/models", &member.key, None).await;
        assert_eq!(seen.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut first = Vec::new();
    for _ in 0..50 {
        first = records(&app, "key.first_used").await;
        if !first.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first: Vec<_> = first
        .into_iter()
        .filter(|record| record.target.as_deref() == Some(format!("key:{}", member.key_id).as_str()))
        .collect();
    assert_eq!(first.len(), 1, "one first use, however often the key is used");
    assert_eq!(first[0].actor_id, member.id);
    assert_eq!(first[0].agency_id.as_deref(), Some(agency.as_str()));

    // One model call, then a limit of one request per minute refuses two.
    let chat = |key: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/v1/chat/completions",
                &key,
                Some(&json!({ "model": app.model, "messages": [{ "role": "user", "content": "Hi" }], "max_tokens": 4 })),
            )
            .await
        }
    };
    let answered = chat(other.key.clone()).await;
    assert_eq!(answered.status(), 200);
    let request_id = answered.headers()["x-request-id"].to_str().unwrap().to_owned();
    app.wait_for_record(&request_id).await.unwrap();
    // Limits count per calendar minute: start early in one, so that the
    // three calls below fall in the same minute.
    let second = chrono::Timelike::second(&chrono::Utc::now());
    if second > 40 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
    app.admin(
        Method::PUT,
        &format!("/api/admin/agencies/{agency}/limits"),
        Some(&json!({ "scope": format!("person:{}", member.id), "requests_per_minute": 1 })),
    )
    .await;
    assert_eq!(chat(member.key.clone()).await.status(), 200);
    assert_eq!(chat(member.key.clone()).await.status(), 429);
    assert_eq!(chat(member.key.clone()).await.status(), 429);
    let hits: Vec<_> = records(&app, "limit.hit")
        .await
        .into_iter()
        .filter(|record| record.actor_id == member.id)
        .collect();
    assert_eq!(hits.len(), 1, "one record per limit and minute, not per refusal");
    assert_eq!(hits[0].details["kind"], "requests_per_minute");
    assert_eq!(hits[0].outcome, civitas_audit::Outcome::Denied);
    assert!(hits[0].request_id.is_some());

    // Usage of the agency, by person and by day; filtered by person,
    // group, key and model.
    for _ in 0..100 {
        let (_, usage) = json_of(
            app.call(
                Method::GET,
                &format!("/v1/usage?agency_id={agency}&group_by=person"),
                app_key(&app),
                None,
            )
            .await,
        )
        .await;
        if usage["total"]["requests"].as_i64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let usage_of = |query: String| {
        let app = &app;
        async move {
            json_of(
                app.call(Method::GET, &format!("/v1/usage?{query}"), app_key(app), None)
                    .await,
            )
            .await
        }
    };
    let (status, by_person) = usage_of(format!("agency_id={agency}&group_by=person")).await;
    assert_eq!(status, 200, "{by_person}");
    let people: Vec<&str> = by_person["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["group"].as_str().unwrap())
        .collect();
    assert!(
        people.contains(&member.id.as_str()) && people.contains(&other.id.as_str()),
        "{by_person}"
    );
    assert!(by_person["breakdown"][0]["energy_wh"].as_f64().unwrap() > 0.0);
    let (_, by_day) = usage_of(format!("agency_id={agency}&group_by=day")).await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(by_day["breakdown"][0]["group"], today.as_str());
    assert_eq!(by_day["breakdown"][0]["requests"], by_day["total"]["requests"]);
    // Each request on its own, with its energy.
    let (_, per_request) = usage_of(format!("agency_id={agency}&group_by=request")).await;
    let lines = per_request["breakdown"].as_array().unwrap();
    assert!(
        lines.iter().any(|line| line["group"] == request_id.as_str()),
        "{per_request}"
    );
    assert!(lines.iter().all(|line| line["requests"] == 1));
    let (_, one) = usage_of(format!("agency_id={agency}&person_id={}", member.id)).await;
    assert_eq!(one["total"]["requests"], 1);
    let (_, by_key) = usage_of(format!("agency_id={agency}&key_id={}", other.key_id)).await;
    assert_eq!(by_key["total"]["requests"], 1);
    let (_, by_group) = usage_of(format!("agency_id={agency}&group_id={group}")).await;
    assert_eq!(by_group["total"]["requests"], 2);
    let (_, no_model) = usage_of(format!("agency_id={agency}&model=none")).await;
    assert_eq!(no_model["total"]["requests"], 0);
    let (_, ended) = usage_of(format!("agency_id={agency}&until=2000-01-01")).await;
    assert_eq!(ended["total"]["requests"], 0);
    // Bad filters are named.
    for (query, param) in [
        (format!("agency_id={agency}&group_by=week"), "group_by"),
        (format!("agency_id={agency}&until=yesterday"), "until"),
    ] {
        let (status, answer) = usage_of(query).await;
        assert_eq!((status, answer["error"]["param"].as_str()), (400, Some(param)));
    }
    // Someone's own usage: not another person's, not a group's.
    let (status, own) = json_of(
        app.call(Method::GET, "/v1/usage?group_by=day", &member.key, None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(own["total"]["requests"], 1);
    let (status, _) = json_of(
        app.call(
            Method::GET,
            &format!("/v1/usage?person_id={}", other.id),
            &member.key,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    app.shutdown().await;
}

/// The test's platform-administrator key.
fn app_key(_app: &TestApp) -> &'static str {
    civitas_test_support::TEST_KEY
}
