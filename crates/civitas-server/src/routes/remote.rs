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

use civitas_config::ProviderKind;
use civitas_identity::Principal;

use crate::error::ApiError;
use crate::gateway::Candidates;
use crate::middleware::Caller;
use crate::providers::{Availability, InFlight, RemoteProvider, SendError};
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

/// The request record of a forwarded call (latency up to now).
fn request_record(
    forwarded: &Forwarded,
    model: &str,
    status: i64,
    usage: (i64, i64),
    error: Option<ErrorCode>,
) -> RequestRecord {
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
    }
}

async fn record(
    state: &AppState,
    forwarded: &Forwarded,
    model: &str,
    status: i64,
    usage: (i64, i64),
    error: Option<ErrorCode>,
    price: Option<(f64, f64)>,
) {
    let record = request_record(forwarded, model, status, usage, error);
    state
        .recorder
        .record_priced(&forwarded.caller, record, forwarded.decision.clone(), price)
        .await;
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

/// Cuts a server-sent event stream into whole events as its bytes arrive,
/// however they are split (`\r\n` line ends are read as `\n`).
#[derive(Debug, Default)]
pub struct SseEvents {
    buffer: Vec<u8>,
}

impl SseEvents {
    /// The events `bytes` completes, each as its text.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer
            .extend(bytes.iter().copied().filter(|&byte| byte != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
            let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
            events.push(String::from_utf8_lossy(&event).into_owned());
        }
        events
    }

    /// At the end of the stream: an unterminated last event.
    pub fn rest(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned()
    }
}

/// Restores an SSE stream of completion chunks event by event; a
/// placeholder split across chunks is held back until it is whole, and
/// what is held when `[DONE]` arrives is sent in one more chunk.
struct StreamRestorer {
    vault: Vault,
    restorers: std::collections::BTreeMap<u64, Restorer>,
    events: SseEvents,
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

    /// The events completed by `bytes`, restored.
    fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        for event in self.events.push(bytes) {
            out.push_str(&self.lines(&event));
        }
        out
    }

    fn lines(&mut self, event: &str) -> String {
        let mut out = String::new();
        for line in event.lines() {
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
        let rest = self.events.rest();
        let mut out = self.lines(&rest);
        out.push_str(&self.flush());
        out
    }
}

/// Reads the usage of a streamed answer from its chunks (the last one
/// carries it) and passes the usage-only chunk on only to a client that
/// asked for it (`stream_options.include_usage`).
struct UsageMeter {
    events: SseEvents,
    client_asked: bool,
    /// Prompt and answer tokens, once the usage chunk has passed.
    usage: Arc<std::sync::Mutex<Option<(i64, i64)>>>,
}

impl UsageMeter {
    fn new(client_asked: bool) -> UsageMeter {
        UsageMeter {
            events: SseEvents::default(),
            client_asked,
            usage: Arc::default(),
        }
    }

    fn pass(&mut self, event: &str) -> String {
        let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:")) else {
            return event.to_owned();
        };
        // Only a chunk that mentions usage is parsed.
        if !data.contains("\"usage\"") {
            return event.to_owned();
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data.trim_start()) else {
            return event.to_owned();
        };
        let usage = &chunk["usage"];
        if let (Some(prompt), Some(answer)) = (
            usage["prompt_tokens"].as_i64(),
            usage["completion_tokens"].as_i64(),
        ) {
            *self.usage.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((prompt, answer));
            let usage_only = chunk["choices"].as_array().is_none_or(Vec::is_empty);
            if usage_only && !self.client_asked {
                return String::new();
            }
        }
        event.to_owned()
    }
}

impl SseTransform for UsageMeter {
    fn feed(&mut self, bytes: &[u8]) -> String {
        self.events
            .push(bytes)
            .iter()
            .map(|event| self.pass(event))
            .collect()
    }

    fn end(&mut self) -> String {
        let rest = self.events.rest();
        self.pass(&rest)
    }
}

