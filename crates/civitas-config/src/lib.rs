//! Configuration of a Civitas installation.
//!
//! Sources, later ones winning: built-in defaults, the TOML file named by
//! `--config` or `CIVITAS_CONFIG`, then `CIVITAS__SECTION__KEY` environment
//! variables (`CIVITAS_DATA_DIR` sets the data directory). Unknown keys are
//! errors, and [`Config::validate`] names the offending key. Secrets are
//! never values in the configuration, only *locations* ([`SecretLocation`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything that can be configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder holding the database, the models and the indexes. Empty means
    /// `CIVITAS_DATA_DIR`, or `$XDG_DATA_HOME/civitas` (`~/.local/share/civitas`).
    pub data_dir: String,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub models: ModelsConfig,
    pub logging: LoggingConfig,
    pub workspace: WorkspaceConfig,
    pub audit: AuditConfig,
    pub energy: EnergyConfig,
    pub telemetry: TelemetryConfig,
    pub data_protection: DataProtectionConfig,
    pub knowledge: KnowledgeConfig,
    /// Classification levels, lowest first: the banner of every page and
    /// the level of each conversation.
    pub classifications: Vec<ClassificationLevel>,
    /// Remote inference servers (deployments), each serving the model
    /// names it lists through Civitas.
    pub providers: Vec<ProviderConfig>,
    /// How requests are spread over the deployments of a model: retries,
    /// cool-down, and a strategy per model.
    pub gateway: GatewayConfig,
    /// Every outbound call: a proxy, an extra certificate authority.
    pub outbound: OutboundConfig,
    /// Prices per model, for cost budgets and usage reports.
    pub prices: Vec<PriceConfig>,
    /// OpenID Connect identity providers for single sign-on, each bound to
    /// an agency.
    pub oidc: Vec<OidcConfig>,
}

/// One `[[oidc]]` entry: an OpenID provider people of one agency sign in
/// with (authorization code flow with PKCE).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Short name used in URLs: `/auth/oidc/{name}/start`.
    pub name: String,
    /// Text of the sign-in button.
    #[serde(default)]
    pub display_name: String,
    /// Slug of the agency whose people sign in here.
    pub agency: String,
    /// Dotted path of a claim naming the agency of each person (its slug),
    /// for a provider shared by a ministry and the agencies below it; the
    /// named agency must be `agency` or below it. Empty: everyone joins
    /// `agency`.
    #[serde(default)]
    pub agency_claim: String,
    /// Issuer URL; discovery is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Where the client secret is read from (`env::NAME` or `file::PATH`);
    /// empty for a public client (PKCE only).
    #[serde(default)]
    pub client_secret: String,
    /// How the client secret is sent to the token endpoint:
    /// `client_secret_basic` (HTTP basic, the default) or
    /// `client_secret_post` (in the form).
    #[serde(default = "default_client_auth")]
    pub client_auth: String,
    /// This installation's callback URL as registered at the provider,
    /// ending in `/auth/oidc/callback`.
    pub redirect_url: String,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the e-mail address.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// Claim holding the display name.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Dotted path of the claim listing groups (`groups`,
    /// `realm_access.roles`); values are matched to the agency's groups by
    /// name or external id, and memberships follow them at each sign-in.
    /// Empty: groups are managed in Civitas.
    #[serde(default)]
    pub groups_claim: String,
    /// Dotted path of the claim listing roles; empty: roles are managed in
    /// Civitas. Values are mapped through `role_map` (or taken as role
    /// names when it is empty); `platform-admin` is never granted by SSO.
    #[serde(default)]
    pub roles_claim: String,
    #[serde(default)]
    pub role_map: std::collections::BTreeMap<String, String>,
    /// E-mail domains allowed to sign in; empty: any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// New people wait as `pending` until an agency administrator approves.
    #[serde(default)]
    pub require_approval: bool,
    /// The provider lives on a private address (the agency's own IdP).
    #[serde(default)]
    pub allow_internal: bool,
    /// Clock difference tolerated on token times, in seconds.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u32,
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".to_owned(), "email".to_owned(), "profile".to_owned()]
}

fn default_client_auth() -> String {
    "client_secret_basic".to_owned()
}

fn default_email_claim() -> String {
    "email".to_owned()
}

fn default_name_claim() -> String {
    "name".to_owned()
}

fn default_clock_skew() -> u32 {
    60
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: String::new(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            models: ModelsConfig::default(),
            logging: LoggingConfig::default(),
            workspace: WorkspaceConfig::default(),
            audit: AuditConfig::default(),
            energy: EnergyConfig::default(),
            telemetry: TelemetryConfig::default(),
            data_protection: DataProtectionConfig::default(),
            knowledge: KnowledgeConfig::default(),
            classifications: default_classifications(),
            providers: Vec::new(),
            gateway: GatewayConfig::default(),
            outbound: OutboundConfig::default(),
            prices: Vec::new(),
            oidc: Vec::new(),
        }
    }
}

/// `[audit]`: the tamper-evident audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Where the Ed25519 key that signs checkpoints is read from
    /// (`env::NAME` or `file::PATH`, the seed in base64). Empty: the file
    /// `audit-signing-key` in the data directory, created on first start.
    pub signing_key: String,
    /// Sign a checkpoint once this many records were added...
    pub checkpoint_every_records: u64,
    /// ...or this many seconds after the last one, if anything was added.
    pub checkpoint_every_seconds: u64,
    /// A break-glass read of someone's conversations waits for a second
    /// person's approval (an administrator or auditor of the agency).
    pub break_glass_second_approver: bool,
    /// The longest a break-glass access stays open, in minutes.
    pub break_glass_max_minutes: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            signing_key: String::new(),
            checkpoint_every_records: 1000,
            checkpoint_every_seconds: 300,
            break_glass_second_approver: true,
            break_glass_max_minutes: 240,
        }
    }
}

