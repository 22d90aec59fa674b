//! Prometheus metrics: requests, latency, tokens, queue depth and slot use.

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use civitas_inference::ChatEngine;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub provider: String,
    /// `answered`, `refused` (a 4xx about the request) or `failed`.
    pub outcome: String,
}

/// Every metric Civitas exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub time_to_first_token: Histogram,
    pub time_to_first_token_overhead: Histogram,
    pub prompt_tokens: Counter,
    pub completion_tokens: Counter,
    queue_depth: Gauge<i64, AtomicI64>,
    slots_in_use: Gauge<i64, AtomicI64>,
    slots_total: Gauge<i64, AtomicI64>,
    /// When the last audit checkpoint was signed (Unix seconds).
    pub audit_checkpoint_unix: Gauge<i64, AtomicI64>,
    /// Spans the trace exporter dropped (set from it at each scrape).
    pub trace_spans_dropped: Gauge<i64, AtomicI64>,
    /// Time to chain and insert audit records (inside their transaction).
    pub audit_append: Histogram,
    /// Attempts on remote deployments, by outcome.
    upstream_attempts: Family<UpstreamLabels, Counter>,
    /// Requests waiting in each fair queue, by class.
    queue_waiting: Family<QueueLabels, Gauge<i64, AtomicI64>>,
    /// Time requests waited in each fair queue.
    queue_wait: Family<QueueNameLabels, Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `local` or a provider's name.
    pub queue: String,
    /// `interactive`, `api` or `batch`.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueNameLabels {
    pub queue: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("civitas");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer (to the last byte for non-streaming requests)",
            latency.clone(),
        );
        let time_to_first_token = Histogram::new(latency_buckets());
        registry.register(
            "time_to_first_token_seconds",
            "Time from request to the first generated text",
            time_to_first_token.clone(),
        );
        let time_to_first_token_overhead = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
        ]);
        registry.register(
            "time_to_first_token_overhead_seconds",
            "Time to first token minus the model compute it needed: what the server adds",
            time_to_first_token_overhead.clone(),
        );
        let prompt_tokens = Counter::default();
        registry.register("prompt_tokens", "Prompt tokens processed", prompt_tokens.clone());
        let completion_tokens = Counter::default();
        registry.register("completion_tokens", "Tokens generated", completion_tokens.clone());
        let queue_depth = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "inference_queue_depth",
            "Requests waiting for a slot",
            queue_depth.clone(),
        );
        let slots_in_use = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "inference_slots_in_use",
            "Sequences being generated",
            slots_in_use.clone(),
        );
        let slots_total = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "inference_slots",
            "Sequences the engine can generate at once",
            slots_total.clone(),
        );
        let audit_checkpoint_unix = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "audit_last_checkpoint_unix_seconds",
            "When this server last signed an audit checkpoint (its age: now minus this)",
            audit_checkpoint_unix.clone(),
        );
        let trace_spans_dropped = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans dropped because the collector could not keep up",
            trace_spans_dropped.clone(),
        );
        let queue_waiting = Family::<QueueLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "queue_waiting",
            "Requests waiting for a model with limited capacity, by queue and class",
            queue_waiting.clone(),
        );
        let queue_wait =
            Family::<QueueNameLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "queue_wait_seconds",
            "Time requests waited in a queue before their model took them",
            queue_wait.clone(),
        );
        let upstream_attempts = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_attempts",
            "Attempts on remote deployments: answered, refused (a 4xx about the request) or failed (retried)",
            upstream_attempts.clone(),
        );
        let audit_append = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
        ]);
        registry.register(
            "audit_append_seconds",
            "Time to chain and insert audit records, inside the transaction of the action they record",
            audit_append.clone(),
        );
        Metrics {
            registry,
            audit_checkpoint_unix,
            trace_spans_dropped,
            audit_append,
            upstream_attempts,
            queue_waiting,
            queue_wait,
            requests,
            latency,
            time_to_first_token,
            time_to_first_token_overhead,
            prompt_tokens,
            completion_tokens,
            queue_depth,
            slots_in_use,
            slots_total,
        }
    }
}

impl Metrics {
    /// One more (or one fewer) request waiting in a queue.
    pub fn queue_waiting(&self, queue: &str, class: &str, change: i64) {
        self.queue_waiting
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
                class: class.to_owned(),
            })
            .inc_by(change);
    }

    /// A request waited this long for its turn.
    pub fn queue_waited(&self, queue: &str, waited: std::time::Duration) {
        self.queue_wait
            .get_or_create(&QueueNameLabels {
                queue: queue.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    /// Counts one attempt on a remote deployment.
    pub fn upstream_attempt(&self, provider: &str, outcome: &str) {
        self.upstream_attempts
            .get_or_create(&UpstreamLabels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with gauges read from the engine now.
    pub fn render(&self, engine: Option<&ChatEngine>) -> String {
        if let Some(engine) = engine {
            let stats = engine.stats();
            self.queue_depth.set(stats.queued.load(Ordering::Relaxed) as i64);
            self.slots_in_use
                .set(stats.active_slots.load(Ordering::Relaxed) as i64);
            self.slots_total.set(i64::from(engine.info().slots));
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
