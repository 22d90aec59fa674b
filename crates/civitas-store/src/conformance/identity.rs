//! Conformance of the identity storage: agencies, people, keys, sessions,
//! limits.

use chrono::{Duration, TimeZone, Utc};

use crate::{
    LimitKind, Limits, NewAgency, NewApiKey, NewPerson, PersonUpdate, RequestRecord, Session, Store,
    StoreError, UsageOwner,
};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", crate::new_id().replace('-', "")[20..].to_owned())
}

async fn agency(store: &dyn Store, parent: Option<&str>) -> crate::Agency {
    store
        .create_agency(NewAgency {
            slug: unique("agency"),
            name: "Agence nationale — essais".to_owned(),
            parent_id: parent.map(str::to_owned),
        })
        .await
        .unwrap()
}

async fn person(store: &dyn Store, agency_id: &str) -> crate::Person {
    store
        .create_person(NewPerson {
            agency_id: agency_id.to_owned(),
            email: format!("{}@example.gov", unique("p")),
            display_name: "Éloïse Martin".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: Some("hash".to_owned()),
        })
        .await
        .unwrap()
}

fn new_key(person: &crate::Person, hash: &str) -> NewApiKey {
    NewApiKey {
        secret_hash: hash.to_owned(),
        prefix: "civ_abcd".to_owned(),
        person_id: person.id.clone(),
        agency_id: person.agency_id.clone(),
        name: "integration".to_owned(),
        kind: "personal".to_owned(),
        models: Some(vec!["tiny".to_owned()]),
        ip_ranges: None,
        expires_at: None,
        created_by: person.id.clone(),
    }
}

fn limits(scope: &str, agency_id: &str, rpm: Option<i64>) -> Limits {
    Limits {
        scope: scope.to_owned(),
        agency_id: agency_id.to_owned(),
        requests_per_minute: rpm,
        tokens_per_minute: None,
        tokens_per_day: None,
        cost_per_month_micros: None,
    }
}

