//! A conversation exported for records and access-to-information
//! requests: JSON (every field, machine-readable) and a self-contained HTML
//! document (readable and printable without Civitas). Both carry who
//! exported it, when, and the conversation's classification level.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use civitas_identity::Principal;
use civitas_store::{Conversation, Message};
use serde_json::{json, Value};

use super::chat::{view, ConversationView};
use super::i18n::{negotiate, Texts};
use super::signed_in;
use crate::state::AppState;

struct Export {
    principal: Principal,
    conversation: Conversation,
    messages: Vec<Message>,
    agency: String,
    level: String,
}

async fn gather(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    t: Texts,
    format: &str,
) -> Result<Export, Response> {
    let Some(principal) = signed_in(state, headers, true, "").await else {
        return Err(Redirect::to("/sign-in").into_response());
    };
    let conversation = match state.store.get_conversation(id).await {
        Ok(Some(conversation)) if conversation.owner == principal.id() => conversation,
        Ok(_) => return Err(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::error!(%error, "could not read a conversation to export");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    state
        .generations
        .settled(id, std::time::Duration::from_secs(30))
        .await;
    let messages = state.store.list_messages(id).await.map_err(|error| {
        tracing::error!(%error, "could not read messages to export");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    })?;
    let agency = state
        .store
        .get_agency(principal.agency_id())
        .await
        .ok()
        .flatten()
        .map(|agency| agency.name)
        .unwrap_or_default();
    let level = state
        .config
        .classifications
        .iter()
        .find(|level| level.id == conversation.classification)
        .map(|level| super::level_label(level, t))
        .unwrap_or_else(|| conversation.classification.clone());
    // No export leaves without its audit record.
    let origin = crate::audit::Origin::of(state, headers, None, None);
    let entry = crate::audit::entry(
        &principal,
        &origin,
        civitas_audit::Action::Export,
        Some(format!("conversation:{id}")),
        civitas_audit::Outcome::Success,
        json!({ "format": format, "messages": messages.len(), "classification": conversation.classification }),
    );
    if crate::audit::record(state.store.as_ref(), vec![entry])
        .await
        .is_err()
    {
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    tracing::info!(conversation_id = %id, person_id = %principal.id(), "conversation exported");
    Ok(Export {
        principal,
        conversation,
        messages,
        agency,
        level,
    })
}

fn attachment(content_type: &'static str, name: String, body: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn json(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let t = negotiate(&headers);
    let export = match gather(&state, &headers, &id, t, "json").await {
        Ok(export) => export,
        Err(response) => return response,
    };
    let messages: Vec<Value> = export
        .messages
        .iter()
        .map(|message| {
            json!({
                "id": message.id,
                "seq": message.seq,
                "role": message.role,
                "content": message.content,
                "created_at": message.created_at,
                "metadata": message
                    .metadata
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok()),
            })
        })
        .collect();
    let document = json!({
        "object": "civitas.conversation_export",
        "version": 1,
        "exported_at": civitas_store::now(),
        "exported_by": {
            "id": export.principal.id(),
            "name": export.principal.person.display_name,
            "email": export.principal.person.email,
        },
        "agency": { "id": export.principal.agency_id(), "name": export.agency },
        "conversation": {
            "id": export.conversation.id,
            "title": export.conversation.title,
            "model": export.conversation.model,
            "classification": export.conversation.classification,
            "classification_label": export.level,
            "created_at": export.conversation.created_at,
            "updated_at": export.conversation.updated_at,
        },
        "messages": messages,
    });
    let body = serde_json::to_string_pretty(&document).unwrap_or_default();
    attachment(
        "application/json",
        format!("conversation-{}.json", export.conversation.id),
        body,
    )
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportDocument {
    t: Texts,
    c: ConversationView,
    level: String,
    agency: String,
    owner: String,
    exported: String,
}

pub async fn html(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let t = negotiate(&headers);
    let export = match gather(&state, &headers, &id, t, "html").await {
        Ok(export) => export,
        Err(response) => return response,
    };
    let document = ExportDocument {
        t,
        c: view(&state, t, &export.conversation, &export.messages, &[]),
        level: export.level,
        agency: export.agency,
        owner: format!(
            "{} <{}>",
            export.principal.person.display_name, export.principal.person.email
        ),
        exported: t.datetime(chrono::Utc::now()),
    };
    match document.render() {
        Ok(body) => attachment(
            "text/html; charset=utf-8",
            format!("conversation-{}.html", export.conversation.id),
            body,
        ),
        Err(error) => {
            tracing::error!(%error, "an export did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