/// `[data_protection]`: encryption at rest, clearances and retention.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataProtectionConfig {
    /// Where the master key that wraps every agency's data keys is read
    /// from (`env::NAME` or `file::PATH`, 32 bytes in base64). Empty: the
    /// file `master-key` in the data directory, created on first start.
    /// Every replica of an installation needs the same key; keep it apart
    /// from the database and its backups.
    pub master_key: String,
    /// Earlier master keys, still accepted to unwrap data keys while
    /// `civitas keys rewrap` moves them to the current one.
    pub previous_master_keys: Vec<String>,
    /// The clearance of people who have none of their own (a level id);
    /// empty: the highest level.
    pub default_clearance: String,
    /// How often the retention purge runs, in seconds; 0 never runs it.
    pub purge_every_seconds: u64,
}

impl Default for DataProtectionConfig {
    fn default() -> Self {
        DataProtectionConfig {
            master_key: String::new(),
            previous_master_keys: Vec::new(),
            default_clearance: String::new(),
            purge_every_seconds: 3600,
        }
    }
}

/// `[knowledge]`: collections, ingestion and search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most pages of a PDF.
    pub max_pages: u32,
    /// Most bytes a file may expand to when decompressed (ZIP members,
    /// PDF streams): beyond, it is refused as a ZIP bomb.
    pub max_decompressed_bytes: u64,
    /// A passage is closed at about this many characters.
    pub chunk_chars: u32,
    /// Documents ingested at a time by each replica.
    pub workers: u32,
    /// How often a replica applies other replicas' changes to its search
    /// index, in seconds.
    pub sync_every_seconds: u64,
    /// Load the demo collection (an agency handbook in English and
    /// French) into the default agency on first start.
    pub demo_collection: bool,
    /// A `[[providers]]` entry whose `/rerank` endpoint (the shape of
    /// vLLM, TEI and Cohere: `query`, `documents` → `results` with
    /// `index` and `relevance_score`) re-orders the passages found;
    /// empty: no reranking.
    pub rerank_provider: String,
    /// The reranking model's name at that provider.
    pub rerank_model: String,
    /// Passages found before reranking (the best of them are kept).
    pub rerank_candidates: u32,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig {
            max_file_bytes: 50 << 20,
            max_pages: 2_000,
            max_decompressed_bytes: 256 << 20,
            chunk_chars: 900,
            workers: 1,
            sync_every_seconds: 2,
            demo_collection: true,
            rerank_provider: String::new(),
            rerank_model: String::new(),
            rerank_candidates: 20,
        }
    }
}

/// `[telemetry]`: OpenTelemetry trace export (off unless an endpoint is
/// set). Spans never carry content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint of a collector, e.g.
    /// `http://collector:4318/v1/traces`. Empty: no export.
    pub otlp_endpoint: String,
    /// Where the value of the `Authorization` header sent to the collector
    /// is read from (`env::NAME` or `file::PATH`); empty: none.
    pub otlp_authorization: String,
    /// Share of new traces exported, 0 to 1 (a caller's `traceparent`
    /// decides for its own).
    pub otlp_sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            otlp_authorization: String::new(),
            otlp_sample_ratio: 1.0,
            service_name: "civitas".to_owned(),
        }
    }
}

/// `[energy]`: how usage is turned into an energy and emissions estimate
/// (see BENCHMARKS.md and the README for the method).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnergyConfig {
    /// Watt-hours per thousand generated tokens per billion parameters of
    /// the model (a prompt token counts a third of a generated one).
    pub wh_per_thousand_tokens_per_billion_parameters: f64,
    /// Carbon intensity of the electricity, grams of CO2 equivalent per kWh.
    pub grid_gco2e_per_kwh: f64,
    /// Sizes (billions of parameters) of models the catalogue does not
    /// know, such as those of remote providers.
    pub model_parameters: std::collections::BTreeMap<String, f64>,
}

impl Default for EnergyConfig {
    fn default() -> Self {
        EnergyConfig {
            wh_per_thousand_tokens_per_billion_parameters: 0.5,
            grid_gco2e_per_kwh: 56.0,
            model_parameters: std::collections::BTreeMap::new(),
        }
    }
}

/// `[workspace]`: the web workspace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspaceConfig {
    /// Offer a temporary chat that is never stored.
    pub temporary_chat: bool,
    /// Show images from other sites in answers (off: shown as links).
    pub remote_images: bool,
    /// The level of a new conversation unless the person picks another.
    pub default_classification: String,
    /// Rules of behaviour for agencies that have not written their own;
    /// empty uses the built-in text.
    pub rules_of_behaviour: String,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            temporary_chat: true,
            remote_images: false,
            default_classification: "unclassified".to_owned(),
            rules_of_behaviour: String::new(),
        }
    }
}

/// One `[[classifications]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassificationLevel {
    /// Short name kept with each conversation: a-z, 0-9 and '-'.
    pub id: String,
    /// The banner's text per language (`en` is required).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Banner colours, `#rrggbb`; the text must contrast with the
    /// background at 4.5:1 at least (WCAG AA).
    pub background: String,
    pub foreground: String,
    /// Whether people may delete conversations at this level (records
    /// that must be kept set this to false).
    #[serde(default = "default_true")]
    pub allow_delete: bool,
    /// Markings that put a text at this level at least (a marking found in
    /// a prompt that starts with one of these, in capitals). A marking no
    /// level lists is above every level: no model may receive it.
    #[serde(default)]
    pub markings: Vec<String>,
}

