//! Garbage collection with the three propagation policies, through the same
//! delete options kubectl sends (`--cascade=background|orphan|foreground`).

use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers::replicaset::controller_of;
use kc_tests::hollow::{ControlPlane, HollowCluster, eventually};
use serde_json::{Value, json};

// Foreground deletion takes several garbage-collector passes (one a second)
// and a hollow kubelet's confirmation per pod: 6-16 s on a 2-core machine,
// before and after the control-plane split; the wait leaves room for load.
const WAIT: Duration = Duration::from_secs(60);

fn replicaset(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
}

async fn pods_of(cp: &ControlPlane, app: &str) -> Vec<Value> {
    cp.pods("default")
        .await
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .collect()
}

async fn two_pods(cp: &ControlPlane, app: &str) {
    eventually(WAIT, &format!("2 pods of {app}"), || async {
        (pods_of(cp, app).await.len() == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletes_dependents_and_orphan_keeps_them() {
    let cp = HollowCluster::start(2).await;
    let sets = resource("apps", "v1", "replicasets");
    for name in ["bg", "orphan"] {
        cp.client
            .create(sets, "default", replicaset(name))
            .await
            .expect("rs");
        two_pods(&cp, name).await;
    }
    cp.client
        .delete(sets, "default", "bg", json!({}))
        .await
        .expect("delete bg");
    cp.client
        .delete(
            sets,
            "default",
            "orphan",
            json!({"propagationPolicy": "Orphan"}),
        )
        .await
        .expect("delete orphan");
    eventually(WAIT, "bg's pods collected", || async {
        pods_of(&cp, "bg").await.is_empty().then_some(())
    })
    .await;
    eventually(WAIT, "the orphaning ReplicaSet gone", || async {
        cp.client
            .get(sets, "default", "orphan")
            .await
            .err()
            .filter(|e| e.code == 404)
            .map(|_| ())
    })
    .await;
    // Its pods stay, without an owner, and are not collected later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = pods_of(&cp, "orphan").await;
    assert_eq!(kept.len(), 2, "orphaned pods kept");
    assert!(
        kept.iter()
            .all(|p| controller_of(p).is_none() && !p["metadata"]["deletionTimestamp"].is_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletes_dependents_before_the_owner() {
    let cp = HollowCluster::start(2).await;
    let deploys = resource("apps", "v1", "deployments");
    let mut d = replicaset("fg");
    d["kind"] = json!("Deployment");
    cp.client
        .create(deploys, "default", d)
        .await
        .expect("deployment");
    two_pods(&cp, "fg").await;
    cp.client
        .delete(
            deploys,
            "default",
            "fg",
            json!({"propagationPolicy": "Foreground"}),
        )
        .await
        .expect("delete");
    let during = cp
        .client
        .get(deploys, "default", "fg")
        .await
        .expect("still there while dependents go");
    assert!(
        during["metadata"]["finalizers"]
            .to_string()
            .contains("foregroundDeletion")
    );
    eventually(WAIT, "deployment, replicaset and pods gone", || async {
        let gone = cp.client.get(deploys, "default", "fg").await.is_err()
            && pods_of(&cp, "fg").await.is_empty()
            && cp
                .client
                .list(resource("apps", "v1", "replicasets"), Some("default"))
                .await
                .ok()?
                .0
                .is_empty();
        gone.then_some(())
    })
    .await;
}
