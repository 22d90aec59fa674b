//! `POST /v1/chat/completions`, streaming and not, with structured output
//! and tool calls.
//!
//! The handler validates and tokenizes before queueing (so a bad request or
//! an over-long prompt costs no inference), then a spawned task drives the
//! generation to its end, whatever the client does, and records the
//! conversation and the request.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use civitas_inference::template::{TemplateFunction, TemplateMessage, TemplateToolCall};
use civitas_inference::{ChatEngine, EngineError, GenerationEvent, GenerationParams, StopReason};
use civitas_store::{NewConversation, NewMessage, RequestRecord};
use civitas_types::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChunkChoice,
    ChunkDelta, FinishReason, FunctionCall, FunctionCallDelta, ResponseFormat, Role, ToolCall, ToolCallDelta,
    ToolChoice, Usage,
};
use civitas_types::ErrorCode;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::middleware::{Caller, RequestId, RequestStart};
use crate::recorder::HandlerRecords;
use crate::routes::models::{check_allowed, model_not_found};
use crate::state::AppState;

const ROUTE: &str = "/v1/chat/completions";

/// Where a completion's conversation is kept.
#[derive(Debug)]
pub enum Keep {
    /// The API: a new conversation holding the request's messages and the
    /// answer.
    NewConversation { classification: String },
    /// The workspace: the answer appended to a stored conversation (its
    /// question is already there), even when stopped part-way.
    Append {
        conversation_id: String,
        ticket: crate::generations::GenerationTicket,
        /// The numbered sources a grounded answer was given, kept with it
        /// so its citations open the passages.
        sources: Option<Value>,
    },
    /// A temporary chat: nothing but the request record.
    Nothing,
}

impl Keep {
    fn stop_token(&self) -> Option<tokio_util::sync::CancellationToken> {
        match self {
            Keep::Append { ticket, .. } => Some(ticket.stop_token()),
            _ => None,
        }
    }
}
const TOOL_CALL_OPEN: &str = "<tool_call>";
const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// How tools take part in this request.
#[derive(Debug, Clone, PartialEq)]
enum ToolMode {
    Off,
    Auto,
    /// `required` or a named function: the output is constrained to a call.
    Forced,
}

/// A validated request, ready for the engine.
#[derive(Debug)]
struct Plan {
    messages: Vec<TemplateMessage>,
    tools: Option<Value>,
    tool_mode: ToolMode,
    params: GenerationParams,
    assistant_prefix: String,
    stream: bool,
    include_usage: bool,
}

fn grammar_for_schema(schema: &Value, param: &str) -> Result<String, ApiError> {
    let text = serde_json::to_string(schema)
        .map_err(|_| ApiError::invalid(param, "the schema is not valid JSON"))?;
    llama_grammar(&text)
        .map_err(|reason| ApiError::invalid(param, format!("the JSON schema cannot be enforced: {reason}")))
}

fn llama_grammar(schema: &str) -> Result<String, String> {
    civitas_inference::grammar::json_schema_to_grammar(schema)
}

