//! API aggregation (kube-aggregator): an APIService whose `spec.service`
//! names a Service makes this API server proxy `/apis/<group>/<version>/...`
//! to that Service (the metrics-server and custom API server pattern), the
//! backend verified by the APIService's `caBundle` (or not, under
//! `insecureSkipTLSVerify`), the caller named in `X-Remote-User` and
//! `X-Remote-Group`. The group appears in `/apis` and in aggregated
//! discovery with the resources the backend lists; `availability` probes
//! each backend and writes the APIService's `Available` condition.
//!
//! A group/version this server serves itself (built-in, custom resources,
//! its own `metrics.k8s.io`) is never proxied. APIServices come from a
//! cache kept by a watch (`start`), as the aggregator's informer.

pub mod availability;
pub mod proxy;

use std::collections::BTreeMap;
use std::sync::RwLock;

use kc_client::{Client, Event};
use serde_json::{Value, json};

use crate::registry;
use crate::storage::Storage;

/// A service-backed APIService as this process knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// The APIService's name (`v1.example.com`).
    pub name: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub service: String,
    pub port: i64,
    pub ca_bundle: Value,
    pub insecure: bool,
    pub group_priority: i64,
    pub version_priority: i64,
    /// The backend's APIResourceList, from the last successful probe.
    pub resources: Option<Value>,
}

impl Remote {
    fn from_api_service(o: &Value) -> Option<Self> {
        let spec = &o["spec"];
        let svc = spec["service"].as_object()?;
        Some(Self {
            name: o["metadata"]["name"].as_str()?.to_string(),
            group: spec["group"].as_str().unwrap_or("").to_string(),
            version: spec["version"].as_str().unwrap_or("").to_string(),
            namespace: svc.get("namespace")?.as_str()?.to_string(),
            service: svc.get("name")?.as_str()?.to_string(),
            port: svc.get("port").and_then(Value::as_i64).unwrap_or(443),
            ca_bundle: spec["caBundle"].clone(),
            insecure: spec["insecureSkipTLSVerify"] == true,
            group_priority: spec["groupPriorityMinimum"].as_i64().unwrap_or(0),
            version_priority: spec["versionPriority"].as_i64().unwrap_or(0),
            resources: None,
        })
    }
}

static REMOTES: RwLock<BTreeMap<String, Remote>> = RwLock::new(BTreeMap::new());

/// Whether this server serves `group`/`version` itself.
fn local(group: &str, version: &str) -> bool {
    registry::in_group_version(group, version).next().is_some()
        || (group, version)
            == (
                super::resource_metrics::GROUP,
                super::resource_metrics::VERSION,
            )
}

/// The backend of `group`/`version`, if an APIService proxies it.
pub fn remote(group: &str, version: &str) -> Option<Remote> {
    // Asked on every /apis request: the (usually empty) cache first.
    let found = REMOTES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .find(|r| r.group == group && r.version == version)
        .cloned()?;
    (!local(group, version)).then_some(found)
}

/// The proxied versions of each group no local resource serves, best
/// version first (by versionPriority).
fn remote_groups() -> BTreeMap<String, Vec<Remote>> {
    let remotes = REMOTES.read().unwrap_or_else(|p| p.into_inner());
    let served = registry::groups();
    let mut groups: BTreeMap<String, Vec<Remote>> = BTreeMap::new();
    for r in remotes.values() {
        if !local(&r.group, &r.version) && !served.contains(&r.group.as_str()) {
            groups.entry(r.group.clone()).or_default().push(r.clone());
        }
    }
    for versions in groups.values_mut() {
        versions.sort_by_key(|r| std::cmp::Reverse(r.version_priority));
    }
    groups
}

fn group_entry(group: &str, versions: &[Remote]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|r| json!({"groupVersion": format!("{group}/{}", r.version), "version": r.version}))
        .collect();
    json!({"name": group, "versions": gvs, "preferredVersion": gvs.first().cloned().unwrap_or(Value::Null)})
}

/// The proxied groups, as `/apis` (legacy discovery) lists groups.
pub fn legacy_groups() -> Vec<Value> {
    remote_groups()
        .iter()
        .map(|(g, versions)| group_entry(g, versions))
        .collect()
}

/// `GET /apis/<group>` of a proxied group.
pub fn api_group_doc(group: &str) -> Option<Value> {
    let groups = remote_groups();
    let versions = groups.get(group)?;
    let mut doc = group_entry(group, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// One APIResourceList entry (and its subresources) as an aggregated
/// discovery resource.
fn discovery_resources(group: &str, version: &str, list: &Value) -> Vec<Value> {
    let entries = list["resources"].as_array().cloned().unwrap_or_default();
    let (subs, mains): (Vec<Value>, Vec<Value>) = entries
        .into_iter()
        .partition(|e| e["name"].as_str().unwrap_or("").contains('/'));
    mains
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap_or("");
            let mut entry = json!({
                "resource": name,
                "responseKind": {"group": group, "version": version, "kind": e["kind"]},
                "scope": if e["namespaced"] == true { "Namespaced" } else { "Cluster" },
                "singularResource": e["singularName"],
                "verbs": e["verbs"],
            });
            for key in ["shortNames", "categories"] {
                if e[key].as_array().is_some_and(|a| !a.is_empty()) {
                    entry[key] = e[key].clone();
                }
            }
            let own: Vec<Value> = subs
                .iter()
                .filter_map(|s| {
                    let (parent, sub) = s["name"].as_str()?.split_once('/')?;
                    (parent == name).then(|| {
                        json!({"subresource": sub, "verbs": s["verbs"],
                            "responseKind": {"group": group, "version": version, "kind": s["kind"]}})
                    })
                })
                .collect();
            if !own.is_empty() {
                entry["subresources"] = json!(own);
            }
            entry
        })
        .collect()
}

