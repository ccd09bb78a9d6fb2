//! Endpoints and EndpointSlices: for each Service with a selector, the pods
//! it selects that have an IP, ready ones as addresses and the others as
//! not-ready, with the Service's ports resolved to the pods' (a named
//! targetPort is looked up in the pod's container ports). Both objects are
//! owned by the Service (the EndpointSlice is `<service>-kc`, labelled
//! `kubernetes.io/service-name`). Services without a selector are left to
//! their user.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::replicaset::{is_ready, owner_ref};
use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::status::ApiError;
use kc_scheduler::matching::label_selector_matches;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut services = client.informer(resource("", "v1", "services"));
    let mut pods = client.informer(resource("", "v1", "pods"));
    let mut by_namespace: HashMap<String, BTreeSet<String>> = HashMap::new();
    let _worker = spawn_worker(
        client.clone(),
        queue.clone(),
        "endpoints",
        |c, k| async move { reconcile(&c, &k).await },
    );
    loop {
        tokio::select! {
            Some(ev) = services.recv() => match ev {
                Event::Applied(o) => {
                    let ns = o["metadata"]["namespace"].as_str().unwrap_or("").to_string();
                    let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                    by_namespace.entry(ns).or_default().insert(name);
                    queue.add(&key_of(&o));
                }
                Event::Deleted(o) => {
                    let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
                    if let Some(set) = by_namespace.get_mut(ns) {
                        set.remove(o["metadata"]["name"].as_str().unwrap_or(""));
                    }
                }
                Event::Synced => {}
            },
            Some(ev) = pods.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev {
                let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
                for svc in by_namespace.get(ns).into_iter().flatten() {
                    queue.add(&format!("{ns}/{svc}"));
                }
            },
            else => return,
        }
    }
}

/// A service port resolved for one pod: (name, port, protocol).
fn resolve_port(svc_port: &Value, pod: &Value) -> Option<(String, i64, String)> {
    let name = svc_port["name"].as_str().unwrap_or("").to_string();
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP").to_string();
    let port = match &svc_port["targetPort"] {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .find(|p| p["name"] == s.as_str())?["containerPort"]
                .as_i64()?,
        },
        _ => svc_port["port"].as_i64()?,
    };
    Some((name, port, protocol))
}

/// The Endpoints subsets and EndpointSlice (endpoints, ports) of `svc` over `pods`.
pub fn compute(svc: &Value, pods: &[Value]) -> (Value, Value, Value) {
    let svc_ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    // Group pods by their resolved port list (Endpoints subsets).
    let mut subsets: BTreeMap<String, (Vec<Value>, Vec<Value>, Value)> = BTreeMap::new();
    let mut slice_endpoints = Vec::new();
    let mut slice_ports = Value::Null;
    for pod in pods {
        let Some(ip) = pod["status"]["podIP"].as_str().filter(|ip| !ip.is_empty()) else {
            continue;
        };
        let ports: Vec<Value> = svc_ports
            .iter()
            .filter_map(|p| resolve_port(p, pod))
            .map(|(name, port, protocol)| {
                let mut v = json!({"port": port, "protocol": protocol});
                if !name.is_empty() {
                    v["name"] = json!(name);
                }
                v
            })
            .collect();
        let ready = is_ready(pod);
        let terminating = pod["metadata"]["deletionTimestamp"].is_string();
        let target = json!({"kind": "Pod", "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"], "uid": pod["metadata"]["uid"]});
        let address = json!({"ip": ip, "nodeName": pod["spec"]["nodeName"], "targetRef": target});
        let entry = subsets
            .entry(Value::Array(ports.clone()).to_string())
            .or_insert_with(|| (Vec::new(), Vec::new(), Value::Array(ports.clone())));
        if ready && !terminating {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
        slice_ports = Value::Array(ports);
        slice_endpoints.push(json!({
            "addresses": [ip],
            "conditions": {"ready": ready && !terminating, "serving": ready, "terminating": terminating},
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": target,
        }));
    }
    let subsets: Vec<Value> = subsets
        .into_values()
        .map(|(ready, not_ready, ports)| {
            let mut s = json!({"ports": ports});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            s
        })
        .collect();
    if slice_ports.is_null() {
        slice_ports = json!([]);
    }
    (json!(subsets), json!(slice_endpoints), slice_ports)
}

/// Creates or updates `desired` (a full object) if its `fields` differ.
pub(crate) async fn write(
    client: &Client,
    r: &'static kc_client::registry::Resource,
    desired: Value,
    fields: &[&str],
) -> Result<(), ApiError> {
    let ns = desired["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = desired["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    match client.get(r, &ns, &name).await {
        Ok(mut current) => {
            if fields.iter().all(|f| current[*f] == desired[*f]) {
                return Ok(());
            }
            for f in fields {
                current[*f] = desired[*f].clone();
            }
            client.update(r, current).await.map(|_| ())
        }
        Err(e) if e.code == 404 => client.create(r, &ns, desired).await.map(|_| ()),
        Err(e) => Err(e),
    }
}

pub async fn reconcile(client: &Client, key: &str) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let svc = match client.get(resource("", "v1", "services"), ns, name).await {
        Ok(s) => s,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(selector) = svc["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    let sel = serde_json::from_value(json!({"matchLabels": selector})).unwrap_or_default();
    let (all, _) = client.list(resource("", "v1", "pods"), Some(ns)).await?;
    let selected: Vec<Value> = all
        .into_iter()
        .filter(|p| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(p["metadata"]["labels"].clone()).unwrap_or_default();
            label_selector_matches(&sel, &labels)
                && !matches!(
                    p["status"]["phase"].as_str(),
                    Some("Succeeded") | Some("Failed")
                )
        })
        .collect();
    let (subsets, endpoints, ports) = compute(&svc, &selected);
    let owner = owner_ref(&svc);
    write(
        client,
        resource("", "v1", "endpoints"),
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"]["labels"]},
            "subsets": subsets}),
        &["subsets"],
    )
    .await?;
    write(
        client,
        resource("discovery.k8s.io", "v1", "endpointslices"),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-kc"), "namespace": ns,
                "labels": {SERVICE_NAME_LABEL: name,
                           "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "ownerReferences": [owner]},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}),
        &["endpoints", "ports"],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_not_ready_pods_and_named_ports() {
        let svc = json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}});
        let pod = |name: &str, ip: &str, ready: &str| {
            json!({
                "metadata": {"name": name, "namespace": "d", "uid": name},
                "spec": {"nodeName": "n1", "containers": [{"ports": [{"name": "web", "containerPort": 8080}]}]},
                "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]},
            })
        };
        let (subsets, endpoints, ports) = compute(
            &svc,
            &[
                pod("a", "10.0.0.1", "True"),
                pod("b", "10.0.0.2", "False"),
                pod("c", "", "True"),
            ],
        );
        assert_eq!(subsets[0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(subsets[0]["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert_eq!(subsets[0]["ports"][0]["port"], 8080);
        assert_eq!(endpoints.as_array().unwrap().len(), 2);
        assert_eq!(endpoints[1]["conditions"]["ready"], false);
        assert_eq!(ports[0]["name"], "http");
    }
}
