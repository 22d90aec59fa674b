//! Single sign-on end to end against a real OpenID provider: the
//! `oidc-provider` package on Node (`tests/oidc/provider.mjs`), driven like
//! a browser (redirects followed, cookies kept).
//!
//! Needs `node` and `npm ci` run in `tests/oidc`; without them the test
//! prints a notice and skips, and `scripts/test.sh` always prepares them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use civitas_test_support::{free_port, spawn_app_with, AppOptions, TestApp, TEST_KEY};
use reqwest::Method;
use serde_json::{json, Value};

struct IdentityProvider {
    child: Child,
    issuer: String,
    client: reqwest::Client,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IdentityProvider {
    fn start(redirect_uri: &str) -> Option<IdentityProvider> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
        if !dir.join("node_modules/oidc-provider").exists() {
            eprintln!("notice: run `npm ci` in tests/oidc to test single sign-on; skipped");
            return None;
        }
        let port = free_port();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("REDIRECT_URI", redirect_uri)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| eprintln!("notice: cannot run node ({error}); single sign-on test skipped"))
            .ok()?;
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so that later output never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let started: Value = serde_json::from_str(&line).expect("the provider's first line");
        Some(IdentityProvider {
            child,
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            client: reqwest::Client::new(),
        })
    }

    async fn control(&self, path: &str, body: Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    async fn next_person(&self, account: &str, claims: Value) {
        self.control("/__test/next", json!({"account": account, "claims": claims}))
            .await;
    }

    async fn userinfo_calls(&self) -> u64 {
        let stats: Value = self
            .client
            .get(format!("{}/__test/stats", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["userinfo"].as_u64().unwrap()
    }

    async fn mode(&self, mode: &str) {
        self.control("/__test/mode", json!({"mode": mode})).await;
    }
}

/// Follows redirects and keeps cookies per host, like a browser.
struct Browser {
    client: reqwest::Client,
    jar: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let parsed = reqwest::Url::parse(url).unwrap();
        let origin = format!(
            "{}:{}",
            parsed.host_str().unwrap(),
            parsed.port_or_known_default().unwrap()
        );
        let cookies = self.jar.entry(origin.clone()).or_default();
        let mut request = self.client.get(url);
        if !cookies.is_empty() {
            let header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", header);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let cookies = self.jar.get_mut(&origin).unwrap();
            if value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0") {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        response
    }

    /// Follows redirects from `url` until one leads to `stop` (not fetched).
    async fn follow_until(&mut self, url: &str, stop: &str) -> String {
        let mut current = url.to_owned();
        for _ in 0..20 {
            let response = self.get(&current).await;
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{current} answered {status} without a redirect"));
            let next = reqwest::Url::parse(&current)
                .unwrap()
                .join(&location)
                .unwrap()
                .to_string();
            if next.starts_with(stop) {
                return next;
            }
            current = next;
        }
        panic!("too many redirects from {url}");
    }
}

struct Setup {
    app: TestApp,
    idp: IdentityProvider,
    callback: String,
    agency: String,
}

async fn setup() -> Option<Setup> {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/oidc/callback");
    let idp = IdentityProvider::start(&callback)?;
    let issuer = idp.issuer.clone();
    let redirect = callback.clone();
    let provider = move |name: &str, agency: &str| civitas_config::OidcConfig {
        name: name.to_owned(),
        display_name: format!("Sign in with {name}"),
        agency: agency.to_owned(),
        agency_claim: String::new(),
        issuer: issuer.clone(),
        client_id: "civitas".to_owned(),
        client_secret: "env::CIVITAS_TEST_OIDC_SECRET".to_owned(),
        client_auth: "client_secret_basic".to_owned(),
        redirect_url: redirect.clone(),
        scopes: vec!["openid".into(), "email".into(), "profile".into(), "groups".into()],
        email_claim: "email".to_owned(),
        name_claim: "name".to_owned(),
        groups_claim: "groups".to_owned(),
        roles_claim: "roles".to_owned(),
        role_map: [("ai-auditors".to_owned(), "auditor".to_owned())]
            .into_iter()
            .collect(),
        allowed_domains: vec!["example.gov".to_owned()],
        require_approval: false,
        allow_internal: true,
        clock_skew_seconds: 60,
    };
    std::env::set_var("CIVITAS_TEST_OIDC_SECRET", "civitas-test-client-secret");
    std::env::set_var("CIVITAS_TEST_OIDC_POST_SECRET", "civitas-test-post-secret");
    std::env::set_var("CIVITAS_TEST_OIDC_WRONG_SECRET", "not-the-secret");
    let app = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        listen: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        tweak: Arc::new(move |config| {
            let staff = provider("staff", "sso-agency");
            let mut approval = provider("approval", "sso-approval");
            approval.require_approval = true;
            approval.roles_claim = String::new();
            let mut ministry = provider("ministry", "sso-agency");
            ministry.agency_claim = "org.unit".to_owned();
            // Another client, whose secret goes in the form.
            ministry.client_id = "civitas-post".to_owned();
            ministry.client_secret = "env::CIVITAS_TEST_OIDC_POST_SECRET".to_owned();
            ministry.client_auth = "client_secret_post".to_owned();
            let mut wrong_secret = provider("wrong-secret", "sso-agency");
            wrong_secret.client_secret = "env::CIVITAS_TEST_OIDC_WRONG_SECRET".to_owned();
            config.oidc = vec![staff, approval, ministry, wrong_secret];
        }),
        ..AppOptions::default()
    })
    .await?;
    let agency = app.new_agency("sso-agency").await;
    app.new_agency("sso-approval").await;
    Some(Setup {
        app,
        idp,
        callback,
        agency,
    })
}

