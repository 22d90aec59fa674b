//! What people may do, cached per server and keyed by the identity
//! version (`IdentityStore::key_holder` reads it with the credential, in
//! the one query every request makes). Any change to roles, groups,
//! memberships, model access or limits moves the version in the database,
//! so every replica reloads at its next request: a cache that is never
//! stale by more than the request in flight.
//!
//! API keys found valid are kept for `auth.key_cache_seconds` (2 s by
//! default), so that the API's hot path reads nothing from the database;
//! any state-changing request outside `/v1/` forgets them all on this
//! server, and other replicas see a change within those seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use civitas_store::{ApiKey, Grants, Holder, Limits, Store, StoreResult};

/// Entries kept before the cache starts again from empty.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct IdentityCache {
    grants: Mutex<HashMap<String, (i64, Grants)>>,
    limits: Mutex<HashMap<String, (i64, Vec<Limits>)>>,
    /// API keys found valid, by the hash of their secret, with when.
    keys: Mutex<HashMap<String, (Instant, Holder<ApiKey>)>>,
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
    /// The holder of the key whose secret hashes to `hash`, as found less
    /// than `fresh_for` ago.
    pub fn key(&self, hash: &str, fresh_for: Duration) -> Option<(Instant, Holder<ApiKey>)> {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.get(hash).filter(|(at, _)| at.elapsed() < fresh_for).cloned()
    }

    /// Keeps a valid key's holder, found at `at`.
    pub fn remember_key(&self, hash: &str, at: Instant, holder: Holder<ApiKey>) {
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.len() >= MAX_ENTRIES {
            keys.clear();
        }
        keys.insert(hash.to_owned(), (at, holder));
    }

    /// Forgets every key: something that may change what they allow was
    /// done on this server.
    pub fn forget_keys(&self) {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

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
