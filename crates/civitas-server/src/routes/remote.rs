//! Chat completions forwarded to a remote provider.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use civitas_protect::{Restorer, Vault};
use civitas_store::RequestRecord;
use civitas_types::openai::{ChatCompletion, ChatCompletionRequest, MessageContent};
use civitas_types::ErrorCode;
use futures::StreamExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::middleware::Caller;
use crate::providers::RemoteProvider;
use crate::recorder::HandlerRecords;
use crate::state::AppState;

/// Who asked and when, for the request record.
pub struct Forwarded {
    pub caller: Caller,
    pub request_id: String,
    pub started: Instant,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The data-protection decision, once made (see [`forward_chat`]).
    pub decision: Option<Value>,
}

async fn record(
    state: &AppState,
    forwarded: &Forwarded,
    model: &str,
    status: i64,
    usage: (i64, i64),
    error: Option<ErrorCode>,
) {
    state
        .recorder
        .record_decided(
            &forwarded.caller,
            RequestRecord {
                model: Some(model.to_owned()),
                model_sha256: None,
                prompt_tokens: usage.0,
                completion_tokens: usage.1,
                latency_ms: forwarded.started.elapsed().as_millis() as i64,
                status,
                error_code: error.map(|code| code.as_str().to_owned()),
                ..forwarded.caller.new_record(
                    &forwarded.request_id,
                    forwarded.started_at,
                    "/v1/chat/completions",
                )
            },
            forwarded.decision.clone(),
        )
        .await;
}

/// Records a failed forward and answers 502 `upstream_error`.
async fn upstream_failure(state: &AppState, forwarded: &Forwarded, model: &str, message: String) -> Response {
    record(
        state,
        forwarded,
        model,
        502,
        (0, 0),
        Some(ErrorCode::UpstreamError),
    )
    .await;
    marked(ApiError::new(ErrorCode::UpstreamError, message).into_response())
}

fn marked(mut response: Response) -> Response {
    response.extensions_mut().insert(HandlerRecords);
    response
}

/// `text` with what the engine finds replaced by the vault's placeholders.
/// What is replaced by a placeholder in `text` before it leaves (the
/// pre-send preview shows the same).
pub(crate) fn findings_of(text: &str) -> Vec<civitas_protect::Finding> {
    let options = civitas_protect::Options {
        language: civitas_protect::Language::detect(text),
        ..civitas_protect::Options::default()
    };
    civitas_protect::analyze(text, &options)
}

fn pseudonymize_text(vault: &mut Vault, text: &str) -> String {
    let findings = findings_of(text);
    vault.pseudonymize(text, &findings)
}

/// Replaces personal data, secrets and markings in the text of every
/// message (and text part) by placeholders; the vault restores them.
fn pseudonymize_messages(request: &mut ChatCompletionRequest) -> Vault {
    let mut vault = Vault::new();
    for message in &mut request.messages {
        match &mut message.content {
            Some(MessageContent::Text(text)) => *text = pseudonymize_text(&mut vault, text),
            Some(MessageContent::Parts(parts)) => {
                for part in parts {
                    if let Some(text) = &mut part.text {
                        *text = pseudonymize_text(&mut vault, text);
                    }
                }
            }
            None => {}
        }
    }
    vault
}

/// A completion's texts (content and tool-call arguments) restored.
fn restore_completion(vault: &Vault, completion: &mut Value) {
    for choice in completion["choices"].as_array_mut().into_iter().flatten() {
        let message = &mut choice["message"];
        if let Some(content) = message["content"].as_str() {
            message["content"] = Value::String(vault.restore(content));
        }
        for call in message["tool_calls"].as_array_mut().into_iter().flatten() {
            if let Some(arguments) = call["function"]["arguments"].as_str() {
                call["function"]["arguments"] = Value::String(vault.restore(arguments));
            }
        }
    }
}

