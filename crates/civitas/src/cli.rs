//! Command-line interface definition.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Civitas — a sovereign, secure AI workspace for public administrations.
///
/// Runs wholly on your own machine: an OpenAI-compatible API backed by a
/// local model, with SQLite (default) or PostgreSQL for storage.
///
/// Configuration is read from built-in defaults, then the TOML file given
/// by --config or CIVITAS_CONFIG, then CIVITAS__SECTION__KEY environment
/// variables (e.g. CIVITAS__SERVER__LISTEN=0.0.0.0:8080). CIVITAS_DATA_DIR
/// sets where the database and models are kept.
#[derive(Debug, Parser)]
#[command(name = "civitas", version, about, long_about)]
pub struct Cli {
    /// Path of a civitas.toml configuration file.
    #[arg(long, global = true, env = "CIVITAS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server: API on http://127.0.0.1:8080 by default.
    ///
    /// On first run the configured chat model is fetched (if the package
    /// index is reachable), the database is created, and an API key is
    /// generated into the data directory unless CIVITAS_BOOTSTRAP_KEY is set.
    Serve {
        /// Address and port to listen on (overrides server.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Do not fetch a missing model; fail instead.
        #[arg(long)]
        no_pull: bool,
    },
    /// List, fetch, import and verify models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Create administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify, export and prove the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Find personal data, secrets and classification markings in files.
    #[command(subcommand)]
    Protect(ProtectCommand),
    /// The data keys that seal content at rest: list, rotate, re-encrypt,
    /// re-wrap under a new master key, retire, destroy (crypto-shredding).
    #[command(subcommand)]
    DataKeys(DataKeysCommand),
    /// Retention schedules: apply them now.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Queue files and folders for ingestion into an agency's collection
    /// (created if missing); a running server ingests them.
    Ingest {
        /// Files or folders (read recursively; hidden files skipped).
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// The collection's name.
        #[arg(long)]
        collection: String,
        /// The agency's slug.
        #[arg(long, default_value = "default")]
        agency: String,
        /// Wait until a running server has ingested them, printing progress.
        #[arg(long)]
        wait: bool,
    },
    /// The search indexes of the running replicas.
    #[command(subcommand)]
    Index(IndexCommand),
    /// The remote deployments of `[[providers]]`.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (JSON), generated
    /// from the code; the committed copy is docs/openapi.json.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum DataKeysCommand {
    /// Every data key: agency, state, master key, rows still sealed.
    List,
    /// Give an agency a new active data key (older keys still open what
    /// they sealed until `reencrypt` moves it).
    Rotate {
        /// The agency's id.
        #[arg(long)]
        agency: String,
    },
    /// Re-seal every message and title not sealed with its agency's active
    /// key (content written before encryption included), then retire the
    /// keys nothing is sealed with any more.
    Reencrypt {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Re-wrap every data key with the current master key (after a new
    /// one is configured and the old one moved to
    /// `data_protection.previous_master_keys`).
    Rewrap,
    /// Write a new master key (base64) to FILE, mode 0600, for a rotation.
    NewMasterKey {
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Destroy an agency's data keys: everything they sealed becomes
    /// unreadable for good. Copies in older backups stay readable until the
    /// master key of their time is retired (rotate it, `rewrap`, then
    /// destroy the old master key).
    Destroy {
        /// The agency's id.
        #[arg(long)]
        agency: String,
        /// The agency's id again, to confirm.
        #[arg(long)]
        confirm: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Every replica indexes every document again from the database
    /// (within `knowledge.sync_every_seconds`).
    Rebuild {
        /// Extract, cut and embed every document again too (after a change
        /// of embedding model or chunking): queued for the servers.
        #[arg(long)]
        reingest: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Check each deployment: reachable, credential accepted, and a
    /// one-token completion of each of its models; prints a table and
    /// exits non-zero if any check failed.
    Test {
        /// Only this provider.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Remove what every agency's retention schedule says is due (except
    /// what legal holds keep); prints what was removed.
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum ProtectCommand {
    /// Print what the detection engine finds in FILE (UTF-8 text, at most
    /// 16 MiB): type, line and column, score, recognizer and the text
    /// found. Exits 0 whether or not anything is found.
    Analyze {
        file: std::path::PathBuf,
        /// `en`, `fr` or `auto` (default: told from the text).
        #[arg(long, default_value = "auto")]
        language: String,
        /// Only these types (repeatable), e.g. `--entity US_SSN`.
        #[arg(long = "entity")]
        entities: Vec<String>,
        /// 0 to 1.
        #[arg(long, default_value_t = 0.5)]
        threshold: f32,
        /// One JSON object per finding (byte offsets) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show the catalogue and which models are installed.
    List,
    /// Fetch a catalogue model (default: the configured chat model) and
    /// verify its sha256. Safe to repeat; resumes an interrupted pull.
    Pull {
        /// Catalogue name, e.g. qwen2.5-1.5b-instruct or smollm2-135m-instruct.
        name: Option<String>,
    },
    /// Register a local GGUF file, e.g. one copied onto a disconnected network.
    Import {
        /// Path of the .gguf file.
        path: PathBuf,
        /// Name to serve it under.
        #[arg(long)]
        name: String,
    },
    /// Recompute the sha256 of installed models and compare with the record.
    Verify {
        /// Only this model.
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, then print it (secrets are
    /// locations, so nothing secret is printed).
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and the Merkle tree and check every
    /// checkpoint's signature; names each modified, deleted, inserted or
    /// reordered record and exits non-zero if the log is not intact.
    Verify {
        /// Verify a file written by `civitas audit export` instead of the
        /// database.
        #[arg(long)]
        export: Option<std::path::PathBuf>,
        /// Trust only this Ed25519 public key (base64; repeatable), e.g.
        /// one pinned from /v1/audit/checkpoints/latest. Default: the
        /// installation's key (or, for an export, the keys it names).
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole log as JSON Lines: a header (public keys and
    /// checkpoints), then one record per line.
    Export {
        /// File to write.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print the inclusion proof (RFC 6962) of record SEQ in the tree of
    /// the latest checkpoint, or of --size records.
    Prove {
        seq: u64,
        #[arg(long)]
        size: Option<u64>,
    },
    /// Print the consistency proof (RFC 6962) that the tree of FROM
    /// records is a prefix of the tree of TO records.
    Consistency { from: u64, to: u64 },
    /// Replace the key that signs checkpoints. The change is recorded in the
    /// log, signed by both keys, so checkpoints of either key verify with
    /// the other; restart every replica afterwards to sign with the new key.
    RotateKey {
        /// Write the new key here instead of the configured key file (needed
        /// when `audit.signing_key` is read from the environment).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a platform administrator with a local password (asked for on
    /// the terminal, or read from standard input with --password-stdin).
    /// There is never a default password.
    Create {
        /// E-mail address used to sign in.
        #[arg(long)]
        email: String,
        /// Name shown in the workspace (default: the e-mail address).
        #[arg(long)]
        name: Option<String>,
        /// Slug of the agency the administrator belongs to (created if it
        /// is the default agency).
        #[arg(long, default_value = "default")]
        agency: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for a person or service account; the secret is printed
    /// once and never stored.
    Create {
        /// Owner's e-mail address.
        #[arg(long)]
        email: String,
        /// A label to recognise the key.
        #[arg(long)]
        name: String,
        /// personal, service or short_lived.
        #[arg(long, default_value = "personal")]
        kind: String,
        /// Models the key may use, comma-separated (default: all of its owner's).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Client address ranges allowed, comma-separated CIDR (default: any).
        #[arg(long, value_delimiter = ',')]
        ip_ranges: Option<Vec<String>>,
        /// Expire after this many hours.
        #[arg(long)]
        expires_in_hours: Option<u32>,
    },
    /// List the keys of an agency (never their secrets).
    List {
        /// Agency slug.
        #[arg(long, default_value = "default")]
        agency: String,
    },
    /// Revoke a key by id; refused from the next request on.
    Revoke {
        /// The key's id (key_...).
        id: String,
    },
}
