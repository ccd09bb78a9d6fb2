//! Batched bindings (`Rest::bind_all`) against a real (in-process) store:
//! a batch with conflicting bindings fails only those, the others commit in
//! one transaction; two binders racing over the same pods never bind one
//! twice; two schedulers racing over one cluster bind every pod exactly
//! once, and each bound pod gets exactly one `Scheduled` event.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kc_member::apiserver::binding::Binding;
use kc_member::client::{Event, resource};
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::scheduler;
use kc_tests::hollow::{ControlPlane, eventually, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "pause"}]},
    })
}

/// Creates `n` pods `<prefix>-0..n`; returns their uids by name.
async fn create_pods(cp: &ControlPlane, prefix: &str, n: usize) -> HashMap<String, String> {
    let mut uids = HashMap::new();
    for name in names(prefix, n) {
        let created = cp
            .client
            .create(resource("", "v1", "pods"), "default", pod(&name))
            .await
            .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
        uids.insert(
            name,
            created["metadata"]["uid"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    uids
}

fn node_of(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_conflicting_bindings_fails_only_those() {
    let cp = ControlPlane::start().await;
    let uids = create_pods(&cp, "p", 8).await;
    // p-2 is bound meanwhile by another scheduler; p-4 is deleted; p-6 is
    // replaced by a new pod of the same name (another uid).
    cp.client
        .bind("default", "p-2", "other")
        .await
        .expect("bind p-2 elsewhere");
    let pods = resource("", "v1", "pods");
    cp.client
        .delete(pods, "default", "p-4", json!({}))
        .await
        .expect("delete p-4");
    cp.client
        .delete(pods, "default", "p-6", json!({}))
        .await
        .expect("delete p-6");
    cp.client
        .create(pods, "default", pod("p-6"))
        .await
        .expect("recreate p-6");
    let bindings: Vec<Binding> = names("p", 8)
        .iter()
        .map(|n| Binding::new("default", n, Some(&uids[n]), "node-a"))
        .collect();
    let results = cp.client.bind_all(&bindings).await;
    let codes: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().map_or_else(|e| e.code, |_| 201))
        .collect();
    assert_eq!(codes[2], 409, "p-2 is already bound: {results:?}");
    assert!(
        results[2]
            .as_ref()
            .unwrap_err()
            .message
            .contains("already assigned to node \"other\""),
        "{results:?}"
    );
    assert!(codes[4] == 404, "p-4 is gone: {results:?}");
    assert_eq!(codes[6], 409, "p-6 is another pod now: {results:?}");
    for i in [0, 1, 3, 5, 7] {
        assert_eq!(codes[i], 201, "p-{i} binds: {results:?}");
    }
    let now: HashMap<String, Value> = cp
        .pods("default")
        .await
        .into_iter()
        .map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_string(), p))
        .collect();
    assert_eq!(node_of(&now["p-2"]), Some("other"), "p-2 is not re-bound");
    assert_eq!(node_of(&now["p-6"]), None, "the new p-6 is not bound");
    assert!(!now.contains_key("p-4"));
    let revisions: HashSet<&str> = [0, 1, 3, 5, 7]
        .iter()
        .map(|i| {
            let p = &now[&format!("p-{i}")];
            assert_eq!(node_of(p), Some("node-a"));
            p["metadata"]["resourceVersion"].as_str().unwrap_or("")
        })
        .collect();
    assert_eq!(
        revisions.len(),
        1,
        "the five bindings were one store transaction: {revisions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_binders_racing_bind_each_pod_exactly_once() {
    let cp = ControlPlane::start().await;
    let n = 300;
    create_pods(&cp, "r", n).await;
    let batch = |node: &str, reverse: bool| {
        let mut names = names("r", n);
        if reverse {
            names.reverse();
        }
        names
            .iter()
            .map(|p| Binding::new("default", p, None, node))
            .collect::<Vec<_>>()
    };
    let (a, b) = (batch("node-a", false), batch("node-b", true));
    let (ra, rb) = tokio::join!(cp.client.bind_all(&a), cp.client.bind_all(&b));
    let won: HashMap<&str, &str> = a
        .iter()
        .zip(&ra)
        .chain(b.iter().zip(&rb))
        .filter(|(_, r)| r.is_ok())
        .map(|(b, _)| (b.pod.as_str(), b.node.as_str()))
        .collect();
    let wins = ra.iter().chain(&rb).filter(|r| r.is_ok()).count();
    assert_eq!(wins, n, "exactly one binding per pod succeeded");
    for r in ra.iter().chain(&rb).filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code, 409, "a lost race is a conflict: {r:?}");
    }
    for p in cp.pods("default").await {
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        assert_eq!(node_of(&p), won.get(name).copied(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_bind_every_pod_once_with_one_scheduled_event() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 4), HollowConfig::default())
        .await
        .expect("hollow nodes");
    // Both run their loop at once (no leader election): the worst case.
    let first = tokio::spawn(scheduler::run(cp.client.as_manager("kube-scheduler")));
    let second = tokio::spawn(scheduler::run(cp.client.as_manager("kube-scheduler")));
    let mut watch = cp.client.informer(resource("", "v1", "pods"));
    let n = 200;
    create_pods(&cp, "s", n).await;
    let mut placed: HashMap<String, String> = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while placed.len() < n {
        let ev = tokio::time::timeout_at(deadline, watch.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} pods bound", placed.len()))
            .expect("the informer runs");
        if let Event::Applied(p) = ev
            && let Some(node) = node_of(&p)
        {
            let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            if let Some(before) = placed.insert(name.clone(), node.to_string()) {
                assert_eq!(before, node, "{name} was moved from {before} to {node}");
            }
        }
    }
    let events = resource("", "v1", "events");
    let scheduled = eventually(WAIT, "a Scheduled event per pod", || async {
        let (all, _) = cp.client.list(events, Some("default")).await.ok()?;
        let mine: Vec<Value> = all
            .into_iter()
            .filter(|e| e["reason"] == "Scheduled")
            .collect();
        (mine.len() >= n).then_some(mine)
    })
    .await;
    let mut per_pod: HashMap<String, usize> = HashMap::new();
    for e in &scheduled {
        let name = e["involvedObject"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["source"]["component"], "default-scheduler");
        assert_eq!(
            e["message"],
            format!("Successfully assigned default/{name} to {}", placed[&name])
        );
        *per_pod.entry(name).or_default() += 1;
    }
    assert!(
        per_pod.values().all(|c| *c == 1) && per_pod.len() == n,
        "one successful binding (one Scheduled event) per pod: {per_pod:?}"
    );
    first.abort();
    second.abort();
}
