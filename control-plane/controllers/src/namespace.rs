//! Namespace: empties a Terminating namespace, then lets it go.
//!
//! reconcile(ns) for a namespace with a deletionTimestamp and the
//! `kubernetes` finalizer in `spec.finalizers`: delete every object of every
//! namespaced kind the API serves (default propagation, so bound pods stop
//! gracefully through their node), and once nothing is left, remove the
//! finalizer through `namespaces/<name>/finalize`, which deletes the
//! namespace. While objects remain (pods finishing, finalizers pending), the
//! namespace is looked at again shortly; status conditions say what is left.
//! Creates into the namespace are already refused by the API server.

use std::time::Duration;

use serde_json::{Value, json};

use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, resource};
use kc_client::clock;
use kc_client::registry::{self, Resource};
use kc_client::status::ApiError;

/// The finalizer the Namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

/// How soon a namespace with remaining objects is looked at again.
const RECHECK: Duration = Duration::from_millis(500);

/// Whether `ns` is Terminating and still ours to empty.
pub fn needs_finalizing(ns: &Value) -> bool {
    ns["metadata"]["deletionTimestamp"].is_string()
        && ns["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// `ns` without our finalizer in `spec.finalizers`.
pub fn without_finalizer(ns: &Value) -> Value {
    let mut new = ns.clone();
    if let Some(list) = new["spec"]["finalizers"].as_array_mut() {
        list.retain(|f| f != FINALIZER);
    }
    new
}

/// Every namespaced kind the API serves (what a namespace can hold).
fn namespaced() -> impl Iterator<Item = &'static Resource> {
    registry::all().into_iter().filter(|r| r.namespaced)
}

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut namespaces = client.informer(resource("", "v1", "namespaces"));
    let requeue = queue.clone();
    let _worker = spawn_worker(client.clone(), queue.clone(), "namespace", move |c, k| {
        let requeue = requeue.clone();
        async move { reconcile(&c, &k, &requeue).await }
    });
    while let Some(ev) = namespaces.recv().await {
        if let Event::Applied(ns) = ev
            && needs_finalizing(&ns)
        {
            queue.add(ns["metadata"]["name"].as_str().unwrap_or(""));
        }
    }
}

/// What one pass over a namespace left behind: (plural, count) per kind.
type Remaining = Vec<(&'static str, usize)>;

/// Deletes what the namespace holds; returns what is still there.
async fn delete_contents(client: &Client, namespace: &str) -> Result<Remaining, ApiError> {
    let mut remaining = Vec::new();
    for r in namespaced() {
        let (items, _) = client.list(r, Some(namespace)).await?;
        if items.is_empty() {
            continue;
        }
        let deletes = items
            .iter()
            .filter(|o| !o["metadata"]["deletionTimestamp"].is_string())
            .map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap_or("");
                client.delete(r, namespace, name, json!({}))
            });
        for result in futures::future::join_all(deletes).await {
            match result {
                Err(e) if e.code != 404 => return Err(e),
                _ => {}
            }
        }
        let (left, _) = client.list(r, Some(namespace)).await?;
        if !left.is_empty() {
            remaining.push((r.plural, left.len()));
        }
    }
    Ok(remaining)
}

/// The `NamespaceContentRemaining` condition for what is left.
fn content_condition(remaining: &Remaining) -> Value {
    let (status, reason, message) = if remaining.is_empty() {
        (
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
        )
    } else {
        let kinds: Vec<String> = remaining
            .iter()
            .map(|(plural, n)| format!("{plural} has {n} resource instances"))
            .collect();
        (
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", kinds.join(", ")),
        )
    };
    json!({"type": "NamespaceContentRemaining", "status": status, "reason": reason,
           "message": message, "lastTransitionTime": clock::rfc3339_in(0)})
}

/// One pass over the namespace `name`.
pub async fn reconcile(client: &Client, name: &str, requeue: &WorkQueue) -> Result<(), ApiError> {
    let namespaces = resource("", "v1", "namespaces");
    let ns = match client.get(namespaces, "", name).await {
        Ok(ns) => ns,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if !needs_finalizing(&ns) {
        return Ok(());
    }
    let remaining = delete_contents(client, name).await?;
    if !remaining.is_empty() {
        let condition = content_condition(&remaining);
        let known = ns["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == condition["type"] && c["message"] == condition["message"])
        });
        if !known {
            let patch = json!({"status": {"phase": "Terminating", "conditions": [condition]}});
            client
                .merge_patch(namespaces, "", name, "status", &patch)
                .await?;
        }
        requeue.retry_after(name, RECHECK);
        return Ok(());
    }
    match client.finalize_namespace(without_finalizer(&ns)).await {
        Err(e) if e.code != 404 => Err(e),
        _ => {
            tracing::info!(namespace = name, "namespace emptied and finalized");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_terminating_namespaces_with_our_finalizer_are_finalized() {
        let active = json!({"metadata": {}, "spec": {"finalizers": ["kubernetes"]}});
        let terminating = json!({"metadata": {"deletionTimestamp": "2026-11-25T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes", "other"]}});
        assert!(!needs_finalizing(&active));
        assert!(needs_finalizing(&terminating));
        let done = without_finalizer(&terminating);
        assert_eq!(done["spec"]["finalizers"], json!(["other"]));
        assert!(!needs_finalizing(&done));
    }

    #[test]
    fn remaining_content_is_described_like_kubernetes() {
        let c = content_condition(&vec![("pods", 2)]);
        assert_eq!(c["status"], "True");
        assert_eq!(
            c["message"],
            "Some resources are remaining: pods has 2 resource instances"
        );
        assert_eq!(content_condition(&vec![])["status"], "False");
    }
}
