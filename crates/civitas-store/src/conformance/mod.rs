//! The conformance suite: every `Store` implementation runs all of these.
//!
//! Use [`conformance_tests!`](crate::conformance_tests) in an integration
//! test with an expression that builds a fresh, migrated store.

// The suite is test code: a panic is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{NewConversation, NewMessage, RequestRecord, Store, StoreError};

mod audit;
mod identity;
mod knowledge;
mod protection;
mod workspace;
pub use audit::*;
use chrono::{Duration, Utc};
pub use identity::*;
pub use knowledge::*;
pub use protection::*;
pub use workspace::*;

pub(crate) fn message(role: &str, content: &str) -> NewMessage {
    NewMessage {
        role: role.to_owned(),
        content: content.to_owned(),
        metadata: None,
    }
}

pub async fn conversation_round_trip(store: &dyn Store) {
    let (conversation, messages) = store
        .create_conversation(
            NewConversation {
                owner: "key-1".to_owned(),
                title: Some("Permis de construire — délais".to_owned()),
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![message("user", "Bonjour ✓ 日本"), message("assistant", "Hello")],
        )
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].seq, 0);
    assert_eq!(messages[1].seq, 1);
    let fetched = store.get_conversation(&conversation.id).await.unwrap().unwrap();
    assert_eq!(fetched.id, conversation.id);
    assert_eq!(fetched.title.as_deref(), Some("Permis de construire — délais"));
    let listed = store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].content, "Bonjour ✓ 日本");
    assert_eq!(listed[1].role, "assistant");
}

pub async fn append_continues_sequence(store: &dyn Store) {
    let (conversation, _) = store
        .create_conversation(
            NewConversation {
                owner: "key-1".to_owned(),
                title: None,
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![message("user", "one")],
        )
        .await
        .unwrap();
    let appended = store
        .append_messages(
            &conversation.id,
            vec![message("assistant", "two"), message("user", "three")],
        )
        .await
        .unwrap();
    assert_eq!(appended.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    let all = store.list_messages(&conversation.id).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["one", "two", "three"]
    );
}

pub async fn append_to_missing_conversation_fails(store: &dyn Store) {
    let error = store
        .append_messages("no-such-conversation", vec![message("user", "x")])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    assert!(store
        .get_conversation("no-such-conversation")
        .await
        .unwrap()
        .is_none());
}

pub async fn failed_create_leaves_nothing(store: &dyn Store) {
    let before = store.list_conversations("key-atomic", 100).await.unwrap().len();
    let error = store
        .create_conversation(
            NewConversation {
                owner: "key-atomic".to_owned(),
                title: None,
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![message("user", "fine"), message("user", "bad\0byte")],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    let after = store.list_conversations("key-atomic", 100).await.unwrap().len();
    assert_eq!(before, after, "a half-written conversation was kept");
}

pub async fn conversations_listed_newest_first_per_owner(store: &dyn Store) {
    for title in ["first", "second", "third"] {
        store
            .create_conversation(
                NewConversation {
                    owner: "key-order".to_owned(),
                    title: Some(title.to_owned()),
                    model: "tiny".to_owned(),
                    classification: "unclassified".to_owned(),
                },
                vec![],
            )
            .await
            .unwrap();
    }
    store
        .create_conversation(
            NewConversation {
                owner: "someone-else".to_owned(),
                title: Some("other".to_owned()),
                model: "tiny".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![],
        )
        .await
        .unwrap();
    let listed = store.list_conversations("key-order", 2).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| c.title.as_deref().unwrap_or(""))
            .collect::<Vec<_>>(),
        vec!["third", "second"]
    );
}

pub async fn request_records_round_trip(store: &dyn Store) {
    let now = Utc::now();
    for (offset, status) in [(2, 200), (1, 429), (0, 500)] {
        store
            .record_request(&RequestRecord {
                request_id: format!("req-{status}"),
                at: now - Duration::seconds(offset),
                actor: "bootstrap".to_owned(),
                route: "/v1/chat/completions".to_owned(),
                model: Some("tiny".to_owned()),
                model_sha256: Some("ab".repeat(32)),
                prompt_tokens: 12,
                completion_tokens: 30,
                latency_ms: 250,
                agency_id: Some("agency-1".to_owned()),
                key_id: Some("key-1".to_owned()),
                cost_micros: 42,
                status,
                error_code: (status != 200).then(|| "queue_full".to_owned()),
            })
            .await
            .unwrap();
    }
    let records = store.list_request_records(10).await.unwrap();
    let ours: Vec<_> = records
        .iter()
        .filter(|r| r.request_id.starts_with("req-"))
        .collect();
    assert_eq!(ours.len(), 3);
    assert_eq!(ours[0].request_id, "req-500");
    assert_eq!(ours[0].error_code.as_deref(), Some("queue_full"));
    assert_eq!(ours[2].prompt_tokens, 12);
    assert_eq!(ours[2].agency_id.as_deref(), Some("agency-1"));
    assert_eq!(ours[2].cost_micros, 42);
    assert_eq!(ours[2].model_sha256.as_deref(), Some("ab".repeat(32).as_str()));
}

pub async fn ping_works(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async
/// expression giving `Option<impl Store>`; `None` skips (with a notice).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@case $make,
            conversation_round_trip,
            append_continues_sequence,
            append_to_missing_conversation_fails,
            failed_create_leaves_nothing,
            conversations_listed_newest_first_per_owner,
            request_records_round_trip,
            ping_works,
            agencies_nest_and_slugs_are_unique,
            groups_people_roles_and_models,
            resources_are_reached_only_through_their_agency,
            api_keys_are_found_by_hash_and_revoked,
            sessions_are_revoked_one_or_all,
            login_failures_count_and_reset,
            concurrent_admissions_respect_the_limit_exactly,
            leases_stay_within_the_limit_and_give_back,
            admission_is_all_or_nothing_across_scopes,
            charges_and_usage_summary,
            group_membership_from_the_group_side,
            oidc_states_are_consumed_once,
            holders_carry_the_person_and_a_version_that_moves,
            search_finds_titles_and_messages_of_the_owner_only,
            rename_and_delete_only_by_the_owner,
            replacing_the_tail_is_all_or_nothing,
            appending_moves_a_conversation_to_the_top,
            feedback_is_one_per_person_and_message,
            preferences_and_rules_acceptance,
            usage_is_summed_per_utc_day_and_model,
            audit_records_chain_and_read_back_exactly,
            an_action_and_its_record_commit_together_or_not_at_all,
            audit_search_filters_and_pages,
            concurrent_appends_keep_one_unbroken_chain,
            checkpoints_are_kept_once_per_size,
            break_glass_opens_once_for_its_time_and_counts_reads_with_their_record,
            rotation_reencryption_and_retirement_keep_everything_readable,
            destroyed_keys_make_an_agencys_content_unreadable_for_good,
            legal_holds_stop_deletion_purge_and_erasure_until_released,
            retention_purges_only_what_is_due_in_its_agency,
            erasure_removes_a_persons_content_and_can_anonymise_the_account,
            clearance_is_kept_with_the_person,
            collections_keep_their_shares_and_count_documents,
            uploads_are_versioned_deduplicated_and_ingested_once,
            a_job_whose_worker_died_is_taken_again_and_the_stale_worker_writes_nothing,
            deleting_documents_and_collections_removes_everything_and_logs_it,
            knowledge_follows_key_rotation_and_retention
        );
    };
    (@case $make:expr, $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(store) = $make.await else { return };
                $crate::conformance::$name(&store).await;
                $crate::Store::close(&store).await;
            }
        )*
    };
}