fn default_true() -> bool {
    true
}

fn default_classifications() -> Vec<ClassificationLevel> {
    let level = |id: &str, en: &str, fr: &str, background: &str, markings: &[&str]| ClassificationLevel {
        id: id.to_owned(),
        labels: [("en", en), ("fr", fr)]
            .into_iter()
            .map(|(lang, text)| (lang.to_owned(), text.to_owned()))
            .collect(),
        background: background.to_owned(),
        foreground: "#ffffff".to_owned(),
        allow_delete: true,
        markings: markings.iter().map(|marking| (*marking).to_owned()).collect(),
    };
    vec![
        level("unclassified", "UNCLASSIFIED", "NON CLASSIFIÉ", "#007a33", &[]),
        level(
            "cui",
            "CUI — CONTROLLED UNCLASSIFIED INFORMATION",
            "CUI — INFORMATION CONTRÔLÉE NON CLASSIFIÉE",
            "#502b85",
            &[
                "CUI",
                "FOUO",
                "FOR OFFICIAL USE ONLY",
                "DIFFUSION RESTREINTE",
                "OFFICIAL-SENSITIVE",
                "OFFICIAL SENSITIVE",
            ],
        ),
    ]
}

/// `#rrggbb` as red, green and blue.
fn parse_colour(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').filter(|hex| hex.len() == 6)?;
    let channel = |at: usize| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// The WCAG 2.1 contrast ratio of two colours.
pub fn contrast_ratio(first: [u8; 3], second: [u8; 3]) -> f64 {
    let luminance = |colour: [u8; 3]| {
        let linear = |channel: u8| {
            let value = f64::from(channel) / 255.0;
            if value <= 0.039_28 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(colour[0]) + 0.7152 * linear(colour[1]) + 0.0722 * linear(colour[2])
    };
    let (a, b) = (luminance(first), luminance(second));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// One `[[prices]]` entry: what a model costs per million tokens, in the
/// agency's currency unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub model: String,
    pub input_per_million: f64,
    pub output_per_million: f64,
}

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI's chat completions: OpenAI, vLLM, Ollama, TGI, llama.cpp
    /// server, Albert/OpenGateLLM, another Civitas.
    #[default]
    Openai,
    /// Azure OpenAI: `{base_url}/openai/deployments/{model}/chat/completions
    /// ?api-version=...` with an `api-key` header; the model name is the
    /// deployment's.
    Azure,
    /// Anthropic's Messages API, translated to and from OpenAI's shapes.
    Anthropic,
}

/// One `[[providers]]` entry: a deployment serving some models.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs, routes and `owned_by`.
    pub name: String,
    /// `openai` (default), `azure` or `anthropic`.
    #[serde(default)]
    pub kind: ProviderKind,
    /// Base URL of its API, e.g. `http://10.0.0.5:8000/v1`,
    /// `https://agency.openai.azure.us`, `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// Where its API key is read from (`env::NAME` or `file::PATH`); empty
    /// when it needs none.
    #[serde(default)]
    pub api_key: String,
    /// Model names it serves, as Civitas calls them.
    pub models: Vec<String>,
    /// The provider's own name for a model, where it differs
    /// (`"llama-70b" = "meta-llama/Llama-3.1-70B-Instruct"`; Azure: the
    /// deployment).
    #[serde(default)]
    pub model_map: std::collections::BTreeMap<String, String>,
    /// Azure OpenAI's `api-version`.
    #[serde(default = "default_azure_api_version")]
    pub api_version: String,
    /// Tokens its models take in (prompt and answer), when known: shown in
    /// `/v1/models`.
    #[serde(default)]
    pub context_length: Option<u32>,
    /// Requests it may take at once; more wait in a fair queue (chat
    /// before API before batch, agencies and teams served in turn).
    /// Unset: no limit here.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Share of the traffic under the `weighted` strategy.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Seconds to wait for the answer to begin (its status line); past
    /// them the attempt counts as failed and the next one is tried.
    #[serde(default = "default_first_byte_timeout")]
    pub first_byte_timeout_seconds: u64,
    /// Allow loopback and private addresses (the agency's own servers).
    #[serde(default)]
    pub allow_internal: bool,
    /// Seconds a request may take, streaming included.
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
    /// Personal data, secrets and markings in the messages are replaced by
    /// placeholders before they leave (`<PERSON_1>`), and put back in the
    /// answer. Turn off only for a server the agency runs itself.
    #[serde(default = "default_true")]
    pub pseudonymize: bool,
    /// The highest classification level (an id of `classifications`) its
    /// models may receive; empty: the lowest level only.
    #[serde(default)]
    pub accreditation: String,
    /// Where its models run, as recorded with every decision: `agency`
    /// (the agency's own servers), `agency-cloud`, or a provider's name and
    /// region (`azure-usgov-virginia`). Empty: `external`.
    #[serde(default)]
    pub jurisdiction: String,
    /// What this deployment charges per million prompt tokens, in the
    /// agency's currency unit; with `output_per_million`, it prices the
    /// requests it answers instead of `[[prices]]`.
    #[serde(default)]
    pub input_per_million: Option<f64>,
    /// What it charges per million answer tokens.
    #[serde(default)]
    pub output_per_million: Option<f64>,
}

impl ProviderConfig {
    /// Its own price per million tokens (prompt, answer), when it has one;
    /// a side left out costs 0.
    pub fn price(&self) -> Option<(f64, f64)> {
        match (self.input_per_million, self.output_per_million) {
            (None, None) => None,
            (input, output) => Some((input.unwrap_or(0.0), output.unwrap_or(0.0))),
        }
    }
}

fn default_provider_timeout() -> u64 {
    300
}

