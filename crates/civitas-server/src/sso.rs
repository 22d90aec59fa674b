//! The configured OpenID providers at run time: discovery and keys fetched
//! through the outbound client (address policy, timeouts, bounded bodies)
//! and cached; an unknown key id triggers one refresh of the keys, so a
//! provider can rotate its signing key without a restart.

use std::time::{Duration, Instant};

use civitas_config::{OidcConfig, Secret, SecretLocation};
use civitas_http_client::{AddressPolicy, HttpClient};
use civitas_identity::oidc::{self, Expectations, JwkSet, OidcError};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const KEYS_TTL: Duration = Duration::from_secs(3600);
const MAX_BODY: usize = 1024 * 1024;

/// The provider metadata Civitas uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// Why talking to a provider failed; shown to the person signing in.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Token(#[from] OidcError),
    #[error("the identity provider refused: {0}")]
    Refused(String),
}

/// One `[[oidc]]` provider.
pub struct SsoProvider {
    pub config: OidcConfig,
    secret: Option<Secret>,
    http: HttpClient,
    discovery: RwLock<Option<(Discovery, Instant)>>,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

impl std::fmt::Debug for SsoProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoProvider")
            .field("name", &self.config.name)
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

fn json<T: serde::de::DeserializeOwned>(
    what: &str,
    answer: civitas_http_client::Answer,
) -> Result<T, SsoError> {
    if !(200..300).contains(&answer.status) {
        return Err(SsoError::Unavailable(format!(
            "{what} answered {}",
            answer.status
        )));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|_| SsoError::Unavailable(format!("{what} is not the expected JSON")))
}

impl SsoProvider {
    pub fn from_config(config: &OidcConfig) -> Result<SsoProvider, String> {
        let secret =
            if config.client_secret.is_empty() {
                None
            } else {
                let location = SecretLocation::parse(&config.client_secret)?;
                Some(location.read()?.ok_or_else(|| {
                    format!("oidc `{}`: no client secret found at {location:?}", config.name)
                })?)
            };
        let host = url::Url::parse(&config.issuer)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .ok_or_else(|| format!("oidc `{}`: `{}` is not a URL", config.name, config.issuer))?;
        let policy = AddressPolicy {
            allowed_internal_hosts: if config.allow_internal {
                vec![host]
            } else {
                Vec::new()
            },
        };
        let http = HttpClient::new(policy, Duration::from_secs(15), MAX_BODY)
            .map_err(|error| format!("oidc `{}`: {error}", config.name))?;
        Ok(SsoProvider {
            config: config.clone(),
            secret,
            http,
            discovery: RwLock::new(None),
            keys: RwLock::new((JwkSet::default(), None)),
        })
    }

    /// The provider's metadata, fetched once an hour.
    pub async fn discovery(&self) -> Result<Discovery, SsoError> {
        if let Some((discovery, at)) = self.discovery.read().await.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(discovery.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let answer = self
            .http
            .get(&url, None)
            .await
            .map_err(|error| SsoError::Unavailable(error.to_string()))?;
        let discovery: Discovery = json("discovery", answer)?;
        // The metadata must speak for the configured issuer (mix-up defence).
        if discovery.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(SsoError::Unavailable(format!(
                "its discovery names the issuer `{}`, not the configured one",
                discovery.issuer
            )));
        }
        *self.discovery.write().await = Some((discovery.clone(), Instant::now()));
        Ok(discovery)
    }

    async fn fetch_keys(&self, discovery: &Discovery) -> Result<JwkSet, SsoError> {
        let answer = self
            .http
            .get(&discovery.jwks_uri, None)
            .await
            .map_err(|error| SsoError::Unavailable(error.to_string()))?;
        let keys: JwkSet = json("the key set", answer)?;
        *self.keys.write().await = (keys.clone(), Some(Instant::now()));
        Ok(keys)
    }

    async fn keys(&self, discovery: &Discovery) -> Result<JwkSet, SsoError> {
        {
            let cached = self.keys.read().await;
            if cached.1.is_some_and(|at| at.elapsed() < KEYS_TTL) {
                return Ok(cached.0.clone());
            }
        }
        self.fetch_keys(discovery).await
    }

    /// Verifies a token with the cached keys, refreshing them once when the
    /// token names a key not seen yet (the provider rotated its keys).
    pub async fn verify(&self, token: &str, expect: &Expectations<'_>) -> Result<Value, SsoError> {
        let discovery = self.discovery().await?;
        let keys = self.keys(&discovery).await?;
        match oidc::verify(token, &keys, expect) {
            // Tokens come from the configured provider's token endpoint, not
            // from the browser, so one refresh per unknown key is cheap.
            Err(OidcError::UnknownKey(_)) => {
                let keys = self.fetch_keys(&discovery).await?;
                Ok(oidc::verify(token, &keys, expect)?)
            }
            other => Ok(other?),
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<Value, SsoError> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("code_verifier", verifier),
        ];
        let mut basic = None;
        match &self.secret {
            Some(secret) if self.config.client_auth == "client_secret_basic" => {
                basic = Some((self.config.client_id.as_str(), secret.expose()));
            }
            Some(secret) => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", secret.expose()));
            }
            // A public client proves itself with PKCE alone.
            None => form.push(("client_id", self.config.client_id.as_str())),
        }
        let answer = self
            .http
            .post_form(&discovery.token_endpoint, &form, basic)
            .await
            .map_err(|error| SsoError::Unavailable(error.to_string()))?;
        if (400..500).contains(&answer.status) {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let reason = body["error"]
                .as_str()
                .unwrap_or("invalid_grant")
                .chars()
                .take(100)
                .collect();
            return Err(SsoError::Refused(reason));
        }
        json("the token endpoint", answer)
    }

    /// Claims from the userinfo endpoint (JSON, or a signed JWT as
    /// ProConnect answers), for providers that keep them out of the ID token.
    pub async fn userinfo(&self, access_token: &str, expect: &Expectations<'_>) -> Result<Value, SsoError> {
        let discovery = self.discovery().await?;
        let Some(endpoint) = &discovery.userinfo_endpoint else {
            return Ok(Value::Object(Default::default()));
        };
        let answer = self
            .http
            .get(endpoint, Some(access_token))
            .await
            .map_err(|error| SsoError::Unavailable(error.to_string()))?;
        if answer.content_type.starts_with("application/jwt") {
            let token = String::from_utf8_lossy(&answer.body).trim().to_owned();
            let relaxed = Expectations {
                nonce: None,
                require_expiry: false,
                ..expect.clone()
            };
            return self.verify(&token, &relaxed).await;
        }
        json("the userinfo endpoint", answer)
    }
}
