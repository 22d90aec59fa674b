//! Grounded answers: a question answered from the agency's collections,
//! citing numbered sources.
//!
//! Before the model is asked, the passages are retrieved for the caller
//! (their access and clearance apply inside the search), placed in a
//! system message as numbered sources within the model's token budget,
//! and the request's level is raised to the highest level among them.
//! When nothing is retrieved the answer says so and no model is asked.
//! After the answer, only numbers of retrieved sources remain citations:
//! others are removed from the text (or, in a stream already sent,
//! reported as `invalid_citations`).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use civitas_identity::Principal;
use civitas_knowledge::Method;
use civitas_types::openai::{ChatCompletionRequest, ChatMessage, MessageContent, Role};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::knowledge::{passage_meta, search, Search};
use crate::state::AppState;

/// One numbered source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Source {
    /// Its number in the answer: `[1]`.
    pub index: usize,
    pub chunk_id: i64,
    pub document_id: i64,
    pub collection_id: i64,
    pub document_name: String,
    pub document_version: i64,
    pub section: Vec<String>,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub content: String,
    pub score: f32,
}

/// What retrieval gave a request.
#[derive(Debug, Clone)]
pub struct Grounding {
    pub sources: Vec<Source>,
    /// The highest classification level among the sources' documents.
    pub level: Option<String>,
}

const INSTRUCTION: &str = "You answer questions from civil servants using only the numbered sources below. \
After each statement, cite its source number in square brackets, like [1]. \
If the sources do not contain the answer, say that the documents provided do not answer the question; never guess. \
Answer in the language of the question.";

/// The words of the question: the last message of the person.
fn question(request: &ChatCompletionRequest) -> Option<String> {
    request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::User)
        .and_then(|message| message.content.as_ref())
        .map(MessageContent::text)
        .filter(|text| !text.trim().is_empty())
}

/// Retrieves sources for `request` (which carries `civitas.collections`)
/// and puts them before its messages. `None` when the request asks for no
/// grounding.
pub async fn ground(
    state: &AppState,
    principal: &Principal,
    request: &mut ChatCompletionRequest,
) -> Result<Option<Grounding>, ApiError> {
    let Some(options) = request.civitas.take() else {
        return Ok(None);
    };
    if options.collections.is_empty() {
        return Err(ApiError::invalid(
            "civitas.collections",
            "name at least one collection to answer from",
        ));
    }
    let k = options.k.unwrap_or(5);
    if !(1..=20).contains(&k) {
        return Err(ApiError::invalid("civitas.k", "between 1 and 20"));
    }
    let method = match options.method.as_deref().unwrap_or("hybrid") {
        "hybrid" if state.embedder.is_none() => Method::Lexical,
        "hybrid" => Method::Hybrid,
        "lexical" => Method::Lexical,
        "semantic" => Method::Semantic,
        _ => {
            return Err(ApiError::invalid(
                "civitas.method",
                "`hybrid`, `lexical` or `semantic`",
            ))
        }
    };
    let question = question(request)
        .ok_or_else(|| ApiError::invalid("messages", "a grounded answer needs a question from the user"))?;
    let found = search(
        state,
        principal,
        Search {
            query: &question,
            collections: &options.collections,
            method,
            k: k as usize,
            rrf_k: 60.0,
            fusion: civitas_knowledge::Fusion::DEFAULT,
            score_threshold: None,
        },
    )
    .await?;
    // The sources fit the model's window with the conversation and the
    // answer: about three characters a token, to be safe in French too.
    let window = state.config.models.context_length as usize;
    let answer = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(state.config.models.max_output_tokens) as usize;
    let conversation: usize = request
        .messages
        .iter()
        .filter_map(|message| message.content.as_ref().map(|content| content.text().len()))
        .sum();
    let mut budget =
        (window.saturating_sub(answer + 200) * 3).saturating_sub(conversation + INSTRUCTION.len());
    let levels = &state.config.classifications;
    let rank = |id: &str| {
        levels
            .iter()
            .position(|known| known.id == id)
            .unwrap_or(levels.len())
    };
    let mut level: Option<String> = None;
    let mut names = std::collections::HashMap::new();
    let mut sources = Vec::new();
    for hit in found {
        let document = match names.get(&hit.chunk.document_id) {
            Some(document) => Option::clone(document),
            None => {
                let document = state
                    .store
                    .get_document(hit.chunk.document_id)
                    .await
                    .map_err(ApiError::storage)?;
                names.insert(hit.chunk.document_id, document.clone());
                document
            }
        };
        let Some(document) = document else { continue };
        let cost = hit.chunk.content.len() + document.name.len() + 64;
        if cost > budget {
            break;
        }
        budget -= cost;
        if level
            .as_deref()
            .is_none_or(|current| rank(&document.classification) > rank(current))
        {
            level = Some(document.classification.clone());
        }
        let meta = passage_meta(&hit.chunk);
        sources.push(Source {
            index: sources.len() + 1,
            chunk_id: hit.chunk.id,
            document_id: document.id,
            collection_id: hit.chunk.collection_id,
            document_name: document.name,
            document_version: hit.chunk.version,
            section: meta.section,
            page_start: meta.page_start,
            page_end: meta.page_end,
            content: hit.chunk.content,
            score: hit.score,
        });
    }
    if !sources.is_empty() {
        let mut text = format!("{INSTRUCTION}\n\nSources:");
        for source in &sources {
            text.push_str(&format!("\n\n[{}] {}", source.index, source.document_name));
            if !source.section.is_empty() {
                text.push_str(&format!(" — {}", source.section.join(" › ")));
            }
            if let Some(page) = source.page_start {
                text.push_str(&format!(" (page {page})"));
            }
            text.push('\n');
            text.push_str(&source.content);
        }
        request.messages.insert(
            0,
            ChatMessage {
                role: Role::System,
                content: Some(MessageContent::Text(text)),
                name: None,
                tool_calls: None,
                tool_call_id: None,
            },
        );
    }
    Ok(Some(Grounding { sources, level }))
}

