//! The binder: writes the scheduler's decisions as batched bindings.
//!
//! The scheduling loop decides far faster than single store writes commit,
//! so its decisions queue here and each `Client::bind_all` call takes
//! whatever is queued when the previous one returns (adaptive batching: no
//! timer, so an idle cluster's single pod is bound at once, and a burst
//! rides in few large transactions). `BINDERS` calls run at once, so one
//! batch's reads overlap another's commit. Every result goes back to the
//! loop, which keeps or drops its assumption.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use kc_client::Binding;
use kc_client::client::Client;
use kc_client::status::ApiError;

/// Batches in flight at once.
const BINDERS: usize = 2;
/// Bindings per `bind_all` call at most.
const MAX_BATCH: usize = 2048;

/// A decision to write: pod `key` (`namespace/name`) to `binding.node`.
pub struct Decided {
    pub key: String,
    pub binding: Binding,
}

/// What a finished binding reports.
pub struct Bound {
    pub key: String,
    pub binding: Binding,
    pub result: Result<(), ApiError>,
}

/// Starts the binders on `tasks` (they end when the returned sender and
/// the loop's `done` receiver are dropped, or with the `JoinSet`).
pub fn start(
    client: Client,
    done: mpsc::UnboundedSender<Bound>,
    tasks: &mut JoinSet<()>,
) -> mpsc::UnboundedSender<Decided> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..BINDERS {
        let (client, done, rx) = (client.clone(), done.clone(), rx.clone());
        tasks.spawn(async move { bind_batches(client, rx, done).await });
    }
    tx
}

/// Takes the first decision waiting (waiting for one) and every other one
/// already queued, up to `MAX_BATCH`.
async fn next_batch(rx: &Mutex<mpsc::UnboundedReceiver<Decided>>) -> Option<Vec<Decided>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn bind_batches(
    client: Client,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Decided>>>,
    done: mpsc::UnboundedSender<Bound>,
) {
    while let Some(batch) = next_batch(&rx).await {
        let (keys, bindings): (Vec<String>, Vec<Binding>) =
            batch.into_iter().map(|d| (d.key, d.binding)).unzip();
        let results = client.bind_all(&bindings).await;
        tracing::trace!(bindings = bindings.len(), "batch bound");
        for ((key, binding), result) in keys.into_iter().zip(bindings).zip(results) {
            let bound = Bound {
                key,
                binding,
                result,
            };
            if done.send(bound).is_err() {
                return;
            }
        }
    }
}
