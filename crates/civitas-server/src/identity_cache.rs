//! What people may do, cached per server and keyed by the identity
//! version (`IdentityStore::key_holder` reads it with the credential, in
//! the one query every request makes). Any change to roles, groups,
//! memberships, model access or limits moves the version in the database,
//! so every replica reloads at its next request: a cache that is never
//! stale by more than the request in flight.

use std::collections::HashMap;
use std::sync::Mutex;

use civitas_store::{Grants, Limits, Store, StoreResult};

/// Entries kept before the cache starts again from empty.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct IdentityCache {
    grants: Mutex<HashMap<String, (i64, Grants)>>,
    limits: Mutex<HashMap<String, (i64, Vec<Limits>)>>,
}

fn cached<T: Clone>(map: &Mutex<HashMap<String, (i64, T)>>, key: &str, version: i64) -> Option<T> {
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.get(key)
        .filter(|(at, _)| *at == version)
        .map(|(_, value)| value.clone())
}

fn remember<T>(map: &Mutex<HashMap<String, (i64, T)>>, key: String, version: i64, value: T) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (version, value));
}

impl IdentityCache {
    /// The roles and groups of `person_id` at `version`.
    pub async fn grants(&self, store: &dyn Store, person_id: &str, version: i64) -> StoreResult<Grants> {
        if let Some(grants) = cached(&self.grants, person_id, version) {
            return Ok(grants);
        }
        let grants = store.grants(person_id).await?;
        remember(&self.grants, person_id.to_owned(), version, grants.clone());
        Ok(grants)
    }

    /// The limits set on any of `scopes` at `version`.
    pub async fn limits(
        &self,
        store: &dyn Store,
        scopes: &[String],
        version: i64,
    ) -> StoreResult<Vec<Limits>> {
        let key = scopes.join(" ");
        if let Some(limits) = cached(&self.limits, &key, version) {
            return Ok(limits);
        }
        let limits = store.limits_for(scopes).await?;
        remember(&self.limits, key, version, limits.clone());
        Ok(limits)
    }
}
