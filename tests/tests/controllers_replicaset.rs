//! ReplicaSet and NodeLifecycle controllers with the scheduler, against an
//! in-process control plane with hollow nodes: replicas are kept, scaled,
//! replaced, and a dead worker's pods come back on the other nodes.

use std::time::{Duration, Instant};

use kc_member::client::resource;
use kc_member::controllers;
use kc_member::controllers::replicaset::{controller_of, is_ready};
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::scheduler;
use kc_tests::hollow::{ControlPlane, eventually, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "basicserver:0.42"}]}},
        },
    })
}

/// The RS's live (not deleting) pods.
async fn owned(cp: &ControlPlane, rs: &str) -> Vec<Value> {
    cp.pods("default")
        .await
        .into_iter()
        .filter(|p| controller_of(p).is_some_and(|(k, n, _)| k == "ReplicaSet" && n == rs))
        .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
        .collect()
}

async fn ready_count(cp: &ControlPlane, rs: &str, want: usize) {
    eventually(WAIT, &format!("{want} ready pods of {rs}"), || async {
        let pods = owned(cp, rs).await;
        (pods.len() == want && pods.iter().all(is_ready)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicasets_keep_scale_and_replace_pods() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 3), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    let sets = resource("apps", "v1", "replicasets");
    cp.client
        .create(sets, "default", replicaset("web", 5))
        .await
        .expect("create rs");
    ready_count(&cp, "web", 5).await;
    eventually(WAIT, "status.readyReplicas = 5", || async {
        let rs = cp.client.get(sets, "default", "web").await.ok()?;
        (rs["status"]["readyReplicas"] == 5 && rs["status"]["replicas"] == 5).then_some(())
    })
    .await;
    // Scale down.
    cp.client
        .merge_patch(
            sets,
            "default",
            "web",
            "",
            &json!({"spec": {"replicas": 2}}),
        )
        .await
        .expect("scale");
    ready_count(&cp, "web", 2).await;
    // A deleted pod is replaced.
    let victim = owned(&cp, "web").await[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    cp.client
        .delete(resource("", "v1", "pods"), "default", &victim, json!({}))
        .await
        .expect("delete pod");
    eventually(WAIT, "the deleted pod replaced", || async {
        let pods = owned(&cp, "web").await;
        (pods.len() == 2
            && pods
                .iter()
                .all(|p| p["metadata"]["name"] != victim.as_str() && is_ready(p)))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_pods_come_back_on_other_nodes() {
    let cp = ControlPlane::start().await;
    let fleet = Fleet::start(cp.client.clone(), names("node", 3), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    cp.client
        .create(
            resource("apps", "v1", "replicasets"),
            "default",
            replicaset("api", 6),
        )
        .await
        .expect("create rs");
    ready_count(&cp, "api", 6).await;
    fleet.kill("node-1");
    let killed = Instant::now();
    eventually(
        Duration::from_secs(40),
        "6 ready pods, none on node-1",
        || async {
            let pods = owned(&cp, "api").await;
            (pods.len() == 6
                && pods
                    .iter()
                    .all(|p| is_ready(p) && p["spec"]["nodeName"] != "node-1"))
            .then_some(())
        },
    )
    .await;
    println!(
        "pods of the dead worker running elsewhere after {:?}",
        killed.elapsed()
    );
    let node = cp
        .client
        .get(resource("", "v1", "nodes"), "", "node-1")
        .await
        .expect("node-1");
    let taints = node["spec"]["taints"].to_string();
    assert!(
        taints.contains("node.kubernetes.io/unreachable"),
        "{taints}"
    );
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned());
    assert_eq!(ready.unwrap()["status"], "Unknown");
}
