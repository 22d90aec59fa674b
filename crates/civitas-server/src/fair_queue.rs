//! A priority queue with weighted fair sharing in front of a model with
//! limited capacity (the local model's slots, a deployment's
//! `max_concurrent`).
//!
//! Requests take a permit; when none is free they wait. Waiting requests
//! are served by class first — interactive chat, then API traffic, then
//! batch work — and within a class by weighted fair queuing between
//! tenants (an agency and team): each tenant's requests get virtual
//! finish times one after the other (1/weight apart), starting no earlier
//! than the queue's virtual clock, and the earliest finish goes first. A
//! tenant sending a thousand requests therefore waits behind its own,
//! while another tenant's single request goes next. A request that gives
//! up (its client left) leaves the queue; a permit handed to a request
//! that is gone is passed on.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Who goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A person waiting in the workspace.
    Interactive = 0,
    /// A program calling the API.
    Api = 1,
    /// Work nobody watches (batches).
    Batch = 2,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Api => "api",
            Priority::Batch => "batch",
        }
    }
}

/// The queue is full: too many requests wait already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

#[derive(Debug)]
struct Waiter {
    priority: Priority,
    finish: f64,
    seq: u64,
    tx: oneshot::Sender<Permit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then(self.finish.total_cmp(&other.finish))
            .then(self.seq.cmp(&other.seq))
    }
}

#[derive(Debug, Default)]
struct Inner {
    running: usize,
    waiting: BinaryHeap<Reverse<Waiter>>,
    /// The finish time of the last request served.
    clock: f64,
    /// Each tenant's last finish time.
    finish: HashMap<String, f64>,
    seq: u64,
}

/// One queue in front of a capacity.
#[derive(Debug)]
pub struct FairQueue {
    pub name: String,
    capacity: usize,
    max_waiting: usize,
    inner: Mutex<Inner>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The right to run one request; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    queue: Option<Arc<FairQueue>>,
    /// How long the request waited for it.
    pub waited: Duration,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.release();
        }
    }
}

