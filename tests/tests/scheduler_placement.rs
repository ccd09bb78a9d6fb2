//! The scheduler against a real (in-process) control plane with hollow
//! nodes: pods get bound through the binding subresource, spread, respect
//! the filters, report why they fit nowhere, are retried when the cluster
//! changes, and a second scheduler takes over when the leader dies.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kc_member::client::resource;
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::{leader, scheduler};
use kc_tests::hollow::{ControlPlane, eventually, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn pod(name: &str, spec: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "basicserver:0.42"}]},
    });
    if let (Some(p_spec), Some(extra)) = (p["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            p_spec.insert(k.clone(), v.clone());
        }
    }
    p
}

fn requesting(name: &str, memory: &str) -> Value {
    pod(
        name,
        json!({"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"memory": memory}}}]}),
    )
}

async fn create(cp: &ControlPlane, obj: Value) {
    let name = obj["metadata"]["name"].clone();
    cp.client
        .create(resource("", "v1", "pods"), "default", obj)
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
}

async fn node_of(cp: &ControlPlane, name: &str) -> String {
    eventually(WAIT, &format!("pod {name} to be bound"), || async {
        cp.pod("default", name).await["spec"]["nodeName"]
            .as_str()
            .map(str::to_string)
    })
    .await
}

fn config_with(cpu: &str, memory: &str, labels: &[(&str, &str)]) -> HollowConfig {
    HollowConfig {
        cpu: cpu.into(),
        memory: memory.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spread_over_hollow_nodes_and_run() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 3), HollowConfig::default())
        .await
        .expect("hollow nodes register");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    for i in 0..6 {
        let mut p = pod(&format!("web-{i}"), json!({}));
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": "web", "uid": "rs-uid", "controller": true}]);
        create(&cp, p).await;
    }
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        *per_node
            .entry(node_of(&cp, &format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "6 replicas over 3 nodes: {per_node:?}");
    assert!(
        per_node.values().all(|n| *n == 2),
        "evenly spread: {per_node:?}"
    );
    eventually(WAIT, "all pods Running and Ready", || async {
        cp.pods("default")
            .await
            .iter()
            .all(|p| {
                p["status"]["phase"] == "Running"
                    && p["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .then_some(())
    })
    .await;
    assert_eq!(
        leader::holder(&cp.client, "kube-scheduler")
            .await
            .as_deref(),
        Some("member-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_respects_selectors_taints_ports_and_anti_affinity() {
    let cp = ControlPlane::start().await;
    let _ssd = Fleet::start(
        cp.client.clone(),
        vec!["ssd".into()],
        config_with("4", "8Gi", &[("disk", "ssd")]),
    )
    .await
    .expect("ssd node");
    let _plain = Fleet::start(
        cp.client.clone(),
        vec!["plain".into()],
        config_with("4", "8Gi", &[]),
    )
    .await
    .expect("plain node");
    // Taint "plain" so only tolerating pods go there.
    let nodes = resource("", "v1", "nodes");
    cp.client
        .merge_patch(
            nodes,
            "",
            "plain",
            "",
            &json!({"spec": {"taints": [
            {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]}}),
        )
        .await
        .expect("taint");
    let _sched = scheduler::start(cp.client.clone(), "member-1");

    create(
        &cp,
        pod("selected", json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await;
    create(&cp, pod("tolerant", json!({
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}},
    }))).await;
    assert_eq!(node_of(&cp, "selected").await, "ssd");
    assert_eq!(node_of(&cp, "tolerant").await, "plain");

    // hostPort 8080 fits once on "ssd" (the only node without the taint).
    let port = |name: &str| {
        pod(
            name,
            json!({"containers": [{"name": "c", "image": "i",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        )
    };
    create(&cp, port("port-a")).await;
    assert_eq!(node_of(&cp, "port-a").await, "ssd");
    create(&cp, port("port-b")).await;
    let msg = failed_scheduling(&cp, "port-b").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 1 node(s) had untolerated taint {dedicated: batch}."
    );

    // Required anti-affinity on hostname against the pod already on "ssd".
    create(&cp, pod("lonely", json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}}))).await;
    let msg = failed_scheduling(&cp, "lonely").await;
    assert!(
        msg.contains("1 node(s) didn't match pod anti-affinity rules"),
        "{msg}"
    );
}

/// Waits for PodScheduled=False and returns its message, checking the
/// FailedScheduling event says the same.
async fn failed_scheduling(cp: &ControlPlane, name: &str) -> String {
    let msg = eventually(WAIT, &format!("PodScheduled=False on {name}"), || async {
        let p = cp.pod("default", name).await;
        assert!(p["spec"]["nodeName"].is_null(), "{name} was bound: {p}");
        scheduler::scheduled_condition(&p)
            .filter(|c| c["status"] == "False" && c["reason"] == "Unschedulable")
            .and_then(|c| c["message"].as_str().map(str::to_string))
    })
    .await;
    eventually(
        WAIT,
        &format!("a FailedScheduling event for {name} saying {msg:?}"),
        || async {
            let events = cp
                .client
                .list(resource("", "v1", "events"), Some("default"))
                .await
                .expect("events")
                .0;
            events
                .iter()
                .any(|e| {
                    e["reason"] == "FailedScheduling"
                        && e["type"] == "Warning"
                        && e["involvedObject"]["name"] == name
                        && e["message"] == msg.as_str()
                })
                .then_some(())
        },
    )
    .await;
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fits_nowhere_says_why_and_is_placed_when_a_node_comes() {
    let cp = ControlPlane::start().await;
    let _small = Fleet::start(
        cp.client.clone(),
        names("small", 2),
        config_with("4", "1Gi", &[]),
    )
    .await
    .expect("small nodes");
    let _tainted = Fleet::start(
        cp.client.clone(),
        vec!["tainted".into()],
        config_with("4", "64Gi", &[]),
    )
    .await
    .expect("tainted node");
    cp.client
        .merge_patch(
            resource("", "v1", "nodes"),
            "",
            "tainted",
            "",
            &json!({"spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}),
        )
        .await
        .expect("taint");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    create(&cp, requesting("big", "2Gi")).await;
    assert_eq!(
        failed_scheduling(&cp, "big").await,
        "0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
    );
    // A node that fits arrives: the parked pod is retried and placed.
    let _big = Fleet::start(
        cp.client.clone(),
        vec!["big-node".into()],
        config_with("4", "8Gi", &[]),
    )
    .await
    .expect("big node");
    assert_eq!(node_of(&cp, "big").await, "big-node");
    // Resources are accounted: of 3 more 3Gi pods, 2 fit in big-node's 8Gi - 2Gi.
    for i in 0..3 {
        create(&cp, requesting(&format!("more-{i}"), "3Gi")).await;
    }
    eventually(WAIT, "two more pods bound and one refused", || async {
        let pods = cp.pods("default").await;
        let more: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("more-"))
            })
            .collect();
        let bound = more
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_string())
            .count();
        let refused = more
            .iter()
            .filter(|p| scheduler::scheduled_condition(p).is_some_and(|c| c["status"] == "False"))
            .count();
        (bound == 2 && refused == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_scheduler_takes_over_when_the_leader_dies() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 2), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let first = scheduler::start(cp.client.clone(), "member-1");
    eventually(WAIT, "member-1 to lead", || async {
        (leader::holder(&cp.client, "kube-scheduler")
            .await
            .as_deref()
            == Some("member-1"))
        .then_some(())
    })
    .await;
    let second = scheduler::start(cp.client.clone(), "member-2");
    create(&cp, pod("before", json!({}))).await;
    node_of(&cp, "before").await;
    // The leader dies (its task and its work are gone; no more renewals).
    first.abort();
    let started = std::time::Instant::now();
    eventually(WAIT, "member-2 to take the lease over", || async {
        (leader::holder(&cp.client, "kube-scheduler")
            .await
            .as_deref()
            == Some("member-2"))
        .then_some(())
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "took over after {took:?}: before the lease expired"
    );
    create(&cp, pod("after", json!({}))).await;
    node_of(&cp, "after").await;
    second.abort();
}
