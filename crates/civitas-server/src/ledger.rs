//! Limit counters kept in memory, on leases from the database.
//!
//! Counting every model request in a database transaction makes the
//! database the gateway's bottleneck: SQLite takes one writer at a time,
//! and waiting writers back off by milliseconds. Instead each replica
//! takes a *lease* of requests from the database counters of a caller's
//! scopes (one transaction for many requests) and admits from it in
//! memory. A lease lasts [`LEASE`] at most; its size follows the rate at
//! which the last one was used, bounded by [`MAX_LEASE`] and by a
//! sixteenth of the smallest requests-per-minute limit, so that an idle
//! replica holds back little of a small limit. Requests leased and not
//! used are given back when the lease is renewed, or by the sweeper once
//! it has expired.
//!
//! What this keeps: no replica ever admits more than the database granted
//! it, so the requests-per-minute limits hold across replicas (a replica
//! alone is exact: it gives back before it asks again). What it costs:
//! another replica's unused lease counts until that replica gives it back
//! (within [`LEASE`] and a sweep), so a limit may refuse slightly early;
//! token and cost budgets are read from the database at each lease and
//! charged locally in between, so one replica sees the others' charges
//! up to [`LEASE`] late (they were already charged after the fact).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use civitas_store::{LimitHit, Limits, Returned, Store, StoreError, UsageCounter};

/// How long a lease may be used.
pub const LEASE: Duration = Duration::from_secs(1);
/// The most requests one lease takes.
pub const MAX_LEASE: i64 = 512;
/// Scope sets kept; past this, idle ones are forgotten first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Entry {
    /// The identity version the limits were read at.
    version: i64,
    limits: Vec<Limits>,
    /// The minute window the lease was granted in.
    minute: String,
    granted: i64,
    /// Requests admitted from the lease.
    used: i64,
    remaining: i64,
    expires: Instant,
    /// The scopes' counters as granted, with this replica's charges since.
    counters: Vec<UsageCounter>,
    /// A refusal that holds until the instant given.
    refused: Option<(LimitHit, Instant)>,
    used_at: Instant,
}

impl Entry {
    fn empty(version: i64, limits: &[Limits]) -> Entry {
        let now = Instant::now();
        Entry {
            version,
            limits: limits.to_vec(),
            minute: String::new(),
            granted: 0,
            used: 0,
            remaining: 0,
            expires: now,
            counters: Vec::new(),
            refused: None,
            used_at: now,
        }
    }

    /// The lease's unused requests, to give back.
    fn unused(&self) -> Option<Returned> {
        (self.remaining > 0).then(|| Returned {
            minute: self.minute.clone(),
            requests: self.remaining,
        })
    }

    /// How many requests to ask for next: twice the last lease when it ran
    /// out before it expired, what was used of it otherwise.
    fn next_want(&self, limits: &[Limits], lease_ran_out: bool) -> i64 {
        let want = if lease_ran_out {
            self.granted * 2
        } else {
            self.used
        };
        let cap = limits
            .iter()
            .filter_map(|limit| limit.requests_per_minute)
            .map(|per_minute| (per_minute / 16).max(1))
            .min()
            .unwrap_or(MAX_LEASE)
            .min(MAX_LEASE);
        want.clamp(1, cap)
    }

    /// The budget (tokens or cost) already spent, by the counters this
    /// replica knows.
    fn budget_spent(&self, now: DateTime<Utc>) -> Option<LimitHit> {
        self.limits.iter().find_map(|limit| {
            let counter = self
                .counters
                .iter()
                .find(|counter| counter.scope == limit.scope)?;
            let budgets = Limits {
                requests_per_minute: None,
                ..limit.clone()
            };
            counter.admit(&budgets, now).err()
        })
    }
}

/// The limit counters of this replica.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

/// The key of a set of scopes (limits are read in scope order).
fn key_of<'a>(scopes: impl Iterator<Item = &'a str>) -> String {
    scopes.collect::<Vec<_>>().join(" ")
}

