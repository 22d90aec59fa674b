//! Optional OpenTelemetry trace export: one server span per HTTP request,
//! sent in batches to an OTLP/HTTP collector (`[telemetry] otlp_endpoint`)
//! as protobuf, the protocol's default encoding.
//!
//! A span carries the method, the route template (never the path with its
//! ids, never a query, a header value or a body), the status, the request
//! id and the timing — no content and no secret. An incoming W3C
//! `traceparent` header is continued, so Civitas' spans join the trace of
//! the agency's application that called it. Export never slows a request:
//! spans go through a bounded queue, and when the collector cannot keep up
//! they are dropped and counted (`civitas_trace_spans_dropped_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use civitas_config::{SecretLocation, TelemetryConfig};
use tokio::sync::mpsc;

/// Spans waiting for export, at most; more are dropped.
const QUEUE: usize = 8192;
/// Spans sent in one export request, at most.
const BATCH: usize = 512;

/// Where a span sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

impl TraceContext {
    /// The span of a request: a child of the caller's `traceparent` when it
    /// sends a valid one, else the root of a new trace (sampled at `ratio`).
    pub fn of_request(headers: &HeaderMap, ratio: f64) -> TraceContext {
        let parent = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_traceparent);
        let span_id = loop {
            let id: [u8; 8] = rand::random();
            if id != [0; 8] {
                break id;
            }
        };
        match parent {
            Some((trace_id, parent_id, sampled)) => TraceContext {
                trace_id,
                span_id,
                parent_span_id: Some(parent_id),
                sampled,
            },
            None => TraceContext {
                trace_id: loop {
                    let id: [u8; 16] = rand::random();
                    if id != [0; 16] {
                        break id;
                    }
                },
                span_id,
                parent_span_id: None,
                sampled: rand::random::<f64>() < ratio,
            },
        }
    }
}

/// `version-traceid-parentid-flags` (W3C Trace Context), refusing the
/// all-zero ids and the reserved version `ff`.
fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], bool)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id: [u8; 16] = hex_bytes(parts.next()?)?;
    let parent_id: [u8; 8] = hex_bytes(parts.next()?)?;
    let flags: [u8; 1] = hex_bytes(parts.next()?)?;
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags[0] & 1 == 1))
}

/// A value of a span attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// A finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub context: TraceContext,
    pub name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub error: bool,
}

/// The exporter's handle: spans are queued here.
#[derive(Debug)]
pub struct Telemetry {
    sender: Option<mpsc::Sender<Span>>,
    sample_ratio: f64,
    dropped: AtomicU64,
}

