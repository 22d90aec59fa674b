//! Remote OpenAI-compatible providers: the agency's own inference servers
//! (vLLM, Ollama, llama.cpp server, TGI) or an accredited cloud, reached
//! through the one outbound client with its address policy.
//!
//! This first cut forwards chat completions for the models a provider
//! lists; routing policy, fail-over and fair sharing come with the gateway.

use std::time::Duration;

use civitas_config::{ProviderConfig, Secret, SecretLocation};
use civitas_http_client::{AddressPolicy, HttpClient, HttpClientError};
use civitas_types::openai::ChatCompletionRequest;

/// Largest non-streamed answer read from a provider.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// One configured provider.
pub struct RemoteProvider {
    pub name: String,
    pub models: Vec<String>,
    base_url: String,
    key: Option<Secret>,
    pub(crate) client: HttpClient,
    /// Messages leave with placeholders instead of personal data.
    pub pseudonymize: bool,
    /// The highest classification level it may receive (empty: the
    /// lowest).
    pub accreditation: String,
    /// Where its models run (`external` when not configured).
    pub jurisdiction: String,
}

impl std::fmt::Debug for RemoteProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
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
            models: config.models.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            key,
            client,
            pseudonymize: config.pseudonymize,
            accreditation: config.accreditation.clone(),
            jurisdiction: if config.jurisdiction.trim().is_empty() {
                "external".to_owned()
            } else {
                config.jurisdiction.trim().to_owned()
            },
        })
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|name| name == model)
    }

    /// Sends a chat completion request; the answer is returned unread.
    pub async fn chat(&self, request: &ChatCompletionRequest) -> Result<reqwest::Response, HttpClientError> {
        let url = format!("{}/chat/completions", self.base_url);
        self.client
            .post_json(&url, self.key.as_ref().map(Secret::expose), request)
            .await
    }
}
