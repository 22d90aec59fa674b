//! The gateway's routing: which deployments may take a request for a
//! model, in which order, and how long to wait before the next attempt.
//!
//! A model served by several `[[providers]]` is routed by its
//! `[[gateway.routes]]` entry (fail-over in order by default; weighted,
//! least busy, or lowest latency). Deployments cooling down after
//! failures are left out until their cool-down ends; then one request
//! probes each. The attempts themselves are made by
//! `routes::remote::forward_chat`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use civitas_config::{Config, GatewayConfig, RouteStrategy};
use rand::Rng;

use crate::fair_queue::{FairQueue, Priority};
use crate::providers::{Availability, RemoteProvider};

/// The deployments of each model and how to choose among them.
#[derive(Debug, Default)]
pub struct Gateway {
    routes: HashMap<String, Route>,
    pub config: GatewayConfig,
    /// Fair queues in front of capacities: `local` (the local model's
    /// slots) and each provider with `max_concurrent`.
    queues: HashMap<String, Arc<FairQueue>>,
}

#[derive(Debug)]
struct Route {
    strategy: RouteStrategy,
    deployments: Vec<Arc<RemoteProvider>>,
}

/// The deployments to try for one request, in order, or how long until
/// one takes traffic again.
#[derive(Debug)]
pub enum Candidates {
    Try(Vec<Arc<RemoteProvider>>, Probes),
    /// Every deployment is cooling down; the soonest is back after this.
    AllCooling(Duration),
    /// No deployment serves the model.
    None,
}

impl Gateway {
    pub fn new(
        config: &Config,
        providers: &[Arc<RemoteProvider>],
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Gateway {
        let mut queues = HashMap::new();
        if !config.models.chat.is_empty() {
            let queue = FairQueue::new(
                "local",
                config.models.slots as usize,
                config.models.queue_depth as usize,
                metrics.clone(),
            );
            queues.insert("local".to_owned(), queue);
        }
        for provider in providers {
            if let Some(capacity) = provider.max_concurrent {
                let queue = FairQueue::new(
                    &provider.name,
                    capacity as usize,
                    config.gateway.max_queued as usize,
                    metrics.clone(),
                );
                queues.insert(provider.name.clone(), queue);
            }
        }
        let mut routes: HashMap<String, Route> = HashMap::new();
        for provider in providers {
            for model in &provider.models {
                routes
                    .entry(model.clone())
                    .or_insert_with(|| Route {
                        strategy: RouteStrategy::Failover,
                        deployments: Vec::new(),
                    })
                    .deployments
                    .push(Arc::clone(provider));
            }
        }
        for configured in &config.gateway.routes {
            let Some(route) = routes.get_mut(&configured.model) else {
                continue;
            };
            route.strategy = configured.strategy;
            if !configured.deployments.is_empty() {
                route.deployments = configured
                    .deployments
                    .iter()
                    .filter_map(|name| providers.iter().find(|provider| &provider.name == name).cloned())
                    .collect();
            }
        }
        Gateway {
            routes,
            config: config.gateway.clone(),
            queues,
        }
    }

    /// A turn in the fair queue in front of `name` (`local`, or a
    /// provider) for `principal`'s request; `None` when its capacity is
    /// not limited. A full queue answers 429 `queue_full`.
    pub async fn turn(
        &self,
        name: &str,
        principal: &civitas_identity::Principal,
        priority: Priority,
    ) -> Result<Option<crate::fair_queue::Permit>, crate::error::ApiError> {
        let Some(queue) = self.queues.get(name) else {
            return Ok(None);
        };
        take_turn(queue, priority, &tenant_of(principal)).await.map(Some)
    }

    pub fn serves(&self, model: &str) -> bool {
        self.routes.contains_key(model)
    }

    /// Every deployment of `model`, in its configured order.
    pub fn deployments(&self, model: &str) -> &[Arc<RemoteProvider>] {
        self.routes
            .get(model)
            .map_or(&[], |route| route.deployments.as_slice())
    }

    /// The deployments to try for `model` now, best first: those taking
    /// traffic in the route's order, then one whose cool-down is over (it
    /// is probed).
    pub fn candidates(&self, model: &str) -> Candidates {
        let Some(route) = self.routes.get(model) else {
            return Candidates::None;
        };
        let mut ready = Vec::new();
        let mut probes = Vec::new();
        let mut soonest: Option<Duration> = None;
        for deployment in &route.deployments {
            match deployment.health.availability() {
                Availability::Ready => ready.push(Arc::clone(deployment)),
                Availability::Probe => probes.push(Arc::clone(deployment)),
                Availability::Cooling(left) => {
                    soonest = Some(soonest.map_or(left, |soonest| soonest.min(left)));
                }
            }
        }
        order(route.strategy, &mut ready);
        // Deployments back from their cool-down are tried first, by one
        // request each: that is their probe.
        let claimed: Vec<Arc<RemoteProvider>> = probes
            .into_iter()
            .filter(|deployment| deployment.health.claim_probe())
            .collect();
        let mut candidates = claimed.clone();
        candidates.extend(ready);
        match (candidates.is_empty(), soonest) {
            (false, _) => Candidates::Try(
                candidates,
                Probes {
                    claimed,
                    attempted: Vec::new(),
                },
            ),
            (true, Some(left)) => Candidates::AllCooling(left),
            (true, None) => Candidates::AllCooling(Duration::from_secs(1)),
        }
    }

    /// How long to wait before attempt `attempt` (1 for the first retry):
    /// full jitter over an exponential back-off.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .config
            .retry_backoff_ms
            .saturating_mul(1 << attempt.saturating_sub(1).min(6));
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }

    pub fn cooldown(&self) -> Duration {
        Duration::from_secs(self.config.cooldown_seconds)
    }
}

/// The probes one request claimed: those it does not attempt (it was
/// answered first, or the deployment is not cleared for its level) are
/// released when it ends, for another request to make.
#[derive(Debug)]
pub struct Probes {
    claimed: Vec<Arc<RemoteProvider>>,
    attempted: Vec<String>,
}

impl Probes {
    /// A probe claimed for `deployment` and not made yet.
    pub fn pending(&self, deployment: &RemoteProvider) -> bool {
        self.claimed.iter().any(|claimed| claimed.name == deployment.name)
            && !self.attempted.contains(&deployment.name)
    }

    /// `deployment` is being attempted: its outcome settles its probe.
    pub fn attempting(&mut self, deployment: &RemoteProvider) {
        self.attempted.push(deployment.name.clone());
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        for deployment in &self.claimed {
            if !self.attempted.contains(&deployment.name) {
                deployment.health.release_probe();
            }
        }
    }
}

/// Orders the deployments taking traffic by the route's strategy.
fn order(strategy: RouteStrategy, deployments: &mut [Arc<RemoteProvider>]) {
    match strategy {
        RouteStrategy::Failover => {}
        RouteStrategy::LeastBusy => deployments.sort_by_key(|deployment| deployment.health.in_flight()),
        // Unmeasured deployments first: they get measured.
        RouteStrategy::LowestLatency => deployments.sort_by_key(|deployment| deployment.health.latency()),
        RouteStrategy::Weighted => {
            // Each place drawn in proportion to the weights left.
            let mut rng = rand::rng();
            for place in 0..deployments.len() {
                let total: u64 = deployments[place..]
                    .iter()
                    .map(|deployment| u64::from(deployment.weight))
                    .sum();
                if total == 0 {
                    break;
                }
                let mut draw = rng.random_range(0..total);
                let mut chosen = place;
                for (offset, deployment) in deployments[place..].iter().enumerate() {
                    let weight = u64::from(deployment.weight);
                    if draw < weight {
                        chosen = place + offset;
                        break;
                    }
                    draw -= weight;
                }
                deployments.swap(place, chosen);
            }
        }
    }
}

/// Whose turn a request takes in a fair queue: its agency and team (the
/// first group of the person, else the person).
pub fn tenant_of(principal: &civitas_identity::Principal) -> String {
    let team = principal.grants.groups.first().map_or_else(
        || format!("person:{}", principal.id()),
        |group| format!("group:{}", group.id),
    );
    format!("{}/{team}", principal.person.agency_id)
}