pub async fn agencies_nest_and_slugs_are_unique(store: &dyn Store) {
    let ministry = agency(store, None).await;
    let directorate = agency(store, Some(&ministry.id)).await;
    let office = agency(store, Some(&directorate.id)).await;
    let chain = store.agency_ancestors(&office.id).await.unwrap();
    assert_eq!(
        chain,
        vec![office.id.clone(), directorate.id.clone(), ministry.id.clone()]
    );
    let again = store
        .create_agency(NewAgency {
            slug: ministry.slug.clone(),
            name: "Copy".to_owned(),
            parent_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let orphan = store
        .create_agency(NewAgency {
            slug: unique("orphan"),
            name: "Orphan".to_owned(),
            parent_id: Some("no-such-agency".to_owned()),
        })
        .await
        .unwrap_err();
    assert!(matches!(orphan, StoreError::Invalid(_)), "{orphan:?}");
    let by_slug = store.get_agency_by_slug(&ministry.slug).await.unwrap().unwrap();
    assert_eq!(by_slug, ministry);
}

pub async fn groups_people_roles_and_models(store: &dyn Store) {
    let home = agency(store, None).await;
    let analysts = store.create_group(&home.id, "analysts", None).await.unwrap();
    let lawyers = store
        .create_group(&home.id, "lawyers", Some("ext-7"))
        .await
        .unwrap();
    let duplicate = store.create_group(&home.id, "analysts", None).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::Conflict(_)), "{duplicate:?}");
    store
        .set_group_models(
            &home.id,
            &analysts.id,
            &["b".to_owned(), "a".to_owned(), "a".to_owned()],
        )
        .await
        .unwrap();
    store
        .set_group_models(&home.id, &lawyers.id, &["c".to_owned()])
        .await
        .unwrap();
    let someone = person(store, &home.id).await;
    let taken = store
        .create_person(NewPerson {
            agency_id: home.id.clone(),
            email: someone.email.clone(),
            display_name: "Twin".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");
    store
        .set_memberships(&home.id, &someone.id, &[analysts.id.clone(), lawyers.id.clone()])
        .await
        .unwrap();
    store
        .set_roles(
            &someone.id,
            &home.id,
            &["member".to_owned(), "auditor".to_owned()],
        )
        .await
        .unwrap();
    let grants = store.grants(&someone.id).await.unwrap();
    assert_eq!(grants.groups.len(), 2);
    assert_eq!(grants.groups[0].models, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(grants.groups[1].external_id.as_deref(), Some("ext-7"));
    let roles: Vec<_> = grants.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, vec!["auditor", "member"]);
    assert!(store.role_is_held("auditor").await.unwrap());
    // Replacing is a replacement, not an addition.
    store
        .set_memberships(&home.id, &someone.id, std::slice::from_ref(&lawyers.id))
        .await
        .unwrap();
    store.set_roles(&someone.id, &home.id, &[]).await.unwrap();
    let grants = store.grants(&someone.id).await.unwrap();
    assert_eq!(grants.groups.len(), 1);
    assert!(grants.roles.is_empty());
    let updated = store
        .update_person(
            &home.id,
            &someone.id,
            PersonUpdate {
                status: Some("disabled".to_owned()),
                ..PersonUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.status, "disabled");
    assert_eq!(updated.display_name, "Éloïse Martin");
    assert_eq!(store.list_people(&home.id).await.unwrap().len(), 1);
    let listed = store.list_groups(&home.id).await.unwrap();
    assert_eq!(listed.len(), 2);
}

pub async fn resources_are_reached_only_through_their_agency(store: &dyn Store) {
    let ours = agency(store, None).await;
    let theirs = agency(store, None).await;
    let their_group = store.create_group(&theirs.id, "secret", None).await.unwrap();
    let their_person = person(store, &theirs.id).await;
    let our_person = person(store, &ours.id).await;
    assert!(store
        .get_group(&ours.id, &their_group.id)
        .await
        .unwrap()
        .is_none());
    let models = store
        .set_group_models(&ours.id, &their_group.id, &["x".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(models, StoreError::NotFound { .. }), "{models:?}");
    let update = store
        .update_person(&ours.id, &their_person.id, PersonUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(update, StoreError::NotFound { .. }), "{update:?}");
    // Joining another agency's group is refused, and nothing is written.
    let join = store
        .set_memberships(&ours.id, &our_person.id, std::slice::from_ref(&their_group.id))
        .await
        .unwrap_err();
    assert!(matches!(join, StoreError::Invalid(_)), "{join:?}");
    assert!(store.grants(&our_person.id).await.unwrap().groups.is_empty());
    let key = store
        .create_api_key(new_key(&their_person, &unique("hash")))
        .await
        .unwrap();
    assert!(store.get_api_key(&ours.id, &key.id).await.unwrap().is_none());
    assert!(!store.revoke_api_key(&ours.id, &key.id, Utc::now()).await.unwrap());
    let untouched = store.get_api_key(&theirs.id, &key.id).await.unwrap().unwrap();
    assert!(untouched.revoked_at.is_none());
}

pub async fn api_keys_are_found_by_hash_and_revoked(store: &dyn Store) {
    let home = agency(store, None).await;
    let owner = person(store, &home.id).await;
    let hash = unique("hash");
    let mut wanted = new_key(&owner, &hash);
    wanted.ip_ranges = Some(vec!["10.0.0.0/8".to_owned()]);
    wanted.expires_at = Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    let created = store.create_api_key(wanted).await.unwrap();
    assert!(created.id.starts_with("key_"));
    let found = store.find_api_key(&hash).await.unwrap().unwrap();
    assert_eq!(found.models, Some(vec!["tiny".to_owned()]));
    assert_eq!(found.ip_ranges, Some(vec!["10.0.0.0/8".to_owned()]));
    assert_eq!(found.expires_at, created.expires_at);
    assert!(store.find_api_key("other-hash").await.unwrap().is_none());
    let duplicate = store.create_api_key(new_key(&owner, &hash)).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::Conflict(_)), "{duplicate:?}");
    let used = Utc::now();
    assert!(
        store.touch_api_key(&created.id, used).await.unwrap(),
        "the first use is the first"
    );
    assert!(
        !store.touch_api_key(&created.id, used).await.unwrap(),
        "and only once"
    );
    assert!(store.revoke_api_key(&home.id, &created.id, used).await.unwrap());
    let revoked = store.find_api_key(&hash).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(revoked.last_used_at.is_some());
    assert_eq!(
        store
            .list_api_keys(&home.id, Some(&owner.id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .list_api_keys(&home.id, Some("nobody"))
        .await
        .unwrap()
        .is_empty());
}

pub async fn sessions_are_revoked_one_or_all(store: &dyn Store) {
    let home = agency(store, None).await;
    let owner = person(store, &home.id).await;
    let now = Utc::now();
    for name in ["s1", "s2", "s3"] {
        store
            .create_session(&Session {
                id_hash: format!("{}-{name}", owner.id),
                person_id: owner.id.clone(),
                csrf_token: "csrf".to_owned(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + Duration::hours(8),
                revoked_at: None,
            })
            .await
            .unwrap();
    }
    let first = format!("{}-s1", owner.id);
    store
        .touch_session(&first, now + Duration::minutes(5))
        .await
        .unwrap();
    let touched = store.find_session(&first).await.unwrap().unwrap();
    assert!(touched.last_seen_at > touched.created_at);
    store.revoke_session(&first, now).await.unwrap();
    assert!(store
        .find_session(&first)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert_eq!(store.revoke_sessions_of(&owner.id, now).await.unwrap(), 2);
    assert!(store.find_session("nope").await.unwrap().is_none());
}

pub async fn login_failures_count_and_reset(store: &dyn Store) {
    let home = agency(store, None).await;
    let owner = person(store, &home.id).await;
    assert_eq!(store.record_login_failure(&owner.id, None).await.unwrap(), 1);
    let until = Utc::now() + Duration::minutes(15);
    assert_eq!(
        store.record_login_failure(&owner.id, Some(until)).await.unwrap(),
        2
    );
    let credentials = store.credentials(&owner.id).await.unwrap();
    assert_eq!(credentials.failed_logins, 2);
    assert!(credentials.locked_until.is_some());
    assert_eq!(credentials.password_hash.as_deref(), Some("hash"));
    store.reset_login_failures(&owner.id).await.unwrap();
    store.set_totp(&owner.id, Some("SECRET"), false).await.unwrap();
    let credentials = store.credentials(&owner.id).await.unwrap();
    assert_eq!((credentials.failed_logins, credentials.locked_until), (0, None));
    assert_eq!(credentials.totp_secret.as_deref(), Some("SECRET"));
    assert!(!credentials.totp_confirmed);
    store.set_totp(&owner.id, Some("SECRET"), true).await.unwrap();
    assert!(store.credentials(&owner.id).await.unwrap().totp_confirmed);
}

/// 50 requests at once against a remaining budget of 10: exactly 10 pass.
pub async fn concurrent_admissions_respect_the_limit_exactly(store: &dyn Store) {
    let home = agency(store, None).await;
    let scope = format!("key:{}", unique("k"));
    let limit = limits(&scope, &home.id, Some(10));
    store.set_limits(&limit).await.unwrap();
    let stored = store.limits_for(std::slice::from_ref(&scope)).await.unwrap();
    assert_eq!(stored, vec![limit.clone()]);
    // A fixed moment, so the minute cannot roll over during the test.
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 5).unwrap();
    let attempts = (0..50).map(|_| store.admit(std::slice::from_ref(&limit), now));
    let results = futures::future::join_all(attempts).await;
    let admitted = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    let refused: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Err(hit)) => Some(hit),
            _ => None,
        })
        .collect();
    assert_eq!(admitted, 10, "{results:?}");
    assert_eq!(refused.len(), 40, "{results:?}");
    assert!(refused
        .iter()
        .all(|hit| hit.kind == LimitKind::RequestsPerMinute && hit.retry_after_seconds == 55));
    let counters = store.usage_counters(&[scope]).await.unwrap();
    assert_eq!(counters[0].minute_requests, 10);
    // The next minute admits again.
    assert!(store
        .admit(&[limit], now + Duration::seconds(60))
        .await
        .unwrap()
        .is_ok());
}

/// Leases grant no more than the minute has room for, the same number in
/// every scope; what is given back is granted again, and what is given
/// back after its minute changes nothing.
pub async fn leases_stay_within_the_limit_and_give_back(store: &dyn Store) {
    let home = agency(store, None).await;
    let narrow = limits(&format!("key:{}", unique("k")), &home.id, Some(10));
    let wide = limits(&format!("agency:{}", unique("a")), &home.id, Some(100));
    let both = [wide.clone(), narrow.clone()];
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 5).unwrap();
    let first = store.lease(&both, 8, None, now).await.unwrap().unwrap();
    assert_eq!(first.granted, 8);
    assert_eq!(
        first
            .counters
            .iter()
            .map(|c| (c.scope.clone(), c.minute_requests))
            .collect::<Vec<_>>(),
        vec![(wide.scope.clone(), 8), (narrow.scope.clone(), 8)]
    );
    // Only 2 left under the narrower limit: 2 are granted in both scopes.
    let second = store.lease(&both, 8, None, now).await.unwrap().unwrap();
    assert_eq!(second.granted, 2);
    assert_eq!(second.counters[0].minute_requests, 10);
    let hit = store.lease(&both, 1, None, now).await.unwrap().unwrap_err();
    assert_eq!(
        (hit.scope.clone(), hit.kind),
        (narrow.scope.clone(), LimitKind::RequestsPerMinute)
    );
    // Five unused requests given back are there to be granted again, even
    // when the same call is refused nothing.
    let minute = first.counters[0].minute.clone();
    let returned = crate::Returned {
        minute: minute.clone(),
        requests: 5,
    };
    let third = store
        .lease(&both, 3, Some(&returned), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((third.granted, third.counters[1].minute_requests), (3, 8));
    let only_back = store
        .lease(
            &both,
            0,
            Some(&crate::Returned {
                minute: minute.clone(),
                requests: 2,
            }),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((only_back.granted, only_back.counters[1].minute_requests), (0, 6));
    // A lease of the last minute given back in the next changes nothing.
    let later = now + Duration::seconds(60);
    let next = store
        .lease(&both, 4, Some(&returned), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.granted, next.counters[1].minute_requests), (4, 4));
    let counters = store
        .usage_counters(std::slice::from_ref(&narrow.scope))
        .await
        .unwrap();
    assert_eq!(counters[0].minute_requests, 4);
}

pub async fn admission_is_all_or_nothing_across_scopes(store: &dyn Store) {
    let home = agency(store, None).await;
    let open = limits(&format!("person:{}", unique("p")), &home.id, Some(100));
    let full = limits(&format!("agency:{}", unique("a")), &home.id, Some(1));
    store.set_limits(&full).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 5).unwrap();
    assert!(store
        .admit(std::slice::from_ref(&full), now)
        .await
        .unwrap()
        .is_ok());
    let hit = store
        .admit(&[open.clone(), full.clone()], now)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(hit.scope, full.scope);
    // The refused admission did not count against the scope that had room.
    let counters = store
        .usage_counters(std::slice::from_ref(&open.scope))
        .await
        .unwrap();
    assert!(counters.iter().all(|c| c.minute_requests == 0), "{counters:?}");
    assert!(store.delete_limits(&home.id, &full.scope).await.unwrap());
    assert!(!store.delete_limits("other-agency", &open.scope).await.unwrap());
}

pub async fn charges_and_usage_summary(store: &dyn Store) {
    let home = agency(store, None).await;
    let scope = format!("person:{}", unique("p"));
    let mut budget = limits(&scope, &home.id, None);
    budget.tokens_per_day = Some(100);
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 30, 5).unwrap();
    assert!(store
        .admit(std::slice::from_ref(&budget), now)
        .await
        .unwrap()
        .is_ok());
    store
        .charge(std::slice::from_ref(&scope), 60, 7, now)
        .await
        .unwrap();
    store
        .charge(std::slice::from_ref(&scope), 40, 3, now)
        .await
        .unwrap();
    let hit = store
        .admit(std::slice::from_ref(&budget), now)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(hit.kind, LimitKind::TokensPerDay);
    let counter = &store.usage_counters(&[scope]).await.unwrap()[0];
    assert_eq!((counter.day_tokens, counter.month_cost_micros), (100, 10));

    let actor = unique("actor");
    let at = Utc::now();
    for (n, model) in ["m1", "m1", "m2"].iter().enumerate() {
        store
            .record_request(&RequestRecord {
                request_id: unique("usage"),
                at: at - Duration::seconds(n as i64),
                actor: actor.clone(),
                agency_id: Some(home.id.clone()),
                key_id: None,
                route: "/v1/chat/completions".to_owned(),
                model: Some((*model).to_owned()),
                model_sha256: None,
                prompt_tokens: 10,
                completion_tokens: 5,
                cost_micros: 100,
                latency_ms: 1,
                status: 200,
                error_code: None,
            })
            .await
            .unwrap();
    }
    let since = at - Duration::hours(1);
    let mine = store
        .usage_summary(&UsageOwner::Person(actor), since)
        .await
        .unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(
        (mine[0].model.as_str(), mine[0].requests, mine[0].prompt_tokens),
        ("m1", 2, 20)
    );
    assert_eq!(mine[0].cost_micros, 200);
    let agency_usage = store
        .usage_summary(&UsageOwner::Agency(home.id.clone()), since)
        .await
        .unwrap();
    assert_eq!(agency_usage.iter().map(|row| row.requests).sum::<i64>(), 3);
    let later = store
        .usage_summary(&UsageOwner::Agency(home.id), at + Duration::hours(1))
        .await
        .unwrap();
    assert!(later.is_empty());
}