/// A stream's place at its deployment, and its request record, written
/// when the stream ends — finished, broken off, or left by its client —
/// with the tokens its usage chunk gave.
struct StreamEnd {
    _in_flight: InFlight,
    recorder: crate::recorder::RequestRecorder,
    caller: Caller,
    record: Option<RequestRecord>,
    started: Instant,
    decision: Option<Value>,
    price: Option<(f64, f64)>,
    usage: Arc<std::sync::Mutex<Option<(i64, i64)>>>,
    broke_off: bool,
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        let usage = *self.usage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (prompt, answer) = usage.unwrap_or((0, 0));
        record.prompt_tokens = prompt;
        record.completion_tokens = answer;
        record.latency_ms = self.started.elapsed().as_millis() as i64;
        if self.broke_off {
            record.error_code = Some(ErrorCode::UpstreamError.as_str().to_owned());
        }
        let (recorder, caller, decision, price) = (
            self.recorder.clone(),
            self.caller.clone(),
            self.decision.take(),
            self.price,
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move { recorder.record_priced(&caller, record, decision, price).await });
    }
}

/// Rewrites a server-sent event stream as it passes: Anthropic's events
/// into completion chunks, placeholders back into values.
pub trait SseTransform: Send {
    /// What the events completed by `bytes` become.
    fn feed(&mut self, bytes: &[u8]) -> String;
    /// What is left when the upstream ends.
    fn end(&mut self) -> String;
}

impl SseTransform for StreamRestorer {
    fn feed(&mut self, bytes: &[u8]) -> String {
        StreamRestorer::feed(self, bytes)
    }

    fn end(&mut self) -> String {
        StreamRestorer::end(self)
    }
}

/// One attempt on a deployment that got no usable answer.
#[derive(Debug)]
struct Failure {
    code: ErrorCode,
    message: String,
    upstream_status: Option<u16>,
    retry_after: Option<u64>,
}

impl Failure {
    fn into_error(self) -> ApiError {
        let mut error = ApiError::new(self.code, self.message);
        error.upstream_status = self.upstream_status;
        error.retry_after_seconds = self.retry_after;
        error
    }
}

/// What an attempt gave.
enum Attempt {
    Answer(reqwest::Response),
    /// Try again (elsewhere): connection, timeout, 408, 429, 5xx, or a
    /// credential the provider refused.
    Retry(Failure),
    /// The provider refused the request itself: no retry helps.
    Refused(Failure),
}

/// Sends one attempt to `provider` and sorts out its outcome.
async fn attempt(provider: &RemoteProvider, request: &ChatCompletionRequest) -> Result<Attempt, ApiError> {
    let sent = match provider.kind {
        ProviderKind::Anthropic => {
            let body = crate::anthropic::request(request, provider.upstream_model(&request.model))?;
            provider.send_chat(&request.model, &body).await
        }
        ProviderKind::Openai | ProviderKind::Azure => {
            provider
                .send_chat(&request.model, &provider.openai_body(request))
                .await
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(SendError::FirstByteTimeout(seconds)) => {
            return Ok(Attempt::Retry(Failure {
                code: ErrorCode::UpstreamTimeout,
                message: format!("`{}` did not begin to answer within {seconds} s", provider.name),
                upstream_status: None,
                retry_after: None,
            }))
        }
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "provider unreachable");
            return Ok(Attempt::Retry(Failure {
                code: ErrorCode::UpstreamUnavailable,
                message: format!("the provider `{}` could not be reached", provider.name),
                upstream_status: None,
                retry_after: None,
            }));
        }
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(Attempt::Answer(response));
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let body = provider.client.read_bounded(response).await.unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let message = format!("the provider `{}` answered {status}: {detail}", provider.name);
    let failure = |code| Failure {
        code,
        message: message.clone(),
        upstream_status: Some(status),
        retry_after,
    };
    Ok(match status {
        429 => Attempt::Retry(failure(ErrorCode::UpstreamRateLimited)),
        408 => Attempt::Retry(failure(ErrorCode::UpstreamTimeout)),
        401 | 403 => Attempt::Retry(failure(ErrorCode::UpstreamError)),
        400..=499 => Attempt::Refused(failure(ErrorCode::UpstreamRejected)),
        _ => Attempt::Retry(failure(ErrorCode::UpstreamError)),
    })
}

