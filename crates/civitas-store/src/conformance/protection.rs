//! Conformance of data protection: content sealed at rest, data-key
//! rotation and destruction, retention purge, legal holds, erasure.

use chrono::Duration;

use super::message;
use crate::{NewAgency, NewConversation, NewLegalHold, NewPerson, RetentionRule, Store, StoreError};

/// Reads the first column of every row of a query, as text, straight from
/// the database (bypassing the store).
pub type RawRead<'a> =
    &'a (dyn Fn(String) -> futures::future::BoxFuture<'static, Result<Vec<Option<String>>, String>> + Sync);

async fn agency_and_person(store: &dyn Store) -> (crate::Agency, crate::Person) {
    let suffix = crate::new_id().replace('-', "")[20..].to_owned();
    let agency = store
        .create_agency(NewAgency {
            slug: format!("records-{suffix}"),
            name: "Service des archives".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    let person = store
        .create_person(NewPerson {
            agency_id: agency.id.clone(),
            email: format!("agent-{suffix}@example.gov"),
            display_name: "Agent Dupont".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: Some("hash".to_owned()),
        })
        .await
        .unwrap();
    (agency, person)
}

async fn conversation_of(store: &dyn Store, owner: &str, text: &str) -> crate::Conversation {
    store
        .create_conversation(
            NewConversation {
                owner: owner.to_owned(),
                title: Some(format!("About {text}")),
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![message("user", text), message("assistant", "Noted.")],
        )
        .await
        .unwrap()
        .0
}

/// What people write is never in the database in clear: message contents,
/// their metadata and conversation titles are sealed, yet read back whole.
pub async fn content_is_sealed_at_rest(store: &dyn Store, read: RawRead<'_>) {
    let (_, person) = agency_and_person(store).await;
    let secret = "Jean-Baptiste Quéré, NIR 1 85 05 78 006 084 36";
    let (conversation, _) = store
        .create_conversation(
            NewConversation {
                owner: person.id.clone(),
                title: Some(format!("Dossier {secret}")),
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![crate::NewMessage {
                role: "user".to_owned(),
                content: secret.to_owned(),
                metadata: Some(format!("{{\"note\":\"{secret}\"}}")),
            }],
        )
        .await
        .unwrap();
    store
        .append_messages(
            &conversation.id,
            vec![message("assistant", &format!("Reçu, {secret}"))],
        )
        .await
        .unwrap();
    store
        .rename_conversation(&person.id, &conversation.id, &format!("Renamed {secret}"))
        .await
        .unwrap();
    let mut raw = read(format!(
        "SELECT content FROM messages WHERE conversation_id = '{}'",
        conversation.id
    ))
    .await
    .unwrap();
    raw.extend(
        read(format!(
            "SELECT metadata FROM messages WHERE conversation_id = '{}'",
            conversation.id
        ))
        .await
        .unwrap(),
    );
    raw.extend(
        read(format!(
            "SELECT title FROM conversations WHERE id = '{}'",
            conversation.id
        ))
        .await
        .unwrap(),
    );
    assert_eq!(raw.len(), 5);
    for value in raw.iter().flatten() {
        assert!(
            !value.contains("Quéré") && !value.contains("006 084"),
            "stored in clear: {value}"
        );
    }
    // Read back whole through the store, and found by search.
    let messages = store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(messages[0].content, secret);
    assert_eq!(
        messages[0].metadata.as_deref(),
        Some(format!("{{\"note\":\"{secret}\"}}").as_str())
    );
    assert_eq!(messages[1].content, format!("Reçu, {secret}"));
    let fetched = store.get_conversation(&conversation.id).await.unwrap().unwrap();
    assert_eq!(fetched.title, Some(format!("Renamed {secret}")));
    let found = store.search_conversations(&person.id, "QUÉRÉ", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].title, fetched.title);
    // A ciphertext moved to another row does not open there.
    let other = conversation_of(store, &person.id, "autre chose").await;
    let stolen = read(format!(
        "SELECT content FROM messages WHERE conversation_id = '{}' AND seq = 0",
        conversation.id
    ))
    .await
    .unwrap();
    let stolen = stolen[0].clone().unwrap();
    read(format!(
        "UPDATE messages SET content = '{stolen}' WHERE conversation_id = '{}' AND seq = 0 RETURNING content",
        other.id
    ))
    .await
    .unwrap();
    assert!(store.list_messages(&other.id).await.is_err());
}

pub async fn rotation_reencryption_and_retirement_keep_everything_readable(store: &dyn Store) {
    let (agency, person) = agency_and_person(store).await;
    let before = conversation_of(store, &person.id, "avant la rotation").await;
    let first = store
        .list_data_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.agency_id == agency.id)
        .unwrap();
    assert_eq!(first.state, "active");
    assert_eq!(first.sealed_rows, 3);
    let second = store.rotate_data_key(&agency.id).await.unwrap();
    assert_ne!(second.id, first.id);
    let after = conversation_of(store, &person.id, "après la rotation").await;
    let keys = store.list_data_keys().await.unwrap();
    let state_of = |keys: &[crate::DataKeyInfo], id: &str| {
        keys.iter()
            .find(|key| key.id == id)
            .map(|key| (key.state.clone(), key.sealed_rows))
            .unwrap()
    };
    assert_eq!(state_of(&keys, &first.id), ("previous".to_owned(), 3));
    assert_eq!(state_of(&keys, &second.id), ("active".to_owned(), 3));
    // Nothing retires while rows are sealed with the previous key.
    assert!(store
        .retire_data_keys(crate::now() + Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    // Re-encryption moves them (in batches), then the key retires.
    let mut moved = 0;
    loop {
        let done = store.reencrypt(2).await.unwrap();
        if done == 0 {
            break;
        }
        moved += done;
    }
    assert!(moved >= 3, "moved {moved}");
    let retired = store
        .retire_data_keys(crate::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert!(retired.contains(&first.id));
    let keys = store.list_data_keys().await.unwrap();
    assert_eq!(state_of(&keys, &first.id), ("retired".to_owned(), 0));
    assert_eq!(state_of(&keys, &second.id), ("active".to_owned(), 6));
    for conversation in [&before, &after] {
        let messages = store.list_messages(&conversation.id).await.unwrap();
        assert_eq!(messages[1].content, "Noted.");
    }
    assert_eq!(
        store
            .get_conversation(&before.id)
            .await
            .unwrap()
            .unwrap()
            .title
            .as_deref(),
        Some("About avant la rotation")
    );
}

pub async fn destroyed_keys_make_an_agencys_content_unreadable_for_good(store: &dyn Store) {
    let (shredded, person) = agency_and_person(store).await;
    let (_, neighbour) = agency_and_person(store).await;
    let gone = conversation_of(store, &person.id, "à détruire").await;
    let kept = conversation_of(store, &neighbour.id, "à garder").await;
    let destroyed = store.destroy_data_keys(&shredded.id).await.unwrap();
    assert_eq!(destroyed.len(), 1);
    assert!(matches!(
        store.list_messages(&gone.id).await,
        Err(StoreError::Destroyed { .. })
    ));
    assert!(matches!(
        store.get_conversation(&gone.id).await,
        Err(StoreError::Destroyed { .. })
    ));
    // Searching skips what cannot be read; the neighbour is untouched.
    assert!(store
        .search_conversations(&person.id, "détruire", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.list_messages(&kept.id).await.unwrap()[0].content,
        "à garder"
    );
    // Re-encryption leaves destroyed content alone, and a second
    // destruction finds nothing.
    assert_eq!(store.reencrypt(100).await.unwrap(), 0);
    assert!(store.destroy_data_keys(&shredded.id).await.unwrap().is_empty());
    let keys = store.list_data_keys().await.unwrap();
    let key = keys.iter().find(|key| key.id == destroyed[0]).unwrap();
    assert_eq!(key.state, "destroyed");
}

pub async fn legal_holds_stop_deletion_purge_and_erasure_until_released(store: &dyn Store) {
    let (agency, person) = agency_and_person(store).await;
    let (_, free) = agency_and_person(store).await;
    let held = conversation_of(store, &person.id, "pièce du dossier").await;
    let hold = store
        .create_legal_hold(NewLegalHold {
            agency_id: agency.id.clone(),
            person_id: person.id.clone(),
            matter: "Affaire 2026-117".to_owned(),
            reason: "Contentieux en cours devant le tribunal administratif".to_owned(),
            created_by: "admin".to_owned(),
        })
        .await
        .unwrap();
    // A person of another agency cannot be held through this agency.
    assert!(matches!(
        store
            .create_legal_hold(NewLegalHold {
                person_id: free.id.clone(),
                ..NewLegalHold {
                    agency_id: agency.id.clone(),
                    person_id: String::new(),
                    matter: "x".to_owned(),
                    reason: "x".to_owned(),
                    created_by: "admin".to_owned(),
                }
            })
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.active_holds(&person.id).await.unwrap().len(), 1);
    let on_hold = |result: Result<_, StoreError>| matches!(result, Err(StoreError::OnHold { matter }) if matter == "Affaire 2026-117");
    assert!(on_hold(
        store.delete_conversation(&person.id, &held.id).await.map(|_| ())
    ));
    assert!(on_hold(
        store
            .replace_messages_from(&held.id, 1, vec![message("assistant", "autre")])
            .await
            .map(|_| ())
    ));
    assert!(on_hold(store.erase_person(&person.id, true).await.map(|_| ())));
    // Appending still works: a hold keeps, it does not freeze.
    store
        .append_messages(&held.id, vec![message("user", "suite")])
        .await
        .unwrap();
    let future = crate::now() + Duration::days(1);
    assert!(store
        .purge_conversations(&agency.id, future, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.list_messages(&held.id).await.unwrap().len(), 3);
    // Released: the purge takes it.
    let released = store
        .release_legal_hold(&agency.id, &hold.id, "admin-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.released_by.as_deref(), Some("admin-2"));
    assert!(store
        .release_legal_hold(&agency.id, &hold.id, "admin-2")
        .await
        .unwrap()
        .is_none());
    assert!(store.active_holds(&person.id).await.unwrap().is_empty());
    let purged = store.purge_conversations(&agency.id, future, 100).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].id, held.id);
    assert!(store.get_conversation(&held.id).await.unwrap().is_none());
    assert!(store.list_messages(&held.id).await.unwrap().is_empty());
    let holds = store.list_legal_holds(&agency.id).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert!(holds[0].released_at.is_some());
}

pub async fn retention_purges_only_what_is_due_in_its_agency(store: &dyn Store) {
    let (agency, person) = agency_and_person(store).await;
    let (other_agency, other) = agency_and_person(store).await;
    let old = conversation_of(store, &person.id, "ancien").await;
    let elsewhere = conversation_of(store, &other.id, "ailleurs").await;
    let rule = RetentionRule {
        agency_id: agency.id.clone(),
        record_type: "conversations".to_owned(),
        days: 90,
        updated_at: crate::now(),
        updated_by: "admin".to_owned(),
    };
    store.put_retention_rule(&rule).await.unwrap();
    store
        .put_retention_rule(&RetentionRule {
            days: 30,
            ..rule.clone()
        })
        .await
        .unwrap();
    let rules = store.list_retention_rules(&agency.id).await.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].days, 30);
    assert!(store
        .all_retention_rules()
        .await
        .unwrap()
        .iter()
        .any(|r| r.agency_id == agency.id));
    assert!(matches!(
        store
            .put_retention_rule(&RetentionRule {
                record_type: "everything".to_owned(),
                ..rule.clone()
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Not yet due.
    let now = crate::now();
    assert!(store
        .purge_conversations(&agency.id, now - Duration::days(30), 100)
        .await
        .unwrap()
        .is_empty());
    // Due (a cut-off after its last activity): only this agency's go.
    let purged = store
        .purge_conversations(&agency.id, now + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(
        purged.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec![old.id.as_str()]
    );
    assert!(store.get_conversation(&elsewhere.id).await.unwrap().is_some());
    let _ = other_agency;
    assert!(store
        .delete_retention_rule(&agency.id, "conversations")
        .await
        .unwrap());
    assert!(!store
        .delete_retention_rule(&agency.id, "conversations")
        .await
        .unwrap());
}

pub async fn erasure_removes_a_persons_content_and_can_anonymise_the_account(store: &dyn Store) {
    let (_, person) = agency_and_person(store).await;
    let (_, neighbour) = agency_and_person(store).await;
    let mine = conversation_of(store, &person.id, "à effacer").await;
    let theirs = conversation_of(store, &neighbour.id, "à garder").await;
    let answer = store.list_messages(&mine.id).await.unwrap()[1].clone();
    store
        .put_feedback(&crate::Feedback {
            message_id: answer.id.clone(),
            conversation_id: mine.id.clone(),
            person_id: person.id.clone(),
            agency_id: person.agency_id.clone(),
            model: "tiny".to_owned(),
            rating: 1,
            comment: Some("utile".to_owned()),
            updated_at: crate::now(),
        })
        .await
        .unwrap();
    // Their own collection goes too; the agency's stays.
    let own = |owner_kind: &str, owner_id: &str| crate::NewCollection {
        agency_id: person.agency_id.clone(),
        owner_kind: owner_kind.to_owned(),
        owner_id: owner_id.to_owned(),
        name: "Dossiers".to_owned(),
        description: None,
        classification: "unclassified".to_owned(),
        created_by: person.id.clone(),
    };
    let private = store.create_collection(own("person", &person.id)).await.unwrap();
    let shared = store.create_collection(own("agency", "")).await.unwrap();
    let upload = |collection_id: i64, body: &str| crate::NewUpload {
        collection_id,
        name: format!("{body}.txt"),
        metadata: None,
        classification: None,
        content_hash: format!("hash-{body}"),
        format: "text".to_owned(),
        bytes: body.as_bytes().to_vec(),
        created_by: person.id.clone(),
    };
    let document = store
        .add_upload(upload(private.id, "mine"))
        .await
        .unwrap()
        .document()
        .clone();
    store.add_upload(upload(shared.id, "agency")).await.unwrap();
    let head = store.knowledge_head().await.unwrap();
    let report = store.erase_person(&person.id, false).await.unwrap();
    assert_eq!(
        (
            report.conversations,
            report.messages,
            report.feedback,
            report.collections,
            report.documents,
            report.account
        ),
        (1, 2, 1, 1, 1, false)
    );
    assert!(store.get_collection(private.id).await.unwrap().is_none());
    assert!(store.get_document(document.id).await.unwrap().is_none());
    assert!(store.get_collection(shared.id).await.unwrap().is_some());
    let changes = store.knowledge_changes(head, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.document_id, c.op.as_str()))
            .collect::<Vec<_>>(),
        vec![(document.id, "remove")]
    );
    assert!(store.get_conversation(&mine.id).await.unwrap().is_none());
    assert!(store.get_conversation(&theirs.id).await.unwrap().is_some());
    assert_eq!(
        store.get_person(&person.id).await.unwrap().unwrap().display_name,
        "Agent Dupont"
    );
    let report = store.erase_person(&person.id, true).await.unwrap();
    assert!(report.account);
    let erased = store.get_person(&person.id).await.unwrap().unwrap();
    assert_eq!(erased.status, "disabled");
    assert!(!erased.email.contains("agent-"));
    assert_eq!(erased.display_name, "Erased account");
    assert!(matches!(
        store.erase_person("nobody", false).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn clearance_is_kept_with_the_person(store: &dyn Store) {
    let (_, person) = agency_and_person(store).await;
    assert_eq!(person.clearance, None);
    assert!(store.set_clearance(&person.id, Some("cui")).await.unwrap());
    assert_eq!(
        store
            .get_person(&person.id)
            .await
            .unwrap()
            .unwrap()
            .clearance
            .as_deref(),
        Some("cui")
    );
    assert!(store.set_clearance(&person.id, None).await.unwrap());
    assert_eq!(
        store.get_person(&person.id).await.unwrap().unwrap().clearance,
        None
    );
    assert!(!store.set_clearance("nobody", Some("cui")).await.unwrap());
}
