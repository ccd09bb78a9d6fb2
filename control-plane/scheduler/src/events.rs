//! The scheduler's event trail: `Normal Scheduled "Successfully assigned
//! <ns>/<pod> to <node>"` from `default-scheduler` for every bound pod, as
//! kube-scheduler records it (`kubectl describe pod` lists it).
//!
//! Recording never slows scheduling: events wait in a bounded queue
//! (`QUEUE`, as client-go's event broadcaster keeps 1,000) and are dropped,
//! not waited for, when it is full; a writer creates them with at most
//! `WRITERS` creates at once. Events are advisory in Kubernetes too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use kc_client::Binding;
use kc_client::client::Client;

/// Events waiting to be written at most; more are dropped.
const QUEUE: usize = 1000;
/// Event creates in flight at once.
const WRITERS: usize = 4;

struct Pending {
    object: Value,
    message: String,
}

/// Queues events for the writer; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
}

/// The message of a `Scheduled` event (kube-scheduler's wording).
pub fn scheduled_message(b: &Binding) -> String {
    format!(
        "Successfully assigned {}/{} to {}",
        b.namespace, b.pod, b.node
    )
}

impl Recorder {
    /// Starts the writer on `tasks`.
    pub fn start(client: Client, tasks: &mut JoinSet<()>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.spawn(write_events(client, rx));
        Self {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Records that the pod of `b` was bound (dropped if the queue is full).
    pub fn scheduled(&self, b: &Binding) {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": b.pod, "namespace": b.namespace, "uid": b.uid},
        });
        let pending = Pending {
            object,
            message: scheduled_message(b),
        };
        if self.tx.try_send(pending).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::debug!(dropped = n, "event queue full; Scheduled events dropped");
            }
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_events(client: Client, mut rx: mpsc::Receiver<Pending>) {
    let mut writing = JoinSet::new();
    while let Some(p) = rx.recv().await {
        while writing.len() >= WRITERS {
            writing.join_next().await;
        }
        let client = client.clone();
        writing.spawn(async move {
            client
                .event(&p.object, "Normal", "Scheduled", &p.message, super::NAME)
                .await
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduled_message_is_kube_schedulers() {
        let b = Binding::new("default", "web-1", Some("u"), "node-3");
        assert_eq!(
            scheduled_message(&b),
            "Successfully assigned default/web-1 to node-3"
        );
    }
}
