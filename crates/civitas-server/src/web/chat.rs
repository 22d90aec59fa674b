//! The chat: the conversation list with search, a new conversation (model
//! and classification level), answers streamed as they are written (or,
//! without JavaScript, the page reloads when the answer is done), stop,
//! regenerate, edit and resend the last question, rename, delete, feedback
//! and a temporary chat that is never stored.
//!
//! Every change is a form carrying the session's CSRF token; the script
//! sends the same forms with `x-civitas-stream: 1` to get the answer as
//! server-sent events. Answers are stored as they end, stopped ones too.

use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use civitas_identity::Principal;
use civitas_store::{Conversation, Feedback, Message, NewConversation, NewMessage};
use civitas_types::openai::ChatCompletionRequest;
use civitas_types::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::i18n::{negotiate, Texts};
use super::{level_label, markdown, open_page, page, signed_in, signed_in_with_version, Shell};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generations::GenerationTicket;
use crate::limits;
use crate::middleware::{Caller, RequestId};
use crate::routes::chat::{self as completions, Keep};
use crate::state::AppState;

/// Conversations listed beside the chat.
const LIST_LIMIT: u32 = 50;
/// Longest question accepted from the workspace, in characters.
const MAX_QUESTION_CHARS: usize = 100_000;
/// Longest wait for an answer being stored before a page shows the thread.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// A conversation in the list.
pub struct ConversationLink {
    pub id: String,
    pub title: String,
    pub current: bool,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// How an answer was made, shown on demand.
pub struct Figures {
    pub model: String,
    pub prompt_tokens: String,
    pub completion_tokens: String,
    pub latency: String,
    pub first_token: Option<String>,
    /// The start of the weights' SHA-256.
    pub weights: Option<String>,
    pub request_id: Option<String>,
    /// Estimated energy and emissions (when the model's size is known).
    pub energy: Option<String>,
}

pub struct MessageView {
    pub id: String,
    pub role: String,
    pub author: String,
    pub time: String,
    /// Sanitized HTML of the content.
    pub html: String,
    /// The content as written (copy, edit).
    pub content: String,
    pub assistant: bool,
    pub last_assistant: bool,
    pub last_user: bool,
    pub stopped: bool,
    pub figures: Option<Figures>,
    pub rating: i64,
    pub comment: String,
    /// The numbered sources of a grounded answer.
    pub sources: Vec<SourceView>,
}

/// A source of a grounded answer, which its citation opens.
pub struct SourceView {
    pub number: usize,
    pub anchor: String,
    /// Document, section and page.
    pub title: String,
    pub content: String,
}

/// The sources kept with an answer.
fn sources_of(t: Texts, message_id: &str, metadata: Option<&str>) -> Vec<SourceView> {
    let Some(value) = metadata.and_then(|text| serde_json::from_str::<Value>(text).ok()) else {
        return Vec::new();
    };
    let Some(list) = value["sources"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|source| {
            let number = source["index"].as_u64().unwrap_or(0) as usize;
            let mut title = source["document_name"].as_str().unwrap_or_default().to_owned();
            let section: Vec<&str> = source["section"].as_array().map_or(Vec::new(), |parts| {
                parts.iter().filter_map(Value::as_str).collect()
            });
            if !section.is_empty() {
                title.push_str(" — ");
                title.push_str(&section.join(" › "));
            }
            if let Some(page) = source["page_start"].as_u64() {
                title.push_str(&format!(
                    " ({})",
                    t.with("source-page", &[("page", &page.to_string())])
                ));
            }
            SourceView {
                number,
                anchor: format!("src-{message_id}-{number}"),
                title: format!("[{number}] {title}"),
                content: source["content"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// Citations `[n]` of retrieved sources become links to them; others are
/// left as text.
fn link_citations(html: &str, message_id: &str, count: usize) -> String {
    if count == 0 {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let number = after
            .find(']')
            .and_then(|end| after[..end].parse::<usize>().ok().map(|n| (n, end)));
        match number {
            Some((n, end)) if (1..=count).contains(&n) => {
                out.push_str(&format!(
                    "<a class=\"civitas-cite\" href=\"#src-{message_id}-{n}\">[{n}]</a>"
                ));
                rest = &after[end + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub struct ConversationView {
    pub id: String,
    pub title: String,
    pub model: String,
    pub level: String,
    pub created: String,
    pub can_delete: bool,
    pub messages: Vec<MessageView>,
    /// The collections the last question was asked of.
    pub collections: Vec<i64>,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    t: Texts,
    shell: Shell,
    title: String,
    conversations: Vec<ConversationLink>,
    query: String,
    searched: bool,
    current: Option<ConversationView>,
    models: Vec<Choice>,
    levels: Vec<Choice>,
    /// Collections the person may ask of (none chosen: the model alone).
    collections: Vec<Choice>,
    temporary: bool,
    error: Option<String>,
    rename_error: Option<String>,
    draft: String,
}

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadFragment {
    t: Texts,
    shell: Shell,
    c: ConversationView,
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDeletePage {
    t: Texts,
    shell: Shell,
    id: String,
    title: String,
}

#[derive(Template)]
#[template(path = "temporary.html")]
struct TemporaryPage {
    t: Texts,
    shell: Shell,
    models: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage {
    pub t: Texts,
    pub shell: Shell,
    pub heading: String,
    pub text: String,
}

/// The chat models served that `principal` may use.
pub fn usable_models(state: &AppState, principal: &Principal) -> Vec<String> {
    let local = state.chat.iter().map(|engine| engine.info().name.clone());
    let remote = state
        .providers
        .iter()
        .flat_map(|provider| provider.models.iter().cloned());
    let mut models: Vec<String> = local
        .chain(remote)
        .filter(|model| principal.models.allows(model))
        .collect();
    models.dedup();
    models
}

/// The model options, the person's default (or the first) selected.
async fn model_choices(state: &AppState, principal: &Principal) -> Vec<Choice> {
    let models = usable_models(state, principal);
    let preferred = state
        .store
        .get_preferences(principal.id())
        .await
        .ok()
        .and_then(|preferences| preferences.default_model)
        .filter(|model| models.contains(model));
    let selected = preferred.or_else(|| models.first().cloned()).unwrap_or_default();
    models
        .into_iter()
        .map(|model| Choice {
            selected: model == selected,
            label: model.clone(),
            value: model,
        })
        .collect()
}

fn level_choices(state: &AppState, t: Texts) -> Vec<Choice> {
    state
        .config
        .classifications
        .iter()
        .map(|level| Choice {
            value: level.id.clone(),
            label: level_label(level, t),
            selected: level.id == state.config.workspace.default_classification,
        })
        .collect()
}

fn title_of(t: Texts, conversation: &Conversation) -> String {
    conversation
        .title
        .clone()
        .filter(|title| !title.trim().is_empty())
        .unwrap_or_else(|| t.get("untitled"))
}

fn can_delete(state: &AppState, conversation: &Conversation) -> bool {
    state
        .config
        .classifications
        .iter()
        .find(|level| level.id == conversation.classification)
        .is_none_or(|level| level.allow_delete)
}

/// What an answer's metadata says about how it was made.
fn figures(t: Texts, energy: &crate::energy::EnergyModel, metadata: Option<&str>) -> (Option<Figures>, bool) {
    let Some(generation) = metadata
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .map(|value| value["generation"].clone())
        .filter(Value::is_object)
    else {
        return (None, false);
    };
    let count = |key: &str| t.number(generation[key].as_i64().unwrap_or(0));
    let seconds = |key: &str| {
        generation[key]
            .as_f64()
            .map(|ms| t.with("seconds", &[("value", &t.decimal(ms / 1000.0, 2))]))
    };
    let stopped = generation["finish"] == "stopped";
    let model = generation["model"].as_str().unwrap_or_default();
    let tokens = |key: &str| generation[key].as_i64().unwrap_or(0);
    let estimate = energy.estimate(model, tokens("prompt_tokens"), tokens("completion_tokens"));
    let energy = energy.knows(model).then(|| {
        t.with(
            "energy-figure",
            &[
                ("wh", &t.decimal(estimate.watt_hours, 4)),
                ("grams", &t.decimal(estimate.grams_co2e, 4)),
            ],
        )
    });
    (
        Some(Figures {
            energy,
            model: model.to_owned(),
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
            latency: seconds("latency_ms").unwrap_or_default(),
            first_token: seconds("first_token_ms"),
            weights: generation["weights_sha256"]
                .as_str()
                .map(|sha| sha.chars().take(16).collect()),
            request_id: generation["request_id"].as_str().map(str::to_owned),
        }),
        stopped,
    )
}

/// The conversation as the page shows it.
pub fn view(
    state: &AppState,
    t: Texts,
    conversation: &Conversation,
    messages: &[Message],
    feedback: &[Feedback],
) -> ConversationView {
    let visible: Vec<&Message> = messages
        .iter()
        .filter(|message| matches!(message.role.as_str(), "user" | "assistant"))
        .collect();
    let last_assistant = visible
        .iter()
        .rev()
        .find(|message| message.role == "assistant")
        .map(|message| message.id.clone());
    let last_user = visible
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| message.id.clone());
    let remote_images = state.config.workspace.remote_images;
    let level = state
        .config
        .classifications
        .iter()
        .find(|level| level.id == conversation.classification)
        .map(|level| level_label(level, t))
        .unwrap_or_else(|| conversation.classification.clone());
    ConversationView {
        id: conversation.id.clone(),
        title: title_of(t, conversation),
        model: conversation.model.clone(),
        level,
        created: t.datetime(conversation.created_at),
        can_delete: can_delete(state, conversation),
        collections: asked_collections(messages).unwrap_or_default(),
        messages: visible
            .into_iter()
            .map(|message| {
                let assistant = message.role == "assistant";
                let (figures, stopped) = if assistant {
                    figures(t, &state.energy, message.metadata.as_deref())
                } else {
                    (None, false)
                };
                let given = feedback.iter().find(|given| given.message_id == message.id);
                let sources = if assistant {
                    sources_of(t, &message.id, message.metadata.as_deref())
                } else {
                    Vec::new()
                };
                let html = markdown::render(&message.content, remote_images);
                MessageView {
                    id: message.id.clone(),
                    role: message.role.clone(),
                    author: t.get(if assistant {
                        "author-assistant"
                    } else {
                        "author-you"
                    }),
                    time: t.datetime(message.created_at),
                    html: link_citations(&html, &message.id, sources.len()),
                    content: message.content.clone(),
                    assistant,
                    last_assistant: last_assistant.as_deref() == Some(message.id.as_str()),
                    last_user: last_user.as_deref() == Some(message.id.as_str()),
                    stopped,
                    figures,
                    rating: given.map_or(0, |given| given.rating),
                    comment: given.and_then(|given| given.comment.clone()).unwrap_or_default(),
                    sources,
                }
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChatQuery {
    lang: Option<String>,
    q: Option<String>,
}

/// What to show beside and in the chat.
struct PageParts {
    current: Option<ConversationView>,
    current_level: Option<String>,
    error: Option<String>,
    rename_error: Option<String>,
    draft: String,
    status: StatusCode,
}

/// The collections a question may be asked of; those the conversation's
/// last question used are chosen.
async fn collection_choices(
    state: &AppState,
    principal: &Principal,
    current: Option<&ConversationView>,
) -> Vec<Choice> {
    let used = current
        .map(|current| current.collections.as_slice())
        .unwrap_or_default();
    crate::knowledge::readable_collections(state, principal)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(collection, _)| Choice {
            value: collection.id.to_string(),
            selected: used.contains(&collection.id),
            label: collection.name,
        })
        .collect()
}

async fn render_chat(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    query: Option<String>,
    parts: PageParts,
) -> Response {
    let query = query.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    let listed = match &query {
        Some(q) => {
            state
                .store
                .search_conversations(principal.id(), q, LIST_LIMIT)
                .await
        }
        None => state.store.list_conversations(principal.id(), LIST_LIMIT).await,
    };
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => {
            tracing::error!(%error, "could not list conversations");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let current_id = parts.current.as_ref().map(|current| current.id.clone());
    let conversations = listed
        .iter()
        .map(|conversation| ConversationLink {
            id: conversation.id.clone(),
            title: title_of(t, conversation),
            current: current_id.as_deref() == Some(conversation.id.as_str()),
        })
        .collect();
    let title = parts
        .current
        .as_ref()
        .map(|current| current.title.clone())
        .unwrap_or_else(|| t.get("chat-new-title"));
    let collections = collection_choices(state, principal, parts.current.as_ref()).await;
    let chat = ChatPage {
        t,
        shell: Shell::of(state, t, principal, parts.current_level.as_deref(), "chat"),
        title,
        conversations,
        searched: query.is_some(),
        query: query.unwrap_or_default(),
        current: parts.current,
        models: model_choices(state, principal).await,
        levels: level_choices(state, t),
        collections,
        temporary: state.config.workspace.temporary_chat,
        error: parts.error,
        rename_error: parts.rename_error,
        draft: parts.draft,
    };
    page(parts.status, &chat, HeaderMap::new())
}

pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ChatQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    let parts = PageParts {
        current: None,
        current_level: None,
        error: None,
        rename_error: None,
        draft: String::new(),
        status: StatusCode::OK,
    };
    render_chat(&state, t, &principal, query.q, parts).await
}

/// One of `principal`'s conversations (another person's answers exactly
/// like a missing one).
async fn owned(state: &AppState, principal: &Principal, id: &str) -> Result<Conversation, Response> {
    match state.store.get_conversation(id).await {
        Ok(Some(conversation)) if conversation.owner == principal.id() => Ok(conversation),
        Ok(_) => Err(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::error!(%error, "could not read a conversation");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

async fn load_view(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    conversation: &Conversation,
) -> Option<ConversationView> {
    let messages = state.store.list_messages(&conversation.id).await.ok()?;
    let feedback = state
        .store
        .list_feedback(principal.id(), &conversation.id)
        .await
        .unwrap_or_default();
    Some(view(state, t, conversation, &messages, &feedback))
}

/// The conversation page, with an error or a field error when given.
async fn show_conversation(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    conversation: &Conversation,
    parts: PageParts,
) -> Response {
    state.generations.settled(&conversation.id, SETTLE_LIMIT).await;
    let Some(current) = load_view(state, t, principal, conversation).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let parts = PageParts {
        current: Some(current),
        current_level: Some(conversation.classification.clone()),
        ..parts
    };
    render_chat(state, t, principal, None, parts).await
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ChatQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    let conversation = match owned(&state, &principal, &id).await {
        Ok(conversation) => conversation,
        Err(_) => return not_found(&state, t, &principal),
    };
    let parts = PageParts {
        current: None,
        current_level: None,
        error: None,
        rename_error: None,
        draft: String::new(),
        status: StatusCode::OK,
    };
    show_conversation(&state, t, &principal, &conversation, parts).await
}

fn not_found(state: &AppState, t: Texts, principal: &Principal) -> Response {
    let notice = NoticePage {
        t,
        shell: Shell::of(state, t, principal, None, "chat"),
        heading: t.get("not-found-title"),
        text: t.get("not-found-text"),
    };
    page(StatusCode::NOT_FOUND, &notice, HeaderMap::new())
}

/// The messages alone, for the script to show the stored answer.
pub async fn thread(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let t = negotiate(&headers);
    let Some(principal) = signed_in(&state, &headers, true, "").await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let conversation = match owned(&state, &principal, &id).await {
        Ok(conversation) => conversation,
        Err(response) => return response,
    };
    state.generations.settled(&id, SETTLE_LIMIT).await;
    let Some(c) = load_view(&state, t, &principal, &conversation).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let fragment = ThreadFragment {
        t,
        shell: Shell::of(&state, t, &principal, Some(&conversation.classification), "chat"),
        c,
    };
    page(StatusCode::OK, &fragment, HeaderMap::new())
}

/// Whether the script asked for the answer as a stream.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get("x-civitas-stream")
        .is_some_and(|value| value.as_bytes() == b"1")
}

/// A person's words for an error of the chat.
fn error_text(t: Texts, error: &ApiError, request_id: &str) -> String {
    match error.code {
        ErrorCode::QueueFull | ErrorCode::ShuttingDown | ErrorCode::ModelUnavailable => {
            t.get("error-model-busy")
        }
        ErrorCode::RequestsPerMinuteExceeded
        | ErrorCode::TokensPerMinuteExceeded
        | ErrorCode::TokensPerDayExceeded => t.with(
            "error-limit",
            &[("seconds", &error.retry_after_seconds.unwrap_or(60).to_string())],
        ),
        ErrorCode::BudgetExceeded => t.get("error-budget"),
        ErrorCode::ModelNotAllowed | ErrorCode::ModelNotFound => t.get("error-model-not-allowed"),
        ErrorCode::ContextLengthExceeded => t.get("error-too-long"),
        ErrorCode::Conflict => t.get("error-busy"),
        ErrorCode::InvalidParameter if error.param.as_deref() == Some("classification") => {
            t.get("error-classification")
        }
        ErrorCode::InvalidParameter | ErrorCode::InvalidRequestBody => t.get("error-question"),
        ErrorCode::UpstreamError => t.get("error-upstream"),
        ErrorCode::ClassificationNotAllowed => t.get("error-classification-not-allowed"),
        ErrorCode::ClearanceInsufficient => t.get("error-clearance"),
        ErrorCode::LegalHoldActive => t.get("error-legal-hold"),
        _ => t.with("error-generic", &[("reference", request_id)]),
    }
}

/// An error for the script: the code, the person's words and the request id.
pub(super) fn json_error(t: Texts, error: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "error": {
            "code": error.code.as_str(),
            "message": error_text(t, error, request_id),
            "request_id": request_id,
        }
    });
    (status, Json(body)).into_response()
}

fn completion_request<'a>(
    model: &str,
    messages: impl Iterator<Item = (&'a str, &'a str)>,
    stream: bool,
) -> Result<ChatCompletionRequest, ApiError> {
    let messages: Vec<Value> = messages
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    serde_json::from_value(json!({
        "model": model,
        "messages": messages,
        "stream": stream,
        "stream_options": if stream { json!({ "include_usage": true }) } else { Value::Null },
    }))
    .map_err(|error| {
        tracing::error!(%error, "a workspace request did not form");
        ApiError::internal()
    })
}

/// A posted question form: its fields as `T`, and the collections to
/// answer from apart (one `collection` checkbox each, so the field
/// repeats; values that are not ids are ignored).
pub struct AskForm<T> {
    form: T,
    collections: Vec<i64>,
}

impl<S, T> axum::extract::FromRequest<S> for AskForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut fields = serde_json::Map::new();
        let mut collections = Vec::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if name == "collection" {
                if let Ok(id) = value.trim().parse::<i64>() {
                    if !collections.contains(&id) {
                        collections.push(id);
                    }
                }
            } else {
                fields.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
        let form = serde_json::from_value(Value::Object(fields))
            .map_err(|_| (StatusCode::UNPROCESSABLE_ENTITY, "the form is incomplete").into_response())?;
        Ok(Self { form, collections })
    }
}

/// The metadata of a question asked of `collections` (none: no metadata).
fn collections_metadata(collections: &[i64]) -> Option<String> {
    (!collections.is_empty()).then(|| json!({ "collections": collections }).to_string())
}

/// The collections a question was asked of.
fn collections_of(message: &civitas_store::Message) -> Vec<i64> {
    message
        .metadata
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|metadata| {
            metadata["collections"]
                .as_array()
                .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
        })
        .unwrap_or_default()
}

/// The collections the last question was asked of, if any.
fn asked_collections(messages: &[civitas_store::Message]) -> Option<Vec<i64>> {
    let last = messages.iter().rev().find(|message| message.role == "user")?;
    let collections = collections_of(last);
    (!collections.is_empty()).then_some(collections)
}

/// Runs one completion for the workspace under the person's limits.
#[allow(
    clippy::too_many_arguments,
    reason = "who, what, where it is kept and at which level"
)]
async fn generate(
    state: &AppState,
    principal: &Principal,
    version: i64,
    request_id: String,
    mut request: ChatCompletionRequest,
    keep: Keep,
    level: &str,
) -> Result<Response, ApiError> {
    let origin = crate::audit::Origin {
        request_id: Some(request_id.clone()),
        ..Default::default()
    };
    // A person waiting in the workspace goes before API and batch work.
    let caller = Caller {
        priority: crate::fair_queue::Priority::Interactive,
        ..Caller::of(principal, version)
    };
    let caller = limits::admit(state, principal, caller, &origin).await?;
    // A stored conversation's answers were written by the models, not
    // typed: markings the model wrote do not raise its level. A temporary
    // chat's history comes from the page, like an API client's.
    let history = if matches!(keep, Keep::Append { .. }) {
        completions::History::Stored
    } else {
        completions::History::Client
    };
    let local = state
        .chat
        .as_ref()
        .is_some_and(|engine| engine.info().name == request.model);
    if local {
        return completions::run(
            state.clone(),
            principal,
            caller,
            request_id,
            Instant::now(),
            request,
            keep,
            level,
            history,
        )
        .await;
    }
    // A remote model: its answer is read whole and stored here.
    request.stream = Some(false);
    request.stream_options = None;
    let model = request.model.clone();
    let started = Instant::now();
    let response = completions::run(
        state.clone(),
        principal,
        caller,
        request_id.clone(),
        started,
        request,
        Keep::Nothing,
        level,
        history,
    )
    .await?;
    let status = response.status();
    let decision = response
        .extensions()
        .get::<crate::classification::Decision>()
        .map(|decision| decision.0.clone());
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamError,
                "the provider's answer could not be read",
            )
        })?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("upstream_error");
        let code = ErrorCode::parse(code).unwrap_or(ErrorCode::UpstreamError);
        return Err(ApiError::new(code, "the provider refused"));
    }
    if let Keep::Append {
        conversation_id,
        ticket,
        sources,
    } = keep
    {
        let content = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let generation = json!({
            "model": model,
            "request_id": request_id,
            "prompt_tokens": body["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
            "completion_tokens": body["usage"]["completion_tokens"].as_i64().unwrap_or(0),
            "latency_ms": started.elapsed().as_millis() as u64,
            "finish": body["choices"][0]["finish_reason"].as_str().unwrap_or("stop"),
            "data_protection": decision,
        });
        let mut metadata = json!({ "generation": generation });
        let mut content = content;
        if let Some(sources) = sources {
            content = crate::grounding::checked_answer(&content, &sources);
            metadata["sources"] = sources;
        }
        let reply = NewMessage {
            role: "assistant".to_owned(),
            content,
            metadata: Some(metadata.to_string()),
        };
        state
            .store
            .append_messages(&conversation_id, vec![reply])
            .await
            .map_err(ApiError::storage)?;
        drop(ticket);
    }
    Ok((StatusCode::OK, Json(json!({ "done": true }))).into_response())
}

/// Writes the answer to the conversation's last question: streamed for the
/// script, else the page comes back when it is stored.
#[allow(clippy::too_many_arguments, reason = "one call site per form")]
async fn answer(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    version: i64,
    request_id: String,
    conversation: &Conversation,
    ticket: GenerationTicket,
    stream: bool,
) -> Response {
    let messages = match state.store.list_messages(&conversation.id).await {
        Ok(messages) => messages,
        Err(error) => {
            return fail(
                state,
                t,
                principal,
                conversation,
                stream,
                &ApiError::storage(error),
                &request_id,
            )
            .await
        }
    };
    let request = completion_request(
        &conversation.model,
        messages
            .iter()
            .filter(|message| matches!(message.role.as_str(), "user" | "assistant" | "system"))
            .map(|message| (message.role.as_str(), message.content.as_str())),
        stream,
    );
    // The person's question asked to be answered from collections: the
    // sources go before the conversation and are kept with the answer.
    // With none found, the answer says so and no model is asked.
    let mut request = request;
    let mut sources = None;
    if let (Ok(asked), Some(collections)) = (&mut request, asked_collections(&messages)) {
        asked.civitas = Some(civitas_types::openai::CivitasOptions {
            collections,
            k: Some(4),
            method: None,
        });
        match crate::grounding::ground(state, principal, asked).await {
            Ok(Some(grounding)) if grounding.sources.is_empty() => {
                return unsupported(state, t, principal, conversation, ticket, stream, &request_id).await;
            }
            Ok(Some(grounding)) => sources = Some(json!(grounding.sources)),
            Ok(None) => {}
            Err(error) => request = Err(error),
        }
    }
    let keep = Keep::Append {
        conversation_id: conversation.id.clone(),
        ticket,
        sources,
    };
    let result = match request {
        Ok(request) => {
            generate(
                state,
                principal,
                version,
                request_id.clone(),
                request,
                keep,
                &conversation.classification,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(mut response) if stream && response.status().is_success() => {
            if let Ok(value) = HeaderValue::from_str(&conversation.id) {
                response.headers_mut().insert("x-civitas-conversation-id", value);
            }
            response
        }
        Ok(response) if response.status().is_success() => {
            Redirect::to(&format!("/c/{}#latest", conversation.id)).into_response()
        }
        Ok(_) => {
            let error = ApiError::internal();
            fail(state, t, principal, conversation, stream, &error, &request_id).await
        }
        Err(error) => fail(state, t, principal, conversation, stream, &error, &request_id).await,
    }
}

/// The answer to a question none of its collections speaks of: said
/// plainly and kept like any answer, without asking a model.
async fn unsupported(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    conversation: &Conversation,
    ticket: GenerationTicket,
    stream: bool,
    request_id: &str,
) -> Response {
    let reply = NewMessage {
        role: "assistant".to_owned(),
        content: t.get("sources-none-answer"),
        metadata: Some(json!({ "sources": [], "grounding": { "supported": false } }).to_string()),
    };
    let stored = state.store.append_messages(&conversation.id, vec![reply]).await;
    drop(ticket);
    if let Err(error) = stored {
        return fail(
            state,
            t,
            principal,
            conversation,
            stream,
            &ApiError::storage(error),
            request_id,
        )
        .await;
    }
    if stream {
        let mut response = (StatusCode::OK, Json(json!({ "done": true }))).into_response();
        if let Ok(value) = HeaderValue::from_str(&conversation.id) {
            response.headers_mut().insert("x-civitas-conversation-id", value);
        }
        return response;
    }
    Redirect::to(&format!("/c/{}#latest", conversation.id)).into_response()
}

/// An error while answering: JSON for the script, the page with an alert
/// otherwise (the question is kept: nothing typed is lost).
async fn fail(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    conversation: &Conversation,
    stream: bool,
    error: &ApiError,
    request_id: &str,
) -> Response {
    if error.code.http_status() >= 500 {
        tracing::warn!(
            code = error.code.as_str(),
            request_id,
            "a workspace answer failed"
        );
    }
    if stream {
        return json_error(t, error, request_id);
    }
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let parts = PageParts {
        current: None,
        current_level: None,
        error: Some(error_text(t, error, request_id)),
        rename_error: None,
        draft: String::new(),
        status,
    };
    show_conversation(state, t, principal, conversation, parts).await
}

fn busy(t: Texts, stream: bool, request_id: &str) -> Response {
    let error = ApiError::new(ErrorCode::Conflict, "an answer is already being written here");
    if stream {
        return json_error(t, &error, request_id);
    }
    (StatusCode::CONFLICT, error_text(t, &error, request_id)).into_response()
}

fn forbidden(t: Texts, stream: bool, request_id: &str) -> Response {
    let error = ApiError::new(ErrorCode::CsrfTokenInvalid, "sign in again");
    if stream {
        return json_error(t, &error, request_id);
    }
    Redirect::to("/sign-in").into_response()
}

/// A question as typed, checked.
fn question(content: &str) -> Option<String> {
    let content = content.trim();
    (!content.is_empty() && content.chars().count() <= MAX_QUESTION_CHARS && !content.contains('\0'))
        .then(|| content.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct NewForm {
    csrf_token: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    classification: String,
    #[serde(default)]
    content: String,
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(RequestId(request_id)): Extension<RequestId>,
    AskForm { form, collections }: AskForm<NewForm>,
) -> Response {
    let t = negotiate(&headers);
    let stream = wants_stream(&headers);
    let Some((principal, version)) = signed_in_with_version(&state, &headers, false, &form.csrf_token).await
    else {
        return forbidden(t, stream, &request_id);
    };
    let models = usable_models(&state, &principal);
    if !models.contains(&form.model) {
        let error = ApiError::new(ErrorCode::ModelNotAllowed, "model");
        return render_new_with_error(&state, t, &principal, stream, &error, &request_id, form.content).await;
    }
    if !state
        .config
        .classifications
        .iter()
        .any(|level| level.id == form.classification)
    {
        // A level that is not configured: the form again, said why.
        let error = ApiError::invalid("classification", "not a configured classification level");
        let mut refused =
            render_new_with_error(&state, t, &principal, stream, &error, &request_id, form.content).await;
        *refused.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return refused;
    }
    let Some(content) = question(&form.content) else {
        let error = ApiError::invalid("content", "empty");
        return render_new_with_error(&state, t, &principal, stream, &error, &request_id, form.content).await;
    };
    let title: String = content
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    let created = state
        .store
        .create_conversation(
            NewConversation {
                owner: principal.id().to_owned(),
                title: Some(title),
                model: form.model.clone(),
                // A marking in the first message raises the chosen level.
                classification: crate::classification::raised(&state, &form.classification, &content),
            },
            vec![NewMessage {
                role: "user".to_owned(),
                content,
                metadata: collections_metadata(&collections),
            }],
        )
        .await;
    let conversation = match created {
        Ok((conversation, _)) => conversation,
        Err(error) => {
            let error = ApiError::storage(error);
            return render_new_with_error(&state, t, &principal, stream, &error, &request_id, form.content)
                .await;
        }
    };
    let Some(ticket) = state.generations.begin(&conversation.id) else {
        return busy(t, stream, &request_id);
    };
    answer(
        &state,
        t,
        &principal,
        version,
        request_id,
        &conversation,
        ticket,
        stream,
    )
    .await
}

async fn render_new_with_error(
    state: &AppState,
    t: Texts,
    principal: &Principal,
    stream: bool,
    error: &ApiError,
    request_id: &str,
    draft: String,
) -> Response {
    if stream {
        return json_error(t, error, request_id);
    }
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let parts = PageParts {
        current: None,
        current_level: None,
        error: Some(error_text(t, error, request_id)),
        rename_error: None,
        draft,
        status,
    };
    render_chat(state, t, principal, None, parts).await
}

#[derive(Debug, Deserialize)]
pub struct ContentForm {
    csrf_token: String,
    #[serde(default)]
    content: String,
    /// A higher level picked in the pre-send preview (never a lower one).
    #[serde(default)]
    classification: String,
}

/// The signed-in owner of the conversation of a state-changing request,
/// with the language and whether a stream was asked for.
struct Acting {
    t: Texts,
    stream: bool,
    principal: Principal,
    version: i64,
    conversation: Conversation,
}

async fn acting(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    csrf: &str,
    request_id: &str,
) -> Result<Acting, Response> {
    let t = negotiate(headers);
    let stream = wants_stream(headers);
    let Some((principal, version)) = signed_in_with_version(state, headers, false, csrf).await else {
        return Err(forbidden(t, stream, request_id));
    };
    let conversation = match owned(state, &principal, id).await {
        Ok(conversation) => conversation,
        Err(_) if stream => {
            let error = ApiError::new(ErrorCode::NotFound, "no such conversation");
            return Err(json_error(t, &error, request_id));
        }
        Err(_) => return Err(not_found(state, t, &principal)),
    };
    Ok(Acting {
        t,
        stream,
        principal,
        version,
        conversation,
    })
}

pub async fn reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    AskForm { form, collections }: AskForm<ContentForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    let Acting {
        t,
        stream,
        principal,
        version,
        conversation,
    } = acting;
    let Some(content) = question(&form.content) else {
        let error = ApiError::invalid("content", "empty");
        if stream {
            return json_error(t, &error, &request_id);
        }
        let parts = PageParts {
            current: None,
            current_level: None,
            error: Some(error_text(t, &error, &request_id)),
            rename_error: None,
            draft: form.content,
            status: StatusCode::UNPROCESSABLE_ENTITY,
        };
        return show_conversation(&state, t, &principal, &conversation, parts).await;
    };
    let Some(ticket) = state.generations.begin(&conversation.id) else {
        return busy(t, stream, &request_id);
    };
    let appended = state
        .store
        .append_messages(
            &conversation.id,
            vec![NewMessage {
                role: "user".to_owned(),
                content,
                metadata: collections_metadata(&collections),
            }],
        )
        .await;
    if let Err(error) = appended {
        drop(ticket);
        return fail(
            &state,
            t,
            &principal,
            &conversation,
            stream,
            &ApiError::storage(error),
            &request_id,
        )
        .await;
    }
    // A marking in the message, or a higher level picked before sending,
    // raises the conversation's level for good.
    let mut conversation = conversation;
    let levels = &state.config.classifications;
    let rank = |id: &str| levels.iter().position(|level| level.id == id);
    let picked = match (rank(&form.classification), rank(&conversation.classification)) {
        (Some(picked), Some(current)) if picked > current => form.classification.clone(),
        _ => conversation.classification.clone(),
    };
    let level = crate::classification::raised(&state, &picked, &form.content);
    if level != conversation.classification {
        match state
            .store
            .set_classification(principal.id(), &conversation.id, &level)
            .await
        {
            Ok(_) => conversation.classification = level,
            Err(error) => {
                drop(ticket);
                return fail(
                    &state,
                    t,
                    &principal,
                    &conversation,
                    stream,
                    &ApiError::storage(error),
                    &request_id,
                )
                .await;
            }
        }
    }
    answer(
        &state,
        t,
        &principal,
        version,
        request_id,
        &conversation,
        ticket,
        stream,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => answer_again(&state, acting, request_id, None).await,
        Err(response) => response,
    }
}

pub async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<ContentForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    let Some(content) = question(&form.content) else {
        let error = ApiError::invalid("content", "empty");
        return fail(
            &state,
            acting.t,
            &acting.principal,
            &acting.conversation,
            acting.stream,
            &error,
            &request_id,
        )
        .await;
    };
    answer_again(&state, acting, request_id, Some(content)).await
}

/// Answers the last question again: its answer goes (regenerate), or the
/// question itself is replaced by `question` (edit and resend). An
/// unanswered last question (its answer failed) is simply answered.
async fn answer_again(
    state: &AppState,
    acting: Acting,
    request_id: String,
    question: Option<String>,
) -> Response {
    let Acting {
        t,
        stream,
        principal,
        version,
        conversation,
    } = acting;
    let Some(ticket) = state.generations.begin(&conversation.id) else {
        return busy(t, stream, &request_id);
    };
    let prepared: Result<(), ApiError> = async {
        let messages = state
            .store
            .list_messages(&conversation.id)
            .await
            .map_err(ApiError::storage)?;
        let last = messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .ok_or_else(|| ApiError::invalid("content", "nothing to answer"))?;
        let (from, replacement) = match question {
            None => (last.seq + 1, Vec::new()),
            // The edited question is asked of the same collections.
            Some(content) => (
                last.seq,
                vec![NewMessage {
                    role: "user".to_owned(),
                    content,
                    metadata: collections_metadata(&collections_of(last)),
                }],
            ),
        };
        state
            .store
            .replace_messages_from(&conversation.id, from, replacement)
            .await
            .map_err(ApiError::storage)?;
        Ok(())
    }
    .await;
    if let Err(error) = prepared {
        drop(ticket);
        return fail(state, t, &principal, &conversation, stream, &error, &request_id).await;
    }
    answer(
        state,
        t,
        &principal,
        version,
        request_id,
        &conversation,
        ticket,
        stream,
    )
    .await
}

/// Stops the answer being written; what was written so far is kept.
pub async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    state.generations.stop(&acting.conversation.id);
    if acting.stream {
        return StatusCode::NO_CONTENT.into_response();
    }
    Redirect::to(&format!("/c/{id}#latest")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    csrf_token: String,
    #[serde(default)]
    title: String,
}

pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<RenameForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    let title = form.title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.contains('\0') {
        let parts = PageParts {
            current: None,
            current_level: None,
            error: None,
            rename_error: Some(acting.t.get("error-title")),
            draft: String::new(),
            status: StatusCode::UNPROCESSABLE_ENTITY,
        };
        return show_conversation(&state, acting.t, &acting.principal, &acting.conversation, parts).await;
    }
    match state
        .store
        .rename_conversation(acting.principal.id(), &id, title)
        .await
    {
        Ok(_) => Redirect::to(&format!("/c/{id}")).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not rename a conversation");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let t = negotiate(&headers);
    let Some(principal) = signed_in(&state, &headers, true, "").await else {
        return Redirect::to("/sign-in").into_response();
    };
    let conversation = match owned(&state, &principal, &id).await {
        Ok(conversation) => conversation,
        Err(_) => return not_found(&state, t, &principal),
    };
    if !can_delete(&state, &conversation) {
        let notice = NoticePage {
            t,
            shell: Shell::of(&state, t, &principal, Some(&conversation.classification), "chat"),
            heading: t.get("delete-forbidden-title"),
            text: t.get("delete-forbidden-text"),
        };
        return page(StatusCode::FORBIDDEN, &notice, HeaderMap::new());
    }
    let confirm = ConfirmDeletePage {
        t,
        shell: Shell::of(&state, t, &principal, Some(&conversation.classification), "chat"),
        title: title_of(t, &conversation),
        id: conversation.id,
    };
    page(StatusCode::OK, &confirm, HeaderMap::new())
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    if !can_delete(&state, &acting.conversation) {
        return StatusCode::FORBIDDEN.into_response();
    }
    state.generations.stop(&id);
    state.generations.settled(&id, SETTLE_LIMIT).await;
    match state.store.delete_conversation(acting.principal.id(), &id).await {
        Ok(_) => {
            tracing::info!(conversation_id = %id, person_id = %acting.principal.id(), "conversation deleted");
            Redirect::to("/").into_response()
        }
        // Said plainly: the conversation stays while a legal hold applies.
        Err(held @ civitas_store::StoreError::OnHold { .. }) => {
            (StatusCode::CONFLICT, held.to_string()).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not delete a conversation");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FeedbackForm {
    csrf_token: String,
    rating: i64,
    #[serde(default)]
    comment: String,
}

pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<FeedbackForm>,
) -> Response {
    let acting = match acting(&state, &headers, &id, &form.csrf_token, &request_id).await {
        Ok(acting) => acting,
        Err(response) => return response,
    };
    let comment = form.comment.trim();
    if !matches!(form.rating, -1 | 1) || comment.chars().count() > 2000 || comment.contains('\0') {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let messages = state.store.list_messages(&id).await.unwrap_or_default();
    let Some(answer) = messages
        .iter()
        .find(|message| message.id == message_id && message.role == "assistant")
    else {
        return not_found(&state, acting.t, &acting.principal);
    };
    let model = figures(acting.t, &state.energy, answer.metadata.as_deref())
        .0
        .map(|figures| figures.model)
        .filter(|model| !model.is_empty())
        .unwrap_or_else(|| acting.conversation.model.clone());
    let given = Feedback {
        message_id: answer.id.clone(),
        conversation_id: id.clone(),
        person_id: acting.principal.id().to_owned(),
        agency_id: acting.principal.agency_id().to_owned(),
        model,
        rating: form.rating,
        comment: Some(comment.to_owned()).filter(|comment| !comment.is_empty()),
        updated_at: civitas_store::now(),
    };
    match state.store.put_feedback(&given).await {
        Ok(()) => Redirect::to(&format!("/c/{id}#m-{message_id}")).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not store feedback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn temporary_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ChatQuery>,
) -> Response {
    let (t, principal) = match open_page(&state, &headers, query.lang.as_deref()).await {
        Ok(opened) => opened,
        Err(elsewhere) => return elsewhere,
    };
    if !state.config.workspace.temporary_chat {
        let notice = NoticePage {
            t,
            shell: Shell::of(&state, t, &principal, None, "chat"),
            heading: t.get("temporary-title"),
            text: t.get("temporary-disabled"),
        };
        return page(StatusCode::FORBIDDEN, &notice, HeaderMap::new());
    }
    let temporary = TemporaryPage {
        t,
        shell: Shell::of(&state, t, &principal, None, "chat"),
        models: model_choices(&state, &principal).await,
    };
    page(StatusCode::OK, &temporary, HeaderMap::new())
}

#[derive(Debug, Deserialize)]
pub struct TemporaryMessage {
    role: String,
    content: String,
}

#[derive(Debug, Deserialize)]
pub struct TemporaryRequest {
    model: String,
    messages: Vec<TemporaryMessage>,
}

/// A temporary chat's answer: streamed, never stored (only counted).
pub async fn temporary_reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(RequestId(request_id)): Extension<RequestId>,
    ApiJson(request): ApiJson<TemporaryRequest>,
) -> Response {
    let t = negotiate(&headers);
    let csrf = headers
        .get(crate::auth::CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let Some((principal, version)) = signed_in_with_version(&state, &headers, false, csrf).await else {
        return forbidden(t, true, &request_id);
    };
    if !state.config.workspace.temporary_chat {
        let error = ApiError::new(ErrorCode::PermissionDenied, "temporary chats are off");
        return json_error(t, &error, &request_id);
    }
    let valid = !request.messages.is_empty()
        && request.messages.len() <= 200
        && request.messages.iter().all(|message| {
            matches!(message.role.as_str(), "user" | "assistant") && !message.content.contains('\0')
        })
        && request
            .messages
            .last()
            .is_some_and(|message| message.role == "user");
    if !valid {
        return json_error(t, &ApiError::invalid("messages", "invalid"), &request_id);
    }
    let completion = completion_request(
        &request.model,
        request
            .messages
            .iter()
            .map(|message| (message.role.as_str(), message.content.as_str())),
        true,
    );
    let result = match completion {
        Ok(completion) => {
            generate(
                &state,
                &principal,
                version,
                request_id.clone(),
                completion,
                Keep::Nothing,
                &state.config.workspace.default_classification,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(response) if response.status().is_success() => response,
        Ok(_) => json_error(t, &ApiError::internal(), &request_id),
        Err(error) => json_error(t, &error, &request_id),
    }
}

#[derive(Debug, Deserialize)]
pub struct RenderRequest {
    content: String,
}

/// An answer's Markdown as sanitized HTML, for the temporary chat (whose
/// answers the server does not keep).
pub async fn render_markdown(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RenderRequest>,
) -> Response {
    let csrf = headers
        .get(crate::auth::CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if signed_in(&state, &headers, false, csrf).await.is_none() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let html = markdown::render(&request.content, state.config.workspace.remote_images);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