/// The level a grounded request runs at: the higher of `level` and its
/// sources'.
pub fn raised_level(state: &AppState, level: &str, grounding: &Grounding) -> String {
    let levels = &state.config.classifications;
    let rank = |id: &str| levels.iter().position(|known| known.id == id).unwrap_or(0);
    match &grounding.level {
        Some(sources) if rank(sources) > rank(level) => sources.clone(),
        _ => level.to_owned(),
    }
}

/// `text` with only citations of sources 1..=`count` kept; the numbers
/// cited and those removed.
pub fn check_citations(text: &str, count: usize) -> (String, BTreeSet<usize>, BTreeSet<String>) {
    let mut out = String::with_capacity(text.len());
    let mut cited = BTreeSet::new();
    let mut invalid = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find(']');
        let inner = end.map(|end| &after[..end]);
        let numbers: Option<Vec<&str>> = inner
            .filter(|inner| !inner.trim().is_empty() && inner.len() <= 40)
            .map(|inner| inner.split(',').map(str::trim).collect())
            .filter(|parts: &Vec<&str>| {
                parts
                    .iter()
                    .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
            });
        match (numbers, end) {
            (Some(parts), Some(end)) => {
                let valid: Vec<usize> = parts
                    .iter()
                    .filter_map(|part| part.parse::<usize>().ok())
                    .filter(|number| (1..=count).contains(number))
                    .collect();
                for part in &parts {
                    if !part
                        .parse::<usize>()
                        .is_ok_and(|number| (1..=count).contains(&number))
                    {
                        invalid.insert((*part).to_owned());
                    }
                }
                if !valid.is_empty() {
                    cited.extend(valid.iter().copied());
                    out.push('[');
                    out.push_str(&valid.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
                    out.push(']');
                } else if out.ends_with(' ') {
                    out.pop();
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, cited, invalid)
}

/// The answer when nothing was retrieved: said plainly, no model asked.
pub fn unsupported(model: &str, stream: bool) -> Response {
    let text = "None of the selected collections holds a passage about this question, so I cannot answer it from them. \
Aucun passage des collections choisies ne porte sur cette question : je ne peux pas y répondre à partir d'elles.";
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = chrono::Utc::now().timestamp();
    let grounding = json!({"supported": false, "cited": [], "invalid_citations": []});
    if stream {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut first = chunk(json!({"role": "assistant", "content": text}), Value::Null);
        first["sources"] = json!([]);
        first["grounding"] = grounding;
        let events = [first, chunk(json!({}), json!("stop"))]
            .iter()
            .map(|event| format!("data: {event}\n\n"))
            .collect::<String>()
            + "data: [DONE]\n\n";
        return (
            [
                (axum::http::header::CONTENT_TYPE, "text/event-stream"),
                (axum::http::header::CACHE_CONTROL, "no-cache"),
            ],
            events,
        )
            .into_response();
    }
    axum::Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "sources": [],
        "grounding": grounding,
    }))
    .into_response()
}

/// The model's response with its sources: a JSON completion gets its
/// invalid citations removed, `sources` and `grounding`; a stream gets a
/// first event carrying `sources`.
pub async fn attach(response: Response, grounding: &Grounding) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let sources = serde_json::to_value(&grounding.sources).unwrap_or(Value::Null);
    let streamed = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let (parts, body) = response.into_parts();
    if streamed {
        let first = json!({"object": "chat.completion.chunk", "choices": [], "sources": sources,
                           "grounding": {"supported": true}});
        let head = futures::stream::once(async move {
            Ok::<_, axum::Error>(axum::body::Bytes::from(format!("data: {first}\n\n")))
        });
        let rest = body.into_data_stream();
        return Response::from_parts(parts, Body::from_stream(futures::StreamExt::chain(head, rest)));
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal().into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut cited = BTreeSet::new();
    let mut invalid = BTreeSet::new();
    if let Some(choices) = value["choices"].as_array_mut() {
        for choice in choices {
            if let Some(content) = choice["message"]["content"].as_str() {
                let (checked, numbers, removed) = check_citations(content, grounding.sources.len());
                choice["message"]["content"] = Value::String(checked);
                cited.extend(numbers);
                invalid.extend(removed);
            }
        }
    }
    value["sources"] = sources;
    value["grounding"] = json!({"supported": true, "cited": cited, "invalid_citations": invalid});
    let mut response = axum::Json(value).into_response();
    for (name, header) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::CONTENT_TYPE {
            response.headers_mut().insert(name.clone(), header.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::check_citations;

    #[test]
    fn only_retrieved_sources_remain_citations() {
        let (text, cited, invalid) = check_citations(
            "Leave is 25 days [1]. Carry over 5 [2, 7]. Wrong [9]. Array [a] stays.",
            3,
        );
        assert_eq!(
            text,
            "Leave is 25 days [1]. Carry over 5 [2]. Wrong. Array [a] stays."
        );
        assert_eq!(cited.into_iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            invalid.into_iter().collect::<Vec<_>>(),
            vec!["7".to_owned(), "9".to_owned()]
        );
        let (text, cited, _) = check_citations("No sources [0] and [", 2);
        assert_eq!(text, "No sources and [");
        assert!(cited.is_empty());
    }
}
