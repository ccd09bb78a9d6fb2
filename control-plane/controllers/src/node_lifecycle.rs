//! NodeLifecycle: notices nodes that stopped heartbeating and moves their
//! pods away.
//!
//! A node heartbeats by renewing its Lease in `kube-node-lease`. Staleness is
//! judged like leader election, on this member's monotonic clock: a lease
//! whose resourceVersion has not changed for `grace` is stale (no wall-clock
//! agreement with the node needed; a new leader starts observing afresh, so
//! a failover only delays the verdict). A stale node gets Ready=Unknown and
//! the `node.kubernetes.io/unreachable:NoExecute` taint; when its Ready
//! condition is True again the taint goes.
//!
//! Pods on a node with a NoExecute taint they do not tolerate are evicted
//! (deleted) once their tolerationSeconds have passed since the taint was
//! added; pods without a matching toleration get `DEFAULT_TOLERATION`
//! (Kubernetes' admission adds 300 s; kc uses 5 s so a dead worker's
//! Deployment pods run elsewhere within 20 s: 8 s grace + 5 s + scheduling).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Taint, Toleration};
use serde_json::{Value, json};

use kc_client::client::{Client, resource};
use kc_client::clock;
use kc_client::status::ApiError;
use kc_scheduler::filters::taint_toleration::tolerates;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// tolerationSeconds for pods with no toleration of the taint.
pub const DEFAULT_TOLERATION: i64 = 5;

#[derive(Debug, Clone)]
pub struct Timing {
    /// No lease renewal for this long: the node is unreachable.
    pub grace: Duration,
    /// How often nodes are checked.
    pub period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(8),
            period: Duration::from_secs(1),
        }
    }
}

/// When a pod on a node with `taints` must go, in seconds after the taint
/// was added: None = never (tolerated forever or no NoExecute taint).
pub fn eviction_delay(tolerations: &[Toleration], taints: &[Taint]) -> Option<i64> {
    taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .filter_map(|taint| {
            let matching: Vec<&Toleration> =
                tolerations.iter().filter(|t| tolerates(t, taint)).collect();
            if matching.is_empty() {
                return Some(DEFAULT_TOLERATION);
            }
            // The longest matching toleration wins; none with seconds = forever.
            if matching.iter().any(|t| t.toleration_seconds.is_none()) {
                None
            } else {
                matching.iter().filter_map(|t| t.toleration_seconds).max()
            }
        })
        .min()
}

fn ready_status(node: &Value) -> &str {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("Unknown")
}

fn taints(node: &Value) -> Vec<Taint> {
    serde_json::from_value(node["spec"]["taints"].clone()).unwrap_or_default()
}

/// What the controller remembers of each node's lease.
struct Seen {
    resource_version: String,
    since: Instant,
}

pub async fn run(client: Client, timing: Timing) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    loop {
        if let Err(e) = check(&client, &timing, &mut seen).await {
            tracing::debug!(error = %e, "node lifecycle check failed");
        }
        tokio::time::sleep(timing.period).await;
    }
}

async fn check(
    client: &Client,
    timing: &Timing,
    seen: &mut HashMap<String, Seen>,
) -> Result<(), ApiError> {
    let nodes_r = resource("", "v1", "nodes");
    let (nodes, _) = client.list(nodes_r, None).await?;
    let (leases, _) = client
        .list(
            resource("coordination.k8s.io", "v1", "leases"),
            Some("kube-node-lease"),
        )
        .await?;
    let lease_rv: HashMap<&str, &str> = leases
        .iter()
        .filter_map(|l| {
            Some((
                l["metadata"]["name"].as_str()?,
                l["metadata"]["resourceVersion"].as_str()?,
            ))
        })
        .collect();
    let now = Instant::now();
    let mut tainted = Vec::new();
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
        let rv = lease_rv
            .get(name.as_str())
            .copied()
            .unwrap_or("")
            .to_string();
        let entry = seen.entry(name.clone()).or_insert(Seen {
            resource_version: rv.clone(),
            since: now,
        });
        if entry.resource_version != rv {
            *entry = Seen {
                resource_version: rv,
                since: now,
            };
        }
        let stale = now.duration_since(entry.since) >= timing.grace;
        let has_taint = taints(node).iter().any(|t| t.key == UNREACHABLE);
        if stale && (!has_taint || ready_status(node) != "Unknown") {
            mark_unreachable(client, node).await?;
        } else if !stale && has_taint && ready_status(node) == "True" {
            let kept: Vec<Taint> = taints(node)
                .into_iter()
                .filter(|t| t.key != UNREACHABLE)
                .collect();
            client
                .merge_patch(nodes_r, "", &name, "", &json!({"spec": {"taints": kept}}))
                .await?;
        }
        if has_taint || stale {
            tainted.push(name);
        }
    }
    seen.retain(|n, _| nodes.iter().any(|o| o["metadata"]["name"] == n.as_str()));
    if !tainted.is_empty() {
        evict(client, &tainted).await?;
    }
    Ok(())
}

