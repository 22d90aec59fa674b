//! Identities through the real server: keys, model access, limits and
//! budgets, sessions, second factors, account states.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use civitas_test_support::{spawn_app_with, AppOptions, TestApp, TEST_KEY};
use reqwest::Method;
use serde_json::{json, Value};

fn no_model() -> AppOptions {
    AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    }
}

async fn error_code(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(
        body["error"]["request_id"].as_str(),
        request_id.as_deref(),
        "{body}"
    );
    body["error"].clone()
}

#[tokio::test]
async fn keys_are_shown_once_scoped_and_revoked_at_the_next_request() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let agency = app.new_agency("keys").await;
    let person = app
        .new_person(&agency, "owner@keys.example.gov", &["member"], &[], None)
        .await;
    let created: Value = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "notebook"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("civ_") && secret.len() == 47, "{created}");
    let key_id = created["key"]["id"].as_str().unwrap().to_owned();
    // Lists never show the secret again.
    let listed = app
        .call(Method::GET, "/api/keys", &secret, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(&key_id) && !listed.contains(&secret));
    // Only the hash is stored.
    let stored = app
        .store
        .find_api_key(&civitas_identity::secret::hash(&secret))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().id, key_id);
    let me: Value = app
        .call(Method::GET, "/v1/me", &secret, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"]["key_id"], key_id.as_str());
    assert_eq!(me["email"], "owner@keys.example.gov");
    // Last use is recorded (off the request path).
    let mut used = None;
    for _ in 0..50 {
        used = app
            .store
            .get_api_key(&agency, &key_id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(used.is_some(), "last_used_at was not recorded");
    let revoked = app
        .call(Method::DELETE, &format!("/api/keys/{key_id}"), &person.key, None)
        .await;
    assert_eq!(revoked.status(), 200);
    let refused = app.call(Method::GET, "/v1/me", &secret, None).await;
    assert_eq!(error_code(refused, 401).await["code"], "api_key_revoked");

    // Expired, short-lived and address-bound keys.
    let past = json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"});
    let refused = app
        .call(Method::POST, "/api/keys", &person.key, Some(&past))
        .await;
    assert_eq!(error_code(refused, 400).await["param"], "expires_at");
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let short: Value = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "ci", "kind": "short_lived", "expires_at": soon})),
        )
        .await
        .json()
        .await
        .unwrap();
    let short_secret = short["secret"].as_str().unwrap();
    let minted = app
        .call(
            Method::POST,
            "/api/keys",
            short_secret,
            Some(&json!({"name": "escalate"})),
        )
        .await;
    assert_eq!(error_code(minted, 403).await["code"], "permission_denied");
    let elsewhere: Value = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "office", "ip_ranges": ["10.0.0.0/8"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let refused = app
        .call(Method::GET, "/v1/me", elsewhere["secret"].as_str().unwrap(), None)
        .await;
    assert_eq!(error_code(refused, 403).await["code"], "address_not_allowed");
    let here: Value = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "laptop", "ip_ranges": ["127.0.0.0/8", "::1"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let ok = app
        .call(Method::GET, "/v1/me", here["secret"].as_str().unwrap(), None)
        .await;
    assert_eq!(ok.status(), 200);
    let bad_range = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "x", "ip_ranges": ["10.0.0.0/99"]})),
        )
        .await;
    assert_eq!(error_code(bad_range, 400).await["param"], "ip_ranges");
    let unknown_field = app
        .call(
            Method::POST,
            "/api/keys",
            &person.key,
            Some(&json!({"name": "x", "scopes": ["all"]})),
        )
        .await;
    assert_eq!(
        error_code(unknown_field, 400).await["code"],
        "invalid_request_body"
    );
    // The bootstrap key is an ordinary platform-admin key.
    let me: Value = app
        .call(Method::GET, "/v1/me", TEST_KEY, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"][0]["role"], "platform-admin");
    assert_eq!(me["kind"], "service");
    app.shutdown().await;
}

