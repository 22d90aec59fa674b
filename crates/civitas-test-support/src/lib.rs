//! `spawn_app()`: the real Civitas server on port 0, over a fresh SQLite
//! database (or a fresh PostgreSQL database when
//! `CIVITAS_TEST_DATABASE_URL` is set and `backend` asks for it), serving a
//! real model from `CIVITAS_TEST_MODELS_DIR`.
//!
//! Tests that need a model call [`spawn_app`]; when the models folder is
//! not configured it returns `None` after printing a notice, and `.ci/run`
//! always configures it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;

use std::path::PathBuf;
use std::sync::Arc;

use civitas_config::{Config, Secret};
use civitas_inference::embed::Embedder;
use civitas_inference::{ChatEngine, EngineConfig, ModelStore};
use civitas_server::{Application, ServedModels};
use civitas_store::Store;
use tokio::sync::oneshot;

/// The API key every test app accepts.
pub const TEST_KEY: &str = "sk-test-civitas-0123456789";

/// The tiny model used by most tests.
pub const TINY_MODEL: &str = "smollm2-135m-instruct";

/// The embedding model, served when installed in the test models folder.
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// Options for [`spawn_app_with`].
#[derive(Clone)]
pub struct AppOptions {
    pub model: String,
    pub slots: u32,
    pub queue_depth: u32,
    pub max_body_bytes: u64,
    pub context_length: u32,
    pub postgres: bool,
    /// Open this PostgreSQL database instead of a fresh one (a second
    /// replica of another test app).
    pub database_url: Option<String>,
    /// Serve the embedding model too (when it is installed).
    pub embeddings: bool,
    /// Load `model` locally; `false` serves only `providers`.
    pub local_model: bool,
    pub providers: Vec<civitas_config::ProviderConfig>,
    /// Last changes to the configuration (limits of sign-in, prices...).
    pub tweak: Arc<dyn Fn(&mut Config) + Send + Sync>,
    /// Listen here instead of a free port chosen by the system.
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            model: TINY_MODEL.to_owned(),
            slots: 2,
            queue_depth: 8,
            max_body_bytes: 256 * 1024,
            context_length: 2048,
            postgres: false,
            database_url: None,
            embeddings: true,
            local_model: true,
            providers: Vec::new(),
            tweak: Arc::new(|_| {}),
            listen: None,
        }
    }
}

/// A person created by [`TestApp::new_person`], with a personal key.
#[derive(Debug, Clone)]
pub struct TestPerson {
    pub id: String,
    pub agency_id: String,
    pub email: String,
    pub key: String,
    pub key_id: String,
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// A port free at the time of asking, for servers that must know their
/// address before they start.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    /// The PostgreSQL database it uses, for a second replica.
    pub database_url: Option<String>,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub model: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("address", &self.address).finish()
    }
}

/// The models folder for tests, if configured.
pub fn test_models_dir() -> Option<PathBuf> {
    match std::env::var("CIVITAS_TEST_MODELS_DIR") {
        Ok(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            eprintln!("notice: CIVITAS_TEST_MODELS_DIR is unset; test needing a model skipped");
            None
        }
    }
}

