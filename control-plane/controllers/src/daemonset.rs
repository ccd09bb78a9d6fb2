//! DaemonSet: one pod of the template on every eligible node (kube-proxy
//! style), created already bound (`spec.nodeName`), as kc's DaemonSet pods
//! skip the scheduler. Eligibility is the scheduler's own node affinity
//! (nodeSelector included) and taint filters; DaemonSet pods tolerate
//! cordoned nodes, and the NoExecute node-condition taints like Kubernetes
//! adds to them. Pods on nodes no longer eligible (or gone) are deleted.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::replicaset::{controller_of, is_ready, pod_from_template};
use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::status::ApiError;
use kc_scheduler::filters::{node_affinity, taint_toleration};
use kc_scheduler::snapshot::{NodeInfo, PodInfo};

/// Tolerations every DaemonSet pod gets (as Kubernetes' controller adds).
fn daemon_tolerations() -> Value {
    json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ])
}

/// The pod a DaemonSet runs on `node`.
pub fn daemon_pod(ds: &Value, node: &str) -> Value {
    let mut pod = pod_from_template(ds);
    let mut tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tolerations.extend(daemon_tolerations().as_array().cloned().unwrap_or_default());
    pod["spec"]["tolerations"] = json!(tolerations);
    pod["spec"]["nodeName"] = json!(node);
    pod
}

/// Whether the DaemonSet's pod belongs on `node`.
pub fn eligible(ds: &Value, node: &Value) -> bool {
    let Some(pod) = PodInfo::from_json(&daemon_pod(ds, "")) else {
        return false;
    };
    let Ok(n) = serde_json::from_value(node.clone()) else {
        return false;
    };
    let info = NodeInfo::from_node(&n);
    node_affinity::filter(&pod, &info).is_ok() && taint_toleration::filter(&pod, &info).is_ok()
}

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut sets = client.informer(resource("apps", "v1", "daemonsets"));
    let mut nodes = client.informer(resource("", "v1", "nodes"));
    let mut pods = client.informer(resource("", "v1", "pods"));
    let mut known: BTreeSet<String> = BTreeSet::new();
    let _worker = spawn_worker(
        client.clone(),
        queue.clone(),
        "daemonset",
        |c, k| async move { reconcile(&c, &k).await },
    );
    loop {
        tokio::select! {
            Some(ev) = sets.recv() => match ev {
                Event::Applied(o) => { known.insert(key_of(&o)); queue.add(&key_of(&o)); }
                Event::Deleted(o) => { known.remove(&key_of(&o)); }
                Event::Synced => {}
            },
            Some(ev) = nodes.recv() => if !matches!(ev, Event::Synced) {
                for k in &known { queue.add(k); }
            },
            Some(ev) = pods.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev
                && let Some(("DaemonSet", name, _)) = controller_of(&o)
            {
                queue.add(&format!("{}/{name}", o["metadata"]["namespace"].as_str().unwrap_or("")));
            },
            else => return,
        }
    }
}

pub async fn reconcile(client: &Client, key: &str) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let sets = resource("apps", "v1", "daemonsets");
    let pods_r = resource("", "v1", "pods");
    let ds = match client.get(sets, ns, name).await {
        Ok(d) => d,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if ds["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let uid = ds["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let (nodes, _) = client.list(resource("", "v1", "nodes"), None).await?;
    let (all, _) = client.list(pods_r, Some(ns)).await?;
    let mut by_node: HashMap<String, Vec<Value>> = HashMap::new();
    for p in all {
        if controller_of(&p).is_some_and(|(_, _, u)| u == uid)
            && !p["metadata"]["deletionTimestamp"].is_string()
        {
            let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            by_node.entry(node).or_default().push(p);
        }
    }
    let mut desired = 0;
    let mut ready = 0;
    for node in &nodes {
        let node_name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
        let here = by_node.remove(&node_name).unwrap_or_default();
        if !eligible(&ds, node) {
            by_node.insert(node_name, here); // deleted below
            continue;
        }
        desired += 1;
        match here.len() {
            0 => {
                client
                    .create(pods_r, ns, daemon_pod(&ds, &node_name))
                    .await?;
            }
            _ => {
                ready += usize::from(here.iter().any(is_ready));
                for extra in &here[1..] {
                    let pname = extra["metadata"]["name"].as_str().unwrap_or("");
                    match client.delete(pods_r, ns, pname, json!({})).await {
                        Err(e) if e.code != 404 => return Err(e),
                        _ => {}
                    }
                }
            }
        }
    }
    // Pods on ineligible or vanished nodes.
    let mut misscheduled = 0;
    for p in by_node.into_values().flatten() {
        misscheduled += 1;
        let pname = p["metadata"]["name"].as_str().unwrap_or("");
        match client.delete(pods_r, ns, pname, json!({})).await {
            Err(e) if e.code != 404 => return Err(e),
            _ => {}
        }
    }
    let status = json!({
        "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
        "updatedNumberScheduled": desired, "numberReady": ready, "numberAvailable": ready,
        "numberUnavailable": desired - ready, "numberMisscheduled": misscheduled,
        "observedGeneration": ds["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    if ds["status"] != status {
        client
            .merge_patch(sets, ns, name, "status", &json!({"status": status}))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility_uses_node_selector_and_taints() {
        let ds = json!({"metadata": {"name": "proxy", "namespace": "kube-system", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"app": "proxy"}},
                "spec": {"nodeSelector": {"os": "linux"}, "containers": [{"name": "c", "image": "i"}]}}}});
        let node = |labels: Value, taints: Value| {
            json!({"metadata": {"name": "n", "labels": labels},
            "spec": {"taints": taints}})
        };
        assert!(eligible(&ds, &node(json!({"os": "linux"}), json!([]))));
        assert!(!eligible(&ds, &node(json!({"os": "windows"}), json!([]))));
        assert!(eligible(
            &ds,
            &node(
                json!({"os": "linux"}),
                json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
            )
        ));
        assert!(!eligible(
            &ds,
            &node(
                json!({"os": "linux"}),
                json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
            )
        ));
        assert_eq!(daemon_pod(&ds, "n1")["spec"]["nodeName"], "n1");
    }
}