#[tokio::test]
async fn groups_decide_which_models_are_visible_and_usable() {
    let Some(app) = spawn_app_with(AppOptions::default()).await else {
        return;
    };
    let model = app.model.clone();
    let agency = app.new_agency("models").await;
    let closed = app.new_group(&agency, "closed", &[]).await;
    let open = app.new_group(&agency, "open", &[&model]).await;
    let outsider = app
        .new_person(&agency, "out@models.example.gov", &["member"], &[&closed], None)
        .await;
    let insider = app
        .new_person(&agency, "in@models.example.gov", &["member"], &[&open], None)
        .await;
    let listed: Value = app
        .call(Method::GET, "/v1/models", &outsider.key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "{listed}");
    let hidden = app
        .call(Method::GET, &format!("/v1/models/{model}"), &outsider.key, None)
        .await;
    assert_eq!(error_code(hidden, 404).await["code"], "model_not_found");
    let chat = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2});
    let refused = app
        .call(Method::POST, "/v1/chat/completions", &outsider.key, Some(&chat))
        .await;
    let error = error_code(refused, 403).await;
    assert_eq!(error["code"], "model_not_allowed");
    assert_eq!(error["param"], "model");
    let listed: Value = app
        .call(Method::GET, "/v1/models", &insider.key, None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![model.as_str()]);
    let answered = app
        .call(Method::POST, "/v1/chat/completions", &insider.key, Some(&chat))
        .await;
    assert_eq!(answered.status(), 200);
    // A key restricted to other models narrows what its owner may use.
    let narrow: Value = app
        .call(
            Method::POST,
            "/api/keys",
            &insider.key,
            Some(&json!({"name": "n", "models": ["*"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrow["error"]["code"], "model_not_allowed", "{narrow}");
    // Model access is validated against what is served.
    let unknown = app
        .call(
            Method::PUT,
            &format!("/api/admin/agencies/{agency}/groups/{open}/models"),
            TEST_KEY,
            Some(&json!({"models": ["gpt-9"]})),
        )
        .await;
    assert_eq!(error_code(unknown, 422).await["code"], "unresolved_reference");
    // Removing the model takes effect at once.
    app.admin(
        Method::PUT,
        &format!("/api/admin/agencies/{agency}/groups/{open}/models"),
        Some(&json!({"models": []})),
    )
    .await;
    let refused = app
        .call(Method::POST, "/v1/chat/completions", &insider.key, Some(&chat))
        .await;
    assert_eq!(refused.status(), 403);
    app.shutdown().await;
}

/// Waits until a new minute has at least 15 seconds left, so that a test
/// of per-minute limits is not split across two windows.
async fn away_from_minute_end() {
    use chrono::Timelike;
    let second = chrono::Utc::now().second();
    if second >= 45 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

async fn concurrent_requests_respect_the_limit(postgres: bool) {
    let Some(app) = spawn_app_with(AppOptions {
        postgres,
        local_model: true,
        queue_depth: 64,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    if postgres && std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        return;
    }
    let agency = app.new_agency("limits").await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    let person = app
        .new_person(&agency, "busy@limits.example.gov", &["member"], &[&group], None)
        .await;
    app.admin(
        Method::PUT,
        &format!("/api/admin/agencies/{agency}/limits"),
        Some(&json!({"scope": format!("key:{}", person.key_id), "requests_per_minute": 10})),
    )
    .await;
    away_from_minute_end().await;
    let body = json!({"model": app.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1});
    let requests = (0..50).map(|_| app.call(Method::POST, "/v1/chat/completions", &person.key, Some(&body)));
    let responses = futures::future::join_all(requests).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40, "{statuses:?}");
    let refused = responses.into_iter().find(|r| r.status() == 429).unwrap();
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        error_code(refused, 429).await["code"],
        "requests_per_minute_exceeded"
    );
    // Limits never lock anyone out of the administration API.
    app.admin(
        Method::PUT,
        &format!("/api/admin/agencies/{agency}/limits"),
        Some(&json!({"scope": format!("agency:{agency}"), "requests_per_minute": 0})),
    )
    .await;
    let me: Value = app
        .call(Method::GET, "/v1/me", &person.key, None)
        .await
        .json()
        .await
        .unwrap();
    let key_limit = me["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limits"]["scope"] == format!("key:{}", person.key_id).as_str())
        .cloned()
        .unwrap();
    assert_eq!(key_limit["remaining"]["requests_this_minute"], 0, "{me}");
    app.shutdown().await;
}

#[tokio::test]
async fn fifty_concurrent_requests_against_ten_remaining_let_exactly_ten_through_sqlite() {
    concurrent_requests_respect_the_limit(false).await;
}

#[tokio::test]
async fn fifty_concurrent_requests_against_ten_remaining_let_exactly_ten_through_postgres() {
    if std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset; PostgreSQL limit test skipped");
        return;
    }
    concurrent_requests_respect_the_limit(true).await;
}

/// Polls `/v1/me` until `check` holds on the limit of `scope` (charging
/// happens after the answer, off the request path).
async fn wait_for_limit(app: &TestApp, key: &str, scope: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let me: Value = app
            .call(Method::GET, "/v1/me", key, None)
            .await
            .json()
            .await
            .unwrap();
        if let Some(limit) = me["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["limits"]["scope"] == scope)
        {
            if check(limit) {
                return limit.clone();
            }
            last = limit.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("limit of {scope} never matched: {last}");
}

#[tokio::test]
async fn token_and_cost_budgets_refuse_once_spent_and_usage_adds_up() {
    let Some(app) = spawn_app_with(AppOptions {
        tweak: std::sync::Arc::new(|config| {
            config.prices = vec![civitas_config::PriceConfig {
                model: civitas_test_support::TINY_MODEL.to_owned(),
                input_per_million: 2.0,
                output_per_million: 4.0,
            }];
        }),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("budgets").await;
    let group = app.new_group(&agency, "staff", &[&app.model]).await;
    let person = app
        .new_person(
            &agency,
            "spender@budgets.example.gov",
            &["member"],
            &[&group],
            None,
        )
        .await;
    let scope = format!("person:{}", person.id);
    let limits_path = format!("/api/admin/agencies/{agency}/limits");
    app.admin(
        Method::PUT,
        &limits_path,
        Some(&json!({"scope": scope, "tokens_per_day": 5})),
    )
    .await;
    let body = json!({"model": app.model, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 3});
    let first = app
        .call(Method::POST, "/v1/chat/completions", &person.key, Some(&body))
        .await;
    assert_eq!(first.status(), 200);
    wait_for_limit(&app, &person.key, &scope, |limit| {
        limit["remaining"]["tokens_today"] == 0
    })
    .await;
    let refused = app
        .call(Method::POST, "/v1/chat/completions", &person.key, Some(&body))
        .await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(error_code(refused, 429).await["code"], "tokens_per_day_exceeded");

    // A monthly cost budget: the priced request above already spent more
    // than one millionth.
    app.admin(
        Method::PUT,
        &limits_path,
        Some(&json!({"scope": scope, "cost_per_month_micros": 1})),
    )
    .await;
    wait_for_limit(&app, &person.key, &scope, |limit| {
        limit["remaining"]["cost_this_month_micros"] == 0
    })
    .await;
    let refused = app
        .call(Method::POST, "/v1/chat/completions", &person.key, Some(&body))
        .await;
    assert_eq!(error_code(refused, 402).await["code"], "budget_exceeded");
    // Removing the limits lifts them.
    app.admin(Method::PUT, &limits_path, Some(&json!({"scope": scope})))
        .await;
    let listed = app.admin(Method::GET, &limits_path, None).await;
    assert_eq!(listed["data"], json!([]));

    // Usage: the person's own, and the agency's for a finance manager.
    let usage: Value = app
        .call(Method::GET, "/v1/usage", &person.key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["owner_type"], "person");
    assert_eq!(usage["total"]["requests"], 1, "{usage}");
    assert!(usage["total"]["cost_micros"].as_i64().unwrap() > 0, "{usage}");
    let finance = app
        .new_person(
            &agency,
            "finance@budgets.example.gov",
            &["finance-manager"],
            &[],
            None,
        )
        .await;
    let agency_usage: Value = app
        .call(
            Method::GET,
            &format!("/v1/usage?agency_id={agency}"),
            &finance.key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(agency_usage["total"]["requests"], 1, "{agency_usage}");
    assert_eq!(agency_usage["total"], usage["total"]);
    let denied = app
        .call(
            Method::GET,
            &format!("/v1/usage?agency_id={agency}"),
            &person.key,
            None,
        )
        .await;
    assert_eq!(error_code(denied, 403).await["code"], "permission_denied");
    let bad_date = app
        .call(Method::GET, "/v1/usage?since=yesterday", &person.key, None)
        .await;
    assert_eq!(error_code(bad_date, 400).await["param"], "since");
    let bad_scope = app
        .call(
            Method::PUT,
            &limits_path,
            TEST_KEY,
            Some(&json!({"scope": "person:someone-else", "tokens_per_day": 1})),
        )
        .await;
    assert_eq!(error_code(bad_scope, 422).await["code"], "unresolved_reference");
    app.shutdown().await;
}

fn session_cookie(response: &reqwest::Response) -> String {
    let header = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    header.split(';').next().unwrap().to_owned()
}

async fn login(app: &TestApp, email: &str, password: &str, extra: Option<(&str, &str)>) -> reqwest::Response {
    let mut body = json!({"email": email, "password": password});
    if let Some((name, value)) = extra {
        body[name] = json!(value);
    }
    app.client
        .post(app.url("/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).header("cookie", cookie);
    if let Some(token) = csrf {
        request = request.header("x-csrf-token", token);
    }
    request
        .json(&json!({"name": "from-session"}))
        .send()
        .await
        .unwrap()
}

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";

#[tokio::test]
async fn sessions_sign_in_rotate_need_csrf_and_end() {
    let Some(app) = spawn_app_with(AppOptions {
        tweak: std::sync::Arc::new(|config| config.auth.max_failed_logins = 3),
        ..no_model()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("sessions").await;
    let email = "agent@sessions.example.gov";
    let person = app
        .new_person(&agency, email, &["member"], &[], Some(PASSWORD))
        .await;
    // Unknown address and wrong password get the same answer.
    let unknown = error_code(
        login(&app, "nobody@sessions.example.gov", PASSWORD, None).await,
        401,
    )
    .await;
    let wrong = error_code(login(&app, email, "not the password", None).await, 401).await;
    assert_eq!(unknown["code"], "invalid_credentials");
    assert_eq!(unknown["message"], wrong["message"]);
    // A planted cookie is replaced at sign-in and stops working.
    let planted_response = login(&app, email, PASSWORD, None).await;
    let planted = session_cookie(&planted_response);
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("cookie", &planted)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response);
    assert_ne!(cookie, planted);
    let signed_in: Value = response.json().await.unwrap();
    let csrf = signed_in["csrf_token"].as_str().unwrap().to_owned();
    let old = with_cookie(&app, Method::GET, "/v1/me", &planted, None).await;
    assert_eq!(error_code(old, 401).await["code"], "session_expired");
    let me: Value = with_cookie(&app, Method::GET, "/v1/me", &cookie, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"]["type"], "session");
    assert_eq!(me["id"], person.id.as_str());
    // State-changing requests need the CSRF token.
    let forged = with_cookie(&app, Method::POST, "/api/keys", &cookie, None).await;
    assert_eq!(error_code(forged, 403).await["code"], "csrf_token_invalid");
    let forged = with_cookie(&app, Method::POST, "/api/keys", &cookie, Some("guess")).await;
    assert_eq!(forged.status(), 403);
    let made = with_cookie(&app, Method::POST, "/api/keys", &cookie, Some(&csrf)).await;
    assert_eq!(made.status(), 201);
    // Idle too long: the session ends.
    let idle_response = login(&app, email, PASSWORD, None).await;
    let idle = session_cookie(&idle_response);
    let idle_hash = civitas_identity::secret::hash(idle.split('=').nth(1).unwrap());
    app.store
        .touch_session(&idle_hash, chrono::Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    let expired = with_cookie(&app, Method::GET, "/v1/me", &idle, None).await;
    assert_eq!(error_code(expired, 401).await["code"], "session_expired");
    // Sign-out ends this session; sign-out everywhere ends the others.
    let other_response = login(&app, email, PASSWORD, None).await;
    let other = session_cookie(&other_response);
    let out = with_cookie(&app, Method::POST, "/auth/logout", &cookie, Some(&csrf)).await;
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        with_cookie(&app, Method::GET, "/v1/me", &cookie, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        with_cookie(&app, Method::GET, "/v1/me", &other, None)
            .await
            .status(),
        200
    );
    let everywhere = app
        .call(Method::POST, "/auth/logout-all", &person.key, None)
        .await;
    let ended: Value = everywhere.json().await.unwrap();
    assert!(ended["sessions_ended"].as_u64().unwrap() >= 1, "{ended}");
    assert_eq!(
        with_cookie(&app, Method::GET, "/v1/me", &other, None)
            .await
            .status(),
        401
    );
    // Three failures in a row lock the account, even for the right password.
    for _ in 0..3 {
        login(&app, email, "still not the password", None).await;
    }
    let locked = login(&app, email, PASSWORD, None).await;
    assert!(locked.headers().get("retry-after").is_some());
    assert_eq!(error_code(locked, 429).await["code"], "account_locked");
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_factor_is_required_once_confirmed() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let agency = app.new_agency("totp").await;
    let email = "careful@totp.example.gov";
    let person = app
        .new_person(&agency, email, &["member"], &[], Some(PASSWORD))
        .await;
    let setup: Value = app
        .call(Method::POST, "/auth/totp/setup", &person.key, None)
        .await
        .json()
        .await
        .unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    // Not on until confirmed: sign-in still works with the password alone.
    assert_eq!(login(&app, email, PASSWORD, None).await.status(), 200);
    let wrong = app
        .call(
            Method::POST,
            "/auth/totp/confirm",
            &person.key,
            Some(&json!({"code": "12345x"})),
        )
        .await;
    assert_eq!(error_code(wrong, 400).await["param"], "code");
    let now = chrono::Utc::now().timestamp();
    let code = civitas_identity::totp::code_at(&secret, now).unwrap();
    let confirmed = app
        .call(
            Method::POST,
            "/auth/totp/confirm",
            &person.key,
            Some(&json!({"code": code})),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let again = app
        .call(Method::POST, "/auth/totp/setup", &person.key, None)
        .await;
    assert_eq!(error_code(again, 409).await["code"], "conflict");
    let missing = error_code(login(&app, email, PASSWORD, None).await, 401).await;
    assert_eq!(missing["code"], "second_factor_required");
    let bad_code = if code == "000000" { "111111" } else { "000000" };
    let bad = error_code(
        login(&app, email, PASSWORD, Some(("totp_code", bad_code))).await,
        401,
    )
    .await;
    assert_eq!(bad["code"], "invalid_credentials");
    let code = civitas_identity::totp::code_at(&secret, chrono::Utc::now().timestamp()).unwrap();
    let good = login(&app, email, PASSWORD, Some(("totp_code", &code))).await;
    assert_eq!(good.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn disabled_and_pending_accounts_are_refused_and_passwords_follow_the_policy() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let agency = app.new_agency("states").await;
    let person = app
        .new_person(
            &agency,
            "leaver@states.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    let path = format!("/api/admin/agencies/{agency}/people/{}", person.id);
    app.admin(Method::PATCH, &path, Some(&json!({"status": "disabled"})))
        .await;
    let refused = app.call(Method::GET, "/v1/me", &person.key, None).await;
    assert_eq!(error_code(refused, 403).await["code"], "account_disabled");
    let refused = login(&app, "leaver@states.example.gov", PASSWORD, None).await;
    assert_eq!(error_code(refused, 403).await["code"], "account_disabled");
    app.admin(Method::PATCH, &path, Some(&json!({"status": "pending"})))
        .await;
    let refused = app.call(Method::GET, "/v1/me", &person.key, None).await;
    assert_eq!(error_code(refused, 403).await["code"], "account_pending");
    app.admin(Method::PATCH, &path, Some(&json!({"status": "active"})))
        .await;
    assert_eq!(
        app.call(Method::GET, "/v1/me", &person.key, None).await.status(),
        200
    );
    let bad_status = app
        .call(Method::PATCH, &path, TEST_KEY, Some(&json!({"status": "gone"})))
        .await;
    assert_eq!(error_code(bad_status, 400).await["param"], "status");

    let people = format!("/api/admin/agencies/{agency}/people");
    let weak = app
        .call(
            Method::POST,
            &people,
            TEST_KEY,
            Some(&json!({"email": "weak@states.example.gov", "display_name": "Weak", "password": "Password2026!"})),
        )
        .await;
    let error = error_code(weak, 422).await;
    assert_eq!(error["code"], "weak_password");
    assert!(!error["message"].as_str().unwrap().contains("Password2026"));
    let duplicate = app
        .call(
            Method::POST,
            &people,
            TEST_KEY,
            Some(&json!({"email": "LEAVER@states.example.gov", "display_name": "Twin"})),
        )
        .await;
    assert_eq!(error_code(duplicate, 409).await["code"], "conflict");
    let bad_role = app
        .call(
            Method::POST,
            &people,
            TEST_KEY,
            Some(&json!({"email": "r@states.example.gov", "display_name": "R", "roles": ["superuser"]})),
        )
        .await;
    assert_eq!(error_code(bad_role, 400).await["param"], "roles");
    // An agency administrator cannot make anyone a platform administrator.
    let admin = app
        .new_person(&agency, "boss@states.example.gov", &["agency-admin"], &[], None)
        .await;
    let escalate = app
        .call(
            Method::PUT,
            &format!("{path}/roles"),
            &admin.key,
            Some(&json!({"roles": ["platform-admin"]})),
        )
        .await;
    assert_eq!(error_code(escalate, 403).await["code"], "permission_denied");
    // Changing the password checks the current one and the policy.
    let change = json!({"current_password": PASSWORD, "new_password": "short"});
    let weak = app
        .call(Method::POST, "/auth/password", &person.key, Some(&change))
        .await;
    assert_eq!(error_code(weak, 422).await["param"], "new_password");
    let change = json!({"current_password": PASSWORD, "new_password": "Un-autre-vélo-bleu-42"});
    assert_eq!(
        app.call(Method::POST, "/auth/password", &person.key, Some(&change))
            .await
            .status(),
        200
    );
    assert_eq!(
        login(&app, "leaver@states.example.gov", "Un-autre-vélo-bleu-42", None)
            .await
            .status(),
        200
    );
    app.shutdown().await;
}

#[tokio::test]
async fn agencies_nest_and_roles_apply_below() {
    let Some(app) = spawn_app_with(no_model()).await else {
        return;
    };
    let ministry = app.new_agency("ministry").await;
    let directorate: Value = app
        .admin(
            Method::POST,
            "/api/admin/agencies",
            Some(&json!({"slug": "directorate", "name": "Directorate", "parent_id": ministry})),
        )
        .await;
    let directorate = directorate["id"].as_str().unwrap().to_owned();
    let minister = app
        .new_person(
            &ministry,
            "admin@ministry.example.gov",
            &["agency-admin"],
            &[],
            None,
        )
        .await;
    let local = app
        .new_person(
            &directorate,
            "admin@directorate.example.gov",
            &["agency-admin"],
            &[],
            None,
        )
        .await;
    let below = app
        .call(
            Method::GET,
            &format!("/api/admin/agencies/{directorate}/people"),
            &minister.key,
            None,
        )
        .await;
    assert_eq!(below.status(), 200);
    let above = app
        .call(
            Method::GET,
            &format!("/api/admin/agencies/{ministry}/people"),
            &local.key,
            None,
        )
        .await;
    assert_eq!(error_code(above, 404).await["code"], "not_found");
    let visible: Value = app
        .call(Method::GET, "/api/admin/agencies", &minister.key, None)
        .await
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = visible["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec!["directorate", "ministry"]);
    let taken = app
        .call(
            Method::POST,
            "/api/admin/agencies",
            TEST_KEY,
            Some(&json!({"slug": "ministry", "name": "Again"})),
        )
        .await;
    assert_eq!(error_code(taken, 409).await["code"], "conflict");
    let orphan = app
        .call(
            Method::POST,
            "/api/admin/agencies",
            TEST_KEY,
            Some(&json!({"slug": "orphan", "name": "Orphan", "parent_id": "nope"})),
        )
        .await;
    assert_eq!(error_code(orphan, 422).await["param"], "parent_id");
    let bad_slug = app
        .call(
            Method::POST,
            "/api/admin/agencies",
            TEST_KEY,
            Some(&json!({"slug": "Bad Slug", "name": "B"})),
        )
        .await;
    assert_eq!(error_code(bad_slug, 400).await["param"], "slug");
    let cross = app
        .call(
            Method::PUT,
            &format!("/api/admin/agencies/{directorate}/people/{}/groups", local.id),
            &minister.key,
            Some(&json!({"group_ids": ["not-a-group"]})),
        )
        .await;
    assert_eq!(error_code(cross, 422).await["code"], "unresolved_reference");
    app.shutdown().await;
}

/// Two replicas on one PostgreSQL database: a session opened on one works
/// on the other, and a key revoked on one is refused by it at once and by
/// the other within its key cache's seconds.
#[tokio::test]
async fn revocation_and_sessions_hold_across_replicas() {
    if std::env::var("CIVITAS_TEST_DATABASE_URL").is_err() {
        eprintln!("notice: CIVITAS_TEST_DATABASE_URL unset; replica test skipped");
        return;
    }
    let Some(first) = spawn_app_with(AppOptions {
        postgres: true,
        ..no_model()
    })
    .await
    else {
        return;
    };
    let Some(second) = spawn_app_with(AppOptions {
        postgres: true,
        database_url: first.database_url.clone(),
        ..no_model()
    })
    .await
    else {
        return;
    };
    let agency = first.new_agency("replicas").await;
    let email = "roaming@replicas.example.gov";
    let person = first
        .new_person(&agency, email, &["member"], &[], Some(PASSWORD))
        .await;
    assert_eq!(
        second
            .call(Method::GET, "/v1/me", &person.key, None)
            .await
            .status(),
        200
    );
    let signed_in = login(&first, email, PASSWORD, None).await;
    let cookie = session_cookie(&signed_in);
    let me = with_cookie(&second, Method::GET, "/v1/me", &cookie, None).await;
    assert_eq!(me.status(), 200);
    first
        .call(Method::POST, "/auth/logout-all", &person.key, None)
        .await;
    assert_eq!(
        with_cookie(&second, Method::GET, "/v1/me", &cookie, None)
            .await
            .status(),
        401
    );
    first
        .call(
            Method::DELETE,
            &format!("/api/keys/{}", person.key_id),
            &person.key,
            None,
        )
        .await;
    // The replica that revoked it refuses it at once; the other believes
    // what it found for at most `auth.key_cache_seconds` (2 s) more.
    let refused = first.call(Method::GET, "/v1/me", &person.key, None).await;
    assert_eq!(error_code(refused, 401).await["code"], "api_key_revoked");
    let revoked_at = std::time::Instant::now();
    let refused = loop {
        let response = second.call(Method::GET, "/v1/me", &person.key, None).await;
        if response.status() != 200 || revoked_at.elapsed() > Duration::from_secs(4) {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(error_code(refused, 401).await["code"], "api_key_revoked");
    second.shutdown().await;
    first.shutdown().await;
}

/// Behind a trusted reverse proxy the client's address comes from
/// `X-Forwarded-For`; from anyone else that header is ignored.
#[tokio::test]
async fn key_address_ranges_believe_only_trusted_proxies() {
    for trusted in [true, false] {
        let Some(app) = spawn_app_with(AppOptions {
            tweak: std::sync::Arc::new(move |config| {
                if trusted {
                    config.server.trusted_proxies = vec!["127.0.0.1".to_owned()];
                }
            }),
            ..no_model()
        })
        .await
        else {
            return;
        };
        let agency = app.new_agency("proxied").await;
        let person = app
            .new_person(&agency, "office@proxied.example.gov", &["member"], &[], None)
            .await;
        let created: Value = app
            .call(
                Method::POST,
                "/api/keys",
                &person.key,
                Some(&json!({"name": "office", "ip_ranges": ["10.1.0.0/16"]})),
            )
            .await
            .json()
            .await
            .unwrap();
        let key = created["secret"].as_str().unwrap().to_owned();
        let from = |forwarded: Option<&'static str>| {
            let mut request = app.client.get(app.url("/v1/me")).bearer_auth(&key);
            if let Some(value) = forwarded {
                request = request.header("x-forwarded-for", value);
            }
            request.send()
        };
        let office = from(Some("10.1.2.3")).await.unwrap().status().as_u16();
        assert_eq!(
            office,
            if trusted { 200 } else { 403 },
            "trusted proxy: {trusted}"
        );
        // The right-most untrusted hop is the client; what it claims to its
        // left proves nothing.
        let spoofed = from(Some("10.1.2.3, 192.0.2.9")).await.unwrap();
        assert_eq!(error_code(spoofed, 403).await["code"], "address_not_allowed");
        assert_eq!(from(None).await.unwrap().status(), 403);
        assert_eq!(from(Some("not-an-address")).await.unwrap().status(), 403);
        app.shutdown().await;
    }
}