fn valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn plan(request: ChatCompletionRequest, state: &AppState, engine: &ChatEngine) -> Result<Plan, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    if let Some(n) = request.n {
        if n != 1 {
            return Err(ApiError::invalid("n", "only `n: 1` is supported"));
        }
    }
    let temperature = request.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) || temperature.is_nan() {
        return Err(ApiError::invalid(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    let top_p = request.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "`top_p` must be greater than 0 and at most 1",
        ));
    }
    let max_allowed = state.config.models.max_output_tokens;
    let (max_param, max_requested) = match (request.max_completion_tokens, request.max_tokens) {
        (Some(value), _) => ("max_completion_tokens", Some(value)),
        (None, Some(value)) => ("max_tokens", Some(value)),
        (None, None) => ("max_tokens", None),
    };
    let max_tokens = match max_requested {
        Some(0) => {
            return Err(ApiError::invalid(
                max_param,
                format!("`{max_param}` must be at least 1"),
            ))
        }
        Some(value) if value > max_allowed => {
            return Err(ApiError::invalid(
                max_param,
                format!("`{max_param}` may be at most {max_allowed} on this installation"),
            ))
        }
        Some(value) => value,
        None => max_allowed,
    };
    let stop = request.stop.map(|stop| stop.into_vec()).unwrap_or_default();
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::invalid(
            "stop",
            "`stop` takes at most 4 non-empty sequences of up to 256 bytes",
        ));
    }
    let seed = match request.seed {
        Some(seed) => (seed as u64 & u64::from(u32::MAX)) as u32,
        None => rand::random::<u32>(),
    };

    let mut messages = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.iter().enumerate() {
        if let Some(part) = message
            .content
            .as_ref()
            .and_then(|content| content.first_non_text_part())
        {
            return Err(ApiError::invalid(
                &format!("messages[{index}].content"),
                format!("content parts of type `{part}` are not supported by this model; send text"),
            ));
        }
        let role = match message.role {
            Role::Developer => "system",
            other => other.as_str(),
        };
        let tool_calls = message.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .map(|call| TemplateToolCall {
                    id: call.id.clone(),
                    call_type: "function".to_owned(),
                    function: TemplateFunction {
                        name: call.function.name.clone(),
                        arguments: serde_json::from_str(&call.function.arguments)
                            .unwrap_or_else(|_| Value::String(call.function.arguments.clone())),
                    },
                })
                .collect()
        });
        messages.push(TemplateMessage {
            role: role.to_owned(),
            content: message
                .content
                .as_ref()
                .map(|content| content.text())
                .unwrap_or_default(),
            tool_calls,
            tool_call_id: message.tool_call_id.clone(),
            name: message.name.clone(),
        });
    }

    let tools = request.tools.unwrap_or_default();
    for (index, tool) in tools.iter().enumerate() {
        if tool.tool_type != "function" {
            return Err(ApiError::invalid(
                &format!("tools[{index}].type"),
                "only `function` tools are supported",
            ));
        }
        if !valid_function_name(&tool.function.name) {
            return Err(ApiError::invalid(
                &format!("tools[{index}].function.name"),
                "function names use a-z, A-Z, 0-9, `_` and `-`, at most 64 characters",
            ));
        }
    }
    let mut tool_mode = if tools.is_empty() {
        ToolMode::Off
    } else {
        ToolMode::Auto
    };
    let mut forced_names: Vec<String> = tools.iter().map(|tool| tool.function.name.clone()).collect();
    match &request.tool_choice {
        None => {}
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "none" => tool_mode = ToolMode::Off,
            "auto" => {}
            "required" => {
                if tools.is_empty() {
                    return Err(ApiError::invalid(
                        "tool_choice",
                        "`required` needs at least one tool in `tools`",
                    ));
                }
                tool_mode = ToolMode::Forced;
            }
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    "use `none`, `auto`, `required` or a named function",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => {
            if !forced_names.contains(&named.function.name) {
                return Err(ApiError::invalid(
                    "tool_choice",
                    format!("the function `{}` is not in `tools`", named.function.name),
                ));
            }
            forced_names = vec![named.function.name.clone()];
            tool_mode = ToolMode::Forced;
        }
    }

    let mut grammar = None;
    let mut assistant_prefix = String::new();
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            grammar = Some(grammar_for_schema(&json!({"type": "object"}), "response_format")?);
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema
                .schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"}));
            if !schema.is_object() {
                return Err(ApiError::invalid(
                    "response_format.json_schema.schema",
                    "the schema must be a JSON object",
                ));
            }
            grammar = Some(grammar_for_schema(&schema, "response_format.json_schema.schema")?);
        }
    }
    if tool_mode == ToolMode::Forced {
        let variants: Vec<Value> = tools
            .iter()
            .filter(|tool| forced_names.contains(&tool.function.name))
            .map(|tool| {
                let parameters = tool
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object"}));
                json!({
                    "type": "object",
                    "properties": {"name": {"const": tool.function.name}, "arguments": parameters},
                    "required": ["name", "arguments"],
                    "additionalProperties": false
                })
            })
            .collect();
        let schema = if variants.len() == 1 {
            variants.into_iter().next().unwrap_or(Value::Null)
        } else {
            json!({"anyOf": variants})
        };
        grammar = Some(grammar_for_schema(&schema, "tools")?);
        assistant_prefix = format!("{TOOL_CALL_OPEN}\n");
    }
    if let Some(grammar) = &grammar {
        engine
            .check_grammar(grammar)
            .map_err(|error| ApiError::invalid("response_format", error.to_string()))?;
    }
    let tools_value = if tool_mode == ToolMode::Off {
        None
    } else {
        Some(serde_json::to_value(&tools).map_err(|_| ApiError::internal())?)
    };
    Ok(Plan {
        messages,
        tools: tools_value,
        tool_mode,
        params: GenerationParams {
            max_tokens,
            temperature,
            top_p,
            seed,
            stop,
            grammar,
        },
        assistant_prefix,
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
    })
}