impl FairQueue {
    pub fn new(
        name: &str,
        capacity: usize,
        max_waiting: usize,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Arc<FairQueue> {
        Arc::new(FairQueue {
            name: name.to_owned(),
            capacity: capacity.max(1),
            max_waiting,
            inner: Mutex::new(Inner::default()),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Waits for a permit for a request of `tenant` at `priority`, whose
    /// share is `weight` (1 for an equal share).
    pub async fn acquire(
        self: &Arc<Self>,
        priority: Priority,
        tenant: &str,
        weight: f64,
    ) -> Result<Permit, QueueFull> {
        let started = Instant::now();
        let receiver = {
            let mut inner = self.lock();
            if inner.running < self.capacity && inner.waiting.is_empty() {
                inner.running += 1;
                if let Some(metrics) = &self.metrics {
                    metrics.queue_waited(&self.name, Duration::ZERO);
                }
                return Ok(Permit {
                    queue: Some(Arc::clone(self)),
                    waited: Duration::ZERO,
                });
            }
            if inner.waiting.len() >= self.max_waiting {
                return Err(QueueFull);
            }
            let start = inner.finish.get(tenant).copied().unwrap_or(0.0).max(inner.clock);
            let finish = start + 1.0 / weight.max(0.001);
            inner.finish.insert(tenant.to_owned(), finish);
            inner.seq += 1;
            let (tx, rx) = oneshot::channel();
            let seq = inner.seq;
            inner.waiting.push(Reverse(Waiter {
                priority,
                finish,
                seq,
                tx,
            }));
            self.gauge(priority, 1);
            rx
        };
        let permit = receiver.await;
        self.gauge(priority, -1);
        match permit {
            Ok(mut permit) => {
                permit.waited = started.elapsed();
                if let Some(metrics) = &self.metrics {
                    metrics.queue_waited(&self.name, permit.waited);
                }
                Ok(permit)
            }
            // The queue itself went away: nothing will ever be served.
            Err(_) => Err(QueueFull),
        }
    }

    fn gauge(&self, priority: Priority, change: i64) {
        if let Some(metrics) = &self.metrics {
            metrics.queue_waiting(&self.name, priority.as_str(), change);
        }
    }

    /// A permit came back: the next waiter still there gets it.
    fn release(self: &Arc<Self>) {
        let mut inner = self.lock();
        while let Some(Reverse(waiter)) = inner.waiting.pop() {
            inner.clock = inner.clock.max(waiter.finish);
            let permit = Permit {
                queue: Some(Arc::clone(self)),
                waited: Duration::ZERO,
            };
            match waiter.tx.send(permit) {
                Ok(()) => return,
                // It gave up waiting: the permit goes to the next one
                // (disarmed, so that dropping it releases nothing).
                Err(mut permit) => {
                    permit.queue = None;
                    if let Some(metrics) = &self.metrics {
                        metrics.queue_waiting(&self.name, waiter.priority.as_str(), -1);
                    }
                }
            }
        }
        inner.running = inner.running.saturating_sub(1);
        if inner.waiting.is_empty() && inner.running == 0 {
            // Idle: forget finish times (they only order waiting requests).
            inner.finish.clear();
            inner.clock = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order in which queued requests are served, one slot.
    async fn served(arrivals: &[(Priority, &str)]) -> Vec<String> {
        let queue = FairQueue::new("t", 1, 100, None);
        let first = queue.acquire(Priority::Api, "holder", 1.0).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (index, (priority, tenant)) in arrivals.iter().enumerate() {
            let shared = Arc::clone(&queue);
            let order = Arc::clone(&order);
            let (priority, tenant) = (*priority, (*tenant).to_owned());
            tasks.push(tokio::spawn(async move {
                let permit = shared.acquire(priority, &tenant, 1.0).await.unwrap();
                order.lock().unwrap().push(format!("{tenant}{index}"));
                drop(permit);
            }));
            // Arrive in this order.
            while queue.waiting() < index + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        order
    }

    #[tokio::test]
    async fn chat_goes_before_api_before_batch_and_tenants_share_fairly() {
        use Priority::{Api, Batch, Interactive};
        // A team's burst of five does not hold back another team's one.
        let order = served(&[
            (Api, "a"),
            (Api, "a"),
            (Api, "a"),
            (Api, "a"),
            (Api, "a"),
            (Api, "b"),
        ])
        .await;
        assert_eq!(order, ["a0", "b5", "a1", "a2", "a3", "a4"]);
        // A person's chat goes before queued API and batch work.
        let order = served(&[
            (Batch, "a"),
            (Api, "b"),
            (Interactive, "c"),
            (Batch, "d"),
            (Interactive, "a"),
        ])
        .await;
        assert_eq!(order, ["c2", "a4", "b1", "a0", "d3"]);
    }

    #[tokio::test]
    async fn capacity_is_respected_a_full_queue_refuses_and_leavers_pass_their_turn() {
        let queue = FairQueue::new("t", 2, 1, None);
        let one = queue.acquire(Priority::Api, "a", 1.0).await.unwrap();
        let two = queue.acquire(Priority::Api, "a", 1.0).await.unwrap();
        // The third waits; a fourth finds the queue full.
        let waiting = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.acquire(Priority::Api, "b", 1.0).await })
        };
        while queue.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            queue.acquire(Priority::Api, "c", 1.0).await.unwrap_err(),
            QueueFull
        );
        // It gives up; the freed permit is not lost with it.
        waiting.abort();
        let _ = waiting.await;
        drop(one);
        let three = queue.acquire(Priority::Api, "c", 1.0).await.unwrap();
        assert_eq!(three.waited, Duration::ZERO);
        drop((two, three));
        assert_eq!(queue.lock().running, 0);
    }
}
