//! The knowledge API in the shapes of the Albert / OpenGateLLM API
//! (integer ids, `object` fields, `rff_k`), so its clients work against
//! Civitas: collections, documents, passages and search. Civitas adds
//! classification, owners and sharing, versions, ingestion status and
//! reasons for failure. Changes and searches are recorded by the audit
//! layer (`collection.access`, `document.access`), never their content.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use civitas_identity::policy::{self, CollectionAccess};
use civitas_knowledge::{Format, Method};
use civitas_store::{
    Collection, CollectionChange, CollectionShare, Document, NewCollection, NewUpload, StoredChunk,
    UploadOutcome,
};
use civitas_types::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::knowledge::{collection_for, passage_meta, readable_collections};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub object: &'static str,
    pub data: Vec<T>,
}

fn list<T>(data: Vec<T>) -> Json<List<T>> {
    Json(List { object: "list", data })
}

/// A collection as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    pub object: &'static str,
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// `public` (everyone in the agency reads it) or `private`.
    pub visibility: &'static str,
    /// Who owns it: `agency`, `group` or `person`, and which.
    pub owner_kind: String,
    pub owner: String,
    pub classification: String,
    /// What the caller may do: `read` or `write`.
    pub access: &'static str,
    pub shares: Vec<CollectionShare>,
    pub documents: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn collection_view(collection: Collection, access: CollectionAccess) -> CollectionView {
    CollectionView {
        object: "collection",
        id: collection.id,
        visibility: if collection.owner_kind == "agency" {
            "public"
        } else {
            "private"
        },
        owner: if collection.owner_kind == "agency" {
            collection.agency_id.clone()
        } else {
            collection.owner_id.clone()
        },
        owner_kind: collection.owner_kind,
        name: collection.name,
        description: collection.description,
        classification: collection.classification,
        access: match access {
            CollectionAccess::Read => "read",
            CollectionAccess::Write => "write",
        },
        shares: collection.shares,
        documents: collection.documents,
        created_at: collection.created_at.timestamp(),
        updated_at: collection.updated_at.timestamp(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `private` (default: the caller's own) or `public` (the agency's,
    /// read by everyone in it; needs an administrator).
    #[serde(default)]
    pub visibility: Option<String>,
    /// Owned by this group of the caller's instead (its members write).
    #[serde(default)]
    pub group: Option<String>,
    /// Level id; default the lowest.
    #[serde(default)]
    pub classification: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid(
            "name",
            "a name of 1 to 200 characters is required",
        ));
    }
    Ok(name.to_owned())
}

fn check_level(
    state: &AppState,
    principal: &civitas_identity::Principal,
    level: Option<&str>,
) -> Result<String, ApiError> {
    let levels = &state.config.classifications;
    let level = match level {
        Some(level) => level.to_owned(),
        None => levels.first().map(|level| level.id.clone()).unwrap_or_default(),
    };
    if !levels.iter().any(|known| known.id == level) {
        return Err(ApiError::invalid(
            "classification",
            format!("unknown classification level `{level}`"),
        ));
    }
    if !crate::classification::cleared_for(state, principal, &level) {
        return Err(ApiError::new(
            ErrorCode::ClearanceInsufficient,
            format!("your clearance is below `{level}`"),
        )
        .with_param("classification"));
    }
    Ok(level)
}

#[utoipa::path(post, path = "/v1/collections", operation_id = "createCollection", tag = "knowledge",
    summary = "Create a collection (yours, a group's or, for administrators, the agency's)",
    request_body = CreateCollection,
    responses((status = 201, body = Created), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CreateCollection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let collection = create(&state, &principal, body).await?;
    Ok((StatusCode::CREATED, Json(Created { id: collection.id })))
}

/// Creates a collection for `principal`; shared by the API and the
/// workspace.
pub async fn create(
    state: &AppState,
    principal: &civitas_identity::Principal,
    body: CreateCollection,
) -> Result<Collection, ApiError> {
    let name = check_name(&body.name)?;
    let classification = check_level(state, principal, body.classification.as_deref())?;
    let (owner_kind, owner_id) = match (body.visibility.as_deref(), body.group) {
        (Some("public"), _) => {
            if policy::authorize_agency(
                principal,
                std::slice::from_ref(&principal.agency_id().to_owned()),
                policy::KNOWLEDGE_MANAGERS,
            )
            .is_err()
            {
                return Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    "only an administrator creates the agency's collections",
                )
                .with_param("visibility"));
            }
            ("agency", String::new())
        }
        (Some("private") | None, Some(group)) => {
            if !principal.grants.groups.iter().any(|known| known.id == group) {
                return Err(ApiError::invalid("group", "you are not a member of this group"));
            }
            ("group", group)
        }
        (Some("private") | None, None) => ("person", principal.id().to_owned()),
        (Some(_), _) => return Err(ApiError::invalid("visibility", "`private` or `public`")),
    };
    let collection = state
        .store
        .create_collection(NewCollection {
            agency_id: principal.agency_id().to_owned(),
            owner_kind: owner_kind.to_owned(),
            owner_id,
            name,
            description: body.description.filter(|text| !text.trim().is_empty()),
            classification,
            created_by: principal.id().to_owned(),
        })
        .await
        .map_err(ApiError::storage)?;
    Ok(collection)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Only those whose name contains this.
    pub name: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    /// Documents of this collection.
    pub collection: Option<i64>,
}