pub async fn group_membership_from_the_group_side(store: &dyn Store) {
    let home = agency(store, None).await;
    let other = agency(store, None).await;
    let group = store
        .create_group(&home.id, "provisioned", Some("idp-1"))
        .await
        .unwrap();
    let first = person(store, &home.id).await;
    let second = person(store, &home.id).await;
    let stranger = person(store, &other.id).await;
    store
        .set_group_members(&home.id, &group.id, &[first.id.clone(), second.id.clone()])
        .await
        .unwrap();
    assert_eq!(store.group_members(&home.id, &group.id).await.unwrap().len(), 2);
    let refused = store
        .set_group_members(&home.id, &group.id, &[first.id.clone(), stranger.id.clone()])
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
    assert_eq!(
        store.group_members(&home.id, &group.id).await.unwrap().len(),
        2,
        "half-written"
    );
    assert!(store
        .group_members(&other.id, &group.id)
        .await
        .unwrap()
        .is_empty());
    let renamed = store
        .update_group(&home.id, &group.id, Some("renamed"), Some("idp-2"))
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.external_id.as_deref()),
        ("renamed", Some("idp-2"))
    );
    let moved = store
        .update_person(
            &home.id,
            &first.id,
            PersonUpdate {
                email: Some(second.email.clone()),
                ..PersonUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(moved, StoreError::Conflict(_)), "{moved:?}");
    assert!(!store.delete_group(&other.id, &group.id).await.unwrap());
    assert!(store.delete_group(&home.id, &group.id).await.unwrap());
    assert!(store.grants(&first.id).await.unwrap().groups.is_empty());
}