/// Runs a sign-in with `provider` up to the callback URL (not fetched).
async fn to_callback(setup: &Setup, provider: &str) -> String {
    let mut browser = Browser::new();
    let start = setup
        .app
        .url(&format!("/auth/oidc/{provider}/start?return_to=/v1/me"));
    browser.follow_until(&start, &setup.callback).await
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    body["error"].clone()
}

#[tokio::test]
async fn single_sign_on_with_a_real_provider() {
    let Some(setup) = setup().await else { return };
    let app = &setup.app;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let buttons: Value = client
        .get(app.url("/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(buttons["data"][0]["start_url"], "/auth/oidc/staff/start");

    // A group the provider's `groups` claim maps to (by external id).
    let group = app
        .admin(
            Method::POST,
            &format!("/api/admin/agencies/{}/groups", setup.agency),
            Some(&json!({"name": "Analystes", "external_id": "grp-analysts"})),
        )
        .await;

    // First sign-in creates the person, with groups and roles from claims.
    let claims = json!({"email": "Jeanne.Dupont@example.gov", "email_verified": true, "name": "Jeanne Dupont",
        "groups": ["grp-analysts", "unknown-group"], "roles": ["ai-auditors", "platform-admin"]});
    setup.idp.next_person("jeanne", claims.clone()).await;
    let callback = to_callback(&setup, "staff").await;
    let signed_in = client.get(&callback).send().await.unwrap();
    assert_eq!(signed_in.status(), 303, "{}", signed_in.text().await.unwrap());
    assert_eq!(signed_in.headers()["location"], "/v1/me");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me: Value = client
        .get(app.url("/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "jeanne.dupont@example.gov");
    assert_eq!(me["display_name"], "Jeanne Dupont");
    assert_eq!(me["agency"]["slug"], "sso-agency");
    assert_eq!(me["groups"], json!([{"id": group["id"], "name": "Analystes"}]));
    let roles: Vec<&str> = me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        vec!["auditor", "member"],
        "platform-admin is never granted by SSO"
    );

    // The same answer replayed is refused.
    let replayed = client.get(&callback).send().await.unwrap();
    let error = error_of(replayed, 400).await;
    assert_eq!(error["code"], "sso_state_invalid");
    assert!(
        error["message"].as_str().unwrap().contains("already used"),
        "{error}"
    );
    let forged = client
        .get(app.url("/auth/oidc/callback?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged, 400).await["code"], "sso_state_invalid");

    // Tokens a broken or hostile provider would send are refused, each
    // with its reason.
    for (mode, reason) in [
        ("bad-signature", "invalid signature"),
        ("expired", "expired"),
        ("wrong-audience", "another application"),
    ] {
        setup.idp.mode(mode).await;
        setup.idp.next_person("jeanne", claims.clone()).await;
        let callback = to_callback(&setup, "staff").await;
        let refused = client.get(&callback).send().await.unwrap();
        let error = error_of(refused, 401).await;
        assert_eq!(error["code"], "sso_failed", "{mode}");
        assert!(
            error["message"].as_str().unwrap().contains(reason),
            "{mode}: {error}"
        );
    }
    // A clock 30 s ahead is within the tolerance; a rotated key is fetched;
    // claims kept at the userinfo endpoint are read there.
    for mode in ["skewed", "rotate", "userinfo"] {
        setup.idp.mode(mode).await;
        let calls_before = setup.idp.userinfo_calls().await;
        let callback = to_callback(&setup, "staff").await;
        let accepted = client.get(&callback).send().await.unwrap();
        assert_eq!(
            accepted.status(),
            303,
            "{mode}: {}",
            accepted.text().await.unwrap()
        );
        // The userinfo endpoint is asked only when the ID token lacks the
        // e-mail address.
        let asked = setup.idp.userinfo_calls().await - calls_before;
        assert_eq!(asked, u64::from(mode == "userinfo"), "{mode}");
    }
    setup.idp.mode("normal").await;

    // A client secret the provider does not accept: refused, and said so.
    let callback = to_callback(&setup, "wrong-secret").await;
    let refused = client.get(&callback).send().await.unwrap();
    let error = error_of(refused, 401).await;
    assert!(
        error["message"].as_str().unwrap().contains("invalid_client"),
        "{error}"
    );

    // Addresses outside the allowed domains are refused.
    setup
        .idp
        .next_person(
            "outsider",
            json!({"email": "someone@elsewhere.org", "email_verified": true}),
        )
        .await;
    let callback = to_callback(&setup, "staff").await;
    let refused = client.get(&callback).send().await.unwrap();
    assert_eq!(error_of(refused, 403).await["code"], "sso_not_allowed");

    // The provider reporting an error (the person declined) is refused.
    let mut browser = Browser::new();
    let to_provider = browser.get(&app.url("/auth/oidc/staff/start")).await;
    let location = to_provider.headers()["location"].to_str().unwrap().to_owned();
    let state = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    let declined = client
        .get(format!("{}?state={state}&error=access_denied", setup.callback))
        .send()
        .await
        .unwrap();
    let error = error_of(declined, 401).await;
    assert!(
        error["message"].as_str().unwrap().contains("access_denied"),
        "{error}"
    );
    let open_redirect = client
        .get(app.url("/auth/oidc/staff/start?return_to=https://evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(open_redirect, 400).await["param"], "return_to");

    // A provider shared with the agencies below places people by a claim,
    // and never in an agency outside its own.
    let directorate = app
        .admin(
            Method::POST,
            "/api/admin/agencies",
            Some(&json!({"slug": "sso-directorate", "name": "Directorate", "parent_id": setup.agency})),
        )
        .await;
    setup
        .idp
        .next_person(
            "placed",
            json!({"email": "placed@example.gov", "org": {"unit": "sso-directorate"}}),
        )
        .await;
    let callback = to_callback(&setup, "ministry").await;
    let placed = client.get(&callback).send().await.unwrap();
    assert_eq!(placed.status(), 303);
    let people = app
        .admin(
            Method::GET,
            &format!(
                "/api/admin/agencies/{}/people",
                directorate["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(people["data"][0]["email"], "placed@example.gov");
    setup
        .idp
        .next_person(
            "stray",
            json!({"email": "stray@example.gov", "org": {"unit": "sso-approval"}}),
        )
        .await;
    let callback = to_callback(&setup, "ministry").await;
    let stray = client.get(&callback).send().await.unwrap();
    assert_eq!(error_of(stray, 403).await["code"], "sso_not_allowed");

    // With approval required, a new person waits until an administrator
    // approves them.
    setup
        .idp
        .next_person(
            "newcomer",
            json!({"email": "newcomer@example.gov", "email_verified": true}),
        )
        .await;
    let callback = to_callback(&setup, "approval").await;
    let waiting = client.get(&callback).send().await.unwrap();
    assert_eq!(error_of(waiting, 403).await["code"], "account_pending");
    let approval_agency = app.admin(Method::GET, "/api/admin/agencies", None).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|agency| agency["slug"] == "sso-approval")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let people = app
        .admin(
            Method::GET,
            &format!("/api/admin/agencies/{approval_agency}/people"),
            None,
        )
        .await;
    let newcomer = people["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(people["data"][0]["status"], "pending");
    app.call(
        Method::PATCH,
        &format!("/api/admin/agencies/{approval_agency}/people/{newcomer}"),
        TEST_KEY,
        Some(&json!({"status": "active"})),
    )
    .await;
    let callback = to_callback(&setup, "approval").await;
    let approved = client.get(&callback).send().await.unwrap();
    assert_eq!(approved.status(), 303);
}
