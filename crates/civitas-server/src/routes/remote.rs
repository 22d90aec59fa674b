//! Chat completions forwarded to a remote provider.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use civitas_store::RequestRecord;
use civitas_types::openai::{ChatCompletion, ChatCompletionRequest};
use civitas_types::ErrorCode;
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
        .record(
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

/// Forwards `request` to `provider` and relays its answer, streamed or not.
pub async fn forward_chat(
    state: AppState,
    provider: Arc<RemoteProvider>,
    request: ChatCompletionRequest,
    forwarded: Forwarded,
) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
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
        let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
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
    // Validated above; relayed byte for byte (no second serialisation).
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(marked(response))
}