pub async fn oidc_states_are_consumed_once(store: &dyn Store) {
    let state = crate::OidcState {
        state_hash: unique("state"),
        provider: "sso".to_owned(),
        nonce: "nonce".to_owned(),
        code_verifier: "verifier".to_owned(),
        return_to: "/".to_owned(),
        created_at: crate::now(),
    };
    store.create_oidc_state(&state).await.unwrap();
    let attempts = (0..5).map(|_| store.consume_oidc_state(&state.state_hash, Utc::now()));
    let results = futures::future::join_all(attempts).await;
    let fresh = results
        .iter()
        .filter(|result| matches!(result, Ok(crate::ConsumedState::Fresh(_))))
        .count();
    assert_eq!(fresh, 1, "{results:?}");
    assert!(results.iter().all(|result| matches!(
        result,
        Ok(crate::ConsumedState::Fresh(_) | crate::ConsumedState::AlreadyUsed)
    )));
    match &results
        .iter()
        .find(|r| matches!(r, Ok(crate::ConsumedState::Fresh(_))))
    {
        Some(Ok(crate::ConsumedState::Fresh(found))) => assert_eq!(found, &state),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.consume_oidc_state("unknown", Utc::now()).await.unwrap(),
        crate::ConsumedState::Unknown
    );
}