/// The proxied groups as aggregated discovery (`apidiscovery.k8s.io`)
/// lists them: the resources their backends last listed, `Stale` for a
/// backend that has not answered.
pub fn aggregated_groups() -> Vec<Value> {
    remote_groups()
        .iter()
        .map(|(group, versions)| {
            json!({
                "metadata": {"name": group, "creationTimestamp": null},
                "versions": versions.iter().map(|r| json!({
                    "version": r.version,
                    "resources": r.resources.as_ref().map(|l| discovery_resources(group, &r.version, l)).unwrap_or_default(),
                    "freshness": if r.resources.is_some() { "Current" } else { "Stale" },
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The APIServices of the group/versions this server serves itself (its
/// built-in table and `metrics.k8s.io`), as kube-apiserver registers them:
/// named `<version>.<group>` (`v1.` for the core group), no service, and
/// always Available (`Local`). Earlier groups get higher priorities.
pub fn local_api_services() -> Vec<Value> {
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for r in registry::RESOURCES {
        if !gvs.contains(&(r.group, r.version)) {
            gvs.push((r.group, r.version));
        }
    }
    gvs.push((
        super::resource_metrics::GROUP,
        super::resource_metrics::VERSION,
    ));
    gvs.iter()
        .enumerate()
        .map(|(i, (group, version))| {
            json!({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{version}.{group}"), "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": {"group": group, "version": version,
                    "groupPriorityMinimum": 18000 - 100 * i as i64, "versionPriority": 15},
                "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                    "message": "Local APIServices are always available",
                    "lastTransitionTime": kc_client::clock::rfc3339_in(0)}]},
            })
        })
        .collect()
}

/// Records what a probe of `name` found (None: it failed).
fn set_resources(name: &str, resources: Option<Value>) {
    let mut remotes = REMOTES.write().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = remotes.get_mut(name) {
        r.resources = resources;
    }
}

/// Starts following APIServices through `client` and probing their
/// backends (writing their `Available` condition through `client`).
pub fn start(client: Client, storage: Storage) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let prober = tokio::spawn(availability::run(client.clone(), storage));
        follow(client).await;
        prober.abort();
    })
}

async fn follow(client: Client) {
    let resource = registry::lookup("apiregistration.k8s.io", "v1", "apiservices")
        .expect("a built-in resource");
    let mut events = client.informer(resource);
    while let Some(ev) = events.recv().await {
        let mut remotes = REMOTES.write().unwrap_or_else(|p| p.into_inner());
        match ev {
            Event::Applied(o) => {
                let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                match Remote::from_api_service(&o) {
                    Some(mut r) => {
                        if let Some(old) = remotes.get(&name)
                            && (old.namespace.as_str(), old.service.as_str(), old.port)
                                == (r.namespace.as_str(), r.service.as_str(), r.port)
                        {
                            r.resources = old.resources.clone();
                        }
                        remotes.insert(name, r);
                    }
                    None => {
                        remotes.remove(&name);
                    }
                }
            }
            Event::Deleted(o) => {
                remotes.remove(o["metadata"]["name"].as_str().unwrap_or(""));
            }
            Event::Synced => {}
        }
    }
}

/// Every service-backed APIService, for the prober.
fn all() -> Vec<Remote> {
    REMOTES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_resource_lists_become_aggregated_discovery() {
        let list = json!({"resources": [
            {"name": "flunders", "singularName": "flunder", "namespaced": true, "kind": "Flunder",
             "verbs": ["get", "list"], "shortNames": ["fl"]},
            {"name": "flunders/status", "namespaced": true, "kind": "Flunder", "verbs": ["get"]}]});
        let out = discovery_resources("e2e.example.com", "v1", &list);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["scope"], "Namespaced");
        assert_eq!(out[0]["shortNames"], json!(["fl"]));
        assert_eq!(out[0]["subresources"][0]["subresource"], "status");
    }

    #[test]
    fn only_service_backed_api_services_are_remote() {
        let local =
            json!({"metadata": {"name": "v1.apps"}, "spec": {"group": "apps", "version": "v1"}});
        assert!(Remote::from_api_service(&local).is_none());
        let remote = json!({"metadata": {"name": "v1.e2e.example.com"}, "spec": {
            "group": "e2e.example.com", "version": "v1", "service": {"namespace": "default", "name": "api"}}});
        assert_eq!(Remote::from_api_service(&remote).unwrap().port, 443);
    }
}
