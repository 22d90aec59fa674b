//! Conformance of knowledge: collections and shares, uploads with
//! versions and de-duplication, the durable ingestion queue (leases,
//! stale workers), passages, the change log, deletion, sealing.

use super::protection::RawRead;
use chrono::Duration;

use crate::{
    CollectionChange, CollectionShare, NewAgency, NewChunk, NewCollection, NewLegalHold, NewPerson,
    NewUpload, Processed, Store, StoreError, UploadOutcome,
};

async fn collection(store: &dyn Store, name: &str) -> crate::Collection {
    let suffix = crate::new_id().replace('-', "")[20..].to_owned();
    let agency = store
        .create_agency(NewAgency {
            slug: format!("kb-{suffix}"),
            name: "Agence".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap();
    store
        .create_collection(NewCollection {
            agency_id: agency.id,
            owner_kind: "agency".to_owned(),
            owner_id: String::new(),
            name: name.to_owned(),
            description: Some("Règlement intérieur".to_owned()),
            classification: "unclassified".to_owned(),
            created_by: "person-1".to_owned(),
        })
        .await
        .unwrap()
}

fn upload(collection_id: i64, name: &str, body: &str) -> NewUpload {
    NewUpload {
        collection_id,
        name: name.to_owned(),
        metadata: Some(r#"{"source_title":"Handbook"}"#.to_owned()),
        classification: None,
        content_hash: format!("hash-of-{body}"),
        format: "text".to_owned(),
        bytes: body.as_bytes().to_vec(),
        created_by: "person-1".to_owned(),
    }
}

fn processed(texts: &[&str]) -> Processed {
    Processed {
        pages: Some(2),
        language: Some("en".to_owned()),
        chunks: texts
            .iter()
            .enumerate()
            .map(|(seq, text)| NewChunk {
                seq: seq as i64,
                content: (*text).to_owned(),
                metadata: r#"{"section":["Leave"],"page_start":1}"#.to_owned(),
                vector: Some(vec![0.5, -0.25, seq as f32]),
            })
            .collect(),
    }
}

pub async fn collections_keep_their_shares_and_count_documents(store: &dyn Store) {
    let created = collection(store, "Handbook").await;
    assert!(created.id > 0);
    let changed = store
        .update_collection(
            created.id,
            CollectionChange {
                name: Some("Employee handbook".to_owned()),
                shares: Some(vec![
                    CollectionShare {
                        group_id: "g-read".to_owned(),
                        access: "read".to_owned(),
                    },
                    CollectionShare {
                        group_id: "g-write".to_owned(),
                        access: "write".to_owned(),
                    },
                ]),
                ..CollectionChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "Employee handbook");
    assert_eq!(changed.description.as_deref(), Some("Règlement intérieur"));
    assert_eq!(changed.shares.len(), 2);
    let duplicate = store
        .update_collection(
            created.id,
            CollectionChange {
                name: Some("not applied".to_owned()),
                shares: Some(vec![
                    CollectionShare {
                        group_id: "g".to_owned(),
                        access: "read".to_owned(),
                    },
                    CollectionShare {
                        group_id: "g".to_owned(),
                        access: "write".to_owned(),
                    },
                ]),
                ..CollectionChange::default()
            },
        )
        .await;
    assert!(matches!(duplicate, Err(StoreError::Invalid(_))), "{duplicate:?}");
    // All or nothing: neither the name nor the shares changed.
    let fetched = store.get_collection(created.id).await.unwrap().unwrap();
    assert_eq!(fetched.name, "Employee handbook");
    assert_eq!(fetched.shares.len(), 2);
    store
        .add_upload(upload(created.id, "a.txt", "alpha"))
        .await
        .unwrap();
    let listed = store.list_collections(&created.agency_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].documents, 1);
    assert_eq!(listed[0].shares, fetched.shares);
    assert!(matches!(
        store
            .update_collection(i64::MAX, CollectionChange::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn uploads_are_versioned_deduplicated_and_ingested_once(store: &dyn Store) {
    let collection = collection(store, "Versions").await;
    let head = store.knowledge_head().await.unwrap();
    let first = store
        .add_upload(upload(collection.id, "leave.md", "v1"))
        .await
        .unwrap();
    let UploadOutcome::Created(document) = &first else {
        panic!("{first:?}")
    };
    assert_eq!((document.version, document.status.as_str()), (1, "queued"));
    assert_eq!(document.name, "leave.md");
    assert_eq!(
        document.metadata.as_deref(),
        Some(r#"{"source_title":"Handbook"}"#)
    );
    // Same bytes under another name: not added twice.
    let again = store
        .add_upload(upload(collection.id, "copy.md", "v1"))
        .await
        .unwrap();
    assert_eq!(again, UploadOutcome::Duplicate(document.clone()));

    let job = store.claim_ingestion_job("worker-a", 60).await.unwrap().unwrap();
    assert_eq!((job.document_id, job.version, job.attempts), (document.id, 1, 1));
    assert_eq!(job.agency_id, collection.agency_id);
    assert_eq!(store.document_file(document.id, 1).await.unwrap(), b"v1");
    // Held: nobody else gets it.
    assert!(store.claim_ingestion_job("worker-b", 60).await.unwrap().is_none());
    assert!(store.ingestion_progress(&job, "worker-a", 40, 60).await.unwrap());
    assert_eq!(
        store.get_document(document.id).await.unwrap().unwrap().progress,
        40
    );
    assert!(!store.ingestion_progress(&job, "worker-b", 50, 60).await.unwrap());
    assert!(store
        .complete_ingestion(
            &job,
            "worker-a",
            processed(&["Annual leave: 25 days.", "Sick leave."])
        )
        .await
        .unwrap());
    let ready = store.get_document(document.id).await.unwrap().unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.chunks, ready.pages),
        ("ready", 2, Some(2))
    );
    let chunks = store.list_chunks(document.id, 0, 10).await.unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.content.as_str()).collect::<Vec<_>>(),
        ["Annual leave: 25 days.", "Sick leave."]
    );
    assert_eq!(chunks[1].vector.as_deref(), Some(&[0.5, -0.25, 1.0][..]));
    assert_eq!(chunks[0].collection_id, collection.id);
    let by_id = store.get_chunks(&[chunks[1].id, i64::MAX]).await.unwrap();
    assert_eq!(by_id, vec![chunks[1].clone()]);
    let changes = store.knowledge_changes(head, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].document_id, changes[0].op.as_str()),
        (document.id, "upsert")
    );

    // The same name with other bytes is version 2; version 1 stays
    // searchable until version 2 is ready.
    let second = store
        .add_upload(upload(collection.id, "leave.md", "v2"))
        .await
        .unwrap();
    let UploadOutcome::NewVersion(updated) = &second else {
        panic!("{second:?}")
    };
    assert_eq!(
        (updated.id, updated.version, updated.status.as_str()),
        (document.id, 2, "queued")
    );
    assert_eq!(store.list_chunks(document.id, 0, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .ready_documents(0, 1_000)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.id == document.id)
            .count(),
        1
    );
    let job = store.claim_ingestion_job("worker-a", 60).await.unwrap().unwrap();
    assert_eq!(job.version, 2);
    assert_eq!(store.document_file(document.id, 2).await.unwrap(), b"v2");
    assert_eq!(
        store.document_file(document.id, 1).await.unwrap(),
        b"v1",
        "earlier versions are kept"
    );
    assert!(store
        .complete_ingestion(&job, "worker-a", processed(&["Annual leave: 27 days."]))
        .await
        .unwrap());
    let chunks = store.list_chunks(document.id, 0, 10).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        (chunks[0].version, chunks[0].content.as_str()),
        (2, "Annual leave: 27 days.")
    );

    // A rebuild logs every indexed document again; a re-ingestion queues
    // every current version.
    let head = store.knowledge_head().await.unwrap();
    assert!(store.reindex_all().await.unwrap() >= 1);
    let changes = store.knowledge_changes(head, 10_000).await.unwrap();
    assert!(changes
        .iter()
        .any(|change| change.document_id == document.id && change.op == "upsert"));
    assert!(store.requeue_all().await.unwrap() >= 1);
    let mut seen = false;
    while let Some(job) = store.claim_ingestion_job("worker-r", 60).await.unwrap() {
        seen |= job.document_id == document.id && job.version == 2;
        store
            .fail_ingestion(&job, "worker-r", "test", "drained")
            .await
            .unwrap();
    }
    assert!(seen);
}

pub async fn a_job_whose_worker_died_is_taken_again_and_the_stale_worker_writes_nothing(store: &dyn Store) {
    let collection = collection(store, "Leases").await;
    let UploadOutcome::Created(document) = store
        .add_upload(upload(collection.id, "a.pdf", "lease"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let stale = store
        .claim_ingestion_job("worker-dead", -1)
        .await
        .unwrap()
        .unwrap();
    // The lease already ran out: another worker takes the job.
    let job = store
        .claim_ingestion_job("worker-alive", 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.attempts), (stale.id, 2));
    assert!(!store
        .complete_ingestion(&stale, "worker-dead", processed(&["stale"]))
        .await
        .unwrap());
    assert!(!store
        .fail_ingestion(&stale, "worker-dead", "corrupt_file", "no")
        .await
        .unwrap());
    assert_eq!(store.list_chunks(document.id, 0, 10).await.unwrap().len(), 0);
    assert!(store
        .fail_ingestion(&job, "worker-alive", "encrypted_pdf", "this PDF is encrypted")
        .await
        .unwrap());
    let failed = store.get_document(document.id).await.unwrap().unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error_code.as_deref(), Some("encrypted_pdf"));
    assert_eq!(failed.error_message.as_deref(), Some("this PDF is encrypted"));
    assert!(store
        .claim_ingestion_job("worker-alive", 60)
        .await
        .unwrap()
        .is_none());
}

pub async fn deleting_documents_and_collections_removes_everything_and_logs_it(store: &dyn Store) {
    let collection = collection(store, "Deletion").await;
    let mut ids = Vec::new();
    for body in ["one", "two"] {
        let outcome = store
            .add_upload(upload(collection.id, &format!("{body}.txt"), body))
            .await
            .unwrap();
        let job = store.claim_ingestion_job("w", 60).await.unwrap().unwrap();
        assert!(store
            .complete_ingestion(&job, "w", processed(&[body]))
            .await
            .unwrap());
        ids.push(outcome.document().id);
    }
    let head = store.knowledge_head().await.unwrap();
    store.delete_document(ids[0]).await.unwrap();
    assert!(store.get_document(ids[0]).await.unwrap().is_none());
    assert!(store.list_chunks(ids[0], 0, 10).await.unwrap().is_empty());
    assert!(matches!(
        store.document_file(ids[0], 1).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_document(ids[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.delete_collection(collection.id).await.unwrap(),
        vec![ids[1]]
    );
    assert!(store.get_collection(collection.id).await.unwrap().is_none());
    assert!(store.get_document(ids[1]).await.unwrap().is_none());
    let changes = store.knowledge_changes(head, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.document_id, c.op.as_str()))
            .collect::<Vec<_>>(),
        vec![(ids[0], "remove"), (ids[1], "remove")]
    );
    assert_eq!(store.knowledge_head().await.unwrap(), changes[1].seq);
}

/// Rotation moves documents, files and passages to the new key (the old
/// one retires only then); retention removes what is due, except what a
/// person on legal hold uploaded and what is still being ingested.
pub async fn knowledge_follows_key_rotation_and_retention(store: &dyn Store) {
    let collection = collection(store, "Records").await;
    let agency = collection.agency_id.clone();
    let person = store
        .create_person(NewPerson {
            agency_id: agency.clone(),
            email: format!("archiviste-{}@example.gov", collection.id),
            display_name: "Archiviste".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: None,
        })
        .await
        .unwrap();
    let ready = store
        .add_upload(upload(collection.id, "leave.md", "rotated"))
        .await
        .unwrap()
        .document()
        .clone();
    let job = store.claim_ingestion_job("w", 60).await.unwrap().unwrap();
    assert!(store
        .complete_ingestion(&job, "w", processed(&["Annual leave.", "Sick leave."]))
        .await
        .unwrap());
    let key_of = |keys: &[crate::DataKeyInfo], state: &str| {
        keys.iter()
            .find(|key| key.agency_id == agency && key.state == state)
            .cloned()
            .unwrap()
    };
    let first = key_of(&store.list_data_keys().await.unwrap(), "active");
    // The document's name, its file and two passages.
    assert_eq!(first.sealed_rows, 4);
    let second = store.rotate_data_key(&agency).await.unwrap();
    assert!(store
        .retire_data_keys(crate::now() + Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    while store.reencrypt(3).await.unwrap() > 0 {}
    let keys = store.list_data_keys().await.unwrap();
    assert_eq!(keys.iter().find(|key| key.id == first.id).unwrap().sealed_rows, 0);
    assert_eq!(
        keys.iter().find(|key| key.id == second.id).unwrap().sealed_rows,
        4
    );
    assert!(store
        .retire_data_keys(crate::now() + Duration::seconds(1))
        .await
        .unwrap()
        .contains(&first.id));
    assert_eq!(
        store.get_document(ready.id).await.unwrap().unwrap().name,
        "leave.md"
    );
    assert_eq!(store.document_file(ready.id, 1).await.unwrap(), b"rotated");
    let chunks = store.list_chunks(ready.id, 0, 10).await.unwrap();
    assert_eq!(chunks[1].content, "Sick leave.");
    assert_eq!(chunks[1].vector.as_deref(), Some(&[0.5, -0.25, 1.0][..]));

    // Retention: the held person's upload and the queued one stay.
    let held = store
        .add_upload(NewUpload {
            created_by: person.id.clone(),
            ..upload(collection.id, "case.md", "held")
        })
        .await
        .unwrap()
        .document()
        .clone();
    let job = store.claim_ingestion_job("w", 60).await.unwrap().unwrap();
    assert!(store
        .complete_ingestion(&job, "w", processed(&["Case file."]))
        .await
        .unwrap());
    let queued = store
        .add_upload(upload(collection.id, "new.md", "queued"))
        .await
        .unwrap()
        .document()
        .clone();
    store
        .create_legal_hold(NewLegalHold {
            agency_id: agency.clone(),
            person_id: person.id.clone(),
            matter: "Affaire 2026-204".to_owned(),
            reason: "Contentieux".to_owned(),
            created_by: "admin".to_owned(),
        })
        .await
        .unwrap();
    let head = store.knowledge_head().await.unwrap();
    // Nothing is due yet a day ago, nor in another agency.
    assert!(store
        .purge_documents(&agency, crate::now() - Duration::days(1), 100)
        .await
        .unwrap()
        .is_empty());
    let other = crate::new_id();
    assert!(store
        .purge_documents(&other, crate::now() + Duration::seconds(1), 100)
        .await
        .unwrap()
        .is_empty());
    let purged = store
        .purge_documents(&agency, crate::now() + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(purged, vec![ready.id]);
    assert!(store.get_document(ready.id).await.unwrap().is_none());
    assert!(store.list_chunks(ready.id, 0, 10).await.unwrap().is_empty());
    assert!(store.get_document(held.id).await.unwrap().is_some());
    assert!(store.get_document(queued.id).await.unwrap().is_some());
    let changes = store.knowledge_changes(head, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.document_id, c.op.as_str()))
            .collect::<Vec<_>>(),
        vec![(ready.id, "remove")]
    );
    while let Some(job) = store.claim_ingestion_job("w", 60).await.unwrap() {
        store.fail_ingestion(&job, "w", "test", "drained").await.unwrap();
    }
}

/// Names, metadata, passages and vectors are not stored in clear.
pub async fn knowledge_is_sealed_at_rest(store: &dyn Store, read: RawRead<'_>) {
    let collection = collection(store, "Sealed").await;
    let mut secret = upload(collection.id, "dossier-Dupont-Jean.txt", "secret body");
    secret.metadata = Some(r#"{"author":"Jean Dupont"}"#.to_owned());
    let document = store.add_upload(secret).await.unwrap().document().clone();
    let job = store.claim_ingestion_job("w", 60).await.unwrap().unwrap();
    assert!(store
        .complete_ingestion(&job, "w", processed(&["Le dossier de Jean Dupont"]))
        .await
        .unwrap());
    for query in [
        format!("SELECT name FROM documents WHERE id = {}", document.id),
        format!("SELECT metadata FROM documents WHERE id = {}", document.id),
        format!("SELECT content FROM chunks WHERE document_id = {}", document.id),
        format!("SELECT metadata FROM chunks WHERE document_id = {}", document.id),
        format!("SELECT vector FROM chunks WHERE document_id = {}", document.id),
    ] {
        let values = read(query.clone()).await.unwrap();
        assert!(!values.is_empty(), "{query}");
        for value in values.into_iter().flatten() {
            assert!(
                !value.contains("Dupont") && !value.contains("Leave"),
                "{query}: {value}"
            );
        }
    }
    assert_eq!(
        store.get_document(document.id).await.unwrap().unwrap().name,
        "dossier-Dupont-Jean.txt"
    );
}
