//! The authorization matrix: every route × every role × own-agency and
//! other-agency resources, through the real server.
//!
//! The table below is the specification. The test fails when a route is
//! served (it is in the generated OpenAPI document) without a row here, so
//! a new route cannot ship without an authorization rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use civitas_identity::policy;
use civitas_identity::Role;
use civitas_test_support::{spawn_app_with, AppOptions, TestApp, TestPerson};
use reqwest::Method;
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// No credential needed.
    Public,
    /// Any signed-in caller; acts on their own records only.
    Anyone,
    /// A platform administrator; others get 403.
    Platform,
    /// The agency's SCIM token only: every personal key gets 401 (the
    /// SCIM token itself is tested in `scim.rs`).
    Scim,
    /// One of these roles in the agency of the path (or a platform
    /// administrator); 403 in one's own agency without it, 404 elsewhere.
    Agency(&'static [Role]),
}

/// The placeholders a path or body may name.
struct Targets<'a> {
    agency_id: &'a str,
    group_id: &'a str,
    person_id: &'a str,
    key_id: &'a str,
    /// The caller's own spare key and conversation.
    own_key_id: &'a str,
    conversation_id: &'a str,
    unique: String,
}

struct Row {
    method: Method,
    path: &'static str,
    rule: Rule,
    /// Statuses that mean "authorized" (the handler ran).
    ok: &'static [u16],
    body: fn(&Targets) -> Option<Value>,
}

fn none(_: &Targets) -> Option<Value> {
    None
}

