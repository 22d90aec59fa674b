//! The administration pages through the real server: people, approvals,
//! groups and model access, limits, keys, rules of behaviour and the usage
//! dashboard; refusals shown next to their fields; roles and agencies
//! enforced exactly as in the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_test_support::browser::{client, sign_in, Session};
use civitas_test_support::{spawn_app_with, AppOptions, TestApp};

const PASSWORD: &str = "Vélo-rouge-sous-la-pluie";

fn options() -> AppOptions {
    AppOptions {
        embeddings: false,
        // Answers of the tiny model stay short, so the suite stays fast.
        tweak: std::sync::Arc::new(|config| config.models.max_output_tokens = 96),
        ..AppOptions::default()
    }
}

struct Agency {
    id: String,
    admin: Session,
}

/// An agency with an administrator (in a group allowed every model),
/// signed in.
async fn agency(app: &TestApp, slug: &str) -> Agency {
    let id = app.new_agency(slug).await;
    let staff = app.new_group(&id, "staff", &["*"]).await;
    let email = format!("admin@{slug}.example.gov");
    app.new_person(&id, &email, &["agency-admin"], &[&staff], Some(PASSWORD))
        .await;
    Agency {
        admin: sign_in(app, &email, PASSWORD).await,
        id,
    }
}

/// The `Location` of a redirect.
fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn people_are_added_with_errors_next_to_their_fields() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = agency(&app, "people").await;
    let admin = &agency.admin;
    let path = format!("/admin/agencies/{}/people", agency.id);
    let page = admin.get(&app, &path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("admin@people.example.gov"));
    assert!(html.contains("Add a person"));

    let bad_email = admin
        .post(
            &app,
            &path,
            &[("email", "not-an-address"), ("name", "Ada"), ("roles", "member")],
        )
        .await;
    assert_eq!(bad_email.status(), 422);
    let html = bad_email.text().await.unwrap();
    assert!(html.contains("id=\"person-email-error\""), "{html}");
    assert!(
        html.contains("value=\"not-an-address\""),
        "what was typed is kept"
    );

    let weak = admin
        .post(
            &app,
            &path,
            &[
                ("email", "ada@people.example.gov"),
                ("name", "Ada"),
                ("password", "password"),
                ("roles", "member"),
            ],
        )
        .await;
    assert_eq!(weak.status(), 422);
    let html = weak.text().await.unwrap();
    assert!(html.contains("id=\"person-password-error\""), "{html}");
    assert!(html.contains("too weak"));

    let created = admin
        .post(
            &app,
            &path,
            &[
                ("email", "ada@people.example.gov"),
                ("name", "Ada Lovelace"),
                ("roles", "member"),
                ("roles", "auditor"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    assert_eq!(location(&created), format!("{path}?done=person-created"));
    let ada = app
        .store
        .get_person_by_email("ada@people.example.gov")
        .await
        .unwrap()
        .unwrap();
    let roles: Vec<String> = app
        .store
        .grants(&ada.id)
        .await
        .unwrap()
        .roles
        .into_iter()
        .map(|grant| grant.role)
        .collect();
    assert!(
        roles.contains(&"auditor".to_owned()) && roles.contains(&"member".to_owned()),
        "{roles:?}"
    );

    let taken = admin
        .post(
            &app,
            &path,
            &[("email", "ada@people.example.gov"), ("name", "Ada again")],
        )
        .await;
    assert_eq!(taken.status(), 422);
    assert!(taken
        .text()
        .await
        .unwrap()
        .contains("already used by another account"));

    // An agency administrator may not make a platform administrator.
    let escalation = admin
        .post(
            &app,
            &path,
            &[
                ("email", "eve@people.example.gov"),
                ("name", "Eve"),
                ("roles", "platform-admin"),
            ],
        )
        .await;
    assert_eq!(escalation.status(), 422);
    assert!(app
        .store
        .get_person_by_email("eve@people.example.gov")
        .await
        .unwrap()
        .is_none());

    // A forged form creates nothing.
    let forged = client()
        .post(app.url(&path))
        .header("cookie", &admin.cookie)
        .form(&[
            ("csrf_token", "guess"),
            ("email", "mallory@people.example.gov"),
            ("name", "M"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&forged), "/sign-in");
    assert!(app
        .store
        .get_person_by_email("mallory@people.example.gov")
        .await
        .unwrap()
        .is_none());

    // Roles, status and sign-out from the person's page.
    let person_path = format!("{path}/{}", ada.id);
    assert_eq!(admin.get(&app, &person_path).await.status(), 200);
    let roles = admin
        .post(
            &app,
            &format!("{person_path}/roles"),
            &[("roles", "finance-manager")],
        )
        .await;
    assert_eq!(roles.status(), 303);
    let grants = app.store.grants(&ada.id).await.unwrap();
    assert_eq!(
        grants.roles.iter().map(|g| g.role.as_str()).collect::<Vec<_>>(),
        vec!["finance-manager"]
    );
    // Recorded as the API records it: the roles before and those asked.
    let changed = app
        .store
        .search_audit(
            &civitas_store::AuditFilter {
                action: Some("admin.change".to_owned()),
                ..civitas_store::AuditFilter::default()
            },
            50,
        )
        .await
        .unwrap()
        .into_iter()
        .find(|record| record.details["change"] == "roles" && record.details["via"] == "workspace")
        .expect("the change of roles is recorded");
    let before: Vec<&str> = changed.details["before"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| grant["role"].as_str().unwrap())
        .collect();
    assert!(
        before.contains(&"auditor") && before.contains(&"member"),
        "{before:?}"
    );
    assert_eq!(
        changed.details["after"]["roles"],
        serde_json::json!(["finance-manager"])
    );
    assert_eq!(
        changed.target.as_deref(),
        Some(format!("/api/admin/agencies/{}/people/{}/roles", agency.id, ada.id).as_str())
    );
    let disabled = admin
        .post(&app, &format!("{person_path}/status"), &[("status", "disabled")])
        .await;
    assert_eq!(disabled.status(), 303);
    assert_eq!(
        app.store.get_person(&ada.id).await.unwrap().unwrap().status,
        "disabled"
    );
    let invalid = admin
        .post(&app, &format!("{person_path}/status"), &[("status", "boss")])
        .await;
    assert_eq!(invalid.status(), 422);
    assert!(invalid.text().await.unwrap().contains("id=\"status-error\""));
    let me = app
        .store
        .get_person_by_email("admin@people.example.gov")
        .await
        .unwrap()
        .unwrap();
    let myself = admin
        .post(
            &app,
            &format!("{path}/{}/status", me.id),
            &[("status", "disabled")],
        )
        .await;
    assert_eq!(
        myself.status(),
        422,
        "an administrator cannot lock themselves out"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_group_restricts_a_model_and_its_member_no_longer_sees_it() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = agency(&app, "groups").await;
    let admin = &agency.admin;
    let groups = format!("/admin/agencies/{}/groups", agency.id);
    let blank = admin.post(&app, &groups, &[("name", "  ")]).await;
    assert_eq!(blank.status(), 422);
    assert!(blank.text().await.unwrap().contains("aria-invalid=\"true\""));
    let created = admin.post(&app, &groups, &[("name", "Caseworkers")]).await;
    assert_eq!(created.status(), 303);
    let group_path = location(&created).split('?').next().unwrap().to_owned();
    let group_id = group_path.rsplit('/').next().unwrap().to_owned();
    let duplicate = admin.post(&app, &groups, &[("name", "Caseworkers")]).await;
    assert_eq!(duplicate.status(), 422);
    assert!(duplicate
        .text()
        .await
        .unwrap()
        .contains("already used in this agency"));

    let allowed = admin
        .post(&app, &format!("{group_path}/models"), &[("models", &app.model)])
        .await;
    assert_eq!(allowed.status(), 303);
    app.new_person(
        &agency.id,
        "clerk@groups.example.gov",
        &["member"],
        &[&group_id],
        Some(PASSWORD),
    )
    .await;
    let clerk = sign_in(&app, "clerk@groups.example.gov", PASSWORD).await;
    let picker = clerk.get(&app, "/").await.text().await.unwrap();
    assert!(picker.contains(&format!("<option value=\"{}\"", app.model)));

    // The model is taken away: the picker no longer offers it, and a form
    // naming it anyway is refused.
    let restricted = admin.post(&app, &format!("{group_path}/models"), &[]).await;
    assert_eq!(restricted.status(), 303);
    let picker = clerk.get(&app, "/").await.text().await.unwrap();
    assert!(
        !picker.contains(&format!("<option value=\"{}\"", app.model)),
        "{picker}"
    );
    let refused = clerk
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "unclassified"),
                ("content", "Hi"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 403);
    let page = admin.get(&app, &group_path).await.text().await.unwrap();
    assert!(page.contains("clerk@groups.example.gov") || page.contains("Test clerk@groups.example.gov"));
    app.shutdown().await;
}

#[tokio::test]
async fn approvals_limits_keys_and_rules() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = agency(&app, "ops").await;
    let admin = &agency.admin;
    let base = format!("/admin/agencies/{}", agency.id);
    let waiting = app
        .new_person(
            &agency.id,
            "waiting@ops.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    app.admin(
        reqwest::Method::PATCH,
        &format!("/api/admin/agencies/{}/people/{}", agency.id, waiting.id),
        Some(&serde_json::json!({ "status": "pending" })),
    )
    .await;
    let approvals = admin
        .get(&app, &format!("{base}/approvals"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        approvals.contains("waiting@ops.example.gov")
            && approvals.contains("Approve Test waiting@ops.example.gov")
    );
    assert!(
        !approvals.contains(">admin@ops.example.gov</td>"),
        "only pending people are listed"
    );
    let approved = admin
        .post(
            &app,
            &format!("{base}/people/{}/status", waiting.id),
            &[("status", "active"), ("back", "approvals")],
        )
        .await;
    assert_eq!(
        location(&approved),
        format!("{base}/approvals?done=person-updated")
    );
    assert_eq!(
        app.store.get_person(&waiting.id).await.unwrap().unwrap().status,
        "active"
    );

    // Limits: bad numbers are named; good ones are kept.
    let scope = format!("agency:{}", agency.id);
    let bad = admin
        .post(
            &app,
            &format!("{base}/limits"),
            &[
                ("scope", &scope),
                ("requests_per_minute", "-3"),
                ("cost_per_month", "lots"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(
        html.contains("id=\"limit-requests_per_minute-error\"")
            && html.contains("id=\"limit-cost_per_month-error\"")
    );
    assert!(app.store.list_limits(&agency.id).await.unwrap().is_empty());
    let set = admin
        .post(
            &app,
            &format!("{base}/limits"),
            &[
                ("scope", &scope),
                ("requests_per_minute", "120"),
                ("cost_per_month", "150,50"),
            ],
        )
        .await;
    assert_eq!(set.status(), 303);
    let limits = app.store.list_limits(&agency.id).await.unwrap();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].requests_per_minute, Some(120));
    assert_eq!(limits[0].cost_per_month_micros, Some(150_500_000));
    let elsewhere = admin
        .post(
            &app,
            &format!("{base}/limits"),
            &[("scope", "agency:someone-else"), ("tokens_per_day", "5")],
        )
        .await;
    assert_eq!(elsewhere.status(), 422);
    assert!(elsewhere.text().await.unwrap().contains("id=\"scope-error\""));

    // Keys: listed without secrets, revoked.
    let keys = admin
        .get(&app, &format!("{base}/keys"))
        .await
        .text()
        .await
        .unwrap();
    assert!(keys.contains("Revoke test") && !keys.contains(&waiting.key));
    let revoked = admin
        .post(&app, &format!("{base}/keys/{}/revoke", waiting.key_id), &[])
        .await;
    assert_eq!(revoked.status(), 303);
    assert_eq!(
        app.call(reqwest::Method::GET, "/v1/me", &waiting.key, None)
            .await
            .status(),
        401
    );

    // Rules of behaviour: the agency's own text, accepted again by all.
    let empty = admin.post(&app, &format!("{base}/rules"), &[("text", " ")]).await;
    assert_eq!(empty.status(), 422);
    let saved = admin
        .post(
            &app,
            &format!("{base}/rules"),
            &[("text", "1. Use **approved** data only.")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let rules = app.store.get_agency_rules(&agency.id).await.unwrap().unwrap();
    assert_eq!(rules.text, "1. Use **approved** data only.");
    assert_eq!(admin.get(&app, "/").await.headers()["location"], "/rules");
    app.shutdown().await;
}

#[tokio::test]
async fn the_usage_dashboard_draws_and_tabulates_what_was_used() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let agency = agency(&app, "usage").await;
    let admin = &agency.admin;
    let asked = admin
        .post(
            &app,
            "/c",
            &[
                ("model", &app.model),
                ("classification", "unclassified"),
                ("content", "Hello"),
            ],
        )
        .await;
    assert_eq!(asked.status(), 303);
    // The request record is written off the request path.
    let mut html = String::new();
    for _ in 0..50 {
        html = admin
            .get(&app, &format!("/admin/agencies/{}/usage?days=7", agency.id))
            .await
            .text()
            .await
            .unwrap();
        if html.contains(&format!(
            "<th scope=\"row\" data-label=\"Model\">{}</th>",
            app.model
        )) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        html.contains(&format!(
            "<th scope=\"row\" data-label=\"Model\">{}</th>",
            app.model
        )),
        "{html}"
    );
    assert_eq!(html.matches("role=\"img\"").count(), 3, "three charts");
    assert!(html.contains("<desc id=\"chart-tokens-desc\">"));
    assert!(html.contains("<option value=\"7\" selected>"));
    // One row per day of the period, empty days included.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(html.contains(&format!("data-label=\"Day (UTC)\">{today}</th>")));
    assert_eq!(html.matches("data-label=\"Day (UTC)\">").count(), 7);
    // Energy and emissions are estimated, per model and per day.
    assert!(
        html.contains("Energy (estimate)") && html.contains(" Wh</td>"),
        "{html}"
    );
    let csv = admin
        .get(&app, &format!("/admin/agencies/{}/usage.csv?days=7", agency.id))
        .await;
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("day,model,requests,prompt_tokens,completion_tokens,cost,energy_wh,emissions_gco2e")
    );
    let line: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(line[0], today);
    assert_eq!(line[1], format!("\"{}\"", app.model));
    let energy: f64 = line[6].parse().unwrap();
    assert!(
        energy > 0.0,
        "the tiny model's size is in the catalogue: {energy}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn roles_and_agencies_bound_what_each_person_reaches() {
    let Some(app) = spawn_app_with(options()).await else {
        return;
    };
    let home = agency(&app, "home").await;
    let other = agency(&app, "other").await;
    app.new_person(
        &home.id,
        "member@home.example.gov",
        &["member"],
        &[],
        Some(PASSWORD),
    )
    .await;
    app.new_person(
        &home.id,
        "money@home.example.gov",
        &["finance-manager"],
        &[],
        Some(PASSWORD),
    )
    .await;
    let member = sign_in(&app, "member@home.example.gov", PASSWORD).await;
    let finance = sign_in(&app, "money@home.example.gov", PASSWORD).await;
    let base = format!("/admin/agencies/{}", home.id);

    let nav = member.get(&app, "/").await.text().await.unwrap();
    assert!(
        !nav.contains("href=\"/admin\""),
        "members see no administration link"
    );
    for path in ["", "/people", "/groups", "/usage", "/keys", "/limits"] {
        let status = member.get(&app, &format!("{base}{path}")).await.status();
        assert_eq!(status, 403, "member on {path}");
    }
    let nav = finance.get(&app, "/").await.text().await.unwrap();
    assert!(nav.contains("href=\"/admin\""));
    assert_eq!(finance.get(&app, &format!("{base}/usage")).await.status(), 200);
    assert_eq!(finance.get(&app, &format!("{base}/limits")).await.status(), 200);
    // A finance manager reads the agency (the policy's readers) but
    // changes no one.
    let people = finance
        .get(&app, &format!("{base}/people"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!people.contains("Add a person"));
    let created = finance
        .post(
            &app,
            &format!("{base}/people"),
            &[("email", "x@home.example.gov"), ("name", "X")],
        )
        .await;
    assert_eq!(created.status(), 403);

    // Another agency's pages answer as if it did not exist.
    for path in ["", "/people", "/usage", "/keys"] {
        let status = home
            .admin
            .get(&app, &format!("/admin/agencies/{}{path}", other.id))
            .await
            .status();
        assert_eq!(status, 404, "{path}");
    }
    let forged = home
        .admin
        .post(
            &app,
            &format!("/admin/agencies/{}/groups", other.id),
            &[("name", "Intruders")],
        )
        .await;
    assert_eq!(forged.status(), 404);
    assert!(app
        .store
        .list_groups(&other.id)
        .await
        .unwrap()
        .iter()
        .all(|group| group.name != "Intruders"));
    // A person of this agency is not reachable through the other's path.
    let stranger = app
        .store
        .get_person_by_email("member@home.example.gov")
        .await
        .unwrap()
        .unwrap();
    let status = other
        .admin
        .get(
            &app,
            &format!("/admin/agencies/{}/people/{}", other.id, stranger.id),
        )
        .await
        .status();
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn the_records_page_sets_retention_holds_clearances_and_rotates_keys() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        ..options()
    })
    .await
    else {
        return;
    };
    let agency = agency(&app, "archives").await;
    let admin = &agency.admin;
    let base = format!("/admin/agencies/{}/records", agency.id);
    let member = app
        .new_person(
            &agency.id,
            "clerk@archives.example.gov",
            &["member"],
            &[],
            Some(PASSWORD),
        )
        .await;
    app.new_person(
        &agency.id,
        "inspector@archives.example.gov",
        &["auditor"],
        &[],
        Some(PASSWORD),
    )
    .await;
    let auditor = sign_in(&app, "inspector@archives.example.gov", PASSWORD).await;
    let page = admin.get(&app, &base).await.text().await.unwrap();
    for heading in ["Retention schedule", "Legal holds", "Clearances", "Data keys"] {
        assert!(page.contains(heading), "{heading}");
    }

    // Retention: a bad number is said next to its field; a good one kept,
    // an empty field keeps that kind of record indefinitely.
    let refused = admin
        .post(
            &app,
            &format!("{base}/retention"),
            &[("conversations", "ninety"), ("usage", "")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap();
    assert!(text.contains("Enter a whole number of days") && text.contains("aria-invalid=\"true\""));
    let saved = admin
        .post(
            &app,
            &format!("{base}/retention"),
            &[("conversations", "90"), ("usage", "")],
        )
        .await;
    assert_eq!(location(&saved), format!("{base}?done=retention-saved"));
    let rules = app.store.list_retention_rules(&agency.id).await.unwrap();
    assert_eq!(
        rules
            .iter()
            .map(|rule| (rule.record_type.as_str(), rule.days))
            .collect::<Vec<_>>(),
        vec![("conversations", 90)]
    );

    // A legal hold, placed by an auditor, then released.
    let short = auditor
        .post(
            &app,
            &format!("{base}/holds"),
            &[
                ("person_id", &member.id),
                ("matter", "CAA-17"),
                ("reason", "short"),
            ],
        )
        .await;
    assert_eq!(short.status(), 422);
    let placed = auditor
        .post(
            &app,
            &format!("{base}/holds"),
            &[
                ("person_id", &member.id),
                ("matter", "CAA-17"),
                ("reason", "Appeal before the administrative court"),
            ],
        )
        .await;
    assert_eq!(location(&placed), format!("{base}?done=hold-placed"));
    let holds = app.store.active_holds(&member.id).await.unwrap();
    assert_eq!(holds.len(), 1);
    let listed = auditor.get(&app, &base).await.text().await.unwrap();
    assert!(listed.contains("CAA-17") && listed.contains("In force"));
    assert!(
        !listed.contains("Save the schedule"),
        "an auditor sees holds, not the schedule"
    );
    let released = auditor
        .post(&app, &format!("{base}/holds/{}/release", holds[0].id), &[])
        .await;
    assert_eq!(location(&released), format!("{base}?done=hold-released"));
    assert!(app.store.active_holds(&member.id).await.unwrap().is_empty());

    // Clearances and data keys are the administrator's.
    let cleared = admin
        .post(
            &app,
            &format!("{base}/clearance"),
            &[("clearance_person", &member.id), ("clearance", "cui")],
        )
        .await;
    assert_eq!(location(&cleared), format!("{base}?done=clearance-saved"));
    assert_eq!(
        app.store
            .get_person(&member.id)
            .await
            .unwrap()
            .unwrap()
            .clearance
            .as_deref(),
        Some("cui")
    );
    let unknown = admin
        .post(
            &app,
            &format!("{base}/clearance"),
            &[("clearance_person", &member.id), ("clearance", "cosmic")],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let rotated = admin.post(&app, &format!("{base}/rotate-key"), &[]).await;
    assert_eq!(location(&rotated), format!("{base}?done=key-rotated"));
    let states: Vec<String> = app
        .store
        .list_data_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|key| key.agency_id == agency.id)
        .map(|key| key.state)
        .collect();
    assert_eq!(
        states.iter().filter(|state| *state == "active").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        auditor
            .post(&app, &format!("{base}/retention"), &[("conversations", "1")])
            .await
            .status(),
        403
    );
    assert_eq!(
        auditor
            .post(&app, &format!("{base}/rotate-key"), &[])
            .await
            .status(),
        403
    );

    // Each change is in the audit log, marked as made from the workspace.
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    let via_workspace = |action: &str| {
        records
            .iter()
            .filter(|record| record.action == action && record.details["via"] == "workspace")
            .count()
    };
    assert_eq!(via_workspace("data.legal_hold"), 2);
    assert_eq!(via_workspace("data.key"), 1);
    assert!(
        via_workspace("admin.change") >= 3,
        "retention twice and a clearance"
    );

    // A member does not see the page.
    let clerk = sign_in(&app, "clerk@archives.example.gov", PASSWORD).await;
    assert_eq!(clerk.get(&app, &base).await.status(), 403);
}