/// Whether `request` holds images, once every part is checked: text, or an
/// image given inline.
fn holds_images(request: &ChatCompletionRequest) -> Result<bool, ApiError> {
    let mut images = false;
    for (index, message) in request.messages.iter().enumerate() {
        let Some(MessageContent::Parts(parts)) = &message.content else {
            continue;
        };
        let param = || format!("messages[{index}].content");
        for part in parts {
            match (part.part_type.as_str(), &part.image_url) {
                ("text", _) => {}
                ("image_url", Some(image)) if image.inline().is_some() => images = true,
                ("image_url", _) => {
                    return Err(ApiError::invalid(
                        &param(),
                        "an image must be sent inline, as a `data:image/...;base64,` URL; providers are not sent to fetch addresses",
                    ))
                }
                (other, _) => {
                    return Err(ApiError::invalid(
                        &param(),
                        format!("content parts of type `{other}` are not supported; send text or inline images"),
                    ))
                }
            }
        }
    }
    Ok(images)
}

/// Sends `request` to the deployments of its model, as the gateway orders
/// them, and relays the first answer, streamed or not.
///
/// Only deployments cleared for the request's level are tried. A
/// connection error, a timeout before the answer begins, 408, 429, 5xx or
/// a refused credential is retried (after a jittered back-off, on the next
/// deployment when there is one) up to `gateway.retries` times and counts
/// against the deployment's health; once an answer has begun nothing is
/// retried. Failures answer with Civitas' code and the provider's status
/// (`upstream_status`).
#[allow(
    clippy::too_many_arguments,
    reason = "who asks, at which level, what, and the record"
)]
pub async fn forward_chat(
    state: AppState,
    principal: &Principal,
    level: &str,
    history: crate::classification::History,
    request: ChatCompletionRequest,
    mut forwarded: Forwarded,
) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    let images = holds_images(&request)?;
    let model = request.model.clone();
    let (candidates, mut probes) = match state.gateway.candidates(&model) {
        Candidates::Try(candidates, probes) => (candidates, probes),
        Candidates::None => return Err(crate::routes::models::model_not_found(&model)),
        Candidates::AllCooling(left) => {
            let seconds = left.as_secs().max(1);
            let failure = Failure {
                code: ErrorCode::UpstreamUnavailable,
                message: format!(
                    "every deployment of `{model}` failed recently and is cooling down; try again in {seconds} s"
                ),
                upstream_status: None,
                retry_after: Some(seconds),
            };
            return Ok(failed(&state, &forwarded, &model, failure).await);
        }
    };
    // Deployments not cleared for this level are not tried at all; when
    // none is, the refusal is recorded with its reason.
    let cleared_for: Vec<Arc<RemoteProvider>> = candidates
        .into_iter()
        .filter(|provider| {
            crate::classification::allows(&state, principal, level, &request, history, provider)
        })
        .collect();
    if cleared_for.is_empty() {
        let first = state.gateway.deployments(&model).first().cloned();
        crate::classification::clear(
            &state,
            principal,
            &forwarded.request_id,
            level,
            &request,
            history,
            first.as_deref(),
        )
        .await?;
        return Err(ApiError::internal());
    }
    // What is in an image cannot be replaced by placeholders: images go
    // only where nothing would be.
    let cleared_for: Vec<Arc<RemoteProvider>> = cleared_for
        .into_iter()
        .filter(|provider| !images || !provider.pseudonymize)
        .collect();
    if cleared_for.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "images cannot be checked for personal data, so they are sent only to deployments that do not pseudonymize (the agency's own servers); `{model}` has none cleared for this request"
            ),
        ));
    }
    let gateway = &state.gateway;
    let mut last = None;
    let mut next = 0;
    for number in 0..=gateway.config.retries {
        // The next deployment in turn, passing those this request's
        // failures cooled down.
        let Some(provider) = (0..cleared_for.len())
            .map(|offset| &cleared_for[(next + offset) % cleared_for.len()])
            .find(|provider| {
                number == 0
                    || provider.health.availability() == Availability::Ready
                    || probes.pending(provider)
            })
            .cloned()
        else {
            break;
        };
        next = cleared_for
            .iter()
            .position(|candidate| Arc::ptr_eq(candidate, &provider))
            .map_or(0, |at| at + 1);
        if number > 0 {
            tokio::time::sleep(gateway.backoff(number)).await;
        }
        let cleared = crate::classification::clear(
            &state,
            principal,
            &forwarded.request_id,
            level,
            &request,
            history,
            Some(&provider),
        )
        .await?;
        // Personal data leaves only as placeholders (unless the provider
        // is the agency's own and configured so).
        let mut outgoing = request.clone();
        let vault = if cleared.pseudonymize {
            pseudonymize_messages(&mut outgoing)
        } else {
            Vault::new()
        };
        // Recorded with the model call: the decision and how many values
        // of each type left as placeholders (never the values).
        forwarded.decision = Some(cleared.decision(cleared.pseudonymize.then(|| vault.counts()).as_ref()));
        probes.attempting(&provider);
        // A deployment of limited capacity is waited for in its fair queue.
        let permit = state
            .gateway
            .turn(&provider.name, principal, forwarded.caller.priority)
            .await?;
        let in_flight = InFlight::with(&provider, permit);
        let began = Instant::now();
        match attempt(&provider, &outgoing).await? {
            Attempt::Answer(response) => {
                provider.health.succeeded(began.elapsed());
                state.metrics.upstream_attempt(&provider.name, "answered");
                return relay(
                    &state, &provider, response, vault, &forwarded, &request, in_flight,
                )
                .await;
            }
            Attempt::Refused(failure) => {
                // The deployment answered: it is healthy.
                provider.health.succeeded(began.elapsed());
                state.metrics.upstream_attempt(&provider.name, "refused");
                return Ok(failed(&state, &forwarded, &model, failure).await);
            }
            Attempt::Retry(failure) => {
                state.metrics.upstream_attempt(&provider.name, "failed");
                if provider
                    .health
                    .failed(gateway.config.cooldown_after_failures, gateway.cooldown())
                {
                    tracing::warn!(provider = %provider.name, "deployment cooled down after failures");
                }
                last = Some(failure);
            }
        }
    }
    let failure = last.unwrap_or(Failure {
        code: ErrorCode::UpstreamUnavailable,
        message: format!("no deployment of `{model}` answered"),
        upstream_status: None,
        retry_after: None,
    });
    Ok(failed(&state, &forwarded, &model, failure).await)
}

