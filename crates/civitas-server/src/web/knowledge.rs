//! The Knowledge pages: the collections a person may read, a new
//! collection, a collection's documents with their ingestion status and
//! the reason of each failure, uploads of several files at once (the
//! design system's file input takes them dropped or chosen), deletion.
//! Each change is the API's own call (`routes::knowledge`), with the same
//! checks, recorded as `collection.access` / `document.access`.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use civitas_audit::Action;
use civitas_identity::policy::{self, CollectionAccess};
use civitas_identity::Principal;
use civitas_store::UploadOutcome;
use serde::Deserialize;
use serde_json::json;

use super::admin::Choice;
use super::i18n::Texts;
use super::{language, level_label, open_page, page, signed_in, LanguageQuery, Shell};
use crate::knowledge::{collection_for, readable_collections};
use crate::state::AppState;

pub struct CollectionRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub level: String,
    pub documents: i64,
    pub access: String,
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct KnowledgePage {
    t: Texts,
    shell: Shell,
    collections: Vec<CollectionRow>,
    levels: Vec<Choice>,
    can_publish: bool,
    error: Option<String>,
}

pub struct DocumentRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub reason: Option<String>,
    pub chunks: i64,
    pub version: i64,
}

#[derive(Template)]
#[template(path = "knowledge_collection.html")]
struct CollectionPage {
    t: Texts,
    shell: Shell,
    id: i64,
    name: String,
    owner: String,
    level: String,
    access: String,
    can_write: bool,
    max_size: String,
    documents: Vec<DocumentRow>,
    pending: bool,
    notices: Vec<String>,
    error: Option<String>,
}

fn owner_of(t: Texts, kind: &str) -> String {
    t.get(match kind {
        "agency" => "knowledge-owner-agency",
        "group" => "knowledge-owner-group",
        _ => "knowledge-owner-person",
    })
}

fn access_of(t: Texts, access: CollectionAccess) -> String {
    t.get(match access {
        CollectionAccess::Read => "knowledge-access-read",
        CollectionAccess::Write => "knowledge-access-write",
    })
}

fn can_publish(principal: &Principal) -> bool {
    policy::authorize_agency(
        principal,
        &[principal.agency_id().to_owned()],
        policy::KNOWLEDGE_MANAGERS,
    )
    .is_ok()
}

async fn render_index(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let collections = readable_collections(state, principal)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(collection, access)| CollectionRow {
            id: collection.id,
            owner: owner_of(t, &collection.owner_kind),
            level: super::preview::label_of(state, t, &collection.classification),
            documents: collection.documents,
            access: access_of(t, access),
            description: collection.description.unwrap_or_default(),
            name: collection.name,
        })
        .collect();
    let levels = state
        .config
        .classifications
        .iter()
        .filter(|level| crate::classification::cleared_for(state, principal, &level.id))
        .enumerate()
        .map(|(index, level)| Choice {
            value: level.id.clone(),
            label: level_label(level, t),
            selected: index == 0,
        })
        .collect();
    let template = KnowledgePage {
        t,
        shell: Shell::of(state, t, principal, None, "knowledge"),
        collections,
        levels,
        can_publish: can_publish(principal),
        error,
    };
    page(status, &template, HeaderMap::new())
}

pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    render_index(&state, t, &principal, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct NewCollectionForm {
    csrf_token: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    classification: String,
}

/// Records a workspace change with what was asked (never content).
async fn record(state: &AppState, principal: &Principal, action: Action, details: serde_json::Value) {
    let mut details = details;
    details["via"] = json!("workspace");
    let entry = crate::audit::entry(
        principal,
        &crate::audit::Origin::default(),
        action,
        None,
        civitas_audit::Outcome::Success,
        details,
    );
    if let Err(error) = state.store.append_audit(vec![entry]).await {
        tracing::error!(%error, "a knowledge change could not be recorded");
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewCollectionForm>,
) -> Response {
    let t = language(&headers, None);
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return Redirect::to("/sign-in").into_response();
    };
    if form.name.trim().is_empty() {
        return render_index(
            &state,
            t,
            &principal,
            Some(t.get("knowledge-name-required")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let body = crate::routes::knowledge::CreateCollection {
        name: form.name,
        description: Some(form.description),
        visibility: Some(form.visibility).filter(|value| !value.is_empty()),
        group: None,
        classification: Some(form.classification).filter(|value| !value.is_empty()),
    };
    match crate::routes::knowledge::create(&state, &principal, body).await {
        Ok(collection) => {
            record(
                &state,
                &principal,
                Action::CollectionAccess,
                json!({"created": collection.id}),
            )
            .await;
            Redirect::to(&format!("/knowledge/{}", collection.id)).into_response()
        }
        Err(error) => {
            render_index(
                &state,
                t,
                &principal,
                Some(error.message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

fn status_text(t: Texts, status: &str, progress: i64) -> String {
    match status {
        "queued" => t.get("knowledge-status-queued"),
        "processing" => t.with(
            "knowledge-status-processing",
            &[("percent", &progress.to_string())],
        ),
        "ready" => t.get("knowledge-status-ready"),
        _ => t.get("knowledge-status-failed"),
    }
}

async fn render_collection(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    id: i64,
    notices: Vec<String>,
    error: Option<String>,
) -> Response {
    let collection = match collection_for(state, principal, id, CollectionAccess::Read).await {
        Ok(collection) => collection,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let access = policy::collection_access(principal, &collection).unwrap_or(CollectionAccess::Read);
    let mut documents = Vec::new();
    let mut after = 0;
    loop {
        let batch = state
            .store
            .list_documents(id, after, 500)
            .await
            .unwrap_or_default();
        let Some(last) = batch.last() else { break };
        after = last.id;
        documents.extend(batch.into_iter().filter(|document| {
            crate::classification::cleared_for(state, principal, &document.classification)
        }));
    }
    let pending = documents
        .iter()
        .any(|document| document.status == "queued" || document.status == "processing");
    let rows = documents
        .into_iter()
        .map(|document| DocumentRow {
            id: document.id,
            status: status_text(t, &document.status, document.progress),
            reason: document.error_message,
            chunks: document.chunks,
            version: document.version,
            name: document.name,
        })
        .collect();
    let megabytes = state.knowledge.limits.max_file_bytes / (1 << 20);
    let template = CollectionPage {
        t,
        shell: Shell::of(state, t, principal, Some(&collection.classification), "knowledge"),
        id,
        owner: owner_of(t, &collection.owner_kind),
        level: super::preview::label_of(state, t, &collection.classification),
        access: access_of(t, access),
        can_write: access == CollectionAccess::Write,
        max_size: format!("{megabytes} MB"),
        documents: rows,
        pending,
        notices,
        error,
        name: collection.name,
    };
    page(StatusCode::OK, &template, HeaderMap::new())
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    render_collection(&state, t, &principal, id, Vec::new(), None).await
}

/// Several files in one form; each is queued, reported as a duplicate or
/// refused with its reason, and the page says which.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    mut multipart: Multipart,
) -> Response {
    let t = language(&headers, None);
    let mut csrf = String::new();
    let mut files = Vec::new();
    let mut error = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                if name == "csrf_token" {
                    csrf = field.text().await.unwrap_or_default();
                } else if name == "files" {
                    let file_name = field.file_name().unwrap_or("upload").to_owned();
                    match field.bytes().await {
                        Ok(bytes) if !bytes.is_empty() => files.push((file_name, bytes.to_vec())),
                        Ok(_) => {}
                        Err(failure) => {
                            error = Some(failure.body_text());
                            break;
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(failure) => {
                error = Some(failure.body_text());
                break;
            }
        }
    }
    let Some(principal) = signed_in(&state, &headers, false, &csrf).await else {
        return Redirect::to("/sign-in").into_response();
    };
    let mut notices = Vec::new();
    for (name, bytes) in files {
        let outcome =
            crate::routes::knowledge::upload(&state, &principal, id, name.clone(), bytes, None, None).await;
        notices.push(match outcome {
            Ok(UploadOutcome::Created(document)) => {
                record(
                    &state,
                    &principal,
                    Action::DocumentAccess,
                    json!({"uploaded": document.id, "collection_id": id}),
                )
                .await;
                t.with("knowledge-queued", &[("name", &name)])
            }
            Ok(UploadOutcome::NewVersion(document)) => {
                record(
                    &state,
                    &principal,
                    Action::DocumentAccess,
                    json!({"uploaded": document.id, "version": document.version}),
                )
                .await;
                t.with(
                    "knowledge-new-version",
                    &[("name", &name), ("version", &document.version.to_string())],
                )
            }
            Ok(UploadOutcome::Duplicate(document)) => t.with(
                "knowledge-duplicate",
                &[("name", &name), ("existing", &document.name)],
            ),
            Err(refused) => t.with(
                "knowledge-refused",
                &[("name", &name), ("reason", &refused.message)],
            ),
        });
    }
    render_collection(&state, t, &principal, id, notices, error).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn delete_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, document)): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let t = language(&headers, None);
    let Some(principal) = signed_in(&state, &headers, false, &form.csrf_token).await else {
        return Redirect::to("/sign-in").into_response();
    };
    let deleted = async {
        let found =
            crate::routes::knowledge::document_for(&state, &principal, document, CollectionAccess::Write)
                .await?;
        if found.collection_id != id {
            return Err(crate::error::ApiError::new(
                civitas_types::ErrorCode::NotFound,
                "no such document",
            ));
        }
        state
            .store
            .delete_document(document)
            .await
            .map_err(crate::error::ApiError::storage)?;
        let _ = crate::knowledge::sync(&state).await;
        Ok(())
    }
    .await;
    match deleted {
        Ok(()) => {
            record(
                &state,
                &principal,
                Action::DocumentAccess,
                json!({"deleted": document, "collection_id": id}),
            )
            .await;
            render_collection(&state, t, &principal, id, vec![t.get("knowledge-deleted")], None).await
        }
        Err(error) => render_collection(&state, t, &principal, id, Vec::new(), Some(error.message)).await,
    }
}
