//! The resource metrics API, `metrics.k8s.io/v1beta1` (what metrics-server
//! serves, and what `kubectl top` reads): NodeMetrics and PodMetrics, from
//! the usage samples node agents send up their sessions
//! (`NodeRequest::Usage`, sampled by `kcnode`'s `stats` module).
//!
//! Where the samples live: any member may serve the API while a node
//! reports to one member only, so each node's latest sample is one store
//! key, `/kc/usage/<node>`, overwritten at every sample (one Raft write per
//! node per resolution, 15 s by default: with all its pods in it, the cost
//! does not grow with the pod count; the store's compaction drops the old
//! revisions). Keeping samples in the receiving member's memory would need
//! a member-to-member query path that does not exist, and lose them at a
//! failover. A sample older than `STALE_AFTER` windows is not served (the
//! node stopped reporting), like metrics-server dropping a node it cannot
//! scrape.
//!
//! Reads join the samples with the Node and Pod objects, listed through
//! `Rest` with the request's label selector: that gives label selection
//! and the objects' labels, and leaves out pods that no longer exist.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kc_protocol::node_api::{NodeUsage, PodUsage};
use serde_json::{Value, json};

use super::auth::{self, Attributes, Decision};
use super::clock;
use super::registry;
use super::rest::{Query, Rest};
use super::status::ApiError;
use super::storage::Storage;
use kc_pki::Identity;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const API_VERSION: &str = "metrics.k8s.io/v1beta1";
const PREFIX: &str = "/kc/usage/";
/// A sample is served until it is this many windows old (at least 30 s).
const STALE_AFTER: u32 = 4;

fn key(node: &str) -> Vec<u8> {
    format!("{PREFIX}{node}").into_bytes()
}

/// Keeps `usage` as the latest sample of `node`.
pub async fn record(storage: &Storage, node: &str, usage: &NodeUsage) -> Result<(), ApiError> {
    let value = serde_json::to_value(usage)
        .map_err(|e| ApiError::internal(format!("usage sample of {node}: {e}")))?;
    storage.put(&key(node), &value).await.map(drop)
}

/// A CPU rate as a Kubernetes quantity in nanocores (`123456n`).
pub fn cpu_quantity(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// Bytes as a quantity: `Ki` when whole kibibytes (as metrics-server
/// prints memory), plain bytes otherwise.
pub fn memory_quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

/// A window as Go's `time.Duration` prints it (`15s`, `14.987s`, `1m0.5s`).
pub fn go_duration(ms: u64) -> String {
    let (minutes, rest) = (ms / 60_000, ms % 60_000);
    let seconds = if rest.is_multiple_of(1000) {
        format!("{}s", rest / 1000)
    } else {
        let text = format!("{}.{:03}", rest / 1000, rest % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match minutes {
        0 if ms < 1000 && ms > 0 => format!("{ms}ms"),
        0 => seconds,
        m if m < 60 => format!("{m}m{seconds}"),
        m => format!("{}h{}m{seconds}", m / 60, m % 60),
    }
}

/// Is a sample taken at `timestamp` (RFC 3339) with `window_ms` still
/// current at `now` (seconds since the epoch)?
pub fn is_fresh(timestamp: &str, window_ms: u64, now: i64) -> bool {
    let Ok(at) = timestamp.parse::<Timestamp>() else {
        return false;
    };
    let window = Duration::from_millis(window_ms) * STALE_AFTER;
    let limit = window.max(Duration::from_secs(30)).as_secs() as i64;
    now - at.as_second() <= limit
}

fn metadata(object: &Value, created: &str) -> Value {
    let mut meta = json!({
        "name": object["metadata"]["name"],
        "creationTimestamp": created,
    });
    if !object["metadata"]["namespace"].is_null() {
        meta["namespace"] = object["metadata"]["namespace"].clone();
    }
    if let Some(labels) = object["metadata"]["labels"].as_object() {
        meta["labels"] = json!(labels);
    }
    meta
}

/// The NodeMetrics of `node` (its Node object) from its sample.
pub fn node_metrics(node: &Value, usage: &NodeUsage) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(node, &usage.timestamp),
        "timestamp": usage.timestamp,
        "window": go_duration(usage.window_ms),
        "usage": {
            "cpu": cpu_quantity(usage.cpu_nanocores),
            "memory": memory_quantity(usage.memory_bytes),
        },
    })
}

