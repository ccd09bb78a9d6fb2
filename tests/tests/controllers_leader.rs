//! Leader handover of the control loops: two control-plane members' loops
//! (scheduler + controller manager, `controllers::start_control_loops`,
//! as `kcnode` runs them) compete for their Leases against one control
//! plane. The leader dies mid-rollout of a Deployment; the other member
//! takes both Leases over and the rollout converges with no duplicate or
//! lost pods: at every step no more than replicas + maxSurge pods live and
//! no fewer than replicas - maxUnavailable are ready; at the end exactly
//! `replicas` pods of the new template, all owned by the new ReplicaSet, and
//! every ReplicaSet's live pods equal its replicas.

use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers::replicaset::{controller_of, is_ready};
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::leader;
use kc_tests::hollow::{ControlPlane, eventually, image, live, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const REPLICAS: usize = 12;
const LEASES: [&str; 2] = ["kube-controller-manager", "kube-scheduler"];

fn deployment(image: &str) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}})
}

async fn holders_are(cp: &ControlPlane, member: &str) {
    eventually(WAIT, &format!("{member} to hold both leases"), || async {
        for lease in LEASES {
            if leader::holder(&cp.client, lease).await.as_deref() != Some(member) {
                return None;
            }
        }
        Some(())
    })
    .await;
}

async fn all_pods_are(cp: &ControlPlane, img: &str) {
    cp.wait_pods_of_image(REPLICAS, img, is_ready).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_member_takes_over_mid_rollout_and_it_converges() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 4), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let first = kc_member::control_loops::start(cp.kv.clone(), "member-1", None);
    holders_are(&cp, "member-1").await;
    let _second = kc_member::control_loops::start(cp.kv.clone(), "member-2", None);

    let deploys = resource("apps", "v1", "deployments");
    cp.client
        .create(deploys, "default", deployment("web:1"))
        .await
        .expect("create deployment");
    all_pods_are(&cp, "web:1").await;

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
    // Mid-rollout: some new pods exist, not all.
    let new_at_kill = eventually(WAIT, "the rollout to start", || async {
        let pods = cp.pods("default").await;
        let n = live(&pods).iter().filter(|p| image(p) == "web:2").count();
        (n > 0).then_some(n)
    })
    .await;
    drop(first);
    assert!(
        new_at_kill < REPLICAS,
        "the leader died mid-rollout ({new_at_kill} of {REPLICAS} new pods)"
    );

    let (mut max_live, mut min_ready) = (0, usize::MAX);
    let start = std::time::Instant::now();
    loop {
        let pods = cp.pods("default").await;
        let live = live(&pods);
        max_live = max_live.max(live.len());
        min_ready = min_ready.min(live.iter().filter(|p| is_ready(p)).count());
        let ready = live.iter().filter(|p| is_ready(p)).count();
        if ready + 1 < REPLICAS || live.len() > REPLICAS + 1 {
            eprintln!("{:?} live {} ready {ready}", start.elapsed(), live.len());
            for p in &live {
                eprintln!(
                    "  {} {} {} {}",
                    p["metadata"]["name"],
                    image(p),
                    p["status"]["phase"],
                    p["status"]["conditions"]
                );
            }
        }
        if live.len() == REPLICAS && live.iter().all(|p| image(p) == "web:2" && is_ready(p)) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the rollout did not converge: {} live pods",
            live.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holders_are(&cp, "member-2").await;
    assert!(
        max_live <= REPLICAS + 1,
        "{max_live} pods at once: duplicates (maxSurge 1)"
    );
    assert!(
        min_ready >= REPLICAS - 1,
        "ready pods fell to {min_ready}: lost pods (maxUnavailable 1)"
    );

    // Settled: nothing more is created, every ReplicaSet has its replicas.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = cp.pods("default").await;
    let live = live(&pods);
    assert_eq!(live.len(), REPLICAS, "no duplicate or lost pods");
    let (sets, _) = cp
        .client
        .list(resource("apps", "v1", "replicasets"), Some("default"))
        .await
        .expect("replicasets");
    assert_eq!(sets.len(), 2);
    for rs in &sets {
        let uid = rs["metadata"]["uid"].as_str().unwrap();
        let owned = live
            .iter()
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .count();
        let want = rs["spec"]["replicas"].as_u64().unwrap() as usize;
        assert_eq!(
            owned, want,
            "ReplicaSet {} owns {owned} pods",
            rs["metadata"]["name"]
        );
        let img = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert_eq!(want, if img == "web:2" { REPLICAS } else { 0 });
    }
}