/// Restores an SSE stream of completion chunks event by event; a
/// placeholder split across chunks is held back until it is whole, and
/// what is held when `[DONE]` arrives is sent in one more chunk.
struct StreamRestorer {
    vault: Vault,
    restorers: std::collections::BTreeMap<u64, Restorer>,
    buffer: Vec<u8>,
    /// The last chunk seen, as a template for the flushing one.
    last: Option<Value>,
}

impl StreamRestorer {
    fn event(&mut self, data: &str) -> String {
        if data.trim() == "[DONE]" {
            let mut out = self.flush();
            out.push_str("data: [DONE]\n\n");
            return out;
        }
        let Ok(mut chunk) = serde_json::from_str::<Value>(data) else {
            return format!("data: {data}\n\n");
        };
        for choice in chunk["choices"].as_array_mut().into_iter().flatten() {
            let index = choice["index"].as_u64().unwrap_or(0);
            let restorer = self.restorers.entry(index).or_default();
            if let Some(content) = choice["delta"]["content"].as_str() {
                choice["delta"]["content"] = Value::String(restorer.push(&self.vault, content));
            }
        }
        self.last = Some(chunk.clone());
        format!("data: {chunk}\n\n")
    }

    /// One chunk with whatever is still held, per choice.
    fn flush(&mut self) -> String {
        let mut choices = Vec::new();
        for (index, restorer) in &mut self.restorers {
            let rest = restorer.finish(&self.vault);
            if !rest.is_empty() {
                choices.push(serde_json::json!({ "index": index, "delta": { "content": rest }, "finish_reason": null }));
            }
        }
        let Some(mut template) = self.last.clone().filter(|_| !choices.is_empty()) else {
            return String::new();
        };
        template["choices"] = Value::Array(choices);
        if let Some(object) = template.as_object_mut() {
            object.remove("usage");
        }
        format!("data: {template}\n\n")
    }

    /// The events completed by `bytes`, restored (`\r\n` line ends are
    /// read as `\n`).
    fn feed(&mut self, bytes: &[u8]) -> String {
        self.buffer
            .extend(bytes.iter().copied().filter(|&byte| byte != b'\r'));
        let mut out = String::new();
        while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
            let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
            out.push_str(&self.lines(&event));
        }
        out
    }

    fn lines(&mut self, event: &[u8]) -> String {
        let mut out = String::new();
        let text = String::from_utf8_lossy(event).into_owned();
        for line in text.lines() {
            match line.strip_prefix("data:") {
                Some(data) => out.push_str(&self.event(data.trim_start())),
                None if line.is_empty() => {}
                None => {
                    out.push_str(line);
                    out.push_str("\n\n");
                }
            }
        }
        out
    }

    /// At the end of the upstream: an unterminated last event, then what
    /// is still held.
    fn end(&mut self) -> String {
        let rest = std::mem::take(&mut self.buffer);
        let mut out = self.lines(&rest);
        out.push_str(&self.flush());
        out
    }
}

