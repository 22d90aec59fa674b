//! Answers being written into workspace conversations on this replica:
//! one at a time per conversation, stoppable, and awaitable so that a page
//! asking for the conversation right after a stop sees the stored answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Generations {
    running: Mutex<HashMap<String, Running>>,
}

#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    /// Closed when the ticket is dropped (the answer is stored).
    done: watch::Receiver<()>,
}

/// The right to write one answer into one conversation; released (and the
/// waiters woken) when dropped, after the answer is stored.
#[derive(Debug)]
pub struct GenerationTicket {
    conversation_id: String,
    registry: Arc<Generations>,
    stop: CancellationToken,
    _done: watch::Sender<()>,
}

impl GenerationTicket {
    /// Cancelled when someone asks to stop this answer.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

impl Drop for GenerationTicket {
    fn drop(&mut self) {
        let mut running = self
            .registry
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        running.remove(&self.conversation_id);
    }
}

impl Generations {
    /// A ticket for `conversation_id`, or `None` while another answer is
    /// being written there.
    pub fn begin(self: &Arc<Self>, conversation_id: &str) -> Option<GenerationTicket> {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if running.contains_key(conversation_id) {
            return None;
        }
        let stop = CancellationToken::new();
        let (done_sender, done) = watch::channel(());
        running.insert(
            conversation_id.to_owned(),
            Running {
                stop: stop.clone(),
                done,
            },
        );
        Some(GenerationTicket {
            conversation_id: conversation_id.to_owned(),
            registry: Arc::clone(self),
            stop,
            _done: done_sender,
        })
    }

    /// Asks the answer being written in `conversation_id` to stop; `false`
    /// when none is.
    pub fn stop(&self, conversation_id: &str) -> bool {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match running.get(conversation_id) {
            Some(generation) => {
                generation.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits (at most `limit`) until no answer is being written in
    /// `conversation_id`.
    pub async fn settled(&self, conversation_id: &str, limit: Duration) {
        let done = {
            let running = self
                .running
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            running
                .get(conversation_id)
                .map(|generation| generation.done.clone())
        };
        if let Some(mut done) = done {
            // `changed` ends with an error when the ticket is dropped.
            let _ = tokio::time::timeout(limit, async { while done.changed().await.is_ok() {} }).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_answer_at_a_time_and_waiters_wake_when_it_is_stored() {
        let generations = Arc::new(Generations::default());
        let ticket = generations.begin("c1").unwrap();
        assert!(generations.begin("c1").is_none(), "a second answer was allowed");
        assert!(generations.begin("c2").is_some());
        let token = ticket.stop_token();
        assert!(!token.is_cancelled());
        assert!(generations.stop("c1"));
        assert!(token.is_cancelled());
        assert!(!generations.stop("nothing-running"));

        let waiter = {
            let generations = Arc::clone(&generations);
            tokio::spawn(async move {
                generations.settled("c1", Duration::from_secs(30)).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the waiter did not wait");
        drop(ticket);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(generations.begin("c1").is_some(), "the conversation stayed busy");
    }
}
