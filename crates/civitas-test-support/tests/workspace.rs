//! The workspace's chat through the real server and a real model: rules
//! of behaviour, conversations created, answered (streamed or not),
//! stopped, regenerated, edited, renamed, searched, exported, deleted,
//! feedback, the temporary chat, model access and classification levels.
//! The same flows in a real browser are in `tests/browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_test_support::browser::{client, hidden, sign_in, sign_in_only, Session};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use serde_json::Value;

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";

fn options() -> AppOptions {
    AppOptions {
        embeddings: false,
        tweak: std::sync::Arc::new(|config| {
            // Answers of the tiny model stay short, so the suite stays fast.
            config.models.max_output_tokens = 96;
            let mut kept = config.classifications[0].clone();
            kept.id = "records".to_owned();
            kept.labels = [("en".to_owned(), "RECORDS — KEEP".to_owned())]
                .into_iter()
                .collect();
            kept.background = "#1b1b1b".to_owned();
            kept.allow_delete = false;
            config.classifications.push(kept);
        }),
        ..AppOptions::default()
    }
}

/// A person of a new agency, in a group allowed the test model, signed in.
async fn member(app: &TestApp, slug: &str, email: &str) -> (String, Session) {
    let agency = app.new_agency(slug).await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    app.new_person(&agency, email, &["member"], &[&group], Some(PASSWORD))
        .await;
    (agency, sign_in(app, email, PASSWORD).await)
}

/// The id of the conversation a `/c/{id}...` location names.
fn conversation_of(location: &str) -> String {
    location
        .trim_start_matches("/c/")
        .split(['#', '/', '?'])
        .next()
        .unwrap()
        .to_owned()
}

/// Creates a conversation without the script (the page comes back when
/// the answer is stored); returns its id.
async fn ask(app: &TestApp, session: &Session, question: &str, level: &str) -> String {
    let created = session
        .post(
            app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", level),
                ("content", question),
            ],
        )
        .await;
    assert_eq!(created.status(), 303, "{}", created.text().await.unwrap());
    conversation_of(created.headers()["location"].to_str().unwrap())
}

/// The content of every chunk of a streamed answer, and whether it ended.
async fn read_stream(response: reqwest::Response) -> (String, bool) {
    let body = response.text().await.unwrap();
    let mut text = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            return (text, true);
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
    }
    (text, false)
}

