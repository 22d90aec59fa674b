//! SCIM 2.0 provisioning through the real server, with the requests a
//! directory such as Entra ID sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use civitas_test_support::{spawn_app_with, AppOptions, TestApp, TEST_KEY};
use reqwest::Method;
use serde_json::{json, Value};

async fn scim(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 204 {
        return (status, Value::Null);
    }
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    if content_type.starts_with("application/scim+json") && status >= 400 {
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{body}"
        );
        assert_eq!(body["status"], status.to_string());
    }
    (status, body)
}

async fn token(app: &TestApp, agency: &str) -> (String, String) {
    let created = app
        .admin(
            Method::POST,
            &format!("/api/admin/agencies/{agency}/scim-token"),
            None,
        )
        .await;
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["key"]["id"].as_str().unwrap().to_owned(),
    )
}

fn entra_user(email: &str, external: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": external,
        "userName": email,
        "active": true,
        "displayName": "Jeanne Dupont",
        "emails": [{"primary": true, "type": "work", "value": email}],
        "name": {"formatted": "Jeanne Dupont", "familyName": "Dupont", "givenName": "Jeanne"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Finances"},
    })
}

#[tokio::test]
async fn a_directory_provisions_updates_and_deactivates_people_and_groups() {
    let Some(app) = spawn_app_with(AppOptions {
        local_model: false,
        embeddings: false,
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let agency = app.new_agency("scim-home").await;
    let elsewhere = app.new_agency("scim-elsewhere").await;
    let (home_token, home_token_id) = token(&app, &agency).await;
    let (other_token, _) = token(&app, &elsewhere).await;

    // A filter Civitas cannot apply is refused even when nothing would match.
    for path in [
        "/scim/v2/Users?filter=title%20eq%20%22x%22",
        "/scim/v2/Groups?filter=members%20eq%20%22x%22",
    ] {
        let (status, refused) = scim(&app, Method::GET, path, &other_token, None).await;
        assert_eq!(
            (status, refused["scimType"].as_str()),
            (400, Some("invalidFilter")),
            "{path}"
        );
    }

    let (status, user) = scim(
        &app,
        Method::POST,
        "/scim/v2/Users",
        &home_token,
        Some(entra_user("Jeanne.Dupont@Example.gov", "e-1")),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["userName"], "jeanne.dupont@example.gov");
    assert_eq!(user["active"], true);
    assert_eq!(user["externalId"], "e-1");
    let user_id = user["id"].as_str().unwrap().to_owned();
    let (status, conflict) = scim(
        &app,
        Method::POST,
        "/scim/v2/Users",
        &home_token,
        Some(entra_user("jeanne.dupont@example.gov", "e-2")),
    )
    .await;
    assert_eq!((status, conflict["scimType"].as_str()), (409, Some("uniqueness")));
    let (status, missing) = scim(
        &app,
        Method::POST,
        "/scim/v2/Users",
        &home_token,
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(status, 400, "{missing}");

    let (_, found) = scim(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=userName%20eq%20%22JEANNE.DUPONT@example.gov%22",
        &home_token,
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], user_id.as_str());
    let (_, none) = scim(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=externalId%20eq%20%22nope%22",
        &home_token,
        None,
    )
    .await;
    assert_eq!(none["totalResults"], 0);
    let (status, invalid) = scim(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=title%20eq%20%22x%22",
        &home_token,
        None,
    )
    .await;
    assert_eq!(
        (status, invalid["scimType"].as_str()),
        (400, Some("invalidFilter"))
    );
    // The provisioned person exists for the agency and has a member role.
    let people = app
        .admin(Method::GET, &format!("/api/admin/agencies/{agency}/people"), None)
        .await;
    assert!(people["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == user_id.as_str()));

    // Groups: create with a member, add and remove members, rename.
    let second = scim(
        &app,
        Method::POST,
        "/scim/v2/Users",
        &home_token,
        Some(entra_user("paul@example.gov", "e-3")),
    )
    .await
    .1;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let (status, group) = scim(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        &home_token,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Analystes", "externalId": "g-1", "members": [{"value": user_id}]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["members"].as_array().unwrap().len(), 1);
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": [{"value": second_id}]}]});
    let (status, patched) = scim(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        Some(add),
    )
    .await;
    assert_eq!(
        (status, patched["members"].as_array().unwrap().len()),
        (200, 2),
        "{patched}"
    );
    let remove = json!({"Operations": [{"op": "Remove", "path": format!("members[value eq \"{user_id}\"]")}, {"op": "Replace", "path": "displayName", "value": "Analystes financiers"}]});
    let (_, patched) = scim(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        Some(remove),
    )
    .await;
    assert_eq!(patched["displayName"], "Analystes financiers");
    assert_eq!(
        patched["members"],
        json!([{"value": second_id, "display": "paul@example.gov"}])
    );
    let (_, filtered) = scim(
        &app,
        Method::GET,
        "/scim/v2/Groups?filter=displayName%20eq%20%22Analystes%20financiers%22",
        &home_token,
        None,
    )
    .await;
    assert_eq!(filtered["totalResults"], 1);
    let stranger =
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "not-a-user"}]}]});
    let (status, _) = scim(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        Some(stranger),
    )
    .await;
    assert_eq!(status, 400);
    let (_, unchanged) = scim(
        &app,
        Method::GET,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        None,
    )
    .await;
    assert_eq!(
        unchanged["members"].as_array().unwrap().len(),
        1,
        "a refused change was half-applied"
    );

    // Another agency's token sees none of it.
    for path in [
        format!("/scim/v2/Users/{user_id}"),
        format!("/scim/v2/Groups/{group_id}"),
    ] {
        let (status, _) = scim(&app, Method::GET, &path, &other_token, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, theirs) = scim(&app, Method::GET, "/scim/v2/Users", &other_token, None).await;
    assert_eq!(theirs["totalResults"], 0);
    let hijack = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (status, _) = scim(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Users/{user_id}"),
        &other_token,
        Some(hijack),
    )
    .await;
    assert_eq!(status, 404);

    // SCIM tokens only work on SCIM routes, and SCIM routes need them.
    let models = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(&home_token)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    let (status, _) = scim(&app, Method::GET, "/scim/v2/Users", TEST_KEY, None).await;
    assert_eq!(status, 401);

    // Deactivation (Entra sends "False" as a string) keeps the record.
    let key = app
        .admin(
            Method::POST,
            &format!("/api/admin/agencies/{agency}/keys"),
            Some(&json!({"person_id": second_id, "name": "k"})),
        )
        .await;
    let person_key = key["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(Method::GET, "/v1/me", &person_key, None).await.status(),
        200
    );
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (status, user) = scim(
        &app,
        Method::PATCH,
        &format!("/scim/v2/Users/{second_id}"),
        &home_token,
        Some(deactivate),
    )
    .await;
    assert_eq!((status, user["active"].clone()), (200, json!(false)), "{user}");
    let refused: Value = app
        .call(Method::GET, "/v1/me", &person_key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "account_disabled");
    let replace = entra_user("paul@example.gov", "e-3");
    let (_, back) = scim(
        &app,
        Method::PUT,
        &format!("/scim/v2/Users/{second_id}"),
        &home_token,
        Some(replace),
    )
    .await;
    assert_eq!(back["active"], true);
    let (status, _) = scim(
        &app,
        Method::DELETE,
        &format!("/scim/v2/Users/{user_id}"),
        &home_token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, kept) = scim(
        &app,
        Method::GET,
        &format!("/scim/v2/Users/{user_id}"),
        &home_token,
        None,
    )
    .await;
    assert_eq!((status, kept["active"].clone()), (200, json!(false)));
    let (status, _) = scim(
        &app,
        Method::DELETE,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = scim(
        &app,
        Method::GET,
        &format!("/scim/v2/Groups/{group_id}"),
        &home_token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, config) = scim(
        &app,
        Method::GET,
        "/scim/v2/ServiceProviderConfig",
        &home_token,
        None,
    )
    .await;
    assert_eq!((status, config["patch"]["supported"].clone()), (200, json!(true)));

    // A revoked token stops at once.
    app.admin(
        Method::DELETE,
        &format!("/api/admin/agencies/{agency}/keys/{home_token_id}"),
        None,
    )
    .await;
    let (status, _) = scim(&app, Method::GET, "/scim/v2/Users", &home_token, None).await;
    assert_eq!(status, 401);
    app.shutdown().await;
}