pub async fn holders_carry_the_person_and_a_version_that_moves(store: &dyn Store) {
    let home = agency(store, None).await;
    let owner = person(store, &home.id).await;
    let hash = unique("holder");
    let key = store.create_api_key(new_key(&owner, &hash)).await.unwrap();
    let held = store.key_holder(&hash).await.unwrap().unwrap();
    assert_eq!(
        (held.credential.id.as_str(), held.person.id.as_str()),
        (key.id.as_str(), owner.id.as_str())
    );
    assert_eq!(held.person, owner);
    assert!(store.key_holder("no-such-hash").await.unwrap().is_none());
    let group = store.create_group(&home.id, "versioned", None).await.unwrap();
    let mut last = held.version;
    let mut moved = |version: i64, what: &str| {
        assert!(version > last, "{what} did not move the identity version");
        last = version;
    };
    store
        .set_roles(&owner.id, &home.id, &["auditor".to_owned()])
        .await
        .unwrap();
    moved(
        store.key_holder(&hash).await.unwrap().unwrap().version,
        "set_roles",
    );
    store
        .set_memberships(&home.id, &owner.id, std::slice::from_ref(&group.id))
        .await
        .unwrap();
    moved(
        store.key_holder(&hash).await.unwrap().unwrap().version,
        "set_memberships",
    );
    store
        .set_group_models(&home.id, &group.id, &["m".to_owned()])
        .await
        .unwrap();
    moved(
        store.key_holder(&hash).await.unwrap().unwrap().version,
        "set_group_models",
    );
    store
        .set_limits(&limits(&format!("group:{}", group.id), &home.id, Some(5)))
        .await
        .unwrap();
    moved(
        store.key_holder(&hash).await.unwrap().unwrap().version,
        "set_limits",
    );
    store.delete_group(&home.id, &group.id).await.unwrap();
    moved(
        store.key_holder(&hash).await.unwrap().unwrap().version,
        "delete_group",
    );
    let now = crate::now();
    let session = Session {
        id_hash: unique("session"),
        person_id: owner.id.clone(),
        csrf_token: "csrf".to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(1),
        revoked_at: None,
    };
    store.create_session(&session).await.unwrap();
    let held = store.session_holder(&session.id_hash).await.unwrap().unwrap();
    assert_eq!((held.credential, held.person.id), (session, owner.id));
}