fn default_first_byte_timeout() -> u64 {
    60
}

fn default_weight() -> u32 {
    1
}

fn default_azure_api_version() -> String {
    "2024-10-21".to_owned()
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            name: String::new(),
            kind: ProviderKind::default(),
            base_url: String::new(),
            api_key: String::new(),
            models: Vec::new(),
            model_map: std::collections::BTreeMap::new(),
            api_version: default_azure_api_version(),
            context_length: None,
            max_concurrent: None,
            weight: default_weight(),
            first_byte_timeout_seconds: default_first_byte_timeout(),
            allow_internal: false,
            timeout_seconds: default_provider_timeout(),
            pseudonymize: true,
            accreditation: String::new(),
            jurisdiction: String::new(),
            input_per_million: None,
            output_per_million: None,
        }
    }
}

/// `[outbound]`: every call Civitas makes (providers, single sign-on,
/// trace export).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// An HTTP(S) proxy every call goes through, except to hosts allowed
    /// as internal (`allow_internal`: the agency's own servers); it then
    /// resolves names and decides egress. Empty: no proxy (the
    /// environment's proxy variables are ignored).
    pub proxy: String,
    /// A PEM file of certificate authorities trusted besides the system's
    /// (the agency's own). Empty: the system's only.
    pub ca_bundle: String,
}

/// How a model's deployments share its requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RouteStrategy {
    /// In the order listed; the next one only when one fails.
    #[default]
    Failover,
    /// At random, in proportion to each provider's `weight`.
    Weighted,
    /// The one with the fewest requests in flight.
    LeastBusy,
    /// The one whose answers began soonest lately (moving average).
    LowestLatency,
}

/// One `[[gateway.routes]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The model name clients ask for.
    pub model: String,
    #[serde(default)]
    pub strategy: RouteStrategy,
    /// Provider names, in order; empty: every provider serving the model,
    /// in the order of `[[providers]]`.
    #[serde(default)]
    pub deployments: Vec<String>,
}

/// `[gateway]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Attempts after the first, on another deployment when there is one,
    /// after a connection error, a timeout before the answer began, 429
    /// or 5xx — never once an answer has begun to reach the client.
    pub retries: u32,
    /// Back-off before a retry: this many milliseconds, doubled each
    /// time, with full jitter.
    pub retry_backoff_ms: u64,
    /// Failures in a row after which a deployment is cooled down.
    pub cooldown_after_failures: u32,
    /// Seconds a cooled-down deployment takes no traffic; then one request
    /// probes it, and it takes traffic again if that succeeds.
    pub cooldown_seconds: u64,
    /// Requests that may wait for a deployment with `max_concurrent`
    /// before more are refused (429 `queue_full`).
    pub max_queued: u32,
    /// A strategy and order per model; models without a route fail over
    /// in the order of `[[providers]]`.
    pub routes: Vec<RouteConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            retries: 2,
            retry_backoff_ms: 100,
            cooldown_after_failures: 3,
            cooldown_seconds: 30,
            max_queued: 256,
            routes: Vec::new(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// API requests answered at once (a stream counts until its end);
    /// beyond, 503 `server_busy` at once, before any work, so that an
    /// overload cannot pile up connections and memory.
    pub max_in_flight: u32,
    /// Seconds given to streams in flight when the server is asked to stop.
    pub shutdown_grace_seconds: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// is believed for the client's address (API keys bound to address
    /// ranges); empty: the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: SQLite file `civitas.db` in the data directory. Otherwise a
    /// `sqlite://PATH` or `postgres://...` URL.
    pub url: String,
    /// Connections in the pool.
    pub max_connections: u32,
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Where the bootstrap API key is read from: `env::NAME` or `file::PATH`.
    pub bootstrap_key: String,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after sign-in, whatever happens.
    pub session_absolute_hours: u32,
    /// Mark the session cookie `Secure` (sent over HTTPS only; browsers
    /// also send it to http://localhost).
    pub secure_cookies: bool,
    /// Failed sign-ins in a row before the account is locked.
    pub max_failed_logins: u32,
    /// Minutes an account stays locked.
    pub lockout_minutes: u32,
    /// Seconds an API key found valid is believed without reading the
    /// database again. A change made on this server (a revocation, a role)
    /// holds at its next request; one made on another replica or by the
    /// command line, within these seconds. 0: read at every request.
    pub key_cache_seconds: u32,
}

/// `[models]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Folder of installed models; empty means `models` in the data directory.
    pub dir: String,
    /// Catalogue name (or imported name) of the chat model served; empty
    /// runs without a local chat model.
    pub chat: String,
    /// Embedding model served on `/v1/embeddings`; empty disables it.
    pub embedding: String,
    /// Fetch missing models when `serve` starts.
    pub pull_on_start: bool,
    /// Threads for generation; 0 picks the catalogue's recommendation,
    /// bounded by the number of cores.
    pub threads: u32,
    /// Context window of each slot (the most one request may use), in
    /// tokens; clamped to what the model was trained for.
    pub context_length: u32,
    /// Sequences decoded together (continuous batching).
    pub slots: u32,
    /// Requests allowed to wait for a slot before answering 429.
    pub queue_depth: u32,
    /// Largest `max_tokens` a request may ask for; also the default.
    pub max_output_tokens: u32,
}

/// `[logging]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `civitas_server=debug`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 4 * 1024 * 1024,
            max_in_flight: 2048,
            shutdown_grace_seconds: 15,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bootstrap_key: "env::CIVITAS_BOOTSTRAP_KEY".to_owned(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            secure_cookies: true,
            max_failed_logins: 10,
            lockout_minutes: 15,
            key_cache_seconds: 2,
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: String::new(),
            chat: "qwen2.5-1.5b-instruct".to_owned(),
            embedding: "all-minilm-l6-v2".to_owned(),
            pull_on_start: true,
            threads: 0,
            context_length: 4096,
            slots: 4,
            queue_depth: 64,
            max_output_tokens: 2048,
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}

