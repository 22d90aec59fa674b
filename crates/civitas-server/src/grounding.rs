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
After each statement, cite its source number in square brackets. \
For example, if source [2] says that staff may telework three days a week, write: \
\"Staff may telework up to three days a week [2].\" \
If the sources do not contain the answer, say that the documents provided do not answer the question; never guess. \
Answer in the language of the question.";

/// The cosine similarity below which a passage found only by meaning (no
/// shared word) is not a source.
const MIN_SIMILARITY: f32 = 0.25;

/// The most collections one question may be asked of.
pub const MAX_COLLECTIONS: usize = 20;

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
    if options.collections.is_empty() || options.collections.len() > MAX_COLLECTIONS {
        return Err(ApiError::invalid(
            "civitas.collections",
            format!("name between 1 and {MAX_COLLECTIONS} collections to answer from"),
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
            // A passage only near in meaning must be near enough: a
            // question the collections do not speak of finds nothing.
            score_threshold: Some(MIN_SIMILARITY),
            narrowing: crate::knowledge::Narrowing::default(),
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

impl Grounding {
    /// Each source's number and passage.
    pub fn numbered(&self) -> Vec<(usize, &str)> {
        self.sources
            .iter()
            .map(|source| (source.index, source.content.as_str()))
            .collect()
    }
}

/// A stored answer written from `sources` (as kept in its metadata): only
/// citations of them remain, and sentences that cite nothing are
/// attributed where one source holds most of their words.
pub fn checked_answer(text: &str, sources: &Value) -> String {
    let numbered: Vec<(usize, &str)> = sources
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|source| {
                    Some((
                        usize::try_from(source["index"].as_u64()?).ok()?,
                        source["content"].as_str()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if numbered.is_empty() {
        return text.to_owned();
    }
    let (checked, _, _) = check_citations(text, numbered.len());
    attribute(&checked, &numbered).0
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

/// The smallest share of a sentence's terms a source must hold for the
/// sentence to be attributed to it.
const ATTRIBUTION_OVERLAP: f32 = 0.6;

/// Post-hoc attribution: each sentence of `text` that cites nothing and
/// whose terms (at least three) are mostly found in one source gets that
/// source's number, before its closing punctuation. `sources` are the
/// numbered passages the answer was written from. Returns the text and
/// the numbers added: a citation added here always names a retrieved
/// passage, which holds most of the sentence's words.
pub fn attribute(text: &str, sources: &[(usize, &str)]) -> (String, BTreeSet<usize>) {
    let analyzer = civitas_knowledge::analyze::Analyzer::default();
    let source_terms: Vec<(usize, std::collections::HashSet<String>)> = sources
        .iter()
        .map(|(number, content)| (*number, analyzer.query_terms(content).into_iter().collect()))
        .collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut added = BTreeSet::new();
    for sentence in sentences(text) {
        let body = sentence.trim_end();
        let cites = !check_citations(body, usize::MAX).1.is_empty();
        let terms = analyzer.query_terms(body);
        let best = (!cites && terms.len() >= 3)
            .then(|| {
                source_terms
                    .iter()
                    .map(|(number, known)| {
                        let found = terms.iter().filter(|term| known.contains(*term)).count();
                        (*number, found as f32 / terms.len() as f32)
                    })
                    .filter(|(_, share)| *share >= ATTRIBUTION_OVERLAP)
                    .fold(None, |best: Option<(usize, f32)>, (number, share)| match best {
                        Some((_, top)) if top >= share => best,
                        _ => Some((number, share)),
                    })
            })
            .flatten();
        match best {
            Some((number, _)) => {
                let end = body.trim_end_matches(['.', '!', '?', ';', ':', '。']).len();
                out.push_str(&body[..end]);
                out.push_str(&format!(" [{number}]"));
                out.push_str(&sentence[end..]);
                added.insert(number);
            }
            None => out.push_str(sentence),
        }
    }
    (out, added)
}

/// `text` cut after each sentence's end (`.`, `!` or `?` before a space or
/// the end) and each line, with nothing lost: the pieces join back to it.
fn sentences(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|(_, next)| *next);
        let ends = c == '\n'
            || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace) && {
                // An initial ("J. Smith") does not end a sentence.
                let word = text[start..at]
                    .rsplit(char::is_whitespace)
                    .next()
                    .unwrap_or_default();
                word.chars().count() > 1
            });
        if ends {
            // Keep the spaces after the end with this piece.
            let mut end = at + c.len_utf8();
            while let Some((_, space)) = chars.peek().filter(|(_, space)| *space == ' ') {
                end += space.len_utf8();
                chars.next();
            }
            pieces.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
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
    let mut attributed = BTreeSet::new();
    if let Some(choices) = value["choices"].as_array_mut() {
        for choice in choices {
            if let Some(content) = choice["message"]["content"].as_str() {
                let (checked, numbers, removed) = check_citations(content, grounding.sources.len());
                let (attributed_text, added) = attribute(&checked, &grounding.numbered());
                choice["message"]["content"] = Value::String(attributed_text);
                cited.extend(numbers);
                invalid.extend(removed);
                attributed.extend(added);
            }
        }
    }
    value["sources"] = sources;
    value["grounding"] = json!({"supported": true, "cited": cited, "attributed": attributed,
                                "invalid_citations": invalid});
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
    use super::{attribute, check_citations, sentences};

    #[test]
    fn sentences_cut_at_their_ends_and_lose_nothing() {
        let text = "Leave is 25 days. J. Smith approves it!\n- Carry over 5 days\nAsk HR? Yes.";
        let pieces = sentences(text);
        assert_eq!(
            pieces,
            vec![
                "Leave is 25 days. ",
                "J. Smith approves it!",
                "\n",
                "- Carry over 5 days\n",
                "Ask HR? ",
                "Yes."
            ]
        );
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn uncited_sentences_are_attributed_to_the_source_holding_their_words() {
        let sources = [
            (1, "Annual leave: each employee has 25 days of paid leave per year."),
            (
                2,
                "Telework: full-time staff may telework up to three days per week with their manager's approval.",
            ),
            (3, "Les agents peuvent reporter cinq jours de congé sur l'année suivante."),
        ];
        let (text, added) = attribute(
            "Full-time staff may telework up to three days per week. The canteen opens at noon. \
             Employees have 25 days of paid leave [1].\nLes agents peuvent reporter cinq jours.",
            &sources,
        );
        assert_eq!(
            text,
            "Full-time staff may telework up to three days per week [2]. The canteen opens at noon. \
             Employees have 25 days of paid leave [1].\nLes agents peuvent reporter cinq jours [3]."
        );
        assert_eq!(added.into_iter().collect::<Vec<_>>(), vec![2, 3]);
        // Too few words to tell, or nothing shared: left alone.
        let (text, added) = attribute("Yes. Nothing here matches anything at all.", &sources);
        assert_eq!(text, "Yes. Nothing here matches anything at all.");
        assert!(added.is_empty());
    }

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