#[utoipa::path(get, path = "/v1/collections", operation_id = "listCollections", tag = "knowledge",
    summary = "The collections you may read",
    params(Page),
    responses((status = 200, body = List<CollectionView>)),
    security(("bearer" = [])))]
pub async fn list_collections(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<List<CollectionView>>, ApiError> {
    let readable = readable_collections(&state, &principal).await?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1_000);
    Ok(list(
        readable
            .into_iter()
            .filter(|(collection, _)| {
                page.name
                    .as_deref()
                    .is_none_or(|name| collection.name.to_lowercase().contains(&name.to_lowercase()))
            })
            .skip(page.offset.unwrap_or(0))
            .take(limit)
            .map(|(collection, access)| collection_view(collection, access))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/collections/{collection}", operation_id = "getCollection", tag = "knowledge",
    summary = "One collection",
    params(("collection" = i64, Path)),
    responses((status = 200, body = CollectionView), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<CollectionView>, ApiError> {
    let collection = collection_for(&state, &principal, id, CollectionAccess::Read).await?;
    let access = policy::collection_access(&principal, &collection).unwrap_or(CollectionAccess::Read);
    Ok(Json(collection_view(collection, access)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    pub name: Option<String>,
    pub description: Option<String>,
    pub classification: Option<String>,
    /// Replaces the groups it is shared with.
    pub shares: Option<Vec<ShareRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub group_id: String,
    /// `read` or `write`.
    pub access: String,
}

#[utoipa::path(patch, path = "/v1/collections/{collection}", operation_id = "updateCollection", tag = "knowledge",
    summary = "Rename, describe, reclassify or share a collection",
    params(("collection" = i64, Path)), request_body = UpdateCollection,
    responses((status = 204), (status = 400, body = civitas_types::ErrorBody), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_collection(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UpdateCollection>,
) -> Result<StatusCode, ApiError> {
    let collection = collection_for(&state, &principal, id, CollectionAccess::Write).await?;
    let classification = match body.classification.as_deref() {
        Some(level) => Some(check_level(&state, &principal, Some(level))?),
        None => None,
    };
    let shares = match body.shares {
        Some(shares) => {
            let groups = state
                .store
                .list_groups(&collection.agency_id)
                .await
                .map_err(ApiError::storage)?;
            let mut checked = Vec::new();
            for share in shares {
                if share.access != "read" && share.access != "write" {
                    return Err(ApiError::invalid("shares", "access is `read` or `write`"));
                }
                if !groups.iter().any(|group| group.id == share.group_id) {
                    return Err(ApiError::new(
                        ErrorCode::UnresolvedReference,
                        format!("no group `{}` in this agency", share.group_id),
                    )
                    .with_param("shares"));
                }
                checked.push(CollectionShare {
                    group_id: share.group_id,
                    access: share.access,
                });
            }
            Some(checked)
        }
        None => None,
    };
    let change = CollectionChange {
        name: body.name.as_deref().map(check_name).transpose()?,
        description: body
            .description
            .map(|text| Some(text).filter(|text| !text.trim().is_empty())),
        classification,
        shares,
    };
    state
        .store
        .update_collection(id, change)
        .await
        .map_err(ApiError::storage)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/collections/{collection}", operation_id = "deleteCollection", tag = "knowledge",
    summary = "Delete a collection with its documents, files and passages (from every replica's index too)",
    params(("collection" = i64, Path)),
    responses((status = 204), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    collection_for(&state, &principal, id, CollectionAccess::Write).await?;
    state
        .store
        .delete_collection(id)
        .await
        .map_err(ApiError::storage)?;
    let _ = crate::knowledge::sync(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A document as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    pub object: &'static str,
    pub id: i64,
    pub name: String,
    pub collection_id: i64,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub chunks: i64,
    pub version: i64,
    /// `queued`, `processing`, `ready` or `failed`.
    pub status: String,
    pub progress: i64,
    /// Why it failed: a stable code and a reason to act on.
    pub error: Option<DocumentError>,
    pub format: String,
    pub size_bytes: i64,
    pub pages: Option<i64>,
    pub language: Option<String>,
    pub classification: String,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentError {
    pub code: String,
    pub message: String,
}

pub fn document_view(document: Document) -> DocumentView {
    DocumentView {
        object: "document",
        id: document.id,
        error: document.error_code.map(|code| DocumentError {
            code,
            message: document.error_message.unwrap_or_default(),
        }),
        name: document.name,
        collection_id: document.collection_id,
        created_at: document.created_at.timestamp(),
        updated_at: document.updated_at.timestamp(),
        chunks: document.chunks,
        version: document.version,
        status: document.status,
        progress: document.progress,
        format: document.format,
        size_bytes: document.size_bytes,
        pages: document.pages,
        language: document.language,
        classification: document.classification,
        metadata: document
            .metadata
            .and_then(|text| serde_json::from_str(&text).ok()),
    }
}

/// What an upload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    pub id: i64,
    /// `created`, `new_version` or `duplicate` (identical content is
    /// already in the collection: nothing was added).
    pub outcome: &'static str,
    pub document: DocumentView,
}

/// Stores an uploaded file and queues it; shared by the API and the
/// workspace.
pub async fn upload(
    state: &AppState,
    principal: &civitas_identity::Principal,
    collection_id: i64,
    name: String,
    bytes: Vec<u8>,
    metadata: Option<String>,
    classification: Option<String>,
) -> Result<UploadOutcome, ApiError> {
    let collection = collection_for(state, principal, collection_id, CollectionAccess::Write).await?;
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::invalid(
            "file",
            "the file needs a name of 1 to 255 characters",
        ));
    }
    let limit = state.knowledge.limits.max_file_bytes;
    if bytes.len() > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file is {} bytes; the limit is {limit} bytes", bytes.len()),
        )
        .with_param("file"));
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let format = Format::detect(&name, &bytes).map_err(|error| {
        ApiError::new(ErrorCode::UnsupportedFileType, error.to_string()).with_param("file")
    })?;
    if let Some(metadata) = &metadata {
        match serde_json::from_str::<serde_json::Value>(metadata) {
            Ok(serde_json::Value::Object(map)) if metadata.len() <= 8_192 && map.len() <= 32 => {}
            _ => {
                return Err(ApiError::invalid(
                    "metadata",
                    "metadata is a JSON object of at most 32 keys and 8 KiB",
                ))
            }
        }
    }
    let classification = match classification {
        Some(level) => {
            let level = check_level(state, principal, Some(&level))?;
            let levels = &state.config.classifications;
            let rank = |id: &str| levels.iter().position(|known| known.id == id).unwrap_or(0);
            // A document is never below its collection.
            Some(if rank(&level) < rank(&collection.classification) {
                collection.classification.clone()
            } else {
                level
            })
        }
        None => None,
    };
    let outcome = state
        .store
        .add_upload(NewUpload {
            collection_id,
            name,
            metadata,
            classification,
            content_hash: civitas_knowledge::content_hash(&bytes),
            format: format.as_str().to_owned(),
            bytes,
            created_by: principal.id().to_owned(),
        })
        .await
        .map_err(ApiError::storage)?;
    state.knowledge.wake();
    Ok(outcome)
}

/// The parts of an upload form.
struct UploadForm {
    file: Option<(String, Vec<u8>)>,
    collection: Option<i64>,
    metadata: Option<String>,
    classification: Option<String>,
    /// OpenAI's `purpose` (files API), kept for the answer.
    purpose: Option<String>,
}

/// Reads a multipart upload: `file`, `collection`, `metadata`,
/// `classification`, `purpose`, and Albert's `request` (a JSON object
/// that may name the `collection`); other parts (Albert's chunking
/// parameters) are accepted and left to Civitas' chunking.
async fn read_upload(state: &AppState, mut multipart: Multipart) -> Result<UploadForm, ApiError> {
    let bad = |message: String| ApiError::new(ErrorCode::InvalidRequestBody, message);
    let too_large = |what: &str| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the {what} is larger than the limit of {} bytes",
                state.knowledge.limits.max_file_bytes
            ),
        )
    };
    let collection_id = |text: &str| {
        text.trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("collection", "a collection id (an integer)"))
    };
    let mut form = UploadForm {
        file: None,
        collection: None,
        metadata: None,
        classification: None,
        purpose: None,
    };
    while let Some(field) = multipart.next_field().await.map_err(|error| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large("upload")
        } else {
            bad(format!("the multipart body is malformed: {}", error.body_text()))
        }
    })? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(|error| {
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large("file").with_param("file")
                } else {
                    bad(format!("the file could not be read: {}", error.body_text()))
                }
            })?;
            form.file = Some((file_name, bytes.to_vec()));
            continue;
        }
        if !matches!(
            name.as_str(),
            "collection" | "metadata" | "classification" | "purpose" | "request"
        ) {
            continue;
        }
        let text = field.text().await.map_err(|error| bad(error.body_text()))?;
        match name.as_str() {
            "collection" => form.collection = Some(collection_id(&text)?),
            "metadata" => form.metadata = Some(text).filter(|text| !text.trim().is_empty()),
            "classification" => {
                form.classification = Some(text.trim().to_owned()).filter(|text| !text.is_empty())
            }
            "purpose" => form.purpose = Some(text.trim().to_owned()).filter(|text| !text.is_empty()),
            _ => {
                let request: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|_| ApiError::invalid("request", "a JSON object, e.g. {\"collection\": 3}"))?;
                match &request["collection"] {
                    serde_json::Value::Number(number) => form.collection = number.as_i64(),
                    serde_json::Value::String(text) => form.collection = Some(collection_id(text)?),
                    _ => {}
                }
            }
        }
    }
    Ok(form)
}