/// Splits generated text into leading content and tool calls.
fn parse_tool_calls(text: &str) -> (Option<String>, Vec<ToolCall>) {
    let Some(first) = text.find(TOOL_CALL_OPEN) else {
        return (Some(text.to_owned()), Vec::new());
    };
    let mut calls = Vec::new();
    let mut rest = &text[first..];
    while let Some(start) = rest.find(TOOL_CALL_OPEN) {
        let after = &rest[start + TOOL_CALL_OPEN.len()..];
        let (inner, remaining) = match after.find(TOOL_CALL_CLOSE) {
            Some(end) => (&after[..end], &after[end + TOOL_CALL_CLOSE.len()..]),
            None => (after, ""),
        };
        if let Ok(value) = serde_json::from_str::<Value>(inner.trim()) {
            if let Some(name) = value.get("name").and_then(Value::as_str) {
                let arguments = match value.get("arguments") {
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                    None => "{}".to_owned(),
                };
                calls.push(ToolCall {
                    id: format!("call_{}", uuid::Uuid::new_v4().simple()),
                    call_type: "function".to_owned(),
                    function: FunctionCall {
                        name: name.to_owned(),
                        arguments,
                    },
                });
            }
        }
        rest = remaining;
    }
    if calls.is_empty() {
        return (Some(text.to_owned()), Vec::new());
    }
    let content = text[..first].trim();
    (
        if content.is_empty() {
            None
        } else {
            Some(content.to_owned())
        },
        calls,
    )
}

/// The end of one generation.
#[derive(Debug, Default)]
struct Outcome {
    text: String,
    reason: Option<StopReason>,
    prompt_tokens: u32,
    completion_tokens: u32,
    failed: Option<String>,
    cancelled: bool,
    /// Seconds from the request's arrival to the first generated text.
    first_text_seconds: Option<f64>,
}

/// Identity of one completion, shared by its chunks.
#[derive(Debug, Clone)]
struct CompletionIds {
    id: String,
    created: i64,
    model: String,
    fingerprint: String,
}

impl CompletionIds {
    fn chunk(
        &self,
        delta: ChunkDelta,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: Some(self.fingerprint.clone()),
            choices: if usage.is_some()
                && delta.role.is_none()
                && delta.content.is_none()
                && delta.tool_calls.is_none()
                && finish_reason.is_none()
            {
                Vec::new()
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason,
                    logprobs: None,
                }]
            },
            usage,
        }
    }
}

fn sse_event(chunk: &ChatCompletionChunk) -> Event {
    Event::default().data(serde_json::to_string(chunk).unwrap_or_default())
}

