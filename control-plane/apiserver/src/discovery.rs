//! Discovery documents: `/version`, legacy discovery (`/api`, `/apis`,
//! `/api/v1`, `/apis/<group>/<version>`) and aggregated discovery
//! (`apidiscovery.k8s.io` v2 and v2beta1), all generated from the registry.

use serde_json::{Value, json};

use super::registry::{self, Resource};

/// The Kubernetes minor version whose API we serve. kubectl's dispatcher on
/// these machines picks its client build from this field.
pub const KUBE_MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-kc.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /api` (legacy).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

/// One group in `GET /apis` (legacy).
fn api_group(group: &str) -> Value {
    let versions: Vec<&str> = {
        let mut v: Vec<&str> = registry::all()
            .into_iter()
            .filter(|r| r.group == group)
            .map(|r| r.version)
            .collect();
        v.sort_by(|a, b| super::crd::definition::version_priority(a, b));
        v.dedup();
        v
    };
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /apis` (legacy).
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": registry::groups()
            .into_iter()
            .map(api_group)
            .chain([super::resource_metrics::api_group()])
            .chain(super::aggregator::legacy_groups())
            .collect::<Vec<_>>(),
    })
}

/// `GET /apis/<group>` (legacy), or None for a group we do not serve.
pub fn api_group_doc(group: &str) -> Option<Value> {
    if !registry::groups().contains(&group) {
        return None;
    }
    let mut doc = api_group(group);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `/apis/<group>/<version>` (legacy), or None if unserved.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&Resource> = registry::in_group_version(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in resources {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for sub in r.subresources {
            let (g, v, kind) = r.subresource_kind(sub);
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, sub.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": sub.verbs,
            });
            if g != r.group || v != r.version {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            list.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

/// One resource of an aggregated discovery document.
fn discovery_resource(r: &Resource) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = r
            .subresources
            .iter()
            .map(|sub| {
                let (g, v, kind) = r.subresource_kind(sub);
                json!({
                    "subresource": sub.name,
                    "responseKind": { "group": g, "version": v, "kind": kind },
                    "verbs": sub.verbs,
                })
            })
            .collect();
    }
    entry
}

fn discovery_group(group: &str) -> Value {
    let mut versions: Vec<&str> = registry::all()
        .into_iter()
        .filter(|r| r.group == group)
        .map(|r| r.version)
        .collect();
    versions.sort_by(|a, b| super::crd::definition::version_priority(a, b));
    versions.dedup();
    json!({
        "metadata": { "name": group, "creationTimestamp": null },
        "versions": versions.iter().map(|v| json!({
            "version": v,
            "resources": registry::in_group_version(group, v).map(discovery_resource).collect::<Vec<_>>(),
            "freshness": "Current",
        })).collect::<Vec<_>>(),
    })
}

/// The aggregated discovery document of `/api` (`legacy` = true, the core
/// group) or `/apis` (every named group), in `apidiscovery.k8s.io/<version>`.
pub fn aggregated(legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = if legacy {
        vec![discovery_group("")]
    } else {
        registry::groups()
            .into_iter()
            .map(discovery_group)
            .chain([super::resource_metrics::aggregated_group()])
            .chain(super::aggregator::aggregated_groups())
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// The Content-Type of an aggregated discovery answer.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_core_lists_pods_with_short_names_and_subresources() {
        let doc = aggregated(true, "v2");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let resources = doc["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap();
        let pods = resources.iter().find(|r| r["resource"] == "pods").unwrap();
        assert_eq!(pods["shortNames"][0], "po");
        assert_eq!(pods["scope"], "Namespaced");
        assert!(
            pods["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["subresource"] == "status")
        );
    }

    #[test]
    fn aggregated_groups_include_apps() {
        let doc = aggregated(false, "v2beta1");
        assert!(
            doc["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["metadata"]["name"] == "apps")
        );
    }

    #[test]
    fn legacy_resource_list_has_subresources_and_scale_kind() {
        let doc = api_resource_list("apps", "v1").unwrap();
        let scale = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(api_resource_list("nope", "v1").is_none());
    }

    #[test]
    fn version_reports_the_served_minor() {
        assert_eq!(version()["minor"], KUBE_MINOR);
    }
}
