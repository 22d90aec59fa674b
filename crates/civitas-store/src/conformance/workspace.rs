//! Conformance of the workspace half of the store.

use super::message;
use crate::{
    AgencyRules, Conversation, DailyUsage, Feedback, NewAgency, NewConversation, NewPerson, Preferences,
    RequestRecord, Store, StoreError, UsageOwner,
};

async fn conversation(
    store: &dyn Store,
    owner: &str,
    title: &str,
    messages: &[(&str, &str)],
) -> Conversation {
    store
        .create_conversation(
            NewConversation {
                owner: owner.to_owned(),
                title: Some(title.to_owned()),
                model: "tiny".to_owned(),
                classification: "cui".to_owned(),
            },
            messages
                .iter()
                .map(|(role, content)| message(role, content))
                .collect(),
        )
        .await
        .unwrap()
        .0
}

pub async fn search_finds_titles_and_messages_of_the_owner_only(store: &dyn Store) {
    let owner = crate::new_id();
    let by_title = conversation(store, &owner, "Permis de CONSTRUIRE", &[("user", "bonjour")]).await;
    let by_message = conversation(
        store,
        &owner,
        "Autre",
        &[("user", "Le délai d'instruction du permis")],
    )
    .await;
    conversation(store, &owner, "Sans rapport", &[("user", "rien")]).await;
    conversation(store, "someone-else", "permis", &[("user", "permis")]).await;
    assert_eq!(by_title.classification, "cui");

    let found = store.search_conversations(&owner, "permis", 10).await.unwrap();
    let mut ids: Vec<_> = found.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut expected = vec![by_title.id.clone(), by_message.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(found[0].classification, "cui");

    // Wildcards are taken literally.
    assert!(store
        .search_conversations(&owner, "%", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .search_conversations(&owner, "_", 10)
        .await
        .unwrap()
        .is_empty());
    let literal = conversation(store, &owner, "100% sûr", &[]).await;
    let found = store.search_conversations(&owner, "0% s", 10).await.unwrap();
    assert_eq!(found.iter().map(|c| &c.id).collect::<Vec<_>>(), vec![&literal.id]);
    assert_eq!(store.search_conversations(&owner, "", 2).await.unwrap().len(), 2);
}

pub async fn rename_and_delete_only_by_the_owner(store: &dyn Store) {
    let owner = crate::new_id();
    let kept = conversation(store, &owner, "Draft", &[("user", "one"), ("assistant", "two")]).await;
    assert!(!store
        .rename_conversation("intruder", &kept.id, "Mine now")
        .await
        .unwrap());
    assert!(store
        .rename_conversation(&owner, &kept.id, "Final memo")
        .await
        .unwrap());
    let renamed = store.get_conversation(&kept.id).await.unwrap().unwrap();
    assert_eq!(renamed.title.as_deref(), Some("Final memo"));
    assert!(renamed.updated_at >= kept.updated_at);
    let error = store
        .rename_conversation(&owner, &kept.id, "bad\0")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    // The level changes for the owner only.
    assert!(!store
        .set_classification("intruder", &kept.id, "secret")
        .await
        .unwrap());
    assert!(store
        .set_classification(&owner, &kept.id, "secret")
        .await
        .unwrap());
    let raised = store.get_conversation(&kept.id).await.unwrap().unwrap();
    assert_eq!(raised.classification, "secret");

    assert!(!store.delete_conversation("intruder", &kept.id).await.unwrap());
    assert!(store.get_conversation(&kept.id).await.unwrap().is_some());
    assert!(store.delete_conversation(&owner, &kept.id).await.unwrap());
    assert!(store.get_conversation(&kept.id).await.unwrap().is_none());
    assert!(store.list_messages(&kept.id).await.unwrap().is_empty());
    assert!(!store.delete_conversation(&owner, &kept.id).await.unwrap());
}

pub async fn replacing_the_tail_is_all_or_nothing(store: &dyn Store) {
    let owner = crate::new_id();
    let chat = conversation(
        store,
        &owner,
        "Tail",
        &[
            ("user", "q1"),
            ("assistant", "a1"),
            ("user", "q2"),
            ("assistant", "a2"),
        ],
    )
    .await;
    // Regenerate: drop the last answer.
    let none = store.replace_messages_from(&chat.id, 3, vec![]).await.unwrap();
    assert!(none.is_empty());
    // Edit and resend: replace the last question.
    let stored = store
        .replace_messages_from(&chat.id, 2, vec![message("user", "q2 edited")])
        .await
        .unwrap();
    assert_eq!(stored[0].seq, 2);
    let contents =
        |messages: Vec<crate::Message>| messages.into_iter().map(|m| m.content).collect::<Vec<_>>();
    assert_eq!(
        contents(store.list_messages(&chat.id).await.unwrap()),
        vec!["q1", "a1", "q2 edited"]
    );

    // A bad message leaves everything as it was.
    let error = store
        .replace_messages_from(
            &chat.id,
            1,
            vec![message("user", "fine"), message("user", "bad\0")],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    assert_eq!(
        contents(store.list_messages(&chat.id).await.unwrap()),
        vec!["q1", "a1", "q2 edited"]
    );
    // Past the end, or before the start, is refused.
    assert!(store.replace_messages_from(&chat.id, 9, vec![]).await.is_err());
    assert!(store.replace_messages_from(&chat.id, -1, vec![]).await.is_err());
    let error = store
        .replace_messages_from("missing", 0, vec![])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub async fn appending_moves_a_conversation_to_the_top(store: &dyn Store) {
    let owner = crate::new_id();
    let older = conversation(store, &owner, "older", &[("user", "x")]).await;
    let newer = conversation(store, &owner, "newer", &[("user", "y")]).await;
    let titles = |list: Vec<Conversation>| list.into_iter().filter_map(|c| c.title).collect::<Vec<_>>();
    assert_eq!(
        titles(store.list_conversations(&owner, 10).await.unwrap()),
        vec!["newer", "older"]
    );
    std::thread::sleep(std::time::Duration::from_millis(2));
    store
        .append_messages(&older.id, vec![message("assistant", "z")])
        .await
        .unwrap();
    assert_eq!(
        titles(store.list_conversations(&owner, 10).await.unwrap()),
        vec!["older", "newer"]
    );
    let touched = store.get_conversation(&older.id).await.unwrap().unwrap();
    assert!(touched.updated_at > newer.updated_at);
    assert_eq!(touched.created_at, older.created_at);
}

pub async fn feedback_is_one_per_person_and_message(store: &dyn Store) {
    let owner = crate::new_id();
    let chat = conversation(store, &owner, "Feedback", &[("user", "q"), ("assistant", "a")]).await;
    let answer = store.list_messages(&chat.id).await.unwrap().pop().unwrap();
    let mut feedback = Feedback {
        message_id: answer.id.clone(),
        conversation_id: chat.id.clone(),
        person_id: owner.clone(),
        agency_id: "agency".to_owned(),
        model: "tiny".to_owned(),
        rating: -1,
        comment: Some("Cites the wrong article".to_owned()),
        updated_at: crate::now(),
    };
    store.put_feedback(&feedback).await.unwrap();
    feedback.rating = 1;
    feedback.comment = None;
    store.put_feedback(&feedback).await.unwrap();
    let listed = store.list_feedback(&owner, &chat.id).await.unwrap();
    assert_eq!(listed, vec![feedback.clone()]);
    assert!(store
        .list_feedback("someone-else", &chat.id)
        .await
        .unwrap()
        .is_empty());

    feedback.rating = 5;
    assert!(matches!(
        store.put_feedback(&feedback).await,
        Err(StoreError::Invalid(_))
    ));
    // Feedback outlives a regenerated answer.
    store.replace_messages_from(&chat.id, 1, vec![]).await.unwrap();
    assert_eq!(store.list_feedback(&owner, &chat.id).await.unwrap().len(), 1);
}

pub async fn preferences_and_rules_acceptance(store: &dyn Store) {
    let slug = format!("ws-{}", &crate::new_id()[30..]);
    let agency = store
        .create_agency(NewAgency {
            slug,
            name: "Workspace agency".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let person = store
        .create_person(NewPerson {
            agency_id: agency.id.clone(),
            email: format!("{}@example.gov", crate::new_id()),
            display_name: "Ada".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_preferences(&person.id).await.unwrap(),
        Preferences::default()
    );
    let preferences = Preferences {
        language: Some("fr".to_owned()),
        default_model: Some("tiny".to_owned()),
    };
    store.put_preferences(&person.id, &preferences).await.unwrap();
    assert_eq!(store.get_preferences(&person.id).await.unwrap(), preferences);
    store
        .put_preferences(&person.id, &Preferences::default())
        .await
        .unwrap();
    assert_eq!(
        store.get_preferences(&person.id).await.unwrap(),
        Preferences::default()
    );
    assert!(store
        .put_preferences("no-such-person", &preferences)
        .await
        .is_err());

    assert!(store.get_agency_rules(&agency.id).await.unwrap().is_none());
    let rules = AgencyRules {
        agency_id: agency.id.clone(),
        text: "Do not enter classified information.".to_owned(),
        version: "v1".to_owned(),
        updated_at: crate::now(),
        updated_by: person.id.clone(),
    };
    store.put_agency_rules(&rules).await.unwrap();
    assert_eq!(
        store.get_agency_rules(&agency.id).await.unwrap(),
        Some(rules.clone())
    );
    let changed = AgencyRules {
        text: "New text".to_owned(),
        version: "v2".to_owned(),
        ..rules
    };
    store.put_agency_rules(&changed).await.unwrap();
    assert_eq!(store.get_agency_rules(&agency.id).await.unwrap(), Some(changed));

    assert!(store.rules_accepted_at(&person.id, "v2").await.unwrap().is_none());
    let first = crate::now();
    store
        .accept_rules(&person.id, &agency.id, "v2", first)
        .await
        .unwrap();
    store
        .accept_rules(&person.id, &agency.id, "v2", first + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store.rules_accepted_at(&person.id, "v2").await.unwrap(),
        Some(first)
    );
    assert!(store.rules_accepted_at(&person.id, "v1").await.unwrap().is_none());
}

pub async fn usage_is_summed_per_utc_day_and_model(store: &dyn Store) {
    use chrono::TimeZone;
    let agency = crate::new_id();
    let record =
        |id: &str, at: chrono::DateTime<chrono::Utc>, model: Option<&str>, tokens: i64| RequestRecord {
            request_id: format!("{agency}-{id}"),
            at,
            actor: "someone".to_owned(),
            agency_id: Some(agency.clone()),
            key_id: None,
            route: "/v1/chat/completions".to_owned(),
            model: model.map(str::to_owned),
            model_sha256: None,
            prompt_tokens: tokens,
            completion_tokens: 2 * tokens,
            cost_micros: 10 * tokens,
            latency_ms: 5,
            status: 200,
            error_code: None,
        };
    let day = |d: u32, h: u32, m: u32| chrono::Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
    for (id, at, model, tokens) in [
        ("a", day(1, 0, 0), Some("big"), 1),
        ("b", day(1, 23, 59), Some("big"), 2),
        ("c", day(1, 12, 0), Some("small"), 4),
        ("d", day(2, 0, 1), Some("big"), 8),
        ("e", day(2, 5, 0), None, 100),
        ("f", day(1, 5, 0) - chrono::Duration::days(30), Some("big"), 100),
    ] {
        store
            .record_request(&record(id, at, model, tokens))
            .await
            .unwrap();
    }
    let rows = store
        .daily_usage(&UsageOwner::Agency(agency.clone()), day(1, 0, 0))
        .await
        .unwrap();
    let row = |day: &str, model: &str, requests: i64, tokens: i64| DailyUsage {
        day: day.to_owned(),
        model: model.to_owned(),
        requests,
        prompt_tokens: tokens,
        completion_tokens: 2 * tokens,
        cost_micros: 10 * tokens,
    };
    assert_eq!(
        rows,
        vec![
            row("2026-03-01", "big", 2, 3),
            row("2026-03-01", "small", 1, 4),
            row("2026-03-02", "big", 1, 8),
        ]
    );
    assert!(store
        .daily_usage(&UsageOwner::Agency("other".to_owned()), day(1, 0, 0))
        .await
        .unwrap()
        .is_empty());
}