/// The annotation of mirror pods (a host's own parts, posted by its agent).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The status of a pod whose node stopped heartbeating: not Ready, its
/// containers not ready (Kubernetes' MarkPodsNotReady), so `kubectl get`
/// shows a dead member's parts as 0/1. None if it says so already.
pub fn not_ready_status(pod: &Value) -> Option<Value> {
    let mut status = pod["status"].clone();
    let mut changed = false;
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions
            .iter_mut()
            .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
        {
            if c["status"] != "False" {
                c["status"] = json!("False");
                c["reason"] = json!("NodeNotReady");
                c["lastTransitionTime"] = json!(clock::rfc3339_in(0));
                changed = true;
            }
        }
    }
    if let Some(containers) = status["containerStatuses"].as_array_mut() {
        for c in containers.iter_mut().filter(|c| c["ready"] == true) {
            c["ready"] = json!(false);
            changed = true;
        }
    }
    changed.then_some(status)
}

/// Marks the mirror pods of an unreachable node not ready (they tolerate
/// every taint, so they are never evicted; their agent posts them Ready
/// again when it is back).
async fn mark_mirror_pods_not_ready(client: &Client, node: &str) -> Result<(), ApiError> {
    let pods_r = resource("", "v1", "pods");
    let (pods, _) = client.list(pods_r, None).await?;
    for pod in pods.iter().filter(|p| {
        p["spec"]["nodeName"] == node && p["metadata"]["annotations"][MIRROR_ANNOTATION].is_string()
    }) {
        let Some(status) = not_ready_status(pod) else {
            continue;
        };
        let (ns, name) = (
            pod["metadata"]["namespace"].as_str().unwrap_or(""),
            pod["metadata"]["name"].as_str().unwrap_or(""),
        );
        match client
            .merge_patch(pods_r, ns, name, "status", &json!({ "status": status }))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn mark_unreachable(client: &Client, node: &Value) -> Result<(), ApiError> {
    let nodes = resource("", "v1", "nodes");
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    mark_mirror_pods_not_ready(client, name).await?;
    tracing::warn!(node = %name, "node stopped heartbeating: Ready=Unknown, tainted unreachable");
    let now = clock::rfc3339_in(0);
    let mut conditions: Vec<Value> = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "Ready");
    conditions.push(json!({
        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    }));
    client
        .merge_patch(
            nodes,
            "",
            name,
            "status",
            &json!({"status": {"conditions": conditions}}),
        )
        .await?;
    let mut list = taints(node);
    if !list.iter().any(|t| t.key == UNREACHABLE) {
        list.push(Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: now
                .parse()
                .ok()
                .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time),
        });
        client
            .merge_patch(nodes, "", name, "", &json!({"spec": {"taints": list}}))
            .await?;
    }
    Ok(())
}

/// Deletes pods on `node_names` whose toleration of the taints ran out.
async fn evict(client: &Client, node_names: &[String]) -> Result<(), ApiError> {
    let nodes_r = resource("", "v1", "nodes");
    let pods_r = resource("", "v1", "pods");
    let (pods, _) = client.list(pods_r, None).await?;
    let now = clock::now();
    for name in node_names {
        let node = match client.get(nodes_r, "", name).await {
            Ok(n) => n,
            Err(e) if e.code == 404 => continue,
            Err(e) => return Err(e),
        };
        let node_taints = taints(&node);
        let added = node_taints
            .iter()
            .filter(|t| t.effect == "NoExecute")
            .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
            .min()
            .unwrap_or(now);
        let elapsed = now.as_second() - added.as_second();
        for pod in pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == name.as_str())
        {
            if pod["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let tolerations: Vec<Toleration> =
                serde_json::from_value(pod["spec"]["tolerations"].clone()).unwrap_or_default();
            if let Some(delay) = eviction_delay(&tolerations, &node_taints)
                && elapsed >= delay
            {
                let (ns, pname) = (
                    pod["metadata"]["namespace"].as_str().unwrap_or(""),
                    pod["metadata"]["name"].as_str().unwrap_or(""),
                );
                tracing::info!(pod = %format!("{ns}/{pname}"), node = %name, "evicting from unreachable node");
                client
                    .event(
                        pod,
                        "Normal",
                        "TaintManagerEviction",
                        &format!("Marking for deletion Pod {ns}/{pname}"),
                        "taint-eviction-controller",
                    )
                    .await;
                match client.delete(pods_r, ns, pname, json!({})).await {
                    Err(e) if e.code != 404 => return Err(e),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint() -> Vec<Taint> {
        vec![Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        }]
    }

    fn tol(seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            ..Default::default()
        }
    }

    #[test]
    fn eviction_waits_for_the_toleration() {
        assert_eq!(eviction_delay(&[], &taint()), Some(DEFAULT_TOLERATION));
        assert_eq!(eviction_delay(&[tol(Some(60))], &taint()), Some(60));
        assert_eq!(eviction_delay(&[tol(None)], &taint()), None);
        assert_eq!(eviction_delay(&[], &[]), None);
        let soft = vec![Taint {
            key: "x".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
        assert_eq!(eviction_delay(&[], &soft), None);
    }

    #[test]
    fn a_ready_pod_becomes_not_ready_once() {
        let pod = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "c", "ready": true}],
        }});
        let st = not_ready_status(&pod).expect("changed");
        assert_eq!(st["conditions"][0]["status"], "False");
        assert_eq!(st["conditions"][1]["status"], "True");
        assert_eq!(st["containerStatuses"][0]["ready"], false);
        assert_eq!(not_ready_status(&json!({ "status": st })), None);
    }
}