fn finish_reason(reason: Option<StopReason>, has_tool_calls: bool) -> FinishReason {
    if has_tool_calls {
        return FinishReason::ToolCalls;
    }
    match reason {
        Some(StopReason::Length) => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

fn usage(outcome: &Outcome) -> Usage {
    Usage {
        prompt_tokens: outcome.prompt_tokens,
        completion_tokens: outcome.completion_tokens,
        total_tokens: outcome.prompt_tokens + outcome.completion_tokens,
    }
}

/// Streams content deltas, holding text back while it may still turn out
/// to be a tool call.
struct StreamWriter {
    ids: CompletionIds,
    out: mpsc::Sender<Result<Event, Infallible>>,
    tools_possible: bool,
    /// Content decided to be plain text.
    content_mode: bool,
    held: String,
    client_gone: bool,
}

impl StreamWriter {
    async fn send(&mut self, chunk: ChatCompletionChunk) {
        if self.client_gone {
            return;
        }
        if self.out.send(Ok(sse_event(&chunk))).await.is_err() {
            self.client_gone = true;
        }
    }

    async fn text(&mut self, text: &str) {
        if !self.tools_possible || self.content_mode {
            let delta = ChunkDelta {
                content: Some(text.to_owned()),
                ..ChunkDelta::default()
            };
            let chunk = self.ids.chunk(delta, None, None);
            self.send(chunk).await;
            return;
        }
        self.held.push_str(text);
        let trimmed = self.held.trim_start();
        if trimmed.starts_with(TOOL_CALL_OPEN) || TOOL_CALL_OPEN.starts_with(trimmed) {
            return;
        }
        self.content_mode = true;
        let held = std::mem::take(&mut self.held);
        let delta = ChunkDelta {
            content: Some(held),
            ..ChunkDelta::default()
        };
        let chunk = self.ids.chunk(delta, None, None);
        self.send(chunk).await;
    }
}

/// Reads engine events to the end; streams them when `writer` is given.
async fn drive(
    mut events: mpsc::UnboundedReceiver<GenerationEvent>,
    mut writer: Option<&mut StreamWriter>,
    metrics_start: Instant,
    state: &AppState,
    stop: Option<tokio_util::sync::CancellationToken>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut first = true;
    loop {
        let event = match &stop {
            Some(stop) => tokio::select! {
                biased;
                () = stop.cancelled() => {
                    // Dropping the receiver frees the slot at the next step.
                    outcome.cancelled = true;
                    break;
                }
                event = events.recv() => event,
            },
            None => events.recv().await,
        };
        let Some(event) = event else { break };
        match event {
            GenerationEvent::Text(text) => {
                if first {
                    first = false;
                    let elapsed = metrics_start.elapsed().as_secs_f64();
                    outcome.first_text_seconds = Some(elapsed);
                    state.metrics.time_to_first_token.observe(elapsed);
                }
                outcome.text.push_str(&text);
                if let Some(writer) = writer.as_deref_mut() {
                    writer.text(&text).await;
                    if writer.client_gone {
                        // Dropping the receiver frees the slot at the next step.
                        outcome.cancelled = true;
                        break;
                    }
                }
            }
            GenerationEvent::Finished {
                reason,
                prompt_tokens,
                completion_tokens,
                first_token_compute_seconds,
            } => {
                if let Some(first_text) = outcome.first_text_seconds {
                    let overhead = (first_text - first_token_compute_seconds).max(0.0);
                    state.metrics.time_to_first_token_overhead.observe(overhead);
                }
                outcome.reason = Some(reason);
                outcome.prompt_tokens = prompt_tokens;
                outcome.completion_tokens = completion_tokens;
                break;
            }
            GenerationEvent::Failed(reason) => {
                outcome.failed = Some(reason);
                break;
            }
        }
    }
    if outcome.reason.is_none() && outcome.failed.is_none() {
        outcome.cancelled = true;
    }
    state
        .metrics
        .prompt_tokens
        .inc_by(u64::from(outcome.prompt_tokens));
    state
        .metrics
        .completion_tokens
        .inc_by(u64::from(outcome.completion_tokens));
    outcome
}

/// Who asked, when, of which engine, and where the conversation goes:
/// what recording a completion needs.
struct RequestContext {
    state: AppState,
    caller: Caller,
    request_id: String,
    engine: std::sync::Arc<ChatEngine>,
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    keep: Keep,
    /// How it was asked to generate (for the answer's provenance).
    params: civitas_inference::GenerationParams,
    /// The data-protection decision it was made under.
    decision: Value,
}

/// A stored message's metadata object (`None` when it has nothing).
fn message_metadata(tool_calls: Option<Value>, generation: Option<Value>) -> Option<String> {
    let mut object = serde_json::Map::new();
    if let Some(calls) = tool_calls {
        object.insert("tool_calls".to_owned(), calls);
    }
    if let Some(generation) = generation {
        object.insert("generation".to_owned(), generation);
    }
    (!object.is_empty()).then(|| Value::Object(object).to_string())
}

/// An answer with the sources it was given in its metadata; only their
/// numbers remain citations, and uncited sentences are attributed.
fn with_sources(mut reply: NewMessage, sources: Option<&Value>) -> NewMessage {
    if let Some(sources) = sources {
        reply.content = crate::grounding::checked_answer(&reply.content, sources);
        let mut object = reply
            .metadata
            .as_deref()
            .and_then(|text| serde_json::from_str::<serde_json::Map<String, Value>>(text).ok())
            .unwrap_or_default();
        object.insert("sources".to_owned(), sources.clone());
        reply.metadata = Some(Value::Object(object).to_string());
    }
    reply
}

/// `value` with at most three decimals, as text (`0.7`, `1`).
fn decimal(value: f32) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// How the answer was made, kept with it (never any content).
fn generation_metadata(context: &RequestContext, outcome: &Outcome, has_tool_calls: bool) -> Value {
    let finish = if outcome.cancelled {
        "stopped"
    } else if has_tool_calls {
        "tool_calls"
    } else if outcome.reason == Some(StopReason::Length) {
        "length"
    } else {
        "stop"
    };
    json!({
        "model": context.engine.info().name,
        "weights_sha256": context.engine.info().weights_sha256,
        "request_id": context.request_id,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "latency_ms": context.started.elapsed().as_millis() as u64,
        "first_token_ms": outcome.first_text_seconds.map(|seconds| (seconds * 1000.0).round() as u64),
        "finish": finish,
        "data_protection": context.decision,
        // The parameters, never the stop sequences' text or the schema;
        // decimals as text, so that a signed provenance holds no float.
        "parameters": {
            "max_tokens": context.params.max_tokens,
            "temperature": decimal(context.params.temperature),
            "top_p": decimal(context.params.top_p),
            "seed": context.params.seed,
            "stop_sequences": context.params.stop.len(),
            "constrained_output": context.params.grammar.is_some(),
        },
    })
}

/// Stores the conversation and the request record.
async fn persist(
    context: &RequestContext,
    plan_messages: &[TemplateMessage],
    answer: &AssistantMessage,
    outcome: &Outcome,
) -> Option<String> {
    let RequestContext {
        state,
        caller,
        request_id,
        engine,
        started,
        started_at,
        keep,
        params: _,
        decision,
    } = context;
    let (started, started_at) = (*started, *started_at);
    let mut conversation_id = None;
    let reply = NewMessage {
        role: "assistant".to_owned(),
        content: answer.content.clone().unwrap_or_default(),
        metadata: message_metadata(
            answer.tool_calls.as_ref().map(|calls| json!(calls)),
            Some(generation_metadata(context, outcome, answer.tool_calls.is_some())),
        ),
    };
    match keep {
        _ if outcome.failed.is_some() => {}
        Keep::Nothing => {}
        Keep::NewConversation { classification } => {
            let mut messages: Vec<NewMessage> = plan_messages
                .iter()
                .map(|message| NewMessage {
                    role: message.role.clone(),
                    content: message.content.clone(),
                    metadata: message_metadata(message.tool_calls.as_ref().map(|calls| json!(calls)), None),
                })
                .collect();
            messages.push(reply);
            let title = plan_messages
                .iter()
                .find(|message| message.role == "user")
                .map(|message| message.content.chars().take(80).collect::<String>());
            match state
                .store
                .create_conversation(
                    NewConversation {
                        owner: caller.actor.clone(),
                        title,
                        model: engine.info().name.clone(),
                        classification: classification.clone(),
                    },
                    messages,
                )
                .await
            {
                Ok((conversation, _)) => conversation_id = Some(conversation.id),
                Err(error) => tracing::error!(request_id, %error, "could not store the conversation"),
            }
        }
        Keep::Append {
            conversation_id: id,
            sources,
            ..
        } => match state
            .store
            .append_messages(id, vec![with_sources(reply, sources.as_ref())])
            .await
        {
            Ok(_) => conversation_id = Some(id.clone()),
            Err(error) => tracing::error!(request_id, %error, "could not store the answer"),
        },
    }
    let (status, error_code) = if outcome.failed.is_some() {
        (500, Some(ErrorCode::InternalError.as_str().to_owned()))
    } else if outcome.cancelled {
        (499, Some("client_closed_request".to_owned()))
    } else {
        (200, None)
    };
    state
        .recorder
        .record_decided(
            caller,
            RequestRecord {
                model: Some(engine.info().name.clone()),
                model_sha256: Some(engine.info().weights_sha256.clone()),
                prompt_tokens: i64::from(outcome.prompt_tokens),
                completion_tokens: i64::from(outcome.completion_tokens),
                latency_ms: started.elapsed().as_millis() as i64,
                status,
                error_code,
                ..caller.new_record(request_id, started_at, ROUTE)
            },
            Some(decision.clone()),
        )
        .await;
    conversation_id
}

fn assistant_message(plan: &Plan, outcome: &Outcome) -> AssistantMessage {
    if plan.tool_mode == ToolMode::Off {
        return AssistantMessage {
            role: Role::Assistant,
            content: Some(outcome.text.clone()),
            refusal: None,
            tool_calls: None,
        };
    }
    let full = format!("{}{}", plan.assistant_prefix, outcome.text);
    let (content, calls) = parse_tool_calls(&full);
    AssistantMessage {
        role: Role::Assistant,
        content: if calls.is_empty() {
            Some(outcome.text.clone())
        } else {
            content
        },
        refusal: None,
        tool_calls: if calls.is_empty() { None } else { Some(calls) },
    }
}

fn engine_error(error: EngineError) -> ApiError {
    match error {
        EngineError::ContextLengthExceeded { .. } => {
            ApiError::new(ErrorCode::ContextLengthExceeded, error.to_string()).with_param("messages")
        }
        EngineError::QueueFull => {
            let mut api = ApiError::new(
                ErrorCode::QueueFull,
                "the model is busy and its queue is full; retry after the delay in `Retry-After`",
            );
            api.retry_after_seconds = Some(2);
            api
        }
        EngineError::Template(_) => ApiError::invalid("messages", error.to_string()),
        EngineError::Grammar(_) => ApiError::invalid("response_format", error.to_string()),
        EngineError::Stopped => ApiError::new(ErrorCode::ShuttingDown, "the model is stopping"),
        other => {
            tracing::error!(error = %other, "inference error");
            ApiError::new(ErrorCode::ModelUnavailable, "the model is unavailable")
        }
    }
}

#[utoipa::path(post, path = "/v1/chat/completions", operation_id = "createChatCompletion", tag = "chat",
    summary = "Create a chat completion (streamed as server-sent events when `stream` is true)",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion, or a `text/event-stream` of `ChatCompletionChunk` ending with `data: [DONE]`", body = ChatCompletion),
        (status = 400, description = "invalid_request_body, invalid_parameter or context_length_exceeded", body = civitas_types::ErrorBody),
        (status = 402, description = "budget_exceeded: a monthly cost budget is spent", body = civitas_types::ErrorBody),
        (status = 403, description = "model_not_allowed", body = civitas_types::ErrorBody),
        (status = 404, description = "model_not_found", body = civitas_types::ErrorBody),
        (status = 413, description = "payload_too_large", body = civitas_types::ErrorBody),
        (status = 429, description = "queue_full or a limit (requests_per_minute_exceeded, tokens_per_minute_exceeded, tokens_per_day_exceeded); see Retry-After", body = civitas_types::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = civitas_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn completions(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    arrived: Option<Extension<RequestStart>>,
    ApiJson(request): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    // From the request's arrival (before the body was read), so that time
    // to first token includes everything the server does.
    let started = arrived
        .map(|Extension(RequestStart(at))| at)
        .unwrap_or_else(Instant::now);
    let mut request = request;
    let mut level = state.config.workspace.default_classification.clone();
    // `civitas.collections`: sources first, then the model.
    let grounding = crate::grounding::ground(&state, &principal, &mut request).await?;
    if let Some(grounding) = &grounding {
        level = crate::grounding::raised_level(&state, &level, grounding);
        if grounding.sources.is_empty() {
            served_and_allowed(&state, &principal, &request.model)?;
            return Ok(crate::grounding::unsupported(
                &request.model,
                request.stream == Some(true),
            ));
        }
    }
    let keep = Keep::NewConversation {
        classification: level.clone(),
    };
    // Every message of an API request is the client's, answers included.
    let response = run(
        state,
        &principal,
        caller,
        request_id,
        started,
        request,
        keep,
        &level,
        History::Client,
    )
    .await?;
    Ok(match grounding {
        Some(grounding) => crate::grounding::attach(response, &grounding).await,
        None => response,
    })
}

/// The model is served here and the caller may use it.
fn served_and_allowed(
    state: &AppState,
    principal: &civitas_identity::Principal,
    model: &str,
) -> Result<(), ApiError> {
    let served = state.chat.iter().any(|engine| engine.info().name == model) || state.gateway.serves(model);
    if !served {
        return Err(model_not_found(model));
    }
    check_allowed(principal, model)
}

/// One completion for `principal`, kept as `keep` says, at classification
/// `level`: the API's handler and the workspace's both come here.
pub use crate::classification::History;

#[allow(
    clippy::too_many_arguments,
    reason = "who, what, where it is kept and at which level"
)]
pub async fn run(
    state: AppState,
    principal: &civitas_identity::Principal,
    caller: Caller,
    request_id: String,
    started: Instant,
    request: ChatCompletionRequest,
    keep: Keep,
    level: &str,
    history: History,
) -> Result<Response, ApiError> {
    let started_at = chrono::Utc::now();
    served_and_allowed(&state, principal, &request.model)?;
    let local = state
        .chat
        .clone()
        .filter(|engine| engine.info().name == request.model);
    let Some(engine) = local else {
        let forwarded = crate::routes::remote::Forwarded {
            caller,
            request_id,
            started,
            started_at,
            decision: None,
        };
        return crate::routes::remote::forward_chat(state, principal, level, history, request, forwarded)
            .await;
    };
    if state.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    // The local model may receive any level, but a marking above every
    // level still goes nowhere.
    let cleared =
        crate::classification::clear(&state, principal, &request_id, level, &request, history, None).await?;
    // The decision goes with the answer into its provenance.
    let decision = cleared.decision(None);
    let plan = plan(request, &state, &engine)?;
    let prompt = engine
        .prepare(&plan.messages, plan.tools.as_ref(), &plan.assistant_prefix)
        .map_err(engine_error)?;
    // The local model's slots are shared fairly: chat before API traffic,
    // agencies and teams in turn.
    let permit = state.gateway.turn("local", principal, caller.priority).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    engine
        .submit(prompt, plan.params.clone(), sender)
        .map_err(engine_error)?;
    let ids = CompletionIds {
        id: format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()),
        created: started_at.timestamp(),
        model: engine.info().name.clone(),
        fingerprint: format!(
            "civitas-{}",
            &engine.info().weights_sha256[..12.min(engine.info().weights_sha256.len())]
        ),
    };

    if plan.stream {
        let (out, out_receiver) = mpsc::channel::<Result<Event, Infallible>>(64);
        let task_state = state.clone();
        tokio::spawn(async move {
            // The turn is held until the answer is written.
            let _permit = permit;
            let mut writer = StreamWriter {
                ids: ids.clone(),
                out,
                tools_possible: plan.tool_mode != ToolMode::Off,
                content_mode: false,
                held: String::new(),
                client_gone: false,
            };
            let role = ChunkDelta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..ChunkDelta::default()
            };
            writer.send(ids.chunk(role, None, None)).await;
            let outcome = drive(
                receiver,
                Some(&mut writer),
                started,
                &task_state,
                keep.stop_token(),
            )
            .await;
            let answer = assistant_message(&plan, &outcome);
            if !writer.client_gone && outcome.failed.is_none() {
                let tool_calls = answer.tool_calls.clone().unwrap_or_default();
                if !tool_calls.is_empty() {
                    let deltas = tool_calls
                        .iter()
                        .enumerate()
                        .map(|(index, call)| ToolCallDelta {
                            index: index as u32,
                            id: Some(call.id.clone()),
                            call_type: Some("function".to_owned()),
                            function: FunctionCallDelta {
                                name: Some(call.function.name.clone()),
                                arguments: Some(call.function.arguments.clone()),
                            },
                        })
                        .collect();
                    let delta = ChunkDelta {
                        tool_calls: Some(deltas),
                        ..ChunkDelta::default()
                    };
                    writer.send(ids.chunk(delta, None, None)).await;
                } else if !writer.held.is_empty() {
                    let held = std::mem::take(&mut writer.held);
                    let delta = ChunkDelta {
                        content: Some(held),
                        ..ChunkDelta::default()
                    };
                    writer.send(ids.chunk(delta, None, None)).await;
                }
                let reason = finish_reason(outcome.reason, !tool_calls.is_empty());
                writer
                    .send(ids.chunk(ChunkDelta::default(), Some(reason), None))
                    .await;
                if plan.include_usage {
                    writer
                        .send(ids.chunk(ChunkDelta::default(), None, Some(usage(&outcome))))
                        .await;
                }
                if !writer.client_gone {
                    let _ = writer.out.send(Ok(Event::default().data("[DONE]"))).await;
                }
            } else if let Some(reason) = &outcome.failed {
                tracing::error!(request_id = %request_id, reason = %reason, "generation failed");
                let body = civitas_types::ErrorBody::new(
                    ErrorCode::InternalError,
                    "generation failed; quote the request id to your administrator",
                    None,
                    request_id.clone(),
                );
                let _ = writer
                    .out
                    .send(Ok(
                        Event::default().data(serde_json::to_string(&body).unwrap_or_default())
                    ))
                    .await;
            }
            drop(writer);
            let context = RequestContext {
                state: task_state,
                caller,
                request_id,
                engine,
                started,
                started_at,
                keep,
                params: plan.params.clone(),
                decision,
            };
            persist(&context, &plan.messages, &answer, &outcome).await;
        });
        let stream = ReceiverStream::new(out_receiver);
        let mut response = Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response();
        response.extensions_mut().insert(HandlerRecords);
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(response);
    }

    // Not streaming: the task runs to the end even if the client leaves.
    let (done, done_receiver) = oneshot::channel();
    let task_state = state.clone();
    let task_request_id = request_id.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let outcome = drive(receiver, None, started, &task_state, keep.stop_token()).await;
        let answer = assistant_message(&plan, &outcome);
        let context = RequestContext {
            state: task_state,
            caller,
            request_id: task_request_id,
            engine,
            started,
            started_at,
            keep,
            params: plan.params.clone(),
            decision,
        };
        let conversation_id = persist(&context, &plan.messages, &answer, &outcome).await;
        let _ = done.send((outcome, answer, conversation_id));
    });
    let (outcome, answer, conversation_id) = done_receiver.await.map_err(|_| ApiError::internal())?;
    if let Some(reason) = outcome.failed {
        tracing::error!(request_id = %request_id, reason = %reason, "generation failed");
        let mut response = ApiError::internal().into_response();
        response.extensions_mut().insert(HandlerRecords);
        return Ok(response);
    }
    let has_tool_calls = answer.tool_calls.is_some();
    let body = ChatCompletion {
        id: ids.id,
        object: "chat.completion".to_owned(),
        created: ids.created,
        model: ids.model,
        system_fingerprint: Some(ids.fingerprint),
        choices: vec![ChatChoice {
            index: 0,
            message: answer,
            finish_reason: finish_reason(outcome.reason, has_tool_calls),
            logprobs: None,
        }],
        usage: usage(&outcome),
    };
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(HandlerRecords);
    if let Some(id) = conversation_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("x-civitas-conversation-id", id);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_text_with_at_most_three_places() {
        assert_eq!(decimal(0.7), "0.7");
        assert_eq!(decimal(1.0), "1");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(10.0), "10");
        assert_eq!(decimal(0.95), "0.95");
        assert_eq!(decimal(0.12345), "0.123");
    }

    #[test]
    fn parses_qwen_style_tool_calls() {
        let text =
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}\n</tool_call>";
        let (content, calls) = parse_tool_calls(text);
        assert!(content.is_none());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].function.name, "get_weather");
        let arguments: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
        assert_eq!(arguments["city"], "Lyon");
    }

    #[test]
    fn text_without_a_valid_call_stays_content() {
        let (content, calls) = parse_tool_calls("I would call <tool_call> but no JSON follows");
        assert!(calls.is_empty());
        assert!(content.unwrap().contains("no JSON"));
    }

    #[test]
    fn several_calls_and_an_unterminated_last_one() {
        let text = "Sure.\n<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}";
        let (content, calls) = parse_tool_calls(text);
        assert_eq!(content.as_deref(), Some("Sure."));
        assert_eq!(
            calls.iter().map(|c| c.function.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
    }
}