#[tokio::test]
async fn rules_of_behaviour_come_first_and_their_acceptance_is_recorded() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("rules").await;
    let person = app
        .new_person(&agency, "new@rules.example.gov", &["member"], &[], Some(PASSWORD))
        .await;
    let cookie = format!(
        "civitas_session={}",
        sign_in_only(&app, "new@rules.example.gov", PASSWORD).await
    );
    let browser = client();
    for path in ["/", "/settings", "/temporary"] {
        let page = browser
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 303, "{path}");
        assert_eq!(page.headers()["location"], "/rules", "{path}");
    }
    let rules = browser
        .get(app.url("/rules"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rules.contains("official duties"), "{rules}");
    let session = Session {
        cookie: cookie.clone(),
        csrf: hidden(&rules, "csrf_token"),
    };
    let version = hidden(&rules, "version");
    // Not ticked, or an outdated version: nothing is recorded.
    let unticked = session.post(&app, "/rules", &[("version", &version)]).await;
    assert_eq!(unticked.headers()["location"], "/rules");
    let outdated = session
        .post(&app, "/rules", &[("version", "older"), ("agree", "yes")])
        .await;
    assert_eq!(outdated.headers()["location"], "/rules");
    assert!(app
        .store
        .rules_accepted_at(&person.id, &version)
        .await
        .unwrap()
        .is_none());
    let forged = client()
        .post(app.url("/rules"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", "guess"), ("version", &version), ("agree", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.headers()["location"], "/sign-in");
    assert!(app
        .store
        .rules_accepted_at(&person.id, &version)
        .await
        .unwrap()
        .is_none());

    let accepted = session
        .post(&app, "/rules", &[("version", &version), ("agree", "yes")])
        .await;
    assert_eq!(accepted.headers()["location"], "/");
    assert!(app
        .store
        .rules_accepted_at(&person.id, &version)
        .await
        .unwrap()
        .is_some());
    assert_eq!(session.get(&app, "/").await.status(), 200);

    // The agency writes its own rules: everyone accepts them again.
    let text = "Only **public** information in this pilot.";
    let rules = civitas_store::AgencyRules {
        agency_id: agency.clone(),
        text: text.to_owned(),
        version: "agency-v2".to_owned(),
        updated_at: civitas_store::now(),
        updated_by: person.id.clone(),
    };
    app.store.put_agency_rules(&rules).await.unwrap();
    let again = session.get(&app, "/").await;
    assert_eq!(again.headers()["location"], "/rules");
    let page = session.get(&app, "/rules").await.text().await.unwrap();
    assert!(page.contains("<strong>public</strong>"), "{page}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_conversation_is_asked_answered_renamed_searched_exported_and_deleted() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (_, session) = member(&app, "chat", "agent@chat.example.gov").await;
    let home = session.get(&app, "/").await.text().await.unwrap();
    assert!(
        home.contains(&format!("<option value=\"{}\" selected>", app.model)),
        "{home}"
    );
    assert!(home.contains("civitas-classification--unclassified"));

    let id = ask(&app, &session, "What is the capital of France?", "cui").await;
    let page = session.get(&app, &format!("/c/{id}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    // The banner shows the conversation's level, top and bottom.
    assert_eq!(html.matches("civitas-classification--cui").count(), 2, "{html}");
    assert!(html.contains("CUI — CONTROLLED UNCLASSIFIED INFORMATION"));
    assert!(html.contains("What is the capital of France?"));
    assert_eq!(html.matches("civitas-message--assistant").count(), 1, "{html}");
    assert!(html.contains("Tokens out"), "the figures are on the page");
    let messages = app.store.list_messages(&id).await.unwrap();
    assert_eq!(messages.len(), 2);
    let generation: Value = serde_json::from_str(messages[1].metadata.as_deref().unwrap()).unwrap();
    assert_eq!(generation["generation"]["model"], app.model.as_str());
    assert!(generation["generation"]["completion_tokens"].as_u64().unwrap() > 0);
    let conversation = app.store.get_conversation(&id).await.unwrap().unwrap();
    assert_eq!(conversation.classification, "cui");
    assert_eq!(
        conversation.title.as_deref(),
        Some("What is the capital of France?")
    );

    // A reply, streamed.
    let streamed = session
        .post_streaming(&app, &format!("/c/{id}/reply"), &[("content", "And of Italy?")])
        .await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(streamed.headers()["x-civitas-conversation-id"], id.as_str());
    let (text, ended) = read_stream(streamed).await;
    assert!(ended && !text.is_empty());
    let thread = session
        .get(&app, &format!("/c/{id}/thread"))
        .await
        .text()
        .await
        .unwrap();
    assert!(thread.contains("And of Italy?"));
    assert_eq!(thread.matches("civitas-message--assistant").count(), 2);
    let stored = app.store.list_messages(&id).await.unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[3].content, text, "the stored answer is what was streamed");

    // Regenerate replaces the last answer; edit replaces the last question.
    let regenerated = session.post(&app, &format!("/c/{id}/regenerate"), &[]).await;
    assert_eq!(regenerated.status(), 303);
    let after = app.store.list_messages(&id).await.unwrap();
    assert_eq!(after.len(), 4);
    assert_ne!(after[3].id, stored[3].id);
    let edited = session
        .post(&app, &format!("/c/{id}/edit"), &[("content", "And of Spain?")])
        .await;
    assert_eq!(edited.status(), 303);
    let after = app.store.list_messages(&id).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
        vec!["user", "assistant", "user", "assistant"]
    );
    assert_eq!(after[2].content, "And of Spain?");

    // Feedback on the answer.
    let answer = after[3].id.clone();
    let given = session
        .post(
            &app,
            &format!("/c/{id}/feedback/{answer}"),
            &[("rating", "-1"), ("comment", "Wrong city")],
        )
        .await;
    assert_eq!(given.status(), 303);
    let feedback = app.store.list_feedback(&conversation.owner, &id).await.unwrap();
    assert_eq!(feedback.len(), 1);
    assert_eq!(
        (feedback[0].rating, feedback[0].comment.as_deref()),
        (-1, Some("Wrong city"))
    );
    assert_eq!(feedback[0].model, app.model);
    let bad = session
        .post(&app, &format!("/c/{id}/feedback/{answer}"), &[("rating", "5")])
        .await;
    assert_eq!(bad.status(), 422);
    let question = after[2].id.clone();
    let on_question = session
        .post(&app, &format!("/c/{id}/feedback/{question}"), &[("rating", "1")])
        .await;
    assert_eq!(on_question.status(), 404, "feedback is for answers");
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(page.contains("You found this not helpful"));

    // Rename (a blank title is refused next to the field), search.
    let blank = session
        .post(&app, &format!("/c/{id}/rename"), &[("title", "  ")])
        .await;
    assert_eq!(blank.status(), 422);
    assert!(blank.text().await.unwrap().contains("aria-invalid=\"true\""));
    let renamed = session
        .post(
            &app,
            &format!("/c/{id}/rename"),
            &[("title", "Capitals <of> Europe")],
        )
        .await;
    assert_eq!(renamed.status(), 303);
    let other = ask(
        &app,
        &session,
        "Draft a memo about parking permits",
        "unclassified",
    )
    .await;
    let found = session.get(&app, "/?q=capitals").await.text().await.unwrap();
    assert!(
        found.contains("Capitals &lt;of&gt; Europe") || found.contains("Capitals &#60;of&#62; Europe"),
        "{found}"
    );
    assert!(!found.contains(&format!("/c/{other}\"")), "{found}");
    let by_content = session.get(&app, "/?q=PARKING").await.text().await.unwrap();
    assert!(by_content.contains(&format!("/c/{other}\"")));
    assert!(!by_content.contains(&format!("/c/{id}\"")));

    // Exports for records requests.
    let json = session.get(&app, &format!("/c/{id}/export.json")).await;
    assert_eq!(json.status(), 200);
    assert!(json.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"conversation-"));
    let document: Value = json.json().await.unwrap();
    assert_eq!(document["conversation"]["classification"], "cui");
    assert_eq!(document["conversation"]["title"], "Capitals <of> Europe");
    assert_eq!(document["messages"].as_array().unwrap().len(), 4);
    assert_eq!(document["exported_by"]["email"], "agent@chat.example.gov");
    assert!(document["messages"][1]["metadata"]["generation"]["completion_tokens"].is_u64());
    let html = session.get(&app, &format!("/c/{id}/export.html")).await;
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    assert!(html.contains("CUI — CONTROLLED UNCLASSIFIED INFORMATION") && html.contains("And of Spain?"));
    assert!(!html.contains("<script"));

    // Delete asks first, then removes everything.
    let confirm = session.get(&app, &format!("/c/{other}/delete")).await;
    assert_eq!(confirm.status(), 200);
    let deleted = session.post(&app, &format!("/c/{other}/delete"), &[]).await;
    assert_eq!(deleted.headers()["location"], "/");
    assert!(app.store.get_conversation(&other).await.unwrap().is_none());
    assert!(app.store.list_messages(&other).await.unwrap().is_empty());
    assert_eq!(session.get(&app, &format!("/c/{other}")).await.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn a_streamed_answer_can_be_stopped_and_what_was_written_is_kept() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (_, session) = member(&app, "stop", "agent@stop.example.gov").await;
    let id = ask(&app, &session, "Say hello.", "unclassified").await;
    let streaming = session
        .post_streaming(
            &app,
            &format!("/c/{id}/reply"),
            &[(
                "content",
                "Write a long essay of at least 2000 words about the history of public libraries, with many sections.",
            )],
        )
        .await;
    assert_eq!(streaming.status(), 200);
    // A second answer in the same conversation waits its turn.
    let busy = session
        .post_streaming(&app, &format!("/c/{id}/reply"), &[("content", "Another")])
        .await;
    assert_eq!(busy.status(), 409);
    let busy: Value = busy.json().await.unwrap();
    assert_eq!(busy["error"]["code"], "conflict");
    assert!(busy["error"]["request_id"].is_string());
    let stopped = session.post_streaming(&app, &format!("/c/{id}/stop"), &[]).await;
    assert_eq!(stopped.status(), 204);
    // The stream still ends cleanly, so the script knows it is over.
    let (text, ended) = read_stream(streaming).await;
    assert!(ended);
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(page.contains("Stopped before the end."), "{page}");
    let messages = app.store.list_messages(&id).await.unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[3].content, text);
    let metadata: Value = serde_json::from_str(messages[3].metadata.as_deref().unwrap()).unwrap();
    assert_eq!(metadata["generation"]["finish"], "stopped");
    // The conversation is free again.
    let next = session
        .post_streaming(&app, &format!("/c/{id}/reply"), &[("content", "Thanks.")])
        .await;
    assert_eq!(next.status(), 200);
    assert!(read_stream(next).await.1);
    app.shutdown().await;
}

#[tokio::test]
async fn conversations_are_their_owners_alone_and_forms_need_the_token() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (agency, alice) = member(&app, "owners", "alice@owners.example.gov").await;
    let group = app.new_group(&agency, "admins", &[&app.model]).await;
    app.new_person(
        &agency,
        "bob@owners.example.gov",
        &["agency-admin"],
        &[&group],
        Some(PASSWORD),
    )
    .await;
    let bob = sign_in(&app, "bob@owners.example.gov", PASSWORD).await;
    let id = ask(&app, &alice, "Private question", "unclassified").await;
    for path in [
        format!("/c/{id}"),
        format!("/c/{id}/thread"),
        format!("/c/{id}/export.json"),
        format!("/c/{id}/export.html"),
        format!("/c/{id}/delete"),
    ] {
        let status = bob.get(&app, &path).await.status();
        assert_eq!(status, 404, "{path}: even an administrator may not read it");
    }
    for path in ["reply", "rename", "delete", "regenerate", "stop"] {
        let response = bob
            .post(
                &app,
                &format!("/c/{id}/{path}"),
                &[("content", "x"), ("title", "x")],
            )
            .await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let before = app.store.list_messages(&id).await.unwrap().len();
    let forged = client()
        .post(app.url(&format!("/c/{id}/reply")))
        .header("cookie", &alice.cookie)
        .form(&[("csrf_token", "guess"), ("content", "injected")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.headers()["location"], "/sign-in");
    let empty = alice
        .post(&app, &format!("/c/{id}/reply"), &[("content", "   ")])
        .await;
    assert_eq!(empty.status(), 422);
    assert!(empty.text().await.unwrap().contains("Write a message first"));
    assert_eq!(app.store.list_messages(&id).await.unwrap().len(), before);
    assert_eq!(
        app.store
            .get_conversation(&id)
            .await
            .unwrap()
            .unwrap()
            .title
            .as_deref(),
        Some("Private question")
    );
    let bad_level = alice
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "top-secret"),
                ("content", "x"),
            ],
        )
        .await;
    assert_eq!(bad_level.status(), 422);
    assert!(bad_level
        .text()
        .await
        .unwrap()
        .contains("Choose a classification level from the list."));
    app.shutdown().await;
}