impl Telemetry {
    /// No export.
    pub fn disabled() -> Telemetry {
        Telemetry {
            sender: None,
            sample_ratio: 0.0,
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the export task when an endpoint is configured.
    pub fn start(
        config: &TelemetryConfig,
    ) -> Result<(Telemetry, Option<tokio::task::JoinHandle<()>>), String> {
        if config.otlp_endpoint.is_empty() {
            return Ok((Telemetry::disabled(), None));
        }
        let url = url::Url::parse(&config.otlp_endpoint)
            .map_err(|error| format!("telemetry.otlp_endpoint: {error}"))?;
        let authorization = if config.otlp_authorization.is_empty() {
            None
        } else {
            let location = SecretLocation::parse(&config.otlp_authorization)
                .map_err(|error| format!("telemetry.otlp_authorization: {error}"))?;
            Some(
                location
                    .read()?
                    .ok_or_else(|| format!("telemetry.otlp_authorization: nothing found at {location:?}"))?,
            )
        };
        // The collector is the operator's own choice: its host may be internal.
        let policy = civitas_http_client::AddressPolicy {
            allowed_internal_hosts: url.host_str().map(str::to_owned).into_iter().collect(),
        };
        let client = civitas_http_client::HttpClient::new(policy, Duration::from_secs(10), 64 * 1024)
            .map_err(|error| error.to_string())?;
        let (sender, mut receiver) = mpsc::channel::<Span>(QUEUE);
        let resource = Resource {
            instance: uuid::Uuid::now_v7().to_string(),
            service: config.service_name.clone(),
        };
        let endpoint = config.otlp_endpoint.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut failing = false;
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                let body = encode_request(&resource, &batch);
                batch.clear();
                let answer = client
                    .post_bytes(
                        &endpoint,
                        "application/x-protobuf",
                        authorization.as_ref().map(|secret| secret.expose()),
                        body,
                    )
                    .await;
                match answer {
                    Ok(status) if (200..300).contains(&status) => failing = false,
                    // Said once per outage, not once per batch.
                    Ok(status) if !failing => {
                        failing = true;
                        tracing::warn!(status, "the trace collector refused spans");
                    }
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "the trace collector cannot be reached");
                    }
                    _ => {}
                }
                // Batches form while the last one is sent; no busy loop.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok((
            Telemetry {
                sender: Some(sender),
                sample_ratio: config.otlp_sample_ratio,
                dropped: AtomicU64::new(0),
            },
            Some(task),
        ))
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    pub fn sample_ratio(&self) -> f64 {
        self.sample_ratio
    }

    /// Queues a finished span (dropped, and counted, when the queue is
    /// full or the span is not sampled).
    pub fn emit(&self, span: Span) {
        let Some(sender) = &self.sender else { return };
        if !span.context.sampled {
            return;
        }
        if sender.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped because the collector could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What every exported span is attached to.
struct Resource {
    instance: String,
    service: String,
}

/// Protocol Buffers wire format, for the few OTLP messages sent.
#[derive(Default)]
struct Protobuf(Vec<u8>);

impl Protobuf {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn text(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    fn uint(&mut self, field: u32, value: u64) {
        self.key(field, 0);
        self.varint(value);
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Protobuf)) {
        let mut inner = Protobuf::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }

    /// An OTLP `KeyValue` (`key` = 1, `value` = 2: an `AnyValue` with
    /// `string_value` = 1 or `int_value` = 3).
    fn attribute(&mut self, field: u32, key: &str, value: &Value) {
        self.message(field, |pair| {
            pair.text(1, key);
            pair.message(2, |any| match value {
                Value::Text(text) => any.text(1, text),
                Value::Int(number) => any.uint(3, *number as u64),
            });
        });
    }
}

/// An `ExportTraceServiceRequest` holding `spans`.
fn encode_request(resource: &Resource, spans: &[Span]) -> Vec<u8> {
    let mut request = Protobuf::default();
    // resource_spans = 1
    request.message(1, |resource_spans| {
        // resource = 1: attributes = 1
        resource_spans.message(1, |fields| {
            fields.attribute(1, "service.name", &Value::Text(resource.service.clone()));
            fields.attribute(
                1,
                "service.version",
                &Value::Text(env!("CARGO_PKG_VERSION").to_owned()),
            );
            fields.attribute(1, "service.instance.id", &Value::Text(resource.instance.clone()));
        });
        // scope_spans = 2
        resource_spans.message(2, |scope_spans| {
            // scope = 1: name = 1, version = 2
            scope_spans.message(1, |scope| {
                scope.text(1, "civitas");
                scope.text(2, env!("CARGO_PKG_VERSION"));
            });
            for span in spans {
                // spans = 2
                scope_spans.message(2, |out| encode_span(out, span));
            }
        });
    });
    request.0
}

fn encode_span(out: &mut Protobuf, span: &Span) {
    out.bytes(1, &span.context.trace_id);
    out.bytes(2, &span.context.span_id);
    if let Some(parent) = span.context.parent_span_id {
        out.bytes(4, &parent);
    }
    out.text(5, &span.name);
    // kind = 6: SPAN_KIND_SERVER
    out.uint(6, 2);
    out.fixed64(7, span.start_unix_nanos);
    out.fixed64(8, span.end_unix_nanos);
    for (key, value) in &span.attributes {
        out.attribute(9, key, value);
    }
    if span.error {
        // status = 15: code = 3, STATUS_CODE_ERROR
        out.message(15, |status| status.uint(3, 2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_continued_and_a_bad_one_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let context = TraceContext::of_request(&headers, 0.0);
        assert_eq!(
            hex_bytes::<16>("4bf92f3577b34da6a3ce929d0e0e4736"),
            Some(context.trace_id)
        );
        assert_eq!(context.parent_span_id, hex_bytes::<8>("00f067aa0ba902b7"));
        assert!(context.sampled, "the caller's sampling decision is kept");
        assert_ne!(context.span_id, [0; 8]);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "not a traceparent",
        ] {
            headers.insert("traceparent", bad.parse().unwrap());
            let context = TraceContext::of_request(&headers, 1.0);
            assert!(context.parent_span_id.is_none(), "{bad}");
            assert!(context.sampled);
        }
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
                .parse()
                .unwrap(),
        );
        assert!(!TraceContext::of_request(&headers, 1.0).sampled);
    }

    #[test]
    fn protobuf_wire_format() {
        let mut out = Protobuf::default();
        out.uint(1, 300);
        assert_eq!(out.0, [0x08, 0xac, 0x02]);
        let mut out = Protobuf::default();
        out.text(2, "hi");
        assert_eq!(out.0, [0x12, 2, b'h', b'i']);
        let mut out = Protobuf::default();
        out.fixed64(7, 1);
        assert_eq!(out.0, [0x39, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = Protobuf::default();
        out.attribute(9, "n", &Value::Int(-1));
        // KeyValue{key "n", value AnyValue{int_value -1 as 10-byte varint}}
        assert_eq!(
            out.0,
            [
                0x4a, 16, 0x0a, 1, b'n', 0x12, 11, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0x01
            ]
        );
    }
}
