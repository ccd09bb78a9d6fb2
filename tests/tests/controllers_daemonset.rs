//! DaemonSet controller with hollow nodes: one pod per eligible node, a new
//! node gets its pod, status counts them.

use std::collections::BTreeSet;
use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers;
use kc_member::controllers::replicaset::controller_of;
use kc_member::hollow::{Fleet, HollowConfig};
use kc_tests::hollow::{ControlPlane, eventually, names};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn linux() -> HollowConfig {
    HollowConfig {
        labels: [("pool".to_string(), "edge".to_string())].into(),
        ..Default::default()
    }
}

async fn daemon_nodes(cp: &ControlPlane) -> BTreeSet<String> {
    cp.client
        .list(resource("", "v1", "pods"), Some("kube-system"))
        .await
        .expect("pods")
        .0
        .iter()
        .filter(|p| controller_of(p).is_some_and(|(k, _, _)| k == "DaemonSet"))
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_eligible_node() {
    let cp = ControlPlane::start().await;
    let _edge = Fleet::start(cp.client.clone(), names("edge", 2), linux())
        .await
        .expect("edge nodes");
    let _core = Fleet::start(
        cp.client.clone(),
        vec!["core-0".into()],
        HollowConfig::default(),
    )
    .await
    .expect("core node");
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    let sets = resource("apps", "v1", "daemonsets");
    cp.client
        .create(sets, "kube-system", json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "proxy", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": "proxy"}},
                "template": {"metadata": {"labels": {"app": "proxy"}},
                    "spec": {"nodeSelector": {"pool": "edge"}, "containers": [{"name": "c", "image": "proxy"}]}}}}))
        .await
        .expect("daemonset");
    let want: BTreeSet<String> = names("edge", 2).into_iter().collect();
    eventually(WAIT, "a running proxy on each edge node", || async {
        (daemon_nodes(&cp).await == want).then_some(())
    })
    .await;
    let _more = Fleet::start(cp.client.clone(), vec!["edge-new".into()], linux())
        .await
        .expect("new node");
    eventually(WAIT, "the new node's proxy", || async {
        daemon_nodes(&cp).await.contains("edge-new").then_some(())
    })
    .await;
    eventually(WAIT, "status counting 3", || async {
        let ds = cp.client.get(sets, "kube-system", "proxy").await.ok()?;
        (ds["status"]["desiredNumberScheduled"] == 3 && ds["status"]["numberReady"] == 3)
            .then_some(())
    })
    .await;
    assert_eq!(daemon_nodes(&cp).await.len(), 3, "none on core-0");
}
