//! Remote deployments: the agency's own inference servers (vLLM, Ollama,
//! llama.cpp server, TGI), Azure OpenAI, Anthropic or another platform,
//! reached through the one outbound client with its address policy, each
//! with its health (requests in flight, failures in a row, cool-down,
//! latency) for the gateway's routing (`crate::gateway`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use civitas_config::{ProviderConfig, ProviderKind, Secret, SecretLocation};
use civitas_http_client::{AddressPolicy, HttpClient, HttpClientError};
use civitas_types::openai::ChatCompletionRequest;

/// Largest non-streamed answer read from a provider.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// One configured deployment.
pub struct RemoteProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub models: Vec<String>,
    /// The provider's own names of models, where they differ.
    model_map: std::collections::BTreeMap<String, String>,
    base_url: String,
    api_version: String,
    key: Option<Secret>,
    pub(crate) client: HttpClient,
    /// Messages leave with placeholders instead of personal data.
    pub pseudonymize: bool,
    /// The highest classification level it may receive (empty: the
    /// lowest).
    pub accreditation: String,
    /// Where its models run (`external` when not configured).
    pub jurisdiction: String,
    pub context_length: Option<u32>,
    /// Requests it takes at once (a fair queue holds the others).
    pub max_concurrent: Option<u32>,
    pub weight: u32,
    /// Its own price per million tokens (prompt, answer), if it has one.
    pub price: Option<(f64, f64)>,
    first_byte_timeout: Duration,
    pub health: Health,
}

impl std::fmt::Debug for RemoteProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Why an attempt to send got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Client(#[from] HttpClientError),
    #[error("no answer began within {0} s")]
    FirstByteTimeout(u64),
}

impl RemoteProvider {
    /// Builds a provider from its configuration, reading its key.
    pub fn from_config(config: &ProviderConfig) -> Result<RemoteProvider, String> {
        let key = if config.api_key.is_empty() {
            None
        } else {
            let location = SecretLocation::parse(&config.api_key)?;
            Some(
                location
                    .read()?
                    .ok_or_else(|| format!("provider `{}`: no key found at {location:?}", config.name))?,
            )
        };
        let host = url::Url::parse(&config.base_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .ok_or_else(|| format!("provider `{}`: `{}` is not a URL", config.name, config.base_url))?;
        let policy = AddressPolicy {
            allowed_internal_hosts: if config.allow_internal {
                vec![host]
            } else {
                Vec::new()
            },
        };
        let client = HttpClient::new(
            policy,
            Duration::from_secs(config.timeout_seconds),
            MAX_RESPONSE_BYTES,
        )
        .map_err(|error| format!("provider `{}`: {error}", config.name))?;
        Ok(RemoteProvider {
            name: config.name.clone(),
            kind: config.kind,
            models: config.models.clone(),
            model_map: config.model_map.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_version: config.api_version.clone(),
            key,
            client,
            pseudonymize: config.pseudonymize,
            accreditation: config.accreditation.clone(),
            jurisdiction: if config.jurisdiction.trim().is_empty() {
                "external".to_owned()
            } else {
                config.jurisdiction.trim().to_owned()
            },
            context_length: config.context_length,
            max_concurrent: config.max_concurrent,
            weight: config.weight,
            first_byte_timeout: Duration::from_secs(config.first_byte_timeout_seconds),
            price: config.price(),
            health: Health::default(),
        })
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|name| name == model)
    }

