//! A de-duplicating queue of object keys: adding a key already waiting is a
//! no-op, so a burst of events for one object is one reconcile. Failed
//! reconciles are retried after a delay.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct WorkQueue {
    inner: Arc<Mutex<(VecDeque<String>, HashSet<String>)>>,
    notify: Arc<Notify>,
}

impl WorkQueue {
    pub fn add(&self, key: &str) {
        let mut q = self.inner.lock().expect("queue lock");
        if q.1.insert(key.to_string()) {
            q.0.push_back(key.to_string());
            self.notify.notify_one();
        }
    }

    /// Adds `key` again after `delay` (a failed reconcile).
    pub fn retry_after(&self, key: &str, delay: Duration) {
        let q = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&key);
        });
    }

    /// The next key, waiting for one.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.inner.lock().expect("queue lock");
                if let Some(k) = q.0.pop_front() {
                    q.1.remove(&k);
                    return k;
                }
            }
            notified.await;
        }
    }
}

/// Aborts a spawned task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `reconcile` on each key of `queue`, one at a time, retrying failures
/// after half a second; stops when the returned guard is dropped.
pub fn spawn_worker<F, Fut>(
    client: kc_client::client::Client,
    queue: WorkQueue,
    what: &'static str,
    reconcile: F,
) -> AbortOnDrop
where
    F: Fn(kc_client::client::Client, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), kc_client::status::ApiError>> + Send,
{
    AbortOnDrop(tokio::spawn(async move {
        loop {
            let key = queue.next().await;
            if let Err(e) = reconcile(client.clone(), key.clone()).await {
                tracing::debug!(controller = what, %key, error = %e, "reconcile failed; retrying");
                queue.retry_after(&key, Duration::from_millis(500));
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_in_order() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        q.add("a");
        assert_eq!(q.next().await, "a");
    }
}