/// An address or CIDR range as (network address, prefix length).
pub fn parse_range(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: std::net::IpAddr = address.trim().parse().ok()?;
    let bits = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|prefix| *prefix <= bits)?,
        None => bits,
    };
    Some((address, prefix))
}

/// Why the configuration was refused. Every message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("{0}")]
    Parse(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.to_path_buf(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let civitas_vars: Vec<(String, String)> = env
            .iter()
            .filter(|(name, _)| name.starts_with("CIVITAS__"))
            .cloned()
            .collect();
        // The environment is passed in (not read by figment) so that tests
        // can give their own; `CIVITAS__A__B` becomes the key `a.b`.
        for (name, value) in &civitas_vars {
            let key = name["CIVITAS__".len()..].to_ascii_lowercase().replace("__", ".");
            figment = figment.merge(Serialized::global(&key, parse_env_value(value)));
        }
        if let Some((_, dir)) = env.iter().find(|(name, _)| name == "CIVITAS_DATA_DIR") {
            if !dir.is_empty() {
                figment = figment.merge(Serialized::global("data_dir", dir.clone()));
            }
        }
        let config: Config = figment.extract().map_err(|error| {
            let messages: Vec<String> = error.into_iter().map(describe_figment_error).collect();
            ConfigError::Parse(messages.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        let url = &self.database.url;
        if !url.is_empty()
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(invalid(
                "database.url",
                "must be empty (SQLite in the data directory), sqlite://PATH or postgres://...",
            ));
        }
        for proxy in &self.server.trusted_proxies {
            if parse_range(proxy).is_none() {
                return Err(invalid(
                    "server.trusted_proxies",
                    format!("`{proxy}` is not an address or a CIDR range"),
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        SecretLocation::parse(&self.auth.bootstrap_key)
            .map_err(|message| invalid("auth.bootstrap_key", message))?;
        if !(1..=1440).contains(&self.auth.session_idle_minutes) {
            return Err(invalid("auth.session_idle_minutes", "must be between 1 and 1440"));
        }
        if !(1..=720).contains(&self.auth.session_absolute_hours) {
            return Err(invalid(
                "auth.session_absolute_hours",
                "must be between 1 and 720",
            ));
        }
        if !(3..=100).contains(&self.auth.max_failed_logins) {
            return Err(invalid("auth.max_failed_logins", "must be between 3 and 100"));
        }
        if !(1..=1440).contains(&self.auth.lockout_minutes) {
            return Err(invalid("auth.lockout_minutes", "must be between 1 and 1440"));
        }
        let valid_price = |value: f64| value.is_finite() && (0.0..=1_000_000.0).contains(&value);
        for provider in &self.providers {
            if let Some((input, output)) = provider.price() {
                if !valid_price(input) || !valid_price(output) {
                    return Err(invalid(
                        "providers.input_per_million",
                        format!("`{}`: prices must be between 0 and 1000000", provider.name),
                    ));
                }
            }
        }
        let mut priced = std::collections::HashSet::new();
        for price in &self.prices {
            if price.model.trim().is_empty() || !priced.insert(price.model.as_str()) {
                return Err(invalid(
                    "prices.model",
                    "each price needs a unique, non-empty model name",
                ));
            }
            if !valid_price(price.input_per_million) || !valid_price(price.output_per_million) {
                return Err(invalid(
                    "prices.input_per_million",
                    format!("`{}`: prices must be between 0 and 1000000", price.model),
                ));
            }
        }
        let mut sso_names = std::collections::HashSet::new();
        for oidc in &self.oidc {
            let name_ok = !oidc.name.is_empty()
                && oidc
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !name_ok || !sso_names.insert(oidc.name.as_str()) {
                return Err(invalid(
                    "oidc.name",
                    "each provider needs a unique name of a-z, 0-9 and '-'",
                ));
            }
            if !oidc.issuer.starts_with("http://") && !oidc.issuer.starts_with("https://") {
                return Err(invalid(
                    "oidc.issuer",
                    format!("`{}` is not an http(s) URL", oidc.issuer),
                ));
            }
            if !oidc.redirect_url.ends_with("/auth/oidc/callback") {
                return Err(invalid(
                    "oidc.redirect_url",
                    "must be this installation's URL ending in /auth/oidc/callback",
                ));
            }
            if oidc.client_id.is_empty() || oidc.agency.is_empty() {
                return Err(invalid(
                    "oidc.client_id",
                    format!("provider `{}` needs client_id and agency", oidc.name),
                ));
            }
            if !oidc.client_secret.is_empty() {
                SecretLocation::parse(&oidc.client_secret)
                    .map_err(|message| invalid("oidc.client_secret", message))?;
            }
            if !matches!(
                oidc.client_auth.as_str(),
                "client_secret_basic" | "client_secret_post"
            ) {
                return Err(invalid(
                    "oidc.client_auth",
                    "use `client_secret_basic` or `client_secret_post`",
                ));
            }
            if !oidc.scopes.iter().any(|scope| scope == "openid") {
                return Err(invalid("oidc.scopes", "must include `openid`"));
            }
            if oidc.role_map.values().any(|role| role == "platform-admin") {
                return Err(invalid(
                    "oidc.role_map",
                    "platform-admin is never granted through single sign-on",
                ));
            }
            if oidc.clock_skew_seconds > 600 {
                return Err(invalid("oidc.clock_skew_seconds", "must be at most 600"));
            }
        }
        if self.models.chat != self.models.chat.trim() {
            return Err(invalid("models.chat", "must not start or end with spaces"));
        }
        if !(512..=131_072).contains(&self.models.context_length) {
            return Err(invalid("models.context_length", "must be between 512 and 131072"));
        }
        if !(1..=64).contains(&self.models.slots) {
            return Err(invalid("models.slots", "must be between 1 and 64"));
        }
        if self.models.threads > 256 {
            return Err(invalid("models.threads", "must be at most 256"));
        }
        if self.models.max_output_tokens == 0 {
            return Err(invalid("models.max_output_tokens", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for provider in &self.providers {
            if provider.name.trim().is_empty() || !names.insert(provider.name.as_str()) {
                return Err(invalid(
                    "providers.name",
                    "each provider needs a unique, non-empty name",
                ));
            }
            if !provider.base_url.starts_with("http://") && !provider.base_url.starts_with("https://") {
                return Err(invalid(
                    "providers.base_url",
                    format!("`{}` is not an http:// or https:// URL", provider.base_url),
                ));
            }
            if provider.models.is_empty() || provider.models.iter().any(|m| m.trim().is_empty()) {
                return Err(invalid(
                    "providers.models",
                    format!("provider `{}` must list its model names", provider.name),
                ));
            }
            if !provider.api_key.is_empty() {
                SecretLocation::parse(&provider.api_key)
                    .map_err(|message| invalid("providers.api_key", message))?;
            }
            if provider.timeout_seconds == 0 {
                return Err(invalid("providers.timeout_seconds", "must be at least 1"));
            }
            if provider.max_concurrent == Some(0) {
                return Err(invalid("providers.max_concurrent", "must be at least 1 when set"));
            }
            if provider.first_byte_timeout_seconds == 0 {
                return Err(invalid(
                    "providers.first_byte_timeout_seconds",
                    "must be at least 1",
                ));
            }
            if let Some(name) = provider
                .model_map
                .keys()
                .find(|name| !provider.models.contains(name))
            {
                return Err(invalid(
                    "providers.model_map",
                    format!(
                        "provider `{}` maps `{name}`, which is not one of its models",
                        provider.name
                    ),
                ));
            }
            if !provider.accreditation.is_empty()
                && !self
                    .classifications
                    .iter()
                    .any(|level| level.id == provider.accreditation)
            {
                return Err(invalid(
                    "providers.accreditation",
                    format!(
                        "provider `{}`: `{}` is not one of the classification levels",
                        provider.name, provider.accreditation
                    ),
                ));
            }
        }
        self.validate_routes()?;
        if !self.outbound.proxy.is_empty()
            && !self.outbound.proxy.starts_with("http://")
            && !self.outbound.proxy.starts_with("https://")
        {
            return Err(invalid("outbound.proxy", "an http:// or https:// URL"));
        }
        if !self.knowledge.rerank_provider.is_empty()
            && !self
                .providers
                .iter()
                .any(|provider| provider.name == self.knowledge.rerank_provider)
        {
            return Err(invalid(
                "knowledge.rerank_provider",
                format!(
                    "`{}` is not one of the [[providers]]",
                    self.knowledge.rerank_provider
                ),
            ));
        }
        if !(1..=200).contains(&self.knowledge.rerank_candidates) {
            return Err(invalid("knowledge.rerank_candidates", "between 1 and 200"));
        }
        self.validate_classifications()?;
        if !self.data_protection.master_key.is_empty() {
            SecretLocation::parse(&self.data_protection.master_key)
                .map_err(|message| invalid("data_protection.master_key", message))?;
        }
        for location in &self.data_protection.previous_master_keys {
            SecretLocation::parse(location)
                .map_err(|message| invalid("data_protection.previous_master_keys", message))?;
        }
        if !self.audit.signing_key.is_empty() {
            SecretLocation::parse(&self.audit.signing_key)
                .map_err(|message| invalid("audit.signing_key", message))?;
        }
        let sane = |value: f64, max: f64| value.is_finite() && (0.0..=max).contains(&value);
        if !sane(self.energy.wh_per_thousand_tokens_per_billion_parameters, 1000.0) {
            return Err(invalid(
                "energy.wh_per_thousand_tokens_per_billion_parameters",
                "must be between 0 and 1000",
            ));
        }
        if !sane(self.energy.grid_gco2e_per_kwh, 5000.0) {
            return Err(invalid("energy.grid_gco2e_per_kwh", "must be between 0 and 5000"));
        }
        if self
            .energy
            .model_parameters
            .values()
            .any(|size| !sane(*size, 100_000.0))
        {
            return Err(invalid(
                "energy.model_parameters",
                "sizes are billions of parameters, between 0 and 100000",
            ));
        }
        let endpoint = &self.telemetry.otlp_endpoint;
        if !(endpoint.is_empty() || endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL",
            ));
        }
        if !(0.0..=1.0).contains(&self.telemetry.otlp_sample_ratio) {
            return Err(invalid("telemetry.otlp_sample_ratio", "must be from 0 to 1"));
        }
        if !(1..=10_080).contains(&self.audit.break_glass_max_minutes) {
            return Err(invalid(
                "audit.break_glass_max_minutes",
                "must be from 1 to 10080 (a week)",
            ));
        }
        if self.audit.checkpoint_every_records == 0 {
            return Err(invalid("audit.checkpoint_every_records", "must be at least 1"));
        }
        if !(1..=86_400).contains(&self.audit.checkpoint_every_seconds) {
            return Err(invalid(
                "audit.checkpoint_every_seconds",
                "must be between 1 and 86400",
            ));
        }
        if self.logging.format != "text" && self.logging.format != "json" {
            return Err(invalid("logging.format", "must be `text` or `json`"));
        }
        Ok(())
    }

    fn validate_routes(&self) -> Result<(), ConfigError> {
        let mut routed = std::collections::HashSet::new();
        for route in &self.gateway.routes {
            if !routed.insert(route.model.as_str()) {
                return Err(invalid(
                    "gateway.routes.model",
                    format!("`{}` has more than one route", route.model),
                ));
            }
            let serving: Vec<&str> = self
                .providers
                .iter()
                .filter(|provider| provider.models.contains(&route.model))
                .map(|provider| provider.name.as_str())
                .collect();
            if serving.is_empty() {
                return Err(invalid(
                    "gateway.routes.model",
                    format!("no provider serves `{}`", route.model),
                ));
            }
            if let Some(name) = route
                .deployments
                .iter()
                .find(|name| !serving.contains(&name.as_str()))
            {
                return Err(invalid(
                    "gateway.routes.deployments",
                    format!("`{name}` is not a provider serving `{}`", route.model),
                ));
            }
        }
        if self.gateway.cooldown_after_failures == 0 {
            return Err(invalid("gateway.cooldown_after_failures", "must be at least 1"));
        }
        if self.gateway.retries > 10 {
            return Err(invalid("gateway.retries", "must be at most 10"));
        }
        Ok(())
    }

    fn validate_classifications(&self) -> Result<(), ConfigError> {
        if self.classifications.is_empty() {
            return Err(invalid("classifications", "at least one level is needed"));
        }
        let mut ids = std::collections::HashSet::new();
        for level in &self.classifications {
            let id_ok = !level.id.is_empty()
                && level.id.len() <= 40
                && level
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok || !ids.insert(level.id.as_str()) {
                return Err(invalid(
                    "classifications.id",
                    "each level needs a unique id of at most 40 characters a-z, 0-9 and '-'",
                ));
            }
            if level.labels.get("en").is_none_or(|label| label.trim().is_empty()) {
                return Err(invalid(
                    "classifications.labels",
                    format!("level `{}` needs an English label (`en`)", level.id),
                ));
            }
            let (Some(background), Some(foreground)) =
                (parse_colour(&level.background), parse_colour(&level.foreground))
            else {
                return Err(invalid(
                    "classifications.background",
                    format!("level `{}`: colours are written #rrggbb", level.id),
                ));
            };
            let ratio = contrast_ratio(background, foreground);
            if ratio < 4.5 {
                return Err(invalid(
                    "classifications.foreground",
                    format!(
                        "level `{}`: text and background contrast {ratio:.2}:1, below the 4.5:1 WCAG AA needs",
                        level.id
                    ),
                ));
            }
        }
        if !self.data_protection.default_clearance.is_empty()
            && !ids.contains(self.data_protection.default_clearance.as_str())
        {
            return Err(invalid(
                "data_protection.default_clearance",
                format!(
                    "`{}` is not one of the classification levels",
                    self.data_protection.default_clearance
                ),
            ));
        }
        if !ids.contains(self.workspace.default_classification.as_str()) {
            return Err(invalid(
                "workspace.default_classification",
                format!(
                    "`{}` is not one of the classification levels",
                    self.workspace.default_classification
                ),
            ));
        }
        Ok(())
    }

    /// `server.listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("`{}` is not an address:port", self.server.listen),
            )
        })
    }

    /// The data directory, resolved.
    pub fn data_dir(&self) -> PathBuf {
        if !self.data_dir.is_empty() {
            return PathBuf::from(&self.data_dir);
        }
        platform_data_dir().join("civitas")
    }

    /// The database URL, resolved (SQLite in the data directory by default).
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir().join("civitas.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// Where models are stored.
    pub fn models_dir(&self) -> PathBuf {
        if !self.models.dir.is_empty() {
            return PathBuf::from(&self.models.dir);
        }
        self.data_dir().join("models")
    }
}

/// `$XDG_DATA_HOME`, else `$HOME/.local/share`, else the current folder.
fn platform_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local").join("share"),
        None => PathBuf::from("."),
    }
}

fn parse_env_value(value: &str) -> figment::value::Value {
    use figment::value::Value;
    if let Ok(number) = value.parse::<u64>() {
        return Value::from(number);
    }
    match value {
        "true" => Value::from(true),
        "false" => Value::from(false),
        _ => Value::from(value.to_owned()),
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    let key = error.path.join(".");
    let kind = error.kind.to_string();
    if key.is_empty() {
        format!("configuration: {kind}")
    } else {
        format!("configuration key `{key}`: {kind}")
    }
}

/// Where a secret is read from; a secret's value never appears in config.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// `env::NAME`
    Env(String),
    /// `file::PATH`
    File(PathBuf),
}

impl fmt::Debug for SecretLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretLocation::Env(name) => write!(f, "env::{name}"),
            SecretLocation::File(path) => write!(f, "file::{}", path.display()),
        }
    }
}

