//! The controller manager: level-triggered controllers that drive objects
//! toward their spec, running only on the member holding the
//! `kube-system/kube-controller-manager` lease (see `leader`).
//!
//! Every controller has the same shape (`work_queue`): informers feed keys
//! into a de-duplicating queue, and `reconcile(key)` reads the *current*
//! state through the API and makes one step toward the desired state.
//! Nothing is remembered between reconciles, so a restart or a leader change
//! in the middle of a rollout converges to the same state.

pub mod apiserver_endpoints;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod garbage_collector;
pub mod job;
pub mod job_index;
pub mod namespace;
pub mod node_lifecycle;
pub mod replicaset;
pub mod root_ca;
pub mod serviceaccount;
pub mod work_queue;

use tokio::task::JoinSet;

use kc_client::client::Client;
use kc_client::leader::{self, LeaderConfig};

/// Runs a controller-manager candidate on this member; `root_ca` is the
/// cluster CA the root CA publisher puts in every namespace (none: not
/// published).
pub fn start(
    client: Client,
    identity: &str,
    root_ca: Option<String>,
) -> tokio::task::JoinHandle<()> {
    let client = client.as_manager("kube-controller-manager");
    let config = LeaderConfig::new("kube-controller-manager", identity);
    tokio::spawn(leader::run(client.clone(), config, move || {
        run(client.clone(), root_ca.clone())
    }))
}

/// Every controller, until aborted (loss of leadership).
pub async fn run(client: Client, root_ca: Option<String>) {
    let mut set = JoinSet::new();
    if let Some(ca) = root_ca {
        set.spawn(root_ca::run(client.clone(), ca));
    }
    set.spawn(replicaset::run(client.clone(), replicaset::REPLICA_SETS));
    set.spawn(replicaset::run(
        client.clone(),
        replicaset::REPLICATION_CONTROLLERS,
    ));
    set.spawn(deployment::run(client.clone()));
    set.spawn(endpoints::run(client.clone()));
    set.spawn(serviceaccount::run(client.clone()));
    set.spawn(garbage_collector::run(client.clone()));
    set.spawn(daemonset::run(client.clone()));
    set.spawn(job::run(client.clone()));
    set.spawn(cronjob::run(client.clone()));
    set.spawn(namespace::run(client.clone()));
    set.spawn(node_lifecycle::run(
        client.clone(),
        node_lifecycle::Timing::default(),
    ));
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a controller stopped");
        }
    }
}

/// Whether namespace `ns` exists and is not being deleted: controllers
/// that keep an object in every namespace (ServiceAccount `default`,
/// `kube-root-ca.crt`) leave the others alone.
pub async fn namespace_is_live(
    client: &Client,
    ns: &str,
) -> Result<bool, kc_client::status::ApiError> {
    match client
        .get(kc_client::client::resource("", "v1", "namespaces"), "", ns)
        .await
    {
        Ok(n) => Ok(!n["metadata"]["deletionTimestamp"].is_string()),
        Err(e) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// `namespace/name` split back.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}