/// The PodMetrics of `pod` (its Pod object) from its node's sample.
pub fn pod_metrics(pod: &Value, usage: &PodUsage, sample: &NodeUsage) -> Value {
    let containers: Vec<Value> = usage
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "usage": {
                    "cpu": cpu_quantity(c.cpu_nanocores),
                    "memory": memory_quantity(c.memory_bytes),
                },
            })
        })
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(pod, &sample.timestamp),
        "timestamp": sample.timestamp,
        "window": go_duration(sample.window_ms),
        "containers": containers,
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": API_VERSION,
        "metadata": {},
        "items": items,
    })
}

/// The current samples by node name.
async fn samples(storage: &Storage) -> Result<Vec<(String, NodeUsage)>, ApiError> {
    let now = clock::now().as_second();
    let resp = storage.list_raw(PREFIX.as_bytes(), 0).await?;
    Ok(resp
        .kvs
        .iter()
        .filter_map(|kv| {
            let node = std::str::from_utf8(&kv.key).ok()?.strip_prefix(PREFIX)?;
            let usage: NodeUsage = serde_json::from_slice(&kv.value).ok()?;
            is_fresh(&usage.timestamp, usage.window_ms, now).then(|| (node.to_string(), usage))
        })
        .collect())
}

/// The objects of a collection the request's label selector picks.
async fn objects(
    rest: &Rest,
    plural: &str,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Vec<Value>, ApiError> {
    let resource =
        registry::lookup("", "v1", plural).ok_or_else(|| ApiError::internal("no core {plural}"))?;
    let mut q = Query::new();
    for k in ["labelSelector", "fieldSelector"] {
        if let Some(v) = query.get(k) {
            q.insert(k.to_string(), v.clone());
        }
    }
    Ok(rest.list_page(resource, namespace, &q).await?.0.items)
}

fn authorize(
    id: &Identity,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let attrs = Attributes {
        verb,
        group: GROUP,
        resource,
        subresource: "",
        namespace,
        name,
    };
    match auth::authorize(id, &attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => Err(auth::forbidden(id, &attrs, &why)),
        Decision::AllowIfPodOnNode(_) => Err(auth::forbidden(id, &attrs, "read only")),
    }
}

/// Answers a GET under `/apis/metrics.k8s.io/v1beta1/` (`segs` is the
/// rest of the path): `nodes[/<name>]`, `pods`,
/// `namespaces/<ns>/pods[/<name>]`.
pub async fn serve(
    rest: &Rest,
    id: &Identity,
    segs: &[&str],
    query: &Query,
) -> Result<Value, ApiError> {
    let path = || format!("/apis/{API_VERSION}/{}", segs.join("/"));
    let (resource, namespace, name) = match segs {
        ["nodes"] => ("nodes", None, None),
        ["nodes", name] => ("nodes", None, Some(*name)),
        ["pods"] => ("pods", None, None),
        ["namespaces", ns, "pods"] => ("pods", Some(*ns), None),
        ["namespaces", ns, "pods", name] => ("pods", Some(*ns), Some(*name)),
        _ => return Err(ApiError::no_such_path(&path())),
    };
    let verb = if name.is_some() { "get" } else { "list" };
    authorize(
        id,
        verb,
        resource,
        namespace.unwrap_or(""),
        name.unwrap_or(""),
    )?;
    let samples = samples(&rest.storage).await?;
    let mut items = Vec::new();
    if resource == "nodes" {
        for node in objects(rest, "nodes", None, query).await? {
            let node_name = node["metadata"]["name"].as_str().unwrap_or("");
            if name.is_some_and(|n| n != node_name) {
                continue;
            }
            if let Some((_, usage)) = samples.iter().find(|(n, _)| n == node_name) {
                items.push(node_metrics(&node, usage));
            }
        }
    } else {
        for pod in objects(rest, "pods", namespace, query).await? {
            let meta = &pod["metadata"];
            let (ns, pod_name) = (
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap_or(""),
            );
            if name.is_some_and(|n| n != pod_name) {
                continue;
            }
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            let found = samples.iter().find(|(n, _)| n == node).and_then(|(_, s)| {
                let p = s
                    .pods
                    .iter()
                    .find(|p| p.namespace == ns && p.name == pod_name)?;
                Some((p, s))
            });
            if let Some((usage, sample)) = found {
                items.push(pod_metrics(&pod, usage, sample));
            }
        }
    }
    match name {
        Some(n) => {
            let plural = if resource == "nodes" {
                "nodemetrics"
            } else {
                "podmetrics"
            };
            items
                .pop()
                .ok_or_else(|| ApiError::not_found(GROUP, plural, n))
        }
        None => {
            let kind = if resource == "nodes" {
                "NodeMetricsList"
            } else {
                "PodMetricsList"
            };
            Ok(list(kind, items))
        }
    }
}

fn resources() -> [(&'static str, &'static str, bool); 2] {
    [
        ("nodes", "NodeMetrics", false),
        ("pods", "PodMetrics", true),
    ]
}

/// The group's entry in `/apis` (legacy APIGroupList).
pub fn api_group() -> Value {
    let gv = json!({ "groupVersion": API_VERSION, "version": VERSION });
    json!({ "name": GROUP, "versions": [gv.clone()], "preferredVersion": gv })
}

/// `GET /apis/metrics.k8s.io`.
pub fn api_group_doc() -> Value {
    let mut doc = api_group();
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    doc
}

/// `GET /apis/metrics.k8s.io/v1beta1`.
pub fn api_resource_list() -> Value {
    let resources: Vec<Value> = resources()
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({
                "name": plural,
                "singularName": "",
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": resources,
    })
}

/// The group's item in the aggregated discovery of `/apis`.
pub fn aggregated_group() -> Value {
    let resources: Vec<Value> = resources()
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({
                "resource": plural,
                "responseKind": { "group": GROUP, "version": VERSION, "kind": kind },
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": "",
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({
        "metadata": { "name": GROUP, "creationTimestamp": null },
        "versions": [{ "version": VERSION, "resources": resources, "freshness": "Current" }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kc_protocol::node_api::ContainerUsage;

    #[test]
    fn quantities_are_printed_like_metrics_server() {
        assert_eq!(cpu_quantity(123_456), "123456n");
        assert_eq!(cpu_quantity(0), "0n");
        assert_eq!(memory_quantity(64 << 20), "65536Ki");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(memory_quantity(0), "0Ki");
    }

    #[test]
    fn windows_are_go_durations() {
        assert_eq!(go_duration(15_000), "15s");
        assert_eq!(go_duration(14_987), "14.987s");
        assert_eq!(go_duration(10_500), "10.5s");
        assert_eq!(go_duration(60_500), "1m0.5s");
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(go_duration(0), "0s");
    }

    #[test]
    fn old_samples_go_stale() {
        let t = "2026-11-25T05:00:00Z";
        let at = t.parse::<Timestamp>().unwrap().as_second();
        assert!(is_fresh(t, 15_000, at + 59));
        assert!(!is_fresh(t, 15_000, at + 61));
        assert!(is_fresh(t, 1_000, at + 30), "at least 30 s");
        assert!(!is_fresh("garbage", 15_000, at));
    }

    #[test]
    fn pod_metrics_carry_each_container_and_the_pod_labels() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}}});
        let sample = NodeUsage {
            timestamp: "2026-11-25T05:00:00Z".into(),
            window_ms: 15_000,
            cpu_nanocores: 1,
            memory_bytes: 2048,
            pods: vec![],
        };
        let usage = PodUsage {
            namespace: "ns".into(),
            name: "p".into(),
            containers: vec![ContainerUsage {
                name: "c".into(),
                cpu_nanocores: 900_000_000,
                memory_bytes: 1 << 20,
            }],
        };
        let m = pod_metrics(&pod, &usage, &sample);
        assert_eq!(m["kind"], "PodMetrics");
        assert_eq!(m["metadata"]["labels"]["app"], "a");
        assert_eq!(m["metadata"]["namespace"], "ns");
        assert_eq!(m["window"], "15s");
        assert_eq!(m["containers"][0]["usage"]["cpu"], "900000000n");
        assert_eq!(m["containers"][0]["usage"]["memory"], "1024Ki");
        let node = node_metrics(&json!({"metadata": {"name": "n"}}), &sample);
        assert_eq!(node["usage"]["memory"], "2Ki");
        assert!(node["metadata"].get("namespace").is_none());
    }
}