    /// The provider's name for `model`.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_map.get(model).map_or(model, String::as_str)
    }

    /// Where a chat request for `model` goes.
    fn chat_url(&self, model: &str) -> String {
        match self.kind {
            ProviderKind::Openai => format!("{}/chat/completions", self.base_url),
            ProviderKind::Azure => format!(
                "{}/openai/deployments/{}/chat/completions?api-version={}",
                self.base_url,
                url::form_urlencoded::byte_serialize(self.upstream_model(model).as_bytes())
                    .collect::<String>(),
                self.api_version
            ),
            ProviderKind::Anthropic => format!("{}/messages", self.base_url),
        }
    }

    /// The credential headers of this kind of provider.
    fn credentials(&self) -> Vec<(&'static str, String)> {
        let Some(key) = self.key.as_ref().map(Secret::expose) else {
            return Vec::new();
        };
        match self.kind {
            ProviderKind::Openai => vec![("authorization", format!("Bearer {key}"))],
            ProviderKind::Azure => vec![("api-key", key.to_owned())],
            ProviderKind::Anthropic => vec![("x-api-key", key.to_owned())],
        }
    }

    /// Sends a chat completion request (already in the provider's own
    /// shape, its model name included); the answer is returned unread
    /// once its status line arrives, within `first_byte_timeout_seconds`.
    pub async fn send_chat(
        &self,
        model: &str,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, SendError> {
        let url = self.chat_url(model);
        let mut headers = self.credentials();
        if self.kind == ProviderKind::Anthropic {
            headers.push(("anthropic-version", crate::anthropic::API_VERSION.to_owned()));
        }
        self.send_with(&url, &headers, body).await
    }

    /// POSTs `body` with `headers`, waiting for the answer to begin at
    /// most `first_byte_timeout_seconds`.
    async fn send_with(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, SendError> {
        let sent = self.client.post_json_with(url, headers, body);
        match tokio::time::timeout(self.first_byte_timeout, sent).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(SendError::FirstByteTimeout(self.first_byte_timeout.as_secs())),
        }
    }

    /// The OpenAI-shaped request as this provider takes it: its own model
    /// name (Azure names the deployment in the URL instead).
    pub fn openai_body(&self, request: &ChatCompletionRequest) -> ChatCompletionRequest {
        let mut body = request.clone();
        body.model = self.upstream_model(&request.model).to_owned();
        body.civitas = None;
        // A stream's usage is always asked for, so that it is charged.
        if body.stream == Some(true) {
            body.stream_options = Some(civitas_types::openai::StreamOptions {
                include_usage: Some(true),
            });
        }
        body
    }

    /// Relevance of each of `documents` to `query` from the provider's
    /// `/rerank` endpoint (vLLM, TEI and Cohere's shape), by index.
    pub async fn rerank(&self, model: &str, query: &str, documents: &[&str]) -> Result<Vec<f32>, String> {
        let url = format!("{}/rerank", self.base_url);
        let body =
            serde_json::json!({"model": self.upstream_model(model), "query": query, "documents": documents});
        let response = self
            .send_json(&url, &body)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let bytes = self
            .client
            .read_bounded(response)
            .await
            .map_err(|error| error.to_string())?;
        if !(200..300).contains(&status) {
            return Err(format!("`{}` answered {status}", self.name));
        }
        let answer: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| format!("`{}` answered something else than JSON", self.name))?;
        let mut scores = vec![f32::NEG_INFINITY; documents.len()];
        for result in answer["results"].as_array().into_iter().flatten() {
            let index = result["index"]
                .as_u64()
                .and_then(|index| usize::try_from(index).ok());
            let score = result["relevance_score"].as_f64();
            match (index, score) {
                (Some(index), Some(score)) if index < scores.len() => scores[index] = score as f32,
                _ => {
                    return Err(format!(
                        "`{}` answered results without index or relevance_score",
                        self.name
                    ))
                }
            }
        }
        Ok(scores)
    }

    async fn send_json(&self, url: &str, body: &serde_json::Value) -> Result<reqwest::Response, SendError> {
        self.send_with(url, &self.credentials(), body).await
    }

    /// A list of the provider's models (`GET /models`), for
    /// `civitas providers test`: its status and body.
    pub async fn list_models(&self) -> Result<(u16, Vec<u8>), HttpClientError> {
        let url = format!("{}/models", self.base_url);
        let answer = self.client.get_with(&url, &self.credentials()).await?;
        Ok((answer.status, answer.body))
    }
}

/// Milliseconds since the first call, for times kept in atomics.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What the gateway knows of a deployment's recent behaviour.
#[derive(Debug, Default)]
pub struct Health {
    in_flight: AtomicU32,
    failures_in_a_row: AtomicU32,
    /// Until when it takes no traffic (`now_ms` scale; 0: not cooled).
    cooled_until_ms: AtomicU64,
    /// A request is probing it after its cool-down.
    probing: AtomicBool,
    /// Moving average of the time its answers take to begin, in
    /// microseconds (0: not measured yet).
    latency_us: AtomicU64,
}