/// Stores a read upload form's file in its collection.
async fn upload_form(
    state: &AppState,
    principal: &civitas_identity::Principal,
    form: UploadForm,
) -> Result<UploadOutcome, ApiError> {
    let (file_name, bytes) = form
        .file
        .ok_or_else(|| ApiError::invalid("file", "a `file` part is required"))?;
    let collection = form.collection.ok_or_else(|| {
        ApiError::invalid(
            "collection",
            "files are kept in collections: name one (a `collection` part; with the openai package, extra_body)",
        )
    })?;
    upload(
        state,
        principal,
        collection,
        file_name,
        bytes,
        form.metadata,
        form.classification,
    )
    .await
}

fn outcome_label(outcome: &UploadOutcome) -> (StatusCode, &'static str) {
    match outcome {
        UploadOutcome::Created(_) => (StatusCode::CREATED, "created"),
        UploadOutcome::NewVersion(_) => (StatusCode::CREATED, "new_version"),
        UploadOutcome::Duplicate(_) => (StatusCode::OK, "duplicate"),
    }
}

#[utoipa::path(post, path = "/v1/documents", operation_id = "createDocument", tag = "knowledge",
    summary = "Upload a file into a collection (multipart: `file`, `collection`, optional `metadata` JSON and `classification`); ingestion runs in the background",
    responses((status = 201, body = UploadResult), (status = 200, body = UploadResult, description = "identical content already in the collection"),
        (status = 400, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody), (status = 413, body = civitas_types::ErrorBody), (status = 415, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_document(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    multipart: Multipart,
) -> Result<(StatusCode, Json<UploadResult>), ApiError> {
    let form = read_upload(&state, multipart).await?;
    let outcome = upload_form(&state, &principal, form).await?;
    let (status, label) = outcome_label(&outcome);
    let document = outcome.document().clone();
    Ok((
        status,
        Json(UploadResult {
            id: document.id,
            outcome: label,
            document: document_view(document),
        }),
    ))
}

/// OpenAI's file object, for a file kept as a collection's document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FileObject {
    /// `file-` and the document's id.
    pub id: String,
    /// Always `file`.
    pub object: &'static str,
    pub bytes: i64,
    pub created_at: i64,
    pub filename: String,
    pub purpose: String,
    /// `uploaded`: ingestion runs in the background (see the document).
    pub status: &'static str,
    pub document_id: i64,
    pub collection_id: i64,
    /// `created`, `new_version` or `duplicate`.
    pub outcome: &'static str,
}

#[utoipa::path(post, path = "/v1/files", operation_id = "createFile", tag = "knowledge",
    summary = "Upload a file (OpenAI's files API, Albert's `request`): it is kept as a document of the `collection` named and ingested in the background",
    responses((status = 200, body = FileObject),
        (status = 400, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody), (status = 413, body = civitas_types::ErrorBody), (status = 415, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_file(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    multipart: Multipart,
) -> Result<Json<FileObject>, ApiError> {
    let form = read_upload(&state, multipart).await?;
    let purpose = form.purpose.clone().unwrap_or_else(|| "assistants".to_owned());
    let outcome = upload_form(&state, &principal, form).await?;
    let (_, label) = outcome_label(&outcome);
    let document = outcome.document();
    Ok(Json(FileObject {
        id: format!("file-{}", document.id),
        object: "file",
        bytes: document.size_bytes,
        created_at: document.created_at.timestamp(),
        filename: document.name.clone(),
        purpose,
        status: "uploaded",
        document_id: document.id,
        collection_id: document.collection_id,
        outcome: label,
    }))
}

/// The document, if the caller may read its collection.
pub async fn document_for(
    state: &AppState,
    principal: &civitas_identity::Principal,
    id: i64,
    need: CollectionAccess,
) -> Result<Document, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no document {id}"));
    let document = state
        .store
        .get_document(id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    collection_for(state, principal, document.collection_id, need)
        .await
        .map_err(|error| {
            if error.code == ErrorCode::NotFound {
                not_found()
            } else {
                error
            }
        })?;
    if !crate::classification::cleared_for(state, principal, &document.classification) {
        return Err(not_found());
    }
    Ok(document)
}

#[utoipa::path(get, path = "/v1/documents", operation_id = "listDocuments", tag = "knowledge",
    summary = "Documents of a collection, with their ingestion status",
    params(Page),
    responses((status = 200, body = List<DocumentView>), (status = 400, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_documents(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<List<DocumentView>>, ApiError> {
    let collections: Vec<i64> = match page.collection {
        Some(id) => vec![
            collection_for(&state, &principal, id, CollectionAccess::Read)
                .await?
                .id,
        ],
        None => readable_collections(&state, &principal)
            .await?
            .into_iter()
            .map(|(collection, _)| collection.id)
            .collect(),
    };
    let limit = page.limit.unwrap_or(100).clamp(1, 1_000);
    let offset = page.offset.unwrap_or(0);
    let mut documents = Vec::new();
    for collection in collections {
        let mut after = 0;
        loop {
            let batch = state
                .store
                .list_documents(collection, after, 500)
                .await
                .map_err(ApiError::storage)?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            documents.extend(batch.into_iter().filter(|document| {
                crate::classification::cleared_for(&state, &principal, &document.classification)
                    && page
                        .name
                        .as_deref()
                        .is_none_or(|name| document.name.to_lowercase().contains(&name.to_lowercase()))
            }));
            if documents.len() >= offset + limit {
                break;
            }
        }
        if documents.len() >= offset + limit {
            break;
        }
    }
    Ok(list(
        documents
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(document_view)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/documents/{document}", operation_id = "getDocument", tag = "knowledge",
    summary = "One document and its ingestion status",
    params(("document" = i64, Path)),
    responses((status = 200, body = DocumentView), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_document(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<DocumentView>, ApiError> {
    Ok(Json(document_view(
        document_for(&state, &principal, id, CollectionAccess::Read).await?,
    )))
}

#[utoipa::path(delete, path = "/v1/documents/{document}", operation_id = "deleteDocument", tag = "knowledge",
    summary = "Delete a document with every version, file and passage (from every replica's index too)",
    params(("document" = i64, Path)),
    responses((status = 204), (status = 403, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_document(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    document_for(&state, &principal, id, CollectionAccess::Write).await?;
    state.store.delete_document(id).await.map_err(ApiError::storage)?;
    let _ = crate::knowledge::sync(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A passage as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkView {
    pub object: &'static str,
    pub id: i64,
    pub collection_id: i64,
    pub document_id: i64,
    pub content: String,
    /// `document_name`, `document_version`, `section`, `page_start`,
    /// `page_end`, `position`.
    pub metadata: serde_json::Value,
    pub created_at: i64,
}

pub fn chunk_view(chunk: StoredChunk, document_name: &str) -> ChunkView {
    let meta = passage_meta(&chunk);
    ChunkView {
        object: "chunk",
        id: chunk.id,
        collection_id: chunk.collection_id,
        document_id: chunk.document_id,
        metadata: serde_json::json!({
            "document_name": document_name,
            "document_version": chunk.version,
            "section": meta.section,
            "page_start": meta.page_start,
            "page_end": meta.page_end,
            "position": chunk.seq,
        }),
        content: chunk.content,
        created_at: chunk.created_at.timestamp(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChunkPage {
    pub offset: Option<i64>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/chunks/{document}", operation_id = "listChunks", tag = "knowledge",
    summary = "A document's passages in order",
    params(("document" = i64, Path), ChunkPage),
    responses((status = 200, body = List<ChunkView>), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_chunks(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<i64>,
    Query(page): Query<ChunkPage>,
) -> Result<Json<List<ChunkView>>, ApiError> {
    let document = document_for(&state, &principal, id, CollectionAccess::Read).await?;
    let chunks = state
        .store
        .list_chunks(
            id,
            page.offset.unwrap_or(0),
            page.limit.unwrap_or(100).clamp(1, 1_000),
        )
        .await
        .map_err(ApiError::storage)?;
    Ok(list(
        chunks
            .into_iter()
            .map(|chunk| chunk_view(chunk, &document.name))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/chunks/{document}/{chunk}", operation_id = "getChunk", tag = "knowledge",
    summary = "One passage of a document",
    params(("document" = i64, Path), ("chunk" = i64, Path)),
    responses((status = 200, body = ChunkView), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_chunk(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((document_id, chunk_id)): Path<(i64, i64)>,
) -> Result<Json<ChunkView>, ApiError> {
    let document = document_for(&state, &principal, document_id, CollectionAccess::Read).await?;
    let chunk = state
        .store
        .get_chunks(&[chunk_id])
        .await
        .map_err(ApiError::storage)?
        .into_iter()
        .find(|chunk| chunk.document_id == document_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no passage {chunk_id} in document {document_id}"),
            )
        })?;
    Ok(Json(chunk_view(chunk, &document.name)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub prompt: String,
    /// Collection ids; empty or absent: every collection you may read.
    #[serde(default)]
    pub collections: Vec<i64>,
    /// `semantic`, `lexical` or `hybrid` (default).
    #[serde(default)]
    pub method: Option<String>,
    /// Results (Albert's `k`, kept for its clients), 1 to 200.
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    /// The constant of reciprocal rank fusion (hybrid), default 60;
    /// giving it asks for reciprocal rank fusion.
    #[serde(default, alias = "rrf_k")]
    pub rff_k: Option<f32>,
    /// Hybrid: `relative` (default: scores scaled per list, 0.6 lexical)
    /// or `rrf` (reciprocal rank fusion, ranks only).
    #[serde(default)]
    pub fusion: Option<String>,
    /// Semantic: drop passages below this cosine similarity.
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// Only passages of these documents.
    #[serde(default)]
    pub documents: Option<Vec<i64>>,
    /// Only documents added at or after this time (RFC 3339).
    #[serde(default)]
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only documents added before this time (RFC 3339).
    #[serde(default)]
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only documents whose metadata holds each of these values (strings,
    /// numbers or booleans), e.g. `{"source": "decree"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub method: String,
    pub score: f32,
    pub chunk: ChunkView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub object: &'static str,
    pub data: Vec<SearchResult>,
}

#[utoipa::path(post, path = "/v1/search", operation_id = "search", tag = "knowledge",
    summary = "Search collections you may read: BM25, vectors or both fused; only passages within your access and clearance are ever scored",
    request_body = SearchBody,
    responses((status = 200, body = SearchResults), (status = 400, body = civitas_types::ErrorBody), (status = 404, body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchResults>, ApiError> {
    let prompt = body.prompt.trim();
    if prompt.is_empty() || prompt.len() > 8_192 {
        return Err(ApiError::invalid(
            "prompt",
            "a prompt of 1 to 8,192 bytes is required",
        ));
    }
    let method = match body.method.as_deref().unwrap_or("hybrid") {
        "semantic" => Method::Semantic,
        "lexical" => Method::Lexical,
        "hybrid" => Method::Hybrid,
        _ => return Err(ApiError::invalid("method", "`semantic`, `lexical` or `hybrid`")),
    };
    let limit = body.limit.or(body.k).unwrap_or(10);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 200"));
    }
    let offset = body.offset.unwrap_or(0).min(1_000);
    let fusion = match (body.fusion.as_deref(), body.rff_k) {
        (Some("rrf"), _) | (None, Some(_)) => civitas_knowledge::Fusion::Rrf,
        (Some("relative") | None, _) => civitas_knowledge::Fusion::DEFAULT,
        (Some(_), _) => return Err(ApiError::invalid("fusion", "`relative` or `rrf`")),
    };
    let rrf_k = body.rff_k.unwrap_or(60.0);
    if !(rrf_k.is_finite() && rrf_k >= 0.0) {
        return Err(ApiError::invalid("rff_k", "a number of 0 or more"));
    }
    if let Some(threshold) = body.score_threshold {
        if !(-1.0..=1.0).contains(&threshold) {
            return Err(ApiError::invalid("score_threshold", "between -1 and 1"));
        }
        if method != Method::Semantic && threshold > 0.0 {
            return Err(ApiError::invalid(
                "score_threshold",
                "a score threshold applies to `semantic` search only",
            ));
        }
    }
    let mut narrowing = crate::knowledge::Narrowing {
        documents: body.documents.as_ref().map(|ids| ids.iter().copied().collect()),
        created_after: body.created_after.map(|at| at.timestamp()),
        created_before: body.created_before.map(|at| at.timestamp()),
        metadata: Vec::new(),
    };
    if body
        .documents
        .as_ref()
        .is_some_and(|ids| ids.is_empty() || ids.len() > 1_000)
    {
        return Err(ApiError::invalid("documents", "between 1 and 1,000 document ids"));
    }
    for (key, value) in body.metadata.iter().flatten() {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => {
                return Err(ApiError::invalid(
                    "metadata",
                    "each value is a string, a number or a boolean",
                ))
            }
        };
        narrowing.metadata.push((key.clone(), value));
    }
    let found = crate::knowledge::search(
        &state,
        &principal,
        crate::knowledge::Search {
            query: prompt,
            collections: &body.collections,
            method,
            k: offset + limit,
            rrf_k,
            fusion,
            score_threshold: body.score_threshold,
            narrowing,
        },
    )
    .await?;
    let mut names = std::collections::HashMap::new();
    let mut data = Vec::new();
    for hit in found.into_iter().skip(offset) {
        let name = match names.get(&hit.chunk.document_id) {
            Some(name) => String::clone(name),
            None => {
                let name = state
                    .store
                    .get_document(hit.chunk.document_id)
                    .await
                    .map_err(ApiError::storage)?
                    .map(|document| document.name)
                    .unwrap_or_default();
                names.insert(hit.chunk.document_id, name.clone());
                name
            }
        };
        data.push(SearchResult {
            method: format!("{:?}", hit.method).to_lowercase(),
            score: hit.score,
            chunk: chunk_view(hit.chunk, &name),
        });
    }
    Ok(Json(SearchResults { object: "list", data }))
}
