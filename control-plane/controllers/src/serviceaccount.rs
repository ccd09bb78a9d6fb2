//! ServiceAccount: every namespace has a `default` ServiceAccount (recreated
//! if deleted), as kube-controller-manager's serviceaccount controller does.

use serde_json::json;

use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, resource};
use kc_client::status::ApiError;

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut namespaces = client.informer(resource("", "v1", "namespaces"));
    let mut accounts = client.informer(resource("", "v1", "serviceaccounts"));
    let _worker = spawn_worker(
        client.clone(),
        queue.clone(),
        "serviceaccount",
        |c, ns| async move { reconcile(&c, &ns).await },
    );
    loop {
        tokio::select! {
            Some(ev) = namespaces.recv() => if let Event::Applied(o) = ev
                && let Some(ns) = o["metadata"]["name"].as_str()
            {
                queue.add(ns);
            },
            Some(ev) = accounts.recv() => if let Event::Deleted(o) = ev
                && o["metadata"]["name"] == "default"
                && let Some(ns) = o["metadata"]["namespace"].as_str()
            {
                queue.add(ns);
            },
            else => return,
        }
    }
}

/// Creates `default` in namespace `ns` unless it exists or `ns` is going.
pub async fn reconcile(client: &Client, ns: &str) -> Result<(), ApiError> {
    if !super::namespace_is_live(client, ns).await? {
        return Ok(());
    }
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": ns}});
    match client
        .create(resource("", "v1", "serviceaccounts"), ns, sa)
        .await
    {
        Err(e) if e.code != 409 && e.code != 403 && e.code != 404 => Err(e),
        _ => Ok(()),
    }
}