impl Ledger {
    fn entry(&self, key: &str, version: i64, limits: &[Limits]) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get(key) {
            return Arc::clone(entry);
        }
        if entries.len() >= MAX_ENTRIES {
            // Entries in use are kept; the others have given back (or
            // their leases lapse with their minute).
            entries.retain(|_, entry| Arc::strong_count(entry) > 1);
        }
        let entry = Arc::new(tokio::sync::Mutex::new(Entry::empty(version, limits)));
        entries.insert(key.to_owned(), Arc::clone(&entry));
        entry
    }

    /// Admits one request under `limits` (read at identity `version`):
    /// from this replica's lease, or from a new one.
    pub async fn admit(
        &self,
        store: &dyn Store,
        limits: &[Limits],
        version: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<(), LimitHit>, StoreError> {
        let key = key_of(limits.iter().map(|limit| limit.scope.as_str()));
        let entry = self.entry(&key, version, limits);
        let mut entry = entry.lock().await;
        let instant = Instant::now();
        entry.used_at = instant;
        let minute = civitas_store::windows(now).0;
        let current = entry.version == version && entry.minute == minute;
        if current && instant < entry.expires {
            if let Some((hit, until)) = &entry.refused {
                if instant < *until {
                    return Ok(Err(hit.clone()));
                }
            }
            if entry.remaining > 0 {
                if let Some(hit) = entry.budget_spent(now) {
                    return Ok(Err(hit));
                }
                entry.remaining -= 1;
                entry.used += 1;
                return Ok(Ok(()));
            }
        }
        // A new lease: what is left of the last one goes back first (its
        // minute decides whether it still counts).
        let ran_out = current && instant < entry.expires && entry.remaining == 0 && entry.refused.is_none();
        let want = entry.next_want(limits, ran_out);
        let returned = entry.unused();
        let lease = store.lease(limits, want, returned.as_ref(), now).await?;
        entry.version = version;
        entry.limits = limits.to_vec();
        entry.minute = minute;
        entry.expires = Instant::now() + LEASE;
        match lease {
            Ok(lease) => {
                entry.granted = lease.granted;
                entry.used = 1;
                entry.remaining = lease.granted - 1;
                entry.counters = lease.counters;
                entry.refused = None;
                Ok(Ok(()))
            }
            Err(hit) => {
                entry.granted = 0;
                entry.used = 0;
                entry.remaining = 0;
                let hold = LEASE.min(Duration::from_secs(hit.retry_after_seconds));
                entry.refused = Some((hit.clone(), Instant::now() + hold));
                Ok(Err(hit))
            }
        }
    }

    /// Adds a finished request's use to this replica's view of its scopes.
    pub async fn charged(&self, scopes: &[String], tokens: i64, cost_micros: i64, now: DateTime<Utc>) {
        let key = key_of(scopes.iter().map(String::as_str));
        let entry = {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entries.get(&key).cloned()
        };
        if let Some(entry) = entry {
            let mut entry = entry.lock().await;
            for counter in &mut entry.counters {
                *counter = counter.charged(tokens, cost_micros, now);
            }
        }
    }

    /// Gives back the unused requests of expired leases, and forgets scope
    /// sets unused for two minutes. Returns how many requests went back.
    pub async fn sweep(&self, store: &dyn Store, now: DateTime<Utc>) -> i64 {
        let entries: Vec<(String, Arc<tokio::sync::Mutex<Entry>>)> = {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entries
                .iter()
                .map(|(key, entry)| (key.clone(), Arc::clone(entry)))
                .collect()
        };
        let instant = Instant::now();
        let mut given_back = 0;
        let mut idle = Vec::new();
        for (key, entry) in entries {
            let Ok(mut entry) = entry.try_lock() else {
                continue;
            };
            if entry.expires <= instant {
                if let Some(returned) = entry.unused() {
                    let limits = entry.limits.clone();
                    match store.lease(&limits, 0, Some(&returned), now).await {
                        Ok(_) => {
                            given_back += returned.requests;
                            entry.remaining = 0;
                        }
                        Err(error) => tracing::warn!(%error, "could not give back an unused lease"),
                    }
                }
            }
            if entry.remaining == 0 && instant.duration_since(entry.used_at) > Duration::from_secs(120) {
                idle.push(key);
            }
        }
        if !idle.is_empty() {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for key in idle {
                if entries
                    .get(&key)
                    .is_some_and(|entry| Arc::strong_count(entry) == 1)
                {
                    entries.remove(&key);
                }
            }
        }
        given_back
    }
}

/// Sweeps the ledger every [`LEASE`] until the server stops.
pub fn start_sweeper(state: crate::state::AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LEASE);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if state.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            state.ledger.sweep(state.store.as_ref(), Utc::now()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: Option<i64>) -> Limits {
        Limits {
            scope: "key:k".to_owned(),
            agency_id: "a".to_owned(),
            requests_per_minute: per_minute,
            tokens_per_minute: None,
            tokens_per_day: None,
            cost_per_month_micros: None,
        }
    }

    #[test]
    fn lease_sizes_follow_use_and_stay_small_under_small_limits() {
        let mut entry = Entry::empty(1, &[limit(None)]);
        assert_eq!(entry.next_want(&[limit(None)], false), 1);
        entry.granted = 40;
        entry.used = 40;
        entry.remaining = 0;
        assert_eq!(entry.next_want(&[limit(None)], true), 80);
        assert_eq!(entry.next_want(&[limit(Some(160))], true), 10);
        assert_eq!(entry.next_want(&[limit(Some(5))], true), 1);
        entry.granted = 400;
        assert_eq!(entry.next_want(&[limit(None)], true), MAX_LEASE);
        // Expired with 390 unused: the next asks for what was used.
        entry.used = 10;
        entry.remaining = 390;
        assert_eq!(entry.next_want(&[limit(None)], false), 10);
    }
}
