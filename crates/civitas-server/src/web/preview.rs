//! The pre-send preview: before a message goes to a model, what was
//! detected in it (highlighted), the level it will be sent at, and what
//! will be done — answered locally, sent with placeholders instead of
//! personal data, sent as is to the agency's own server, or refused and
//! why. Nothing is stored or recorded: the decision itself is made, and
//! recorded, when the message is sent.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use civitas_types::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::{json_error, usable_models};
use super::i18n::{negotiate, Texts};
use super::{level_label, signed_in_with_version};
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct PreviewForm {
    csrf_token: String,
    #[serde(default)]
    content: String,
    /// A new conversation's model and level...
    #[serde(default)]
    model: String,
    #[serde(default)]
    classification: String,
    /// ...or the conversation replied to.
    #[serde(default)]
    conversation: String,
}

/// The longest message previewed, in bytes (a reply is bounded the same).
const MAX_PREVIEW_BYTES: usize = 256 * 1024;

/// What a level is called, for a person (its id when unknown).
pub(super) fn label_of(state: &AppState, t: Texts, id: &str) -> String {
    state
        .config
        .classifications
        .iter()
        .find(|level| level.id == id)
        .map(|level| level_label(level, t))
        .unwrap_or_else(|| id.to_owned())
}

/// `POST /preview`: what sending `content` would do (JSON for the script).
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Form(form): Form<PreviewForm>,
) -> Response {
    let t = negotiate(&headers);
    let Some((principal, _)) = signed_in_with_version(&state, &headers, false, &form.csrf_token).await else {
        let error = ApiError::new(ErrorCode::CsrfTokenInvalid, "sign in again");
        return json_error(t, &error, &request_id);
    };
    if form.content.len() > MAX_PREVIEW_BYTES {
        return json_error(t, &ApiError::invalid("content", "too long"), &request_id);
    }
    let levels = &state.config.classifications;
    let known = |id: &str| levels.iter().any(|level| level.id == id);
    // The model, the level and the earlier messages the model will see.
    let (model, level, mut texts) = if form.conversation.is_empty() {
        if !known(&form.classification) {
            return json_error(t, &ApiError::invalid("classification", "unknown"), &request_id);
        }
        (form.model.clone(), form.classification.clone(), Vec::new())
    } else {
        let conversation = match state.store.get_conversation(&form.conversation).await {
            Ok(Some(conversation)) if conversation.owner == principal.id() => conversation,
            Ok(_) => {
                let error = ApiError::new(ErrorCode::NotFound, "no such conversation");
                return json_error(t, &error, &request_id);
            }
            Err(error) => return json_error(t, &ApiError::storage(error), &request_id),
        };
        let history = match state.store.list_messages(&conversation.id).await {
            // The person's own messages: markings a model wrote in an
            // answer do not raise the level (as at sending).
            Ok(messages) => messages
                .into_iter()
                .filter(|message| message.role != "assistant")
                .map(|message| message.content)
                .collect(),
            Err(error) => return json_error(t, &ApiError::storage(error), &request_id),
        };
        // A reply may raise its conversation's level, never lower it.
        let rank = |id: &str| levels.iter().position(|level| level.id == id).unwrap_or(0);
        let level = if known(&form.classification)
            && rank(&form.classification) > rank(&conversation.classification)
        {
            form.classification.clone()
        } else {
            conversation.classification.clone()
        };
        (conversation.model, level, history)
    };
    if !usable_models(&state, &principal).contains(&model) {
        return json_error(
            t,
            &ApiError::new(ErrorCode::ModelNotAllowed, "model"),
            &request_id,
        );
    }
    let provider = state.providers.iter().find(|provider| provider.serves(&model));
    texts.push(form.content.clone());
    let assessment = crate::classification::assess(
        &state,
        &principal,
        &level,
        texts.iter().map(String::as_str),
        &model,
        provider.map(|provider| provider.as_ref()),
    );
    // What the person is about to send, cut into plain and detected pieces
    // (no offsets for the script to get wrong).
    let findings = crate::routes::remote::findings_of(&form.content);
    let mut segments = Vec::with_capacity(findings.len() * 2 + 1);
    let mut at = 0;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for finding in &findings {
        if finding.start > at {
            segments.push(json!({ "text": &form.content[at..finding.start] }));
        }
        let entity = finding.entity.as_str();
        *counts.entry(entity).or_default() += 1;
        segments.push(json!({
            "text": &form.content[finding.start..finding.end],
            "entity": entity,
            "label": t.get(&format!("entity-{entity}")),
        }));
        at = finding.end;
    }
    if at < form.content.len() {
        segments.push(json!({ "text": &form.content[at..] }));
    }
    let detected: Vec<Value> = counts
        .iter()
        .map(|(entity, count)| json!({ "entity": entity, "label": t.get(&format!("entity-{entity}")), "count": count }))
        .collect();
    let level_name = label_of(&state, t, &assessment.level);
    let (action, message) = match (&assessment.refusal, provider) {
        (Some((code, _)), _) => {
            let message = match code {
                ErrorCode::ClearanceInsufficient => t.with(
                    "preview-deny-clearance",
                    &[
                        ("level", &level_name),
                        ("clearance", &label_of(&state, t, &assessment.clearance)),
                    ],
                ),
                _ if assessment.beyond.is_some() => t.with(
                    "preview-deny-marking",
                    &[("marking", assessment.beyond.as_deref().unwrap_or_default())],
                ),
                _ => t.with(
                    "preview-deny-model",
                    &[
                        ("level", &level_name),
                        ("model", &model),
                        ("ceiling", &label_of(&state, t, &assessment.ceiling)),
                    ],
                ),
            };
            ("deny", message)
        }
        (None, None) => ("local", t.with("preview-local", &[("level", &level_name)])),
        (None, Some(provider)) if provider.pseudonymize && !findings.is_empty() => (
            "pseudonymize",
            t.with(
                "preview-pseudonymize",
                &[
                    ("count", &findings.len().to_string()),
                    ("provider", &provider.name),
                    ("level", &level_name),
                ],
            ),
        ),
        (None, Some(provider)) => (
            "send",
            t.with(
                "preview-send",
                &[("provider", &provider.name), ("level", &level_name)],
            ),
        ),
    };
    // The levels a person may pick instead: up to their clearance.
    let choices: Vec<Value> = levels
        .iter()
        .filter(|level| crate::classification::cleared_for(&state, &principal, &level.id))
        .map(|level| json!({ "id": level.id, "label": level_label(level, t) }))
        .collect();
    Json(json!({
        "action": action,
        "allowed": assessment.refusal.is_none(),
        "message": message,
        "level": { "id": assessment.level, "label": level_name, "raised": assessment.level != level },
        "detected": detected,
        "segments": segments,
        "levels": choices,
    }))
    .into_response()
}
