//! The workspace's pages through the real server: security headers,
//! languages, embedded assets, signing in and out with forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_test_support::browser::{client as browser, form_token, set_cookie};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};
use reqwest::Method;

fn no_model() -> AppOptions {
    AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    }
}

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";

async fn person(app: &TestApp) {
    let agency = app.new_agency("web").await;
    app.new_person(&agency, "agent@web.example.gov", &["member"], &[], Some(PASSWORD))
        .await;
}

#[tokio::test]
async fn pages_are_strict_accessible_shells_in_english_and_french() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let client = browser();
    let page = client.get(app.url("/sign-in")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let spoofed = client
        .get(app.url("/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        spoofed.headers().get("strict-transport-security").is_none(),
        "HSTS only when a trusted proxy says so"
    );
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(
        html.contains("class=\"usa-skipnav\" href=\"#main-content\""),
        "skip link"
    );
    assert!(html.contains("<main id=\"main-content\""), "main landmark");
    assert!(html.contains("<label class=\"usa-label\" for=\"email\">E-mail address</label>"));
    assert!(html.contains("<label class=\"usa-label\" for=\"password\">Password</label>"));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    assert_eq!(
        html.matches("UNCLASSIFIED").count(),
        2,
        "banner at top and bottom"
    );

    // French from the browser, then from the switch (remembered).
    let french = client
        .get(app.url("/sign-in"))
        .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        french.contains("<html lang=\"fr\">") && french.contains("Mot de passe"),
        "{french}"
    );
    let switched = client.get(app.url("/sign-in?lang=fr")).send().await.unwrap();
    assert_eq!(set_cookie(&switched, "civitas_lang").as_deref(), Some("fr"));
    let remembered = client
        .get(app.url("/sign-in"))
        .header("cookie", "civitas_lang=fr")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(remembered.contains("Adresse électronique"));

    // Assets are embedded; nothing outside them is served.
    let css = client
        .get(app.url("/assets/uswds/css/uswds.min.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let font = client
        .get(app.url("/assets/uswds/fonts/source-sans-pro/sourcesanspro-regular-webfont.woff2"))
        .send()
        .await
        .unwrap();
    assert_eq!(font.status(), 200);
    for missing in [
        "/assets/nope.css",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
    ] {
        assert_eq!(
            client.get(app.url(missing)).send().await.unwrap().status(),
            404,
            "{missing}"
        );
    }
    // The workspace needs a session.
    let home = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/sign-in");
    app.shutdown().await;
}

#[tokio::test]
async fn signing_in_and_out_with_forms() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    person(&app).await;
    let client = browser();
    let page = client.get(app.url("/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie(&page, "civitas_signin_csrf").unwrap();
    let token = form_token(&page.text().await.unwrap());
    let submit = |csrf_cookie: String, token: String, password: &'static str| {
        client
            .post(app.url("/sign-in"))
            .header("cookie", format!("civitas_signin_csrf={csrf_cookie}"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", "agent@web.example.gov"),
                ("password", password),
                ("totp_code", ""),
            ])
            .send()
    };
    // A form posted from elsewhere (no matching token) is refused.
    let forged = submit("other".to_owned(), token.clone(), PASSWORD).await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(set_cookie(&forged, "civitas_session").is_none());
    // A wrong password: the page again, the error announced, the address kept.
    let wrong = submit(form_cookie.clone(), token.clone(), "not the password")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\"") && html.contains("The e-mail address or the password is not right.")
    );
    assert!(html.contains("value=\"agent@web.example.gov\""));
    // The right one: a session, and the workspace.
    let signed_in = submit(form_cookie, token, PASSWORD).await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/");
    let session = set_cookie(&signed_in, "civitas_session").unwrap();
    // The workspace first asks for the rules of behaviour to be accepted.
    let home = client
        .get(app.url("/"))
        .header("cookie", format!("civitas_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/rules");
    let rules = client
        .get(app.url("/rules"))
        .header("cookie", format!("civitas_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rules.status(), 200);
    let html = rules.text().await.unwrap();
    assert!(html.contains("Test agent@web.example.gov"), "{html}");
    let csrf = form_token(&html);
    // The session's cookie also works on the API.
    let me = app
        .client
        .request(Method::GET, app.url("/v1/me"))
        .header("cookie", format!("civitas_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // Signing out needs the session's own token.
    let forged_out = client
        .post(app.url("/sign-out"))
        .header("cookie", format!("civitas_session={session}"))
        .form(&[("csrf_token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged_out.status(), 303);
    let still = client
        .get(app.url("/rules"))
        .header("cookie", format!("civitas_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "a forged sign-out ended the session");
    let out = client
        .post(app.url("/sign-out"))
        .header("cookie", format!("civitas_session={session}"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()["location"], "/sign-in");
    assert_eq!(set_cookie(&out, "civitas_session").as_deref(), Some(""));
    let after = client
        .get(app.url("/rules"))
        .header("cookie", format!("civitas_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session still works after signing out");
    app.shutdown().await;
}

#[tokio::test]
async fn pages_are_compressed_and_hsts_follows_a_trusted_https_proxy() {
    let Some(app) = spawn_app_with(AppOptions {
        tweak: std::sync::Arc::new(|config| config.server.trusted_proxies = vec!["127.0.0.1".to_owned()]),
        ..no_model()
    })
    .await
    else {
        return;
    };
    let client = browser();
    let css = client
        .get(app.url("/assets/uswds/css/uswds.min.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-encoding"], "gzip");
    let compressed = css.bytes().await.unwrap().len();
    assert!(compressed < 120_000, "{compressed} bytes");
    let plain = client.get(app.url("/sign-in")).send().await.unwrap();
    assert!(
        plain.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    let proxied = client
        .get(app.url("/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(proxied.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    app.shutdown().await;
}

#[tokio::test]
async fn the_sign_in_page_explains_why_single_sign_on_ended() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let client = browser();
    let page = |query: &'static str, lang: &'static str| {
        client
            .get(app.url(&format!("/sign-in?notice={query}")))
            .header("accept-language", lang)
            .send()
    };
    let pending = page("account_pending", "en").await.unwrap().text().await.unwrap();
    assert!(
        pending.contains("role=\"alert\"") && pending.contains("awaits an administrator"),
        "{pending}"
    );
    let failed = page("sso_state_invalid", "fr")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(failed.contains("La connexion unique n’a pas abouti"), "{failed}");
    let unknown = page("<script>", "en").await.unwrap().text().await.unwrap();
    assert!(!unknown.contains("role=\"alert\"") && !unknown.contains("<script>"));
    // A browser coming back from a provider with a bad answer lands here.
    let callback = client
        .get(app.url("/auth/oidc/callback?state=forged&code=x"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 303);
    assert_eq!(
        callback.headers()["location"],
        "/sign-in?notice=sso_state_invalid"
    );
    app.shutdown().await;
}

/// Signs `email` in through the form (rules accepted); returns the session
/// cookie's value.
async fn sign_in(app: &TestApp, _client: &reqwest::Client, email: &str) -> String {
    let session = civitas_test_support::browser::sign_in(app, email, PASSWORD).await;
    session.cookie.trim_start_matches("civitas_session=").to_owned()
}

#[tokio::test]
async fn api_keys_are_created_once_shown_and_revoked_from_settings() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    person(&app).await;
    let client = browser();
    let session = format!(
        "civitas_session={}",
        sign_in(&app, &client, "agent@web.example.gov").await
    );
    let get = || client.get(app.url("/settings")).header("cookie", &session).send();
    let settings = get().await.unwrap();
    assert_eq!(settings.status(), 200);
    let html = settings.text().await.unwrap();
    let csrf = form_token(&html);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        client
            .post(app.url(&path))
            .header("cookie", &session)
            .form(&form)
            .send()
    };
    let forged = post(
        "/settings/keys".to_owned(),
        vec![
            ("csrf_token", "guess".to_owned()),
            ("name", "x".to_owned()),
            ("expiry_days", "30".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    let unnamed = post(
        "/settings/keys".to_owned(),
        vec![
            ("csrf_token", csrf.clone()),
            ("name", " ".to_owned()),
            ("expiry_days", "30".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(unnamed.status(), 422);
    let html = unnamed.text().await.unwrap();
    assert!(
        html.contains("aria-invalid=\"true\"") && html.contains("Give the key a name"),
        "{html}"
    );
    let created = post(
        "/settings/keys".to_owned(),
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "notebook".to_owned()),
            ("expiry_days", "90".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let html = created.text().await.unwrap();
    let start = html.find("civ_").unwrap();
    let secret: String = html[start..].chars().take_while(|c| *c != '<').collect();
    assert_eq!(secret.len(), 47, "{secret}");
    // The key works, and the page never shows its secret again.
    assert_eq!(app.call(Method::GET, "/v1/me", &secret, None).await.status(), 200);
    let again = get().await.unwrap().text().await.unwrap();
    assert!(again.contains("notebook") && !again.contains(&secret));
    let keys = app
        .store
        .list_api_keys(&me_agency(&app, &secret).await, None)
        .await
        .unwrap();
    let key_id = keys.iter().find(|key| key.name == "notebook").unwrap().id.clone();
    let revoked = post(
        format!("/settings/keys/{key_id}/revoke"),
        vec![("csrf_token", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), 303);
    assert_eq!(app.call(Method::GET, "/v1/me", &secret, None).await.status(), 401);
    let elsewhere = post(
        "/settings/keys/key_nope/revoke".to_owned(),
        vec![("csrf_token", csrf)],
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.status(), 404);
    assert_eq!(
        client.get(app.url("/settings")).send().await.unwrap().status(),
        303,
        "needs a session"
    );
    app.shutdown().await;
}

async fn me_agency(app: &TestApp, key: &str) -> String {
    let me: serde_json::Value = app
        .call(Method::GET, "/v1/me", key, None)
        .await
        .json()
        .await
        .unwrap();
    me["agency"]["id"].as_str().unwrap().to_owned()
}