/// Records a failed forward and answers its error.
async fn failed(state: &AppState, forwarded: &Forwarded, model: &str, failure: Failure) -> Response {
    let error = failure.into_error();
    record(
        state,
        forwarded,
        model,
        i64::from(error.code.http_status()),
        (0, 0),
        Some(error.code),
        None,
    )
    .await;
    marked(error.into_response())
}

/// Relays a deployment's answer: a stream event by event (translated,
/// restored), else the whole completion, checked.
async fn relay(
    state: &AppState,
    provider: &RemoteProvider,
    upstream: reqwest::Response,
    vault: Vault,
    forwarded: &Forwarded,
    request: &ChatCompletionRequest,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let model = &request.model;
    if request.stream.unwrap_or(false) {
        // The provider is always asked for the usage (a last chunk), so
        // that a streamed answer is charged like any other; the client
        // sees that chunk only if it asked for it.
        let client_asked = request
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false);
        let meter = UsageMeter::new(client_asked);
        let ending = StreamEnd {
            _in_flight: in_flight,
            recorder: state.recorder.clone(),
            caller: forwarded.caller.clone(),
            record: Some(request_record(forwarded, model, 200, (0, 0), None)),
            started: forwarded.started,
            decision: forwarded.decision.clone(),
            price: provider.price,
            usage: Arc::clone(&meter.usage),
            broke_off: false,
        };
        let mut transforms: Vec<Box<dyn SseTransform>> = Vec::new();
        if provider.kind == ProviderKind::Anthropic {
            transforms.push(Box::new(crate::anthropic::StreamTranslator::new(model, true)));
        }
        transforms.push(Box::new(meter));
        if !vault.is_empty() {
            transforms.push(Box::new(StreamRestorer {
                vault,
                restorers: std::collections::BTreeMap::new(),
                events: SseEvents::default(),
                last: None,
            }));
        }
        let body = sse_body(upstream, transforms, ending, provider.name.clone());
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies in front must not hold events back.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(marked(response));
    }
    let body = match provider.client.read_bounded(upstream).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "provider answer unreadable");
            let failure = Failure {
                code: ErrorCode::UpstreamError,
                message: format!("the answer of `{}` could not be read", provider.name),
                upstream_status: None,
                retry_after: None,
            };
            return Ok(failed(state, forwarded, model, failure).await);
        }
    };
    drop(in_flight);
    let body = if provider.kind == ProviderKind::Anthropic {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|answer| crate::anthropic::completion(&answer, model))
            .and_then(|completion| serde_json::to_vec(&completion).ok())
            .unwrap_or_default()
    } else {
        body
    };
    let Ok(completion) = serde_json::from_slice::<ChatCompletion>(&body) else {
        let failure = Failure {
            code: ErrorCode::UpstreamError,
            message: format!(
                "the provider `{}` answered with a malformed completion",
                provider.name
            ),
            upstream_status: None,
            retry_after: None,
        };
        return Ok(failed(state, forwarded, model, failure).await);
    };
    let usage = (
        i64::from(completion.usage.prompt_tokens),
        i64::from(completion.usage.completion_tokens),
    );
    record(state, forwarded, model, 200, usage, None, provider.price).await;
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
    if let Some(decision) = forwarded.decision.clone() {
        response
            .extensions_mut()
            .insert(crate::classification::Decision(decision));
    }
    Ok(marked(response))
}