impl SecretLocation {
    pub fn parse(location: &str) -> Result<SecretLocation, String> {
        if let Some(name) = location.strip_prefix("env::") {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{name}` is not an environment variable name"));
            }
            return Ok(SecretLocation::Env(name.to_owned()));
        }
        if let Some(path) = location.strip_prefix("file::") {
            if path.is_empty() {
                return Err("`file::` needs a path".to_owned());
            }
            return Ok(SecretLocation::File(PathBuf::from(path)));
        }
        Err("must be a location, `env::NAME` or `file::PATH`, never the secret itself".to_owned())
    }

    /// Reads the secret. `Ok(None)` when the variable or file is absent.
    pub fn read(&self) -> Result<Option<Secret>, String> {
        match self {
            SecretLocation::Env(name) => match std::env::var(name) {
                Ok(value) if !value.trim().is_empty() => Ok(Some(Secret(value.trim().to_owned()))),
                _ => Ok(None),
            },
            SecretLocation::File(path) => match std::fs::read_to_string(path) {
                Ok(value) if !value.trim().is_empty() => Ok(Some(Secret(value.trim().to_owned()))),
                Ok(_) => Ok(None),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(format!("cannot read {}: {error}", path.display())),
            },
        }
    }
}

/// A secret value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.models.chat, "qwen2.5-1.5b-instruct");
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("civitas.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[models]\nslots = 2\n",
        )
        .unwrap();
        let config = Config::load_from(
            Some(&path),
            env(&[
                ("CIVITAS__MODELS__SLOTS", "3"),
                ("CIVITAS_DATA_DIR", "/srv/civitas"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9000");
        assert_eq!(config.models.slots, 3);
        assert_eq!(config.data_dir(), PathBuf::from("/srv/civitas"));
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("civitas.toml");
        std::fs::write(&path, "[server]\nlisten_on = \"x\"\n").unwrap();
        let error = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("listen_on"), "{error}");
    }

    #[test]
    fn bad_value_is_named() {
        let error = Config::load_from(None, env(&[("CIVITAS__SERVER__LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.listen"), "{error}");
        let error = Config::load_from(None, env(&[("CIVITAS__MODELS__SLOTS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("models.slots"), "{error}");
    }

    #[test]
    fn providers_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("civitas.toml");
        std::fs::write(
            &path,
            "[[providers]]\nname = \"vllm\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodels = [\"big\"]\nallow_internal = true\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(config.providers[0].timeout_seconds, 300);
        std::fs::write(
            &path,
            "[[providers]]\nname = \"x\"\nbase_url = \"ftp://h/v1\"\nmodels = [\"m\"]\n",
        )
        .unwrap();
        let error = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("providers.base_url"), "{error}");
        let priced = |price: &str| {
            format!(
                "[[providers]]\nname = \"p\"\nbase_url = \"https://p.example/v1\"\nmodels = [\"m\"]\n{price}"
            )
        };
        std::fs::write(&path, priced("output_per_million = 12.5\n")).unwrap();
        let config = Config::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(config.providers[0].price(), Some((0.0, 12.5)));
        std::fs::write(&path, priced("input_per_million = -1\n")).unwrap();
        let error = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("providers.input_per_million"), "{error}");
    }

    #[test]
    fn routes_name_deployments_that_serve_their_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("civitas.toml");
        let providers = "[[providers]]\nname = \"a\"\nkind = \"azure\"\nbase_url = \"https://a.example\"\nmodels = [\"big\"]\n\
            model_map = { big = \"gpt-4o-prod\" }\n\
            [[providers]]\nname = \"b\"\nkind = \"anthropic\"\nbase_url = \"https://b.example/v1\"\nmodels = [\"big\", \"small\"]\n";
        let write = |routes: &str| std::fs::write(&path, format!("{providers}{routes}")).unwrap();
        write(
            "[[gateway.routes]]\nmodel = \"big\"\nstrategy = \"least-busy\"\ndeployments = [\"b\", \"a\"]\n",
        );
        let config = Config::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(config.providers[0].kind, ProviderKind::Azure);
        assert_eq!(config.gateway.routes[0].strategy, RouteStrategy::LeastBusy);
        assert_eq!(config.gateway.retries, 2);
        for (routes, key) in [
            (
                "[[gateway.routes]]\nmodel = \"small\"\ndeployments = [\"a\"]\n",
                "gateway.routes.deployments",
            ),
            ("[[gateway.routes]]\nmodel = \"huge\"\n", "gateway.routes.model"),
            (
                "[[gateway.routes]]\nmodel = \"big\"\nstrategy = \"random\"\n",
                "strategy",
            ),
            (
                "[gateway]\ncooldown_after_failures = 0\n",
                "gateway.cooldown_after_failures",
            ),
            (
                "[knowledge]\nrerank_provider = \"nobody\"\n",
                "knowledge.rerank_provider",
            ),
        ] {
            write(routes);
            let error = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
            assert!(error.contains(key), "{routes}: {error}");
        }
        std::fs::write(
            &path,
            "[[providers]]\nname = \"a\"\nbase_url = \"https://a.example\"\nmodels = [\"big\"]\nmodel_map = { other = \"x\" }\n",
        )
        .unwrap();
        let error = Config::load_from(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("providers.model_map"), "{error}");
    }

    #[test]
    fn secrets_are_locations_and_redacted() {
        let error = Config::load_from(None, env(&[("CIVITAS__AUTH__BOOTSTRAP_KEY", "sk-literal")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("auth.bootstrap_key"), "{error}");
        assert!(!format!("{:?}", Secret::new("sk-123")).contains("sk-123"));
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            match value {
                toml::Value::Table(inner) => keys(inner, &format!("{path}."), out),
                _ => out.push(path),
            }
        }
    }

    /// The commented reference file lists every key with its default, so it
    /// cannot drift from the code.
    #[test]
    fn example_file_holds_every_key_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../civitas.example.toml");
        let config = Config::load_from(Some(&path), Vec::new()).unwrap();
        assert_eq!(config, Config::default());
        let example: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let defaults: toml::Table = toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
        let (mut example_keys, mut default_keys) = (Vec::new(), Vec::new());
        keys(&example, "", &mut example_keys);
        keys(&defaults, "", &mut default_keys);
        example_keys.sort();
        default_keys.sort();
        assert_eq!(example_keys, default_keys);
    }
}
