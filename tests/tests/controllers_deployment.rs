//! Deployment controller with ReplicaSets, the scheduler and hollow nodes:
//! a rollout completes with Kubernetes' status and revision annotations, a
//! rolling update never drops below `replicas - maxUnavailable` ready pods
//! nor goes above `replicas + maxSurge`, and an undo (what `kubectl rollout
//! undo` sends: the old template) reuses the old ReplicaSet as a new revision.

use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers;
use kc_member::controllers::deployment::REVISION;
use kc_member::controllers::replicaset::is_ready;
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::scheduler;
use kc_tests::hollow::{ControlPlane, eventually, image, live, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    })
}

async fn rolled_out(cp: &ControlPlane) -> Value {
    let deploys = resource("apps", "v1", "deployments");
    eventually(WAIT, "the rollout to complete", || async {
        let d = cp.client.get(deploys, "default", "web").await.ok()?;
        let s = &d["status"];
        let done = s["observedGeneration"] == d["metadata"]["generation"]
            && s["updatedReplicas"] == 4
            && s["replicas"] == 4
            && s["availableReplicas"] == 4
            && s["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "NewReplicaSetAvailable"));
        done.then_some(d)
    })
    .await
}

async fn replicasets(cp: &ControlPlane) -> Vec<Value> {
    cp.client
        .list(resource("apps", "v1", "replicasets"), Some("default"))
        .await
        .expect("replicasets")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_keeps_availability_and_undo_reuses_the_old_replicaset() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 3), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    let deploys = resource("apps", "v1", "deployments");
    cp.client
        .create(deploys, "default", deployment("web:1"))
        .await
        .expect("create deployment");
    let d = rolled_out(&cp).await;
    assert_eq!(d["metadata"]["annotations"][REVISION], "1");
    let first = replicasets(&cp).await;
    assert_eq!(first.len(), 1);
    let first_name = first[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(first[0]["metadata"]["annotations"][REVISION], "1");
    assert!(first[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"].is_string());

    // Rolling update: watch availability all along.
    cp.client
        .merge_patch(
            deploys,
            "default",
            "web",
            "",
            &json!({"spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": "web:2"}]}}}}),
        )
        .await
        .expect("update image");
    let mut min_ready = usize::MAX;
    let mut max_live = 0;
    loop {
        let pods = cp.pods("default").await;
        let live = live(&pods);
        min_ready = min_ready.min(live.iter().filter(|p| is_ready(p)).count());
        max_live = max_live.max(live.len());
        let done = live.len() == 4 && live.iter().all(|p| image(p) == "web:2" && is_ready(p));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        min_ready >= 3,
        "ready pods fell to {min_ready} (maxUnavailable 1 of 4)"
    );
    assert!(max_live <= 5, "{max_live} pods at once (maxSurge 1 over 4)");
    let d = rolled_out(&cp).await;
    assert_eq!(d["metadata"]["annotations"][REVISION], "2");
    let sets = replicasets(&cp).await;
    assert_eq!(sets.len(), 2);
    let old = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == first_name.as_str())
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);

    // Undo: the template of revision 1 comes back.
    let mut template = old["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    cp.client
        .merge_patch(
            deploys,
            "default",
            "web",
            "",
            &json!({"spec": {"template": template}}),
        )
        .await
        .expect("undo");
    let d = rolled_out(&cp).await;
    assert_eq!(d["metadata"]["annotations"][REVISION], "3");
    let sets = replicasets(&cp).await;
    assert_eq!(sets.len(), 2, "the old ReplicaSet is reused");
    let back = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] == first_name.as_str())
        .unwrap();
    assert_eq!(back["metadata"]["annotations"][REVISION], "3");
    assert_eq!(back["spec"]["replicas"], 4);
    cp.wait_pods_of_image(4, "web:1", |_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_replaces_all_pods_and_a_controller_restart_converges() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 2), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    let cm = controllers::start(cp.client.clone(), "member-1", None);
    let deploys = resource("apps", "v1", "deployments");
    let mut d = deployment("web:1");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    cp.client
        .create(deploys, "default", d)
        .await
        .expect("create");
    rolled_out(&cp).await;
    cp.client
        .merge_patch(
            deploys,
            "default",
            "web",
            "",
            &json!({"spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": "web:2"}]}}}}),
        )
        .await
        .expect("update image");
    // The controller manager dies mid-rollout; another member's takes over.
    tokio::time::sleep(Duration::from_millis(100)).await;
    cm.abort();
    let _cm2 = controllers::start(cp.client.clone(), "member-2", None);
    rolled_out(&cp).await;
    let pods = cp.pods("default").await;
    let live = live(&pods);
    assert_eq!(live.len(), 4, "no duplicate or lost pods");
    assert!(live.iter().all(|p| image(p) == "web:2"));
}