/// A streamed answer passed on chunk by chunk, through `transforms` in
/// order. The deployment counts it in flight until it ends; if the
/// client goes, the body is dropped and with it the upstream request. An
/// upstream that breaks off midway ends the stream with an error event
/// (and no `[DONE]`).
fn sse_body(
    upstream: reqwest::Response,
    transforms: Vec<Box<dyn SseTransform>>,
    ending: StreamEnd,
    provider: String,
) -> Body {
    let apply = |transforms: &mut Vec<Box<dyn SseTransform>>, bytes: &[u8]| -> bytes::Bytes {
        let mut data = bytes.to_vec();
        for transform in transforms.iter_mut() {
            data = transform.feed(&data).into_bytes();
        }
        bytes::Bytes::from(data)
    };
    let finish = |transforms: &mut Vec<Box<dyn SseTransform>>| -> String {
        let mut out = String::new();
        for transform in transforms.iter_mut() {
            let fed = transform.feed(out.as_bytes());
            out = fed + &transform.end();
        }
        out
    };
    let state = Some((upstream.bytes_stream(), transforms, ending));
    let events = futures::stream::unfold(state, move |state| {
        let provider = provider.clone();
        async move {
            let (mut upstream, mut transforms, mut ending) = state?;
            match upstream.next().await {
                Some(Ok(bytes)) => {
                    let out = apply(&mut transforms, &bytes);
                    Some((
                        Ok::<_, std::convert::Infallible>(out),
                        Some((upstream, transforms, ending)),
                    ))
                }
                Some(Err(error)) => {
                    tracing::warn!(%provider, %error, "the provider's stream broke off");
                    ending.broke_off = true;
                    let mut out = finish(&mut transforms);
                    let event = serde_json::json!({"error": {
                        "message": format!("the provider `{provider}` stopped answering midway"),
                        "type": "server_error", "code": "upstream_error"}});
                    out.push_str(&format!("data: {event}\n\n"));
                    drop(ending);
                    Some((Ok(bytes::Bytes::from(out)), None))
                }
                None => {
                    let out = finish(&mut transforms);
                    drop(ending);
                    Some((Ok(bytes::Bytes::from(out)), None))
                }
            }
        }
    })
    .filter(|bytes| futures::future::ready(bytes.as_ref().map_or(true, |bytes| !bytes.is_empty())));
    Body::from_stream(events)
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
            events: SseEvents::default(),
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
