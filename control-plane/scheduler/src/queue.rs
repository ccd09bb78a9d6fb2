//! The scheduling queue: pods waiting for a decision, and unschedulable pods
//! parked with exponential back-off (1 s doubling to 10 s) until the cluster
//! changes (a node added or updated, a pod deleted or finished) — then they
//! are retried once their back-off has passed. A periodic flush retries
//! everything parked, so no pod waits forever on a missed event.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Parked pods are retried at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Parked {
    attempts: u32,
    since: Instant,
    /// Set when the cluster changed after the pod was parked.
    moved: bool,
}

#[derive(Debug, Default)]
pub struct Queue {
    active: VecDeque<String>,
    queued: HashSet<String>,
    parked: HashMap<String, Parked>,
    /// Failed attempts per pod, kept across retries until it is removed.
    attempts: HashMap<String, u32>,
}

fn backoff(attempts: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1 << attempts.saturating_sub(1).min(4))
        .min(BACKOFF_MAX)
}

impl Queue {
    /// Queues a pod for a decision (no-op if queued or parked).
    pub fn add(&mut self, key: &str) {
        if !self.queued.contains(key) && !self.parked.contains_key(key) {
            self.queued.insert(key.to_string());
            self.active.push_back(key.to_string());
        }
    }

    pub fn pop(&mut self) -> Option<String> {
        let key = self.active.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Forgets a pod (deleted or bound).
    pub fn remove(&mut self, key: &str) {
        self.parked.remove(key);
        self.attempts.remove(key);
        if self.queued.remove(key) {
            self.active.retain(|k| k != key);
        }
    }

    /// Parks a pod that fits nowhere.
    pub fn park(&mut self, key: &str, now: Instant) {
        let attempts = self.attempts.entry(key.to_string()).or_default();
        *attempts += 1;
        let attempts = *attempts;
        self.parked.insert(
            key.to_string(),
            Parked {
                attempts,
                since: now,
                moved: false,
            },
        );
    }

    /// The cluster changed: parked pods may fit now.
    pub fn cluster_changed(&mut self) {
        for p in self.parked.values_mut() {
            p.moved = true;
        }
    }

    /// Moves back to active the parked pods whose back-off passed and that
    /// saw a cluster change (or waited `FLUSH_EVERY`).
    pub fn requeue_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .parked
            .iter()
            .filter(|(_, p)| {
                let waited = now.duration_since(p.since);
                (p.moved && waited >= backoff(p.attempts)) || waited >= FLUSH_EVERY
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.parked.remove(&k);
            self.queued.insert(k.clone());
            self.active.push_back(k);
        }
    }

    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_pods_come_back_after_a_change_and_their_backoff() {
        let mut q = Queue::default();
        q.add("d/a");
        q.add("d/a");
        assert_eq!(q.len(), 1);
        let t0 = Instant::now();
        assert_eq!(q.pop().as_deref(), Some("d/a"));
        q.park("d/a", t0);
        q.add("d/a"); // parked pods are not re-added by unrelated events
        assert!(q.is_empty());
        q.requeue_due(t0 + Duration::from_secs(5));
        assert!(q.is_empty(), "no change yet");
        q.cluster_changed();
        q.requeue_due(t0 + Duration::from_millis(500));
        assert!(q.is_empty(), "back-off not over");
        q.requeue_due(t0 + Duration::from_secs(2));
        assert_eq!(q.pop().as_deref(), Some("d/a"));
        q.park("d/b", t0);
        q.requeue_due(t0 + FLUSH_EVERY);
        assert_eq!(q.pop().as_deref(), Some("d/b"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(10), BACKOFF_MAX);
    }
}