fn table() -> Vec<Row> {
    use Rule::*;
    let row = |method: Method, path, rule, ok, body| Row {
        method,
        path,
        rule,
        ok,
        body,
    };
    vec![
        row(Method::GET, "/healthz", Public, &[200], none),
        row(Method::GET, "/readyz", Public, &[200], none),
        // No checkpoint yet in a fresh installation: 404 for everyone alike.
        row(Method::GET, "/v1/audit/checkpoints/latest", Public, &[404], none),
        row(Method::POST, "/auth/login", Public, &[401], |_| {
            Some(json!({"email": "nobody@example.gov", "password": "wrong password here"}))
        }),
        row(Method::GET, "/v1/models", Anyone, &[200], none),
        row(Method::GET, "/v1/models/{id}", Anyone, &[404], none),
        row(Method::POST, "/v1/chat/completions", Anyone, &[404], |_| {
            Some(json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}))
        }),
        row(Method::POST, "/v1/embeddings", Anyone, &[404], |_| {
            Some(json!({"model": "no-such-model", "input": "hi"}))
        }),
        row(Method::GET, "/v1/conversations", Anyone, &[200], none),
        row(
            Method::GET,
            "/v1/conversations/{id}/messages",
            Anyone,
            &[200],
            none,
        ),
        row(Method::GET, "/v1/messages/{id}/provenance", Anyone, &[404], none),
        row(Method::GET, "/v1/me", Anyone, &[200], none),
        // Knowledge: each caller sees the collections they may read; an
        // id they may not read is "not found", like a missing one.
        row(Method::GET, "/v1/collections", Anyone, &[200], none),
        row(Method::POST, "/v1/collections", Anyone, &[201], |targets| {
            Some(json!({"name": format!("matrix {}", targets.unique)}))
        }),
        row(Method::GET, "/v1/collections/{collection}", Anyone, &[404], none),
        row(
            Method::PATCH,
            "/v1/collections/{collection}",
            Anyone,
            &[404],
            |_| Some(json!({"name": "renamed"})),
        ),
        row(
            Method::DELETE,
            "/v1/collections/{collection}",
            Anyone,
            &[404],
            none,
        ),
        row(Method::GET, "/v1/documents", Anyone, &[200], none),
        row(Method::POST, "/v1/documents", Anyone, &[400], none),
        row(Method::POST, "/v1/files", Anyone, &[400], none),
        row(Method::GET, "/v1/documents/{document}", Anyone, &[404], none),
        row(Method::DELETE, "/v1/documents/{document}", Anyone, &[404], none),
        row(Method::GET, "/v1/chunks/{document}", Anyone, &[404], none),
        row(Method::GET, "/v1/chunks/{document}/{chunk}", Anyone, &[404], none),
        row(Method::POST, "/v1/search", Anyone, &[200], |_| {
            Some(json!({"prompt": "annual leave", "method": "lexical"}))
        }),
        row(Method::GET, "/v1/usage", Anyone, &[200], none),
        row(Method::GET, "/metrics", Platform, &[200], none),
        row(Method::GET, "/api/keys", Anyone, &[200], none),
        row(Method::POST, "/api/keys", Anyone, &[201], |_| {
            Some(json!({"name": "matrix"}))
        }),
        row(Method::DELETE, "/api/keys/{key_id}", Anyone, &[200], none),
        row(Method::POST, "/auth/logout", Anyone, &[400], none),
        row(Method::POST, "/auth/logout-all", Anyone, &[200], none),
        row(Method::POST, "/auth/password", Anyone, &[401], |_| {
            Some(json!({"current_password": "not the password", "new_password": "Vélo-rouge-sous-la-pluie"}))
        }),
        row(Method::POST, "/auth/totp/setup", Anyone, &[200], none),
        row(Method::POST, "/auth/totp/confirm", Anyone, &[400, 409], |_| {
            Some(json!({"code": "000000"}))
        }),
        row(Method::GET, "/api/admin/agencies", Anyone, &[200], none),
        row(Method::POST, "/api/admin/agencies", Platform, &[201], |t| {
            Some(json!({"slug": format!("m-{}", t.unique), "name": "Matrix"}))
        }),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}",
            Agency(policy::AGENCY_READERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/groups",
            Agency(policy::AGENCY_READERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/groups",
            Agency(policy::PEOPLE_MANAGERS),
            &[201],
            |t| Some(json!({"name": format!("g-{}", t.unique)})),
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/groups/{group_id}/models",
            Agency(policy::MODEL_MANAGERS),
            &[200],
            |_| Some(json!({"models": []})),
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/people",
            Agency(policy::AGENCY_READERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/people",
            Agency(policy::PEOPLE_MANAGERS),
            &[201],
            |t| Some(json!({"email": format!("{}@matrix.example.gov", t.unique), "display_name": "Matrix"})),
        ),
        row(
            Method::PATCH,
            "/api/admin/agencies/{agency_id}/people/{person_id}",
            Agency(policy::PEOPLE_MANAGERS),
            &[200],
            |_| Some(json!({"display_name": "Renamed"})),
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/people/{person_id}/groups",
            Agency(policy::PEOPLE_MANAGERS),
            &[200],
            |t| Some(json!({"group_ids": [t.group_id]})),
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/people/{person_id}/roles",
            Agency(policy::PEOPLE_MANAGERS),
            &[200],
            |_| Some(json!({"roles": ["member"]})),
        ),
        row(
            Method::DELETE,
            "/api/admin/agencies/{agency_id}/people/{person_id}/sessions",
            Agency(policy::PEOPLE_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/limits",
            Agency(policy::USAGE_READERS),
            &[200],
            none,
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/limits",
            Agency(policy::LIMIT_MANAGERS),
            &[200],
            |t| Some(json!({"scope": format!("group:{}", t.group_id), "requests_per_minute": 100000})),
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/keys",
            Agency(policy::KEY_READERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/keys",
            Agency(policy::KEY_MANAGERS),
            &[201],
            |t| Some(json!({"person_id": t.person_id, "name": "matrix"})),
        ),
        row(
            Method::DELETE,
            "/api/admin/agencies/{agency_id}/keys/{key_id}",
            Agency(policy::KEY_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/usage",
            Agency(policy::USAGE_READERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/audit/records",
            Agency(policy::AUDIT_READERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/audit/export",
            Agency(policy::AUDIT_READERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/audit/status",
            Agency(policy::AUDIT_READERS),
            &[200],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/break-glass",
            Agency(policy::BREAK_GLASS_APPROVERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/break-glass",
            Agency(policy::BREAK_GLASS_REQUESTERS),
            &[201],
            |t| {
                Some(json!({
                    "person_id": t.person_id,
                    "justification": "Authorization matrix: a request with a long enough reason.",
                }))
            },
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/break-glass/{request_id}/approve",
            Agency(policy::BREAK_GLASS_APPROVERS),
            &[404],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/break-glass/{request_id}/refuse",
            Agency(policy::BREAK_GLASS_APPROVERS),
            &[404],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/break-glass/{request_id}/conversations",
            Agency(policy::BREAK_GLASS_REQUESTERS),
            &[404],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/break-glass/{request_id}/conversations/{conversation_id}",
            Agency(policy::BREAK_GLASS_REQUESTERS),
            &[404],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/data-keys",
            Agency(policy::RECORDS_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/data-keys/rotate",
            Agency(policy::RECORDS_MANAGERS),
            &[201],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/retention",
            Agency(policy::RECORDS_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/retention",
            Agency(policy::RECORDS_MANAGERS),
            &[200],
            |_| Some(json!({"record_type": "usage", "days": 400})),
        ),
        row(
            Method::DELETE,
            "/api/admin/agencies/{agency_id}/retention/{record_type}",
            Agency(policy::RECORDS_MANAGERS),
            &[204, 404],
            none,
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/legal-holds",
            Agency(policy::LEGAL_HOLD_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/legal-holds",
            Agency(policy::LEGAL_HOLD_MANAGERS),
            &[201],
            |t| {
                Some(json!({
                    "person_id": t.person_id,
                    "matter": "Matrix matter",
                    "reason": "Authorization matrix: a hold with a reason.",
                }))
            },
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/legal-holds/{hold_id}/release",
            Agency(policy::LEGAL_HOLD_MANAGERS),
            &[404],
            none,
        ),
        row(
            Method::PUT,
            "/api/admin/agencies/{agency_id}/people/{person_id}/clearance",
            Agency(policy::RECORDS_MANAGERS),
            &[200],
            |_| Some(json!({"clearance": "cui"})),
        ),
        row(
            Method::GET,
            "/api/admin/agencies/{agency_id}/people/{person_id}/export",
            Agency(policy::RECORDS_MANAGERS),
            &[200],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/people/{person_id}/erasure",
            Agency(policy::RECORDS_MANAGERS),
            &[200, 409],
            |_| Some(json!({"reference": "Matrix erasure request 1"})),
        ),
        row(Method::GET, "/v1/me/break-glass", Anyone, &[200], none),
        row(Method::POST, "/v1/protect/analyze", Anyone, &[200], |_| {
            Some(json!({"text": "SSN 536-22-1234"}))
        }),
        row(Method::POST, "/v1/protect/anonymize", Anyone, &[200], |_| {
            Some(json!({"text": "SSN 536-22-1234"}))
        }),
        // Without `from`: refused as a bad query, after authentication.
        row(
            Method::GET,
            "/v1/audit/checkpoints/consistency",
            Anyone,
            &[400],
            none,
        ),
        row(
            Method::POST,
            "/api/admin/agencies/{agency_id}/scim-token",
            Agency(policy::PEOPLE_MANAGERS),
            &[201],
            none,
        ),
        row(Method::GET, "/scim/v2/Users", Scim, &[], none),
        row(Method::POST, "/scim/v2/Users", Scim, &[], |t| {
            Some(json!({"userName": format!("{}@scim.example.gov", t.unique)}))
        }),
        row(Method::GET, "/scim/v2/Users/{id}", Scim, &[], none),
        row(Method::PUT, "/scim/v2/Users/{id}", Scim, &[], |_| {
            Some(json!({"userName": "x@scim.example.gov"}))
        }),
        row(Method::PATCH, "/scim/v2/Users/{id}", Scim, &[], |_| {
            Some(json!({"Operations": []}))
        }),
        row(Method::DELETE, "/scim/v2/Users/{id}", Scim, &[], none),
        row(Method::GET, "/scim/v2/Groups", Scim, &[], none),
        row(Method::POST, "/scim/v2/Groups", Scim, &[], |t| {
            Some(json!({"displayName": t.unique}))
        }),
        row(Method::GET, "/scim/v2/Groups/{id}", Scim, &[], none),
        row(Method::PUT, "/scim/v2/Groups/{id}", Scim, &[], |_| {
            Some(json!({"displayName": "x"}))
        }),
        row(Method::PATCH, "/scim/v2/Groups/{id}", Scim, &[], |_| {
            Some(json!({"Operations": []}))
        }),
        row(Method::DELETE, "/scim/v2/Groups/{id}", Scim, &[], none),
        row(Method::GET, "/scim/v2/ServiceProviderConfig", Scim, &[], none),
        row(Method::GET, "/auth/providers", Public, &[200], none),
        row(Method::GET, "/auth/oidc/{provider}/start", Public, &[404], none),
        row(Method::GET, "/auth/oidc/callback", Public, &[400], none),
    ]
}

fn fill(path: &str, targets: &Targets) -> String {
    let own_key = path.starts_with("/api/keys/");
    path.replace("{agency_id}", targets.agency_id)
        .replace("{group_id}", targets.group_id)
        .replace("{person_id}", targets.person_id)
        .replace("{provider}", "no-such-provider")
        .replace("{request_id}", "no-such-request")
        .replace("{hold_id}", "no-such-hold")
        .replace("{record_type}", "usage")
        .replace("{conversation_id}", "no-such-conversation")
        .replace("{collection}", "999999999")
        .replace("{document}", "999999999")
        .replace("{chunk}", "999999999")
        .replace(
            "{key_id}",
            if own_key {
                targets.own_key_id
            } else {
                targets.key_id
            },
        )
        .replace(
            "{id}",
            if path.contains("conversations") {
                targets.conversation_id
            } else if path.starts_with("/scim/v2/Users") {
                targets.person_id
            } else if path.starts_with("/scim/v2/Groups") {
                targets.group_id
            } else {
                "no-such-model"
            },
        )
}

#[test]
fn every_served_route_has_a_rule() {
    let document = civitas_server::openapi_document();
    let rows: BTreeSet<(String, String)> = table()
        .iter()
        .map(|row| (row.method.as_str().to_owned(), row.path.to_owned()))
        .collect();
    let mut served = BTreeSet::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            if operation.is_some() {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = served.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "routes without an authorization rule: {missing:?}"
    );
    let stale: Vec<_> = rows.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "rules for routes that are not served: {stale:?}"
    );
    let public: BTreeSet<&str> = table()
        .iter()
        .filter(|row| matches!(row.rule, Rule::Public))
        .map(|row| row.path)
        .collect();
    let allow_list: BTreeSet<&str> = civitas_server::PUBLIC_ROUTES.iter().copied().collect();
    assert_eq!(public, allow_list);
}

struct Side {
    group_id: String,
    target: TestPerson,
}

async fn side(app: &TestApp, agency_id: &str, name: &str) -> Side {
    let group_id = app.new_group(agency_id, &format!("{name}-group"), &[]).await;
    let target = app
        .new_person(
            agency_id,
            &format!("target@{name}.example.gov"),
            &["member"],
            &[],
            None,
        )
        .await;
    Side { group_id, target }
}

fn expected(rule: Rule, role: Option<Role>, own_agency: bool) -> Option<u16> {
    match rule {
        Rule::Public | Rule::Anyone => None,
        Rule::Platform => (role != Some(Role::PlatformAdmin)).then_some(403),
        Rule::Scim => Some(401),
        Rule::Agency(roles) => match role {
            Some(Role::PlatformAdmin) => None,
            Some(role) if roles.contains(&role) && own_agency => None,
            _ if own_agency => Some(403),
            _ => Some(404),
        },
    }
}

#[tokio::test]
async fn the_authorization_matrix_holds() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let own_agency = app.new_agency("matrix-own").await;
    let other_agency = app.new_agency("matrix-other").await;
    let own = side(&app, &own_agency, "own").await;
    let other = side(&app, &other_agency, "other").await;
    let roles: Vec<Option<Role>> = std::iter::once(None)
        .chain(Role::ALL.into_iter().map(Some))
        .collect();
    let mut counter = 0;
    let mut failures = Vec::new();
    for role in roles {
        let name = role.map(Role::as_str).unwrap_or("no-role");
        let caller = app
            .new_person(
                &own_agency,
                &format!("{name}@own.example.gov"),
                &role.map(|r| vec![r.as_str()]).unwrap_or_default(),
                &[],
                None,
            )
            .await;
        // A second key of the caller, to revoke through /api/keys/{key_id}.
        let spare = app
            .admin(
                Method::POST,
                &format!("/api/admin/agencies/{own_agency}/keys"),
                Some(&json!({"person_id": caller.id, "name": "spare"})),
            )
            .await;
        let spare_id = spare["key"]["id"].as_str().unwrap().to_owned();
        let (conversation, _) = app
            .store
            .create_conversation(
                civitas_store::NewConversation {
                    owner: caller.id.clone(),
                    title: None,
                    model: "m".to_owned(),
                    classification: "unclassified".to_owned(),
                },
                vec![],
            )
            .await
            .unwrap();
        for row in table() {
            let sides: Vec<(&Side, &str, bool)> = match row.rule {
                Rule::Agency(_) => vec![
                    (&own, own_agency.as_str(), true),
                    (&other, other_agency.as_str(), false),
                ],
                _ => vec![(&own, own_agency.as_str(), true)],
            };
            for (side, agency_id, is_own) in sides {
                counter += 1;
                let targets = Targets {
                    agency_id,
                    group_id: &side.group_id,
                    person_id: &side.target.id,
                    key_id: &side.target.key_id,
                    own_key_id: &spare_id,
                    conversation_id: &conversation.id,
                    unique: format!("u{counter}"),
                };
                let path = fill(row.path, &targets);
                let body = (row.body)(&targets);
                let response = if matches!(row.rule, Rule::Public) {
                    let mut request = app.client.request(row.method.clone(), app.url(&path));
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    request.send().await.unwrap()
                } else {
                    app.call(row.method.clone(), &path, &caller.key, body.as_ref())
                        .await
                };
                let status = response.status().as_u16();
                let want = expected(row.rule, role, is_own);
                let good = match want {
                    Some(code) => status == code,
                    None => row.ok.contains(&status),
                };
                if !good {
                    let text = response.text().await.unwrap_or_default();
                    failures.push(format!(
                        "{name} {} {path} (own agency: {is_own}): got {status}, want {:?} — {text}",
                        row.method,
                        want.map(|code| vec![code]).unwrap_or_else(|| row.ok.to_vec())
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {counter} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.shutdown().await;
}

/// Another person's records answer exactly like missing ones, and every
/// route refuses a request without credentials.
#[tokio::test]
async fn other_people_records_are_invisible_and_credentials_are_required() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("privacy").await;
    let alice = app
        .new_person(&agency, "alice@privacy.example.gov", &["member"], &[], None)
        .await;
    let bob = app
        .new_person(&agency, "bob@privacy.example.gov", &["member"], &[], None)
        .await;
    let (conversation, _) = app
        .store
        .create_conversation(
            civitas_store::NewConversation {
                owner: alice.id.clone(),
                title: Some("private".to_owned()),
                model: "m".to_owned(),
                classification: "unclassified".to_owned(),
            },
            vec![],
        )
        .await
        .unwrap();
    let path = format!("/v1/conversations/{}/messages", conversation.id);
    assert_eq!(app.call(Method::GET, &path, &alice.key, None).await.status(), 200);
    let hidden = app.call(Method::GET, &path, &bob.key, None).await;
    assert_eq!(hidden.status(), 404);
    let missing = app
        .call(
            Method::GET,
            "/v1/conversations/no-such-id/messages",
            &bob.key,
            None,
        )
        .await;
    let (hidden, missing): (Value, Value) = (hidden.json().await.unwrap(), missing.json().await.unwrap());
    assert_eq!(hidden["error"]["code"], missing["error"]["code"]);
    // Bob cannot revoke Alice's key, nor see it.
    let revoke = app
        .call(
            Method::DELETE,
            &format!("/api/keys/{}", alice.key_id),
            &bob.key,
            None,
        )
        .await;
    assert_eq!(revoke.status(), 404);
    assert_eq!(
        app.call(Method::GET, "/v1/me", &alice.key, None).await.status(),
        200
    );
    // Every non-public route needs credentials.
    for row in table().iter().filter(|row| !matches!(row.rule, Rule::Public)) {
        let path = row.path.replace(['{', '}'], "");
        let response = app
            .client
            .request(row.method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{} {path}", row.method);
    }
    app.shutdown().await;
}