#[tokio::test]
async fn records_levels_cannot_be_deleted() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (_, session) = member(&app, "records", "clerk@records.example.gov").await;
    let id = ask(&app, &session, "A question on file", "records").await;
    let page = session.get(&app, &format!("/c/{id}")).await.text().await.unwrap();
    assert!(page.contains("RECORDS — KEEP") && !page.contains(&format!("/c/{id}/delete")));
    assert_eq!(session.get(&app, &format!("/c/{id}/delete")).await.status(), 403);
    assert_eq!(
        session.post(&app, &format!("/c/{id}/delete"), &[]).await.status(),
        403
    );
    assert!(app.store.get_conversation(&id).await.unwrap().is_some());
    let css = client().get(app.url("/classification.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    let css = css.text().await.unwrap();
    assert!(
        css.contains(".civitas-classification--records { background: #1b1b1b; color: #ffffff; }"),
        "{css}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_temporary_chat_is_answered_and_never_stored() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (_, session) = member(&app, "temp", "agent@temp.example.gov").await;
    let page = session.get(&app, "/temporary").await;
    assert_eq!(page.status(), 200);
    let send = |csrf: &str, messages: Value| {
        client()
            .post(app.url("/temporary"))
            .header("cookie", &session.cookie)
            .header("x-csrf-token", csrf)
            .json(&serde_json::json!({ "model": app.model, "messages": messages }))
            .send()
    };
    let answer = send(
        &session.csrf,
        serde_json::json!([{ "role": "user", "content": "Hello" }]),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    let (text, ended) = read_stream(answer).await;
    assert!(ended && !text.is_empty());
    let forged = send(
        "guess",
        serde_json::json!([{ "role": "user", "content": "Hello" }]),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    let bad = send(
        &session.csrf,
        serde_json::json!([{ "role": "system", "content": "x" }]),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let garbled = client()
        .post(app.url("/temporary"))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 400);
    let garbled: Value = garbled.json().await.unwrap();
    assert_eq!(garbled["error"]["code"], "invalid_request_body");
    assert!(garbled["error"]["request_id"].is_string());
    let me: Value = client()
        .get(app.url("/v1/me"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let person = me["id"].as_str().unwrap();
    assert!(
        app.store.list_conversations(person, 10).await.unwrap().is_empty(),
        "a temporary chat was kept"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_model_picker_shows_only_allowed_models_and_the_default_is_a_preference() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = app.new_agency("picker").await;
    let group = app.new_group(&agency, "restricted", &[]).await;
    app.new_person(
        &agency,
        "restricted@picker.example.gov",
        &["member"],
        &[&group],
        Some(PASSWORD),
    )
    .await;
    let session = sign_in(&app, "restricted@picker.example.gov", PASSWORD).await;
    let home = session.get(&app, "/").await.text().await.unwrap();
    assert!(home.contains("No model is available to you"), "{home}");
    assert!(!home.contains(&format!("<option value=\"{}\"", app.model)));
    let refused = session
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "unclassified"),
                ("content", "Hi"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("You may not use this model"));

    let (_, allowed) = member(&app, "picker-2", "free@picker.example.gov").await;
    let saved = allowed
        .post(
            &app,
            "/settings/preferences",
            &[("language", "fr"), ("default_model", &app.model)],
        )
        .await;
    assert_eq!(saved.status(), 303);
    assert!(saved
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|cookie| cookie.to_str().unwrap().starts_with("civitas_lang=fr")));
    let unknown = allowed
        .post(
            &app,
            "/settings/preferences",
            &[("language", "de"), ("default_model", "")],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let settings = allowed.get(&app, "/settings").await.text().await.unwrap();
    assert!(settings.contains("<option value=\"fr\" selected>"), "{settings}");
    assert!(settings.contains(&format!("<option value=\"{}\" selected>", app.model)));
    app.shutdown().await;
}

#[tokio::test]
async fn an_account_awaiting_approval_lands_on_its_own_page() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        ..options()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("pending").await;
    let person = app
        .new_person(
            &agency,
            "new@pending.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    let update = serde_json::json!({ "status": "pending" });
    app.admin(
        reqwest::Method::PATCH,
        &format!("/api/admin/agencies/{agency}/people/{}", person.id),
        Some(&update),
    )
    .await;
    let browser = client();
    let page = browser.get(app.url("/sign-in")).send().await.unwrap();
    let form_cookie = civitas_test_support::browser::set_cookie(&page, "civitas_signin_csrf").unwrap();
    let token = civitas_test_support::browser::form_token(&page.text().await.unwrap());
    let refused = browser
        .post(app.url("/sign-in"))
        .header("cookie", format!("civitas_signin_csrf={form_cookie}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "new@pending.example.gov"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 303);
    assert_eq!(refused.headers()["location"], "/pending");
    assert!(civitas_test_support::browser::set_cookie(&refused, "civitas_session").is_none());
    let pending = browser
        .get(app.url("/pending"))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 200);
    assert!(pending
        .text()
        .await
        .unwrap()
        .contains("Votre compte attend une validation"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_marking_in_a_message_raises_the_conversation_for_good() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let (_, session) = member(&app, "marked", "analyst@marked.example.gov").await;
    // Chosen unclassified, but the first message is marked CUI.
    let first = ask(
        &app,
        &session,
        "CUI//SP-PRVCY Summarise the case notes.",
        "unclassified",
    )
    .await;
    let stored = app.store.get_conversation(&first).await.unwrap().unwrap();
    assert_eq!(stored.classification, "cui");
    let page = session
        .get(&app, &format!("/c/{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("civitas-classification--cui"));

    // A plain conversation stays as chosen until a marked reply comes.
    let second = ask(&app, &session, "What is the capital of France?", "unclassified").await;
    assert_eq!(
        app.store
            .get_conversation(&second)
            .await
            .unwrap()
            .unwrap()
            .classification,
        "unclassified"
    );
    let replied = session
        .post(
            &app,
            &format!("/c/{second}/reply"),
            &[("content", "FOUO: and the deadline for the appeal?")],
        )
        .await;
    assert_eq!(replied.status(), 303, "{}", replied.text().await.unwrap());
    assert_eq!(
        app.store
            .get_conversation(&second)
            .await
            .unwrap()
            .unwrap()
            .classification,
        "cui"
    );
    app.shutdown().await;
}