pub async fn spawn_app() -> Option<TestApp> {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> Option<TestApp> {
    let models_dir = test_models_dir()?;
    let installed = ModelStore::new(&models_dir)
        .require(&options.model)
        .expect("test model installed");
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data_dir.path().display().to_string(),
        ..Config::default()
    };
    config.models.dir = models_dir.display().to_string();
    config.models.chat = if options.local_model {
        options.model.clone()
    } else {
        String::new()
    };
    config.models.slots = options.slots;
    config.models.queue_depth = options.queue_depth;
    config.models.context_length = options.context_length;
    config.models.max_output_tokens = 512;
    // The demo collection is ingested only where a test asks for it.
    config.knowledge.demo_collection = false;
    config.server.max_body_bytes = options.max_body_bytes;
    config.server.shutdown_grace_seconds = 2;
    // Tests talk plain HTTP to 127.0.0.1 through reqwest, not a browser.
    config.auth.secure_cookies = false;
    (options.tweak)(&mut config);
    let mut database_url = None;
    let store: Arc<dyn Store> = if options.postgres {
        let url = match options.database_url.clone() {
            Some(url) => url,
            None => {
                let admin = std::env::var("CIVITAS_TEST_DATABASE_URL").expect("CIVITAS_TEST_DATABASE_URL");
                civitas_store_postgres::testing::create_fresh_database(&admin)
                    .await
                    .unwrap()
            }
        };
        database_url = Some(url.clone());
        Arc::new(
            civitas_store_postgres::PostgresStore::open(&url, 4, test_keyring())
                .await
                .unwrap(),
        )
    } else {
        Arc::new(
            civitas_store_sqlite::SqliteStore::open(&config.database_url(), 4, test_keyring())
                .await
                .unwrap(),
        )
    };
    // One thread per engine: tests run two at a time on two cores, and
    // llama.cpp's worker threads spin while waiting.
    let engine_config = EngineConfig {
        threads: 1,
        context_per_slot: options.context_length,
        slots: options.slots,
        queue_depth: options.queue_depth,
        batch_tokens: 512,
    };
    let engine = if options.local_model {
        Some(Arc::new(
            tokio::task::spawn_blocking(move || ChatEngine::load(&installed, engine_config))
                .await
                .unwrap()
                .unwrap(),
        ))
    } else {
        None
    };
    let providers = options
        .providers
        .iter()
        .map(|provider| Arc::new(civitas_server::providers::RemoteProvider::from_config(provider).unwrap()))
        .collect();
    let embedder = match ModelStore::new(&models_dir).installed(EMBEDDING_MODEL) {
        Some(installed) if options.embeddings => Some(Arc::new(
            tokio::task::spawn_blocking(move || Embedder::load(&installed))
                .await
                .unwrap()
                .unwrap(),
        )),
        _ => None,
    };
    let models = ServedModels {
        chat: engine,
        embedder,
        providers,
    };
    let application = Application::build(
        config,
        Application::bind(options.listen.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap())).unwrap(),
        Arc::clone(&store),
        models,
        Some(Secret::new(TEST_KEY)),
    )
    .await
    .unwrap();
    let address = format!("http://{}", application.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    Some(TestApp {
        address,
        database_url,
        client: reqwest::Client::new(),
        store,
        model: if options.local_model {
            options.model
        } else {
            options
                .providers
                .first()
                .and_then(|p| p.models.first())
                .cloned()
                .unwrap_or_default()
        },
        stop: Some(stop),
        server: Some(server),
        _data_dir: data_dir,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A POST with the test key and a JSON body.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(TEST_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A GET with the test key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .unwrap()
    }

    /// A request with `key` as bearer and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// An administration call with the test (platform-admin) key that must
    /// succeed; returns its JSON answer.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let response = self.call(method.clone(), path, TEST_KEY, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A new agency; returns its id.
    pub async fn new_agency(&self, slug: &str) -> String {
        let body = serde_json::json!({"slug": slug, "name": format!("Agency {slug}")});
        let agency = self
            .admin(reqwest::Method::POST, "/api/admin/agencies", Some(&body))
            .await;
        agency["id"].as_str().unwrap().to_owned()
    }

    /// A new group of `agency_id` allowed `models`; returns its id.
    pub async fn new_group(&self, agency_id: &str, name: &str, models: &[&str]) -> String {
        let path = format!("/api/admin/agencies/{agency_id}/groups");
        let group = self
            .admin(
                reqwest::Method::POST,
                &path,
                Some(&serde_json::json!({"name": name})),
            )
            .await;
        let id = group["id"].as_str().unwrap().to_owned();
        let path = format!("/api/admin/agencies/{agency_id}/groups/{id}/models");
        self.admin(
            reqwest::Method::PUT,
            &path,
            Some(&serde_json::json!({"models": models})),
        )
        .await;
        id
    }

    /// A new person of `agency_id` with `roles` and `groups` (and
    /// `password`, if given) and a personal key.
    pub async fn new_person(
        &self,
        agency_id: &str,
        email: &str,
        roles: &[&str],
        groups: &[&str],
        password: Option<&str>,
    ) -> TestPerson {
        let path = format!("/api/admin/agencies/{agency_id}/people");
        let body = serde_json::json!({
            "email": email,
            "display_name": format!("Test {email}"),
            "roles": roles,
            "group_ids": groups,
            "password": password,
        });
        let person = self.admin(reqwest::Method::POST, &path, Some(&body)).await;
        let id = person["id"].as_str().unwrap().to_owned();
        let path = format!("/api/admin/agencies/{agency_id}/keys");
        let body = serde_json::json!({"person_id": id, "name": "test"});
        let created = self.admin(reqwest::Method::POST, &path, Some(&body)).await;
        TestPerson {
            id,
            agency_id: agency_id.to_owned(),
            email: email.to_owned(),
            key: created["secret"].as_str().unwrap().to_owned(),
            key_id: created["key"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// The id of the default agency (where the test key lives).
    pub async fn default_agency(&self) -> String {
        let me = self.admin(reqwest::Method::GET, "/v1/me", None).await;
        me["agency"]["id"].as_str().unwrap().to_owned()
    }

    /// The request record of `request_id`, waiting up to 5 s for the
    /// background writer to store it.
    pub async fn wait_for_record(&self, request_id: &str) -> Option<civitas_store::RequestRecord> {
        for _ in 0..100 {
            let records = self.store.list_request_records(50).await.unwrap();
            if let Some(record) = records.into_iter().find(|r| r.request_id == request_id) {
                return Some(record);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    /// Asks the server to stop and waits for it (graceful shutdown).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// One master key for every test server of this process, so that servers
/// sharing a database (replicas) open each other's content.
pub fn test_keyring() -> Arc<civitas_store::crypt::Keyring> {
    use civitas_store::crypt::{Keyring, MasterKey};
    static MASTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = MASTER.get_or_init(|| MasterKey::generate().expect("random source").to_text());
    Keyring::new(MasterKey::from_text(text).expect("a master key"), Vec::new())
}