/// Whether a deployment may take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// Its cool-down is over: one request may probe it.
    Probe,
    /// Cooling down for this long still.
    Cooling(Duration),
}

/// A request in flight on a deployment; counted until dropped (a
/// streamed answer holds it until its end).
#[derive(Debug)]
pub struct InFlight {
    provider: std::sync::Arc<RemoteProvider>,
    /// Its turn in the deployment's fair queue, held as long.
    _permit: Option<crate::fair_queue::Permit>,
}

impl InFlight {
    pub fn begin(provider: &std::sync::Arc<RemoteProvider>) -> InFlight {
        InFlight::with(provider, None)
    }

    pub fn with(
        provider: &std::sync::Arc<RemoteProvider>,
        permit: Option<crate::fair_queue::Permit>,
    ) -> InFlight {
        provider.health.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            provider: std::sync::Arc::clone(provider),
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.provider.health.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Health {
    pub fn availability(&self) -> Availability {
        let until = self.cooled_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Availability::Ready;
        }
        let now = now_ms();
        if now < until {
            return Availability::Cooling(Duration::from_millis(until - now));
        }
        if self.probing.load(Ordering::Acquire) {
            // Someone is probing already: wait for their verdict.
            return Availability::Cooling(Duration::from_secs(1));
        }
        Availability::Probe
    }

    /// Claims the probe of a deployment whose cool-down is over; false
    /// when another request claimed it first.
    pub fn claim_probe(&self) -> bool {
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives back a claimed probe that was not made.
    pub fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Average time to the answer's beginning (`None`: not measured).
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// An answer began after `waited`: the deployment is healthy.
    pub fn succeeded(&self, waited: Duration) {
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        self.cooled_until_ms.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        let sample = (waited.as_micros() as u64).max(1);
        let _ = self
            .latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { sample } else { (old * 4 + sample) / 5 })
            });
    }

    /// An attempt failed; after `threshold` in a row (or a failed probe)
    /// the deployment cools down for `cooldown`. Returns whether it did.
    pub fn failed(&self, threshold: u32, cooldown: Duration) -> bool {
        let failures = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let probe_failed = self.probing.swap(false, Ordering::AcqRel);
        if failures >= threshold || probe_failed {
            self.cooled_until_ms
                .store(now_ms() + cooldown.as_millis() as u64, Ordering::Release);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_cool_a_deployment_down_and_one_probe_brings_it_back() {
        let health = Health::default();
        assert_eq!(health.availability(), Availability::Ready);
        assert!(!health.failed(3, Duration::from_millis(40)));
        health.succeeded(Duration::from_millis(10));
        // The count restarts after a success.
        assert!(!health.failed(3, Duration::from_millis(40)));
        assert!(!health.failed(3, Duration::from_millis(40)));
        assert!(health.failed(3, Duration::from_millis(40)));
        assert!(matches!(health.availability(), Availability::Cooling(_)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(health.availability(), Availability::Probe);
        assert!(health.claim_probe());
        assert!(!health.claim_probe(), "one probe at a time");
        assert!(matches!(health.availability(), Availability::Cooling(_)));
        // A failed probe cools it down again at once.
        assert!(health.failed(3, Duration::from_millis(40)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(health.claim_probe());
        health.succeeded(Duration::from_millis(30));
        assert_eq!(health.availability(), Availability::Ready);
        assert_eq!(health.latency(), Some(Duration::from_micros(14_000)));
    }

    #[test]
    fn requests_in_flight_are_counted_until_they_end() {
        let provider = std::sync::Arc::new(
            RemoteProvider::from_config(&ProviderConfig {
                name: "a".to_owned(),
                base_url: "http://a.invalid/v1".to_owned(),
                models: vec!["m".to_owned()],
                ..ProviderConfig::default()
            })
            .unwrap(),
        );
        let first = InFlight::begin(&provider);
        let second = InFlight::begin(&provider);
        assert_eq!(provider.health.in_flight(), 2);
        drop((first, second));
        assert_eq!(provider.health.in_flight(), 0);
    }
}
