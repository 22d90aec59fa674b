//! Anthropic's Messages API behind OpenAI's chat completions: requests,
//! answers and streams translated both ways, tools included.
//!
//! - system and developer messages become `system`; tool results become
//!   `tool_result` blocks of a user turn; an assistant's tool calls become
//!   `tool_use` blocks; consecutive turns of one role are merged (the API
//!   wants them alternating); `max_tokens` is required there (4,096 when
//!   the client gives none).
//! - a user message's parts stay in order: text blocks, and inline images
//!   (`data:` URLs) as base64 `image` blocks (JPEG, PNG, GIF, WebP).
//! - `tools` → `input_schema`; `tool_choice` `auto`/`required`/`none`/named
//!   → `auto`/`any`/`none`/`tool`.
//! - answers: text blocks joined, `tool_use` → `tool_calls` (arguments as
//!   JSON text), `stop_reason` → `finish_reason`, usage renamed.
//! - streams: `message_start`, `content_block_*`, `message_delta` and
//!   `message_stop` events become completion chunks, then `[DONE]`.

use civitas_types::openai::{
    ChatCompletionRequest, ContentPart, ImageUrl, MessageContent, ResponseFormat, Role, ToolChoice,
};
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The `anthropic-version` header sent.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` when the client names none (the API requires one).
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Messages API request for an OpenAI-shaped `request`; `model` is the
/// provider's name of the model.
pub fn request(request: &ChatCompletionRequest, model: &str) -> Result<Value, ApiError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid(
            "n",
            "this model's provider gives one answer per request",
        ));
    }
    if matches!(request.response_format, Some(ResponseFormat::JsonSchema { .. })) {
        return Err(ApiError::invalid(
            "response_format",
            "this model's provider does not take a JSON schema; describe the shape in the messages or use a tool",
        ));
    }
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    let mut push = |role: &str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match turns.last_mut() {
            Some((last, existing)) if last == role => existing.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    };
    for message in &request.messages {
        let text = message
            .content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default();
        match message.role {
            Role::System | Role::Developer => system.push(text),
            Role::User => match &message.content {
                Some(MessageContent::Parts(parts)) => push("user", part_blocks(parts)?),
                _ => push("user", text_block(text)),
            },
            Role::Assistant => {
                let mut blocks = text_block(text);
                for call in message.tool_calls.iter().flatten() {
                    let input: Value = serde_json::from_str(&call.function.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
                }
                push("assistant", blocks);
            }
            Role::Tool => push(
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.clone().unwrap_or_default(),
                    "content": text,
                })],
            ),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(
        "max_tokens".into(),
        json!(request
            .max_completion_tokens
            .or(request.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    let system = system.join("\n\n");
    if !system.trim().is_empty() {
        body.insert("system".into(), json!(system));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), shortest(temperature));
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".into(), shortest(top_p));
    }
    if let Some(stop) = &request.stop {
        body.insert("stop_sequences".into(), json!(stop.clone().into_vec()));
    }
    if request.stream == Some(true) {
        body.insert("stream".into(), json!(true));
    }
    if let Some(tools) = &request.tools {
        let tools: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let mut out = json!({
                    "name": tool.function.name,
                    "input_schema": tool.function.parameters.clone().unwrap_or_else(|| json!({"type": "object"})),
                });
                if let Some(description) = &tool.function.description {
                    out["description"] = json!(description);
                }
                out
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        let mut choice = match choice {
            ToolChoice::Mode(mode) => match mode.as_str() {
                "required" => json!({"type": "any"}),
                "none" => json!({"type": "none"}),
                _ => json!({"type": "auto"}),
            },
            ToolChoice::Named(named) => json!({"type": "tool", "name": named.function.name}),
        };
        if request.parallel_tool_calls == Some(false) && choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        body.insert("tool_choice".into(), choice);
    }
    Ok(Value::Object(body))
}

/// `value` as the decimal the client wrote (0.2, not 0.20000000298).
fn shortest(value: f32) -> Value {
    json!(value.to_string().parse::<f64>().unwrap_or(f64::from(value)))
}

fn text_block(text: String) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// The Messages API's blocks for a user message's parts, in order: text,
/// and inline images in the four types it takes.
fn part_blocks(parts: &[ContentPart]) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        if let Some(text) = &part.text {
            blocks.extend(text_block(text.clone()));
        } else if let Some((media_type, data)) = part.image_url.as_ref().and_then(ImageUrl::inline) {
            if !matches!(
                media_type,
                "image/jpeg" | "image/png" | "image/gif" | "image/webp"
            ) {
                return Err(ApiError::invalid(
                    "messages",
                    format!("this model's provider takes JPEG, PNG, GIF and WebP images, not `{media_type}`"),
                ));
            }
            blocks.push(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}));
        }
    }
    Ok(blocks)
}

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// The chat completion for a Messages API answer; `model` is the name the
/// client asked for.
pub fn completion(answer: &Value, model: &str) -> Option<Value> {
    if answer["type"] != "message" {
        return None;
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in answer["content"].as_array()? {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let prompt = answer["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let completion = answer["usage"]["output_tokens"].as_u64().unwrap_or(0);
    Some(json!({
        "id": format!("chatcmpl-{}", answer["id"].as_str().unwrap_or_default()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(answer["stop_reason"].as_str().unwrap_or_default()),
            "logprobs": null,
        }],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }))
}

/// Translates a Messages API event stream into chat completion chunks,
/// event by event.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    include_usage: bool,
    id: String,
    created: i64,
    events: crate::routes::remote::SseEvents,
    /// Content block index → tool call index, for tool-use blocks.
    tools: std::collections::BTreeMap<u64, u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    done: bool,
}

impl StreamTranslator {
    pub fn new(model: &str, include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            model: model.to_owned(),
            include_usage,
            id: String::new(),
            created: chrono::Utc::now().timestamp(),
            events: crate::routes::remote::SseEvents::default(),
            tools: std::collections::BTreeMap::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        let chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        format!("data: {chunk}\n\n")
    }

    fn event(&mut self, data: &str) -> String {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return String::new();
        };
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.id = format!("chatcmpl-{}", event["message"]["id"].as_str().unwrap_or_default());
                self.prompt_tokens = event["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
                self.chunk(json!({"role": "assistant", "content": ""}), None)
            }
            "content_block_start" if event["content_block"]["type"] == "tool_use" => {
                let index = self.tools.len() as u64;
                self.tools.insert(event["index"].as_u64().unwrap_or(0), index);
                let block = &event["content_block"];
                self.chunk(
                    json!({"tool_calls": [{"index": index, "id": block["id"], "type": "function",
                                           "function": {"name": block["name"], "arguments": ""}}]}),
                    None,
                )
            }
            "content_block_delta" => {
                let delta = &event["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => self.chunk(json!({"content": delta["text"]}), None),
                    Some("input_json_delta") => {
                        let block = event["index"].as_u64().unwrap_or(0);
                        let index = self.tools.get(&block).copied().unwrap_or(0);
                        self.chunk(
                            json!({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]}),
                            None,
                        )
                    }
                    _ => String::new(),
                }
            }
            "message_delta" => {
                self.completion_tokens = event["usage"]["output_tokens"]
                    .as_u64()
                    .unwrap_or(self.completion_tokens);
                let reason = finish_reason(event["delta"]["stop_reason"].as_str().unwrap_or_default());
                self.chunk(json!({}), Some(reason))
            }
            "message_stop" => self.finish(),
            "error" => {
                self.done = true;
                let message = event["error"]["message"]
                    .as_str()
                    .unwrap_or("the provider failed midway");
                let error =
                    json!({"error": {"message": message, "type": "server_error", "code": "upstream_error"}});
                format!("data: {error}\n\n")
            }
            _ => String::new(),
        }
    }

    /// The chunks of an event's `data:` lines.
    fn data_of(&mut self, event: &str) -> String {
        event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| self.event(data.trim_start()))
            .collect()
    }

    /// The usage chunk (when asked for) and `[DONE]`, once.
    fn finish(&mut self) -> String {
        if self.done {
            return String::new();
        }
        self.done = true;
        let mut out = String::new();
        if self.include_usage {
            let usage = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [],
                "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                          "total_tokens": self.prompt_tokens + self.completion_tokens},
            });
            out.push_str(&format!("data: {usage}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }
}

impl crate::routes::remote::SseTransform for StreamTranslator {
    fn feed(&mut self, bytes: &[u8]) -> String {
        self.events
            .push(bytes)
            .iter()
            .map(|event| self.data_of(event))
            .collect()
    }

    /// An upstream that stopped without `message_stop` gets no `[DONE]`:
    /// the client sees that the answer is incomplete.
    fn end(&mut self) -> String {
        let rest = self.events.rest();
        self.data_of(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::remote::SseTransform;

    const OPENAI_REQUEST: &str = include_str!("../fixtures/anthropic/openai-request.json");
    const ANTHROPIC_REQUEST: &str = include_str!("../fixtures/anthropic/anthropic-request.json");
    const ANTHROPIC_RESPONSE: &str = include_str!("../fixtures/anthropic/anthropic-response.json");
    const ANTHROPIC_STREAM: &str = include_str!("../fixtures/anthropic/anthropic-stream.sse");

    #[test]
    fn a_request_with_system_tools_and_tool_results_translates_to_the_messages_api() {
        let request: ChatCompletionRequest = serde_json::from_str(OPENAI_REQUEST).unwrap();
        let translated = super::request(&request, "claude-sonnet-4-5").unwrap();
        let expected: Value = serde_json::from_str(ANTHROPIC_REQUEST).unwrap();
        assert_eq!(translated, expected);
        // The API requires max_tokens: one is given when the client gives none.
        let mut bare: ChatCompletionRequest = serde_json::from_str(OPENAI_REQUEST).unwrap();
        bare.max_tokens = None;
        bare.tool_choice = None;
        assert_eq!(super::request(&bare, "m").unwrap()["max_tokens"], 4096);
        assert!(super::request(&bare, "m").unwrap().get("tool_choice").is_none());
        // What it cannot take is refused with the parameter named.
        bare.n = Some(2);
        assert_eq!(
            super::request(&bare, "m").unwrap_err().param.as_deref(),
            Some("n")
        );
    }

    #[test]
    fn an_answer_with_a_tool_call_translates_to_a_completion() {
        let answer: Value = serde_json::from_str(ANTHROPIC_RESPONSE).unwrap();
        let completion = completion(&answer, "claude-gov").unwrap();
        let parsed: civitas_types::openai::ChatCompletion =
            serde_json::from_value(completion.clone()).unwrap();
        assert_eq!(parsed.model, "claude-gov");
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        let message = &completion["choices"][0]["message"];
        assert_eq!(message["content"], "Let me check the documents of that case.");
        assert_eq!(message["tool_calls"][0]["id"], "toolu_01B");
        assert_eq!(message["tool_calls"][0]["function"]["name"], "case_documents");
        let arguments: Value = serde_json::from_str(
            message["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(arguments, json!({"case": "2026-118"}));
        assert_eq!(
            completion["usage"],
            json!({"prompt_tokens": 212, "completion_tokens": 41, "total_tokens": 253})
        );
        assert!(super::completion(&json!({"type": "error"}), "m").is_none());
    }

    #[test]
    fn a_user_messages_text_and_inline_images_become_blocks_in_order() {
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "vision",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What does this form say?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "text", "text": "Answer briefly."}
            ]}]
        }))
        .unwrap();
        let body = request_of(&request);
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"type": "text", "text": "What does this form say?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "Answer briefly."}
            ])
        );
        let mut tiff = request.clone();
        if let Some(MessageContent::Parts(parts)) = &mut tiff.messages[0].content {
            parts[1].image_url = Some(ImageUrl {
                url: "data:image/tiff;base64,AAAA".to_owned(),
                detail: None,
            });
        }
        let refused = super::request(&tiff, "claude").unwrap_err();
        assert!(refused.message.contains("image/tiff"), "{}", refused.message);
    }

    fn request_of(request: &ChatCompletionRequest) -> Value {
        super::request(request, "claude").unwrap()
    }

    fn chunks(sse: &str) -> Vec<Value> {
        sse.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[test]
    fn a_stream_translates_event_by_event_however_it_is_cut() {
        // Whole, then cut every 7 bytes with CRLF line ends: the same chunks.
        let mut whole = StreamTranslator::new("claude-gov", true);
        let mut out = whole.feed(ANTHROPIC_STREAM.as_bytes());
        out.push_str(&whole.end());
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        let crlf = ANTHROPIC_STREAM.replace('\n', "\r\n");
        let mut cut = StreamTranslator::new("claude-gov", true);
        let mut pieces = String::new();
        for piece in crlf.as_bytes().chunks(7) {
            pieces.push_str(&cut.feed(piece));
        }
        pieces.push_str(&cut.end());
        let strip = |chunks: Vec<Value>| {
            chunks
                .into_iter()
                .map(|mut chunk| {
                    chunk["created"] = json!(0);
                    chunk
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(chunks(&out)), strip(chunks(&pieces)));
        let chunks = chunks(&out);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["id"], "chatcmpl-msg_01S");
        let text: String = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Let me check the documents.");
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
            .collect();
        assert_eq!(calls[0]["id"], "toolu_01B");
        assert_eq!(calls[0]["function"]["name"], "case_documents");
        let arguments: String = calls
            .iter()
            .filter_map(|call| call["function"]["arguments"].as_str())
            .collect();
        assert_eq!(arguments, r#"{"case": "2026-118"}"#);
        assert!(calls.iter().all(|call| call["index"] == 0));
        let finish: Vec<&Value> = chunks
            .iter()
            .map(|chunk| &chunk["choices"][0]["finish_reason"])
            .filter(|reason| !reason.is_null())
            .collect();
        assert_eq!(finish, [&json!("tool_calls")]);
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 253);
    }

    #[test]
    fn an_error_event_or_a_stream_cut_short_gets_no_done() {
        let mut translator = StreamTranslator::new("m", false);
        let mut out = translator.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"x\",\"usage\":{}}}\n\n");
        out.push_str(&translator.feed(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        ));
        out.push_str(&translator.end());
        assert!(
            out.contains(r#""code":"upstream_error""#) && out.contains("Overloaded"),
            "{out}"
        );
        assert!(!out.contains("[DONE]"));
        let mut cut = StreamTranslator::new("m", false);
        let out = cut.feed(&ANTHROPIC_STREAM.as_bytes()[..600]) + &cut.end();
        assert!(!out.contains("[DONE]"));
    }
}