/// Forwards `request` to `provider` and relays its answer, streamed or not.
pub async fn forward_chat(
    state: AppState,
    provider: Arc<RemoteProvider>,
    mut request: ChatCompletionRequest,
    mut forwarded: Forwarded,
    // No request reaches a provider without its classification decision.
    cleared: crate::classification::Cleared,
) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    // Personal data leaves only as placeholders (unless the provider is
    // the agency's own and configured so).
    let vault = if cleared.pseudonymize {
        pseudonymize_messages(&mut request)
    } else {
        Vault::new()
    };
    // Recorded with the model call: the decision and how many values of
    // each type left as placeholders (never the values).
    forwarded.decision = Some(cleared.decision(cleared.pseudonymize.then(|| vault.counts()).as_ref()));
    let model = request.model.clone();
    let stream = request.stream.unwrap_or(false);
    let upstream = match provider.chat(&request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "provider unreachable");
            let message = format!("the provider `{}` could not be reached", provider.name);
            return Ok(upstream_failure(&state, &forwarded, &model, message).await);
        }
    };
    let status = upstream.status();
    if !status.is_success() {
        let body = provider.client.read_bounded(upstream).await.unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let message = format!(
            "the provider `{}` answered {}: {detail}",
            provider.name,
            status.as_u16()
        );
        return Ok(upstream_failure(&state, &forwarded, &model, message).await);
    }
    if stream {
        record(&state, &forwarded, &model, 200, (0, 0), None).await;
        let body = if vault.is_empty() {
            Body::from_stream(upstream.bytes_stream())
        } else {
            let restorer = std::sync::Arc::new(std::sync::Mutex::new(StreamRestorer {
                vault,
                restorers: std::collections::BTreeMap::new(),
                buffer: Vec::new(),
                last: None,
            }));
            let at_end = std::sync::Arc::clone(&restorer);
            let restored = upstream.bytes_stream().map(move |chunk| {
                chunk.map(|bytes| {
                    let mut restorer = restorer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    bytes::Bytes::from(restorer.feed(&bytes))
                })
            });
            // An upstream that ends without `[DONE]` still gets what was held.
            let tail = futures::stream::once(async move {
                let mut restorer = at_end.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok::<_, reqwest::Error>(bytes::Bytes::from(restorer.end()))
            });
            Body::from_stream(restored.chain(tail))
        };
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(marked(response));
    }
    let body = match provider.client.read_bounded(upstream).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "provider answer unreadable");
            let message = format!("the answer of `{}` could not be read", provider.name);
            return Ok(upstream_failure(&state, &forwarded, &model, message).await);
        }
    };
    let Ok(completion) = serde_json::from_slice::<ChatCompletion>(&body) else {
        let message = format!(
            "the provider `{}` answered with a malformed completion",
            provider.name
        );
        return Ok(upstream_failure(&state, &forwarded, &model, message).await);
    };
    let usage = (
        i64::from(completion.usage.prompt_tokens),
        i64::from(completion.usage.completion_tokens),
    );
    record(&state, &forwarded, &model, 200, usage, None).await;
    // Validated above; relayed byte for byte (no second serialisation)
    // unless placeholders are to be put back.
    let body = if vault.is_empty() {
        body
    } else {
        let mut answer: Value = serde_json::from_slice(&body).map_err(|_| ApiError::internal())?;
        restore_completion(&vault, &mut answer);
        serde_json::to_vec(&answer).map_err(|_| ApiError::internal())?
    };
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // The workspace keeps the decision with the stored answer.
    if let Some(decision) = forwarded.decision {
        response
            .extensions_mut()
            .insert(crate::classification::Decision(decision));
    }
    Ok(marked(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restorer() -> StreamRestorer {
        let mut vault = Vault::new();
        vault.placeholder(civitas_protect::Entity::Person, "Jeanne Martin");
        StreamRestorer {
            vault,
            restorers: std::collections::BTreeMap::new(),
            buffer: Vec::new(),
            last: None,
        }
    }

    fn contents(sse: &str) -> String {
        sse.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .filter_map(|chunk| {
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    #[test]
    fn crlf_events_and_an_unterminated_end_lose_nothing() {
        let chunk = |text: &str| {
            format!(
                "data: {}\r\n\r\n",
                serde_json::json!({ "id": "x", "choices": [{ "index": 0, "delta": { "content": text } }] })
            )
        };
        let mut stream = restorer();
        let mut out = stream.feed(chunk("Hello <PER").as_bytes());
        out.push_str(&stream.feed(chunk("SON_1>, see <PERSON_1").as_bytes()));
        // The upstream stops without a blank line or [DONE].
        let last = chunk(">.");
        out.push_str(&stream.feed(last.trim_end().as_bytes()));
        out.push_str(&stream.end());
        assert_eq!(contents(&out), "Hello Jeanne Martin, see Jeanne Martin.");
        assert!(!out.contains("<PERSON_1>"));
    }
}