/// Waits for a turn in `queue`; a full queue answers 429 `queue_full`.
async fn take_turn(
    queue: &Arc<FairQueue>,
    priority: Priority,
    tenant: &str,
) -> Result<crate::fair_queue::Permit, crate::error::ApiError> {
    queue.acquire(priority, tenant, 1.0).await.map_err(|_| {
        let mut error = crate::error::ApiError::new(
            civitas_types::ErrorCode::QueueFull,
            format!(
                "too many requests are waiting for `{}`; try again shortly",
                queue.name
            ),
        );
        error.retry_after_seconds = Some(1);
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use civitas_config::{ProviderConfig, RouteConfig};

    fn provider(name: &str, weight: u32) -> Arc<RemoteProvider> {
        Arc::new(
            RemoteProvider::from_config(&ProviderConfig {
                name: name.to_owned(),
                base_url: format!("http://{name}.invalid/v1"),
                models: vec!["big".to_owned()],
                weight,
                ..ProviderConfig::default()
            })
            .unwrap(),
        )
    }

    fn names(candidates: Candidates) -> Vec<String> {
        match candidates {
            Candidates::Try(list, _) => list.iter().map(|p| p.name.clone()).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn gateway(strategy: RouteStrategy, providers: &[Arc<RemoteProvider>], order: &[&str]) -> Gateway {
        let mut config = Config::default();
        config.gateway.routes.push(RouteConfig {
            model: "big".to_owned(),
            strategy,
            deployments: order.iter().map(|name| (*name).to_owned()).collect(),
        });
        Gateway::new(&config, providers, None)
    }

    #[test]
    fn fail_over_keeps_the_order_and_leaves_cooling_deployments_out() {
        let providers = [provider("a", 1), provider("b", 1), provider("c", 1)];
        let gateway = gateway(RouteStrategy::Failover, &providers, &["c", "a", "b"]);
        assert_eq!(names(gateway.candidates("big")), ["c", "a", "b"]);
        assert!(matches!(gateway.candidates("small"), Candidates::None));
        providers[2].health.failed(1, Duration::from_secs(60));
        assert_eq!(names(gateway.candidates("big")), ["a", "b"]);
        providers[0].health.failed(1, Duration::from_secs(60));
        providers[1].health.failed(1, Duration::from_secs(30));
        match gateway.candidates("big") {
            Candidates::AllCooling(left) => {
                assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(25))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_deployment_back_from_cool_down_is_probed_by_one_request_first() {
        let providers = [provider("a", 1), provider("b", 1), provider("c", 1)];
        let gateway = gateway(RouteStrategy::Failover, &providers, &[]);
        providers[0].health.failed(1, Duration::from_millis(1));
        providers[2].health.failed(1, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        let Candidates::Try(list, mut probes) = gateway.candidates("big") else {
            panic!()
        };
        assert_eq!(
            list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "c", "b"]
        );
        // While the probes are out, the others go on without them.
        assert_eq!(names(gateway.candidates("big")), ["b"]);
        // The request tried `a`, which answered; it never reached `c`,
        // whose probe is released when it ends.
        probes.attempting(&list[0]);
        providers[0].health.succeeded(Duration::from_millis(2));
        drop(probes);
        assert_eq!(names(gateway.candidates("big")), ["c", "a", "b"]);
    }

    #[test]
    fn least_busy_lowest_latency_and_weights_order_the_deployments() {
        let providers = [provider("a", 1), provider("b", 1), provider("c", 0)];
        let busy = gateway(RouteStrategy::LeastBusy, &providers, &[]);
        use crate::providers::InFlight;
        let _held = (
            InFlight::begin(&providers[0]),
            InFlight::begin(&providers[0]),
            InFlight::begin(&providers[1]),
        );
        assert_eq!(names(busy.candidates("big")), ["c", "b", "a"]);

        let fast = gateway(RouteStrategy::LowestLatency, &providers, &[]);
        providers[0].health.succeeded(Duration::from_millis(5));
        providers[1].health.succeeded(Duration::from_millis(50));
        assert_eq!(
            names(fast.candidates("big")),
            ["c", "a", "b"],
            "the unmeasured first"
        );
        providers[2].health.succeeded(Duration::from_millis(500));
        assert_eq!(names(fast.candidates("big")), ["a", "b", "c"]);

        let heavy = provider("heavy", 9);
        let light = provider("light", 1);
        let weighted = gateway(
            RouteStrategy::Weighted,
            &[Arc::clone(&heavy), Arc::clone(&light)],
            &[],
        );
        let first_heavy = (0..2_000)
            .filter(|_| names(weighted.candidates("big"))[0] == "heavy")
            .count();
        // 90 % expected; far outside chance either way.
        assert!((1_650..=1_950).contains(&first_heavy), "{first_heavy}");
    }

    #[test]
    fn back_off_grows_and_is_jittered() {
        let gateway = Gateway {
            config: GatewayConfig {
                retry_backoff_ms: 100,
                ..GatewayConfig::default()
            },
            ..Gateway::default()
        };
        for attempt in 1..=4 {
            let ceiling = Duration::from_millis(100 << (attempt - 1));
            assert!((0..50).all(|_| gateway.backoff(attempt) <= ceiling));
        }
        assert!((0..50).any(|_| gateway.backoff(3) != gateway.backoff(3)));
    }
}
