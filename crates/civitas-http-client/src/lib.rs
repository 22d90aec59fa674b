//! Every outbound HTTP call of Civitas goes through [`HttpClient`].
//!
//! It applies connect and total timeouts, bounds response bodies, and checks
//! each destination against an [`AddressPolicy`]: by default internal
//! addresses (loopback, private ranges, link-local, cloud metadata) are
//! refused unless their host is explicitly allow-listed, e.g. an agency's
//! own inference server. HTTPS is verified (rustls) against the system's
//! trusted certificates, so an agency's own certificate authority is
//! trusted once installed in the system store (or named by
//! `SSL_CERT_FILE`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

/// Outbound settings of the whole process, set once at start
/// ([`configure`]) and applied to every client made after.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// Every call goes through this HTTP(S) proxy, except to the hosts a
    /// client allow-lists as internal (the agency's own servers). `None`:
    /// no proxy (proxy variables of the environment are ignored).
    pub proxy: Option<String>,
    /// PEM certificates trusted besides the system's (the agency's own
    /// certificate authority).
    pub ca_bundle: Option<Vec<u8>>,
}

static OUTBOUND: OnceLock<Outbound> = OnceLock::new();

/// Sets the process's outbound settings, after checking them (the proxy
/// is a URL, the bundle holds certificates); the first call wins.
pub fn configure(outbound: Outbound) -> Result<(), HttpClientError> {
    if let Some(proxy) = &outbound.proxy {
        reqwest::Proxy::all(proxy).map_err(|error| HttpClientError::InvalidUrl(format!("proxy: {error}")))?;
    }
    if let Some(bundle) = &outbound.ca_bundle {
        let certificates = reqwest::Certificate::from_pem_bundle(bundle)
            .map_err(|error| HttpClientError::Transport(format!("CA bundle: {error}")))?;
        if certificates.is_empty() {
            return Err(HttpClientError::Transport(
                "CA bundle: no certificate in it".to_owned(),
            ));
        }
    }
    let _ = OUTBOUND.set(outbound);
    Ok(())
}

fn outbound() -> &'static Outbound {
    OUTBOUND.get_or_init(Outbound::default)
}

/// Why an outbound call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("destination {host} is an internal address and is not allow-listed")]
    ForbiddenAddress { host: String },
    #[error("cannot resolve {host}")]
    Resolve { host: String },
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request failed: {0}")]
    Transport(String),
}

/// A transport failure with its causes ("error sending request: ...:
/// invalid peer certificate: UnknownIssuer"), so that an administrator
/// sees why a provider could not be reached.
fn transport(error: reqwest::Error) -> HttpClientError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    HttpClientError::Transport(message)
}

/// Which destinations may be called.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Hosts (as written in URLs) allowed even when they resolve to
    /// internal addresses.
    pub allowed_internal_hosts: Vec<String>,
}

/// True for addresses that must not be reached from user-supplied URLs.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
}

impl AddressPolicy {
    /// Checks a URL's host and every address it resolves to. Behind a
    /// proxy a name is resolved, and its egress decided, by the proxy;
    /// an address written in the URL is still checked here.
    pub async fn check(&self, url: &url::Url) -> Result<(), HttpClientError> {
        let host = url
            .host_str()
            .ok_or_else(|| HttpClientError::InvalidUrl("no host".to_owned()))?
            .to_owned();
        if self
            .allowed_internal_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&host))
        {
            return Ok(());
        }
        let literal = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        if !literal && outbound().proxy.is_some() {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|_| HttpClientError::Resolve { host: host.clone() })?
            .collect();
        if addresses.is_empty() {
            return Err(HttpClientError::Resolve { host });
        }
        if addresses.iter().any(|address| is_internal(address.ip())) {
            return Err(HttpClientError::ForbiddenAddress { host });
        }
        Ok(())
    }
}

/// A whole, bounded answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The outbound client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: AddressPolicy,
    max_body_bytes: usize,
}

impl HttpClient {
    pub fn new(
        policy: AddressPolicy,
        timeout: Duration,
        max_body_bytes: usize,
    ) -> Result<HttpClient, HttpClientError> {
        let settings = outbound();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        builder = match &settings.proxy {
            Some(proxy) => {
                let bypass = policy.allowed_internal_hosts.join(",");
                builder.proxy(
                    reqwest::Proxy::all(proxy)
                        .map_err(transport)?
                        .no_proxy(reqwest::NoProxy::from_string(&bypass)),
                )
            }
            None => builder.no_proxy(),
        };
        if let Some(bundle) = &settings.ca_bundle {
            for certificate in reqwest::Certificate::from_pem_bundle(bundle).map_err(transport)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let inner = builder.build().map_err(transport)?;
        Ok(HttpClient {
            inner,
            policy,
            max_body_bytes,
        })
    }

    /// POSTs a JSON body with `headers` (a provider's credentials) after
    /// the policy check; the response is returned unread.
    pub async fn post_json_with(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, HttpClientError> {
        let mut request = self.inner.post(self.checked(url).await?).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.map_err(transport)
    }

    /// GETs a URL with `headers` after the policy check; the body is
    /// bounded.
    pub async fn get_with(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, HttpClientError> {
        let mut request = self.inner.get(self.checked(url).await?);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.answer(request).await
    }

    /// POSTs `body` as `content_type` after the policy check, with an
    /// `Authorization` header when given; answers the status (the body is
    /// read, bounded, and dropped).
    pub async fn post_bytes(
        &self,
        url: &str,
        content_type: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> Result<u16, HttpClientError> {
        let parsed = self.checked(url).await?;
        let mut request = self
            .inner
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        self.read_bounded(response).await?;
        Ok(status)
    }

    /// Reads a response body, refusing more than the client's limit.
    pub async fn read_bounded(&self, mut response: reqwest::Response) -> Result<Vec<u8>, HttpClientError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(HttpClientError::BodyTooLarge {
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn checked(&self, url: &str) -> Result<url::Url, HttpClientError> {
        let parsed = url::Url::parse(url).map_err(|error| HttpClientError::InvalidUrl(error.to_string()))?;
        self.policy.check(&parsed).await?;
        Ok(parsed)
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Answer, HttpClientError> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = self.read_bounded(response).await?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// GETs a URL (with a bearer token, if given) after the policy check.
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Answer, HttpClientError> {
        let mut request = self.inner.get(self.checked(url).await?);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.answer(request).await
    }

    /// POSTs a form (`application/x-www-form-urlencoded`), with HTTP basic
    /// authentication if given, after the policy check.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Answer, HttpClientError> {
        let mut request = self.inner.post(self.checked(url).await?).form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        self.answer(request).await
    }

    /// GETs a URL after the policy check; the body is bounded.
    pub async fn get_bytes(&self, url: &str) -> Result<Vec<u8>, HttpClientError> {
        let parsed = url::Url::parse(url).map_err(|error| HttpClientError::InvalidUrl(error.to_string()))?;
        self.policy.check(&parsed).await?;
        let response = self.inner.get(parsed).send().await.map_err(transport)?;
        self.read_bounded(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["1.1.1.1", "2001:4860:4860::8888", "151.101.1.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_refused_unless_allow_listed() {
        let url = url::Url::parse("http://127.0.0.1:9/x").unwrap();
        let error = AddressPolicy::default().check(&url).await.unwrap_err();
        assert!(matches!(error, HttpClientError::ForbiddenAddress { .. }));
        let policy = AddressPolicy {
            allowed_internal_hosts: vec!["127.0.0.1".to_owned()],
        };
        policy.check(&url).await.unwrap();
    }
}
