//! A CustomResourceDefinition itself: its defaults, its validation (with
//! Kubernetes' messages), and the resources it serves.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::Served;
use super::columns::Column;
use super::schema;
use crate::registry::{self, Resource, SCALE, STATUS, Subresource};
use crate::status::Cause;

/// The finalizer that holds a deleted CRD until its custom resources are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Defaults of a CRD (on create and update).
pub fn apply_defaults(crd: &mut Value) {
    let names = &mut crd["spec"]["names"];
    if let Some(kind) = names["kind"].as_str().map(str::to_string) {
        if names["singular"].as_str().is_none_or(str::is_empty) {
            names["singular"] = json!(kind.to_lowercase());
        }
        if names["listKind"].as_str().is_none_or(str::is_empty) {
            names["listKind"] = json!(format!("{kind}List"));
        }
    }
    if crd["spec"]["conversion"]["strategy"].is_null() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
    if crd["metadata"]["deletionTimestamp"].is_null() {
        let finalizers = &mut crd["metadata"]["finalizers"];
        if !finalizers.is_array() {
            *finalizers = json!([]);
        }
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f == CLEANUP_FINALIZER)
        {
            list.push(json!(CLEANUP_FINALIZER));
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Why a CRD is refused (empty: it is valid).
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    } else if group.split('.').any(|l| !is_dns_label(l)) {
        causes.push(Cause::invalid("spec.group", group, DNS_LABEL));
    } else if (group.ends_with(".k8s.io") || group.ends_with(".kubernetes.io"))
        && crd["metadata"]["annotations"]["api-approved.kubernetes.io"].is_null()
    {
        causes.push(Cause::required(
            "metadata.annotations[api-approved.kubernetes.io]",
        ));
    }
    for field in ["plural", "kind"] {
        if spec["names"][field].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(&format!("spec.names.{field}")));
        }
    }
    for field in ["plural", "singular"] {
        if let Some(v) = spec["names"][field].as_str()
            && !v.is_empty()
            && !is_dns_label(v)
        {
            causes.push(Cause::invalid(&format!("spec.names.{field}"), v, DNS_LABEL));
        }
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        None => causes.push(Cause::required("spec.scope")),
        Some(other) => causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                json!(other)
            ),
        )),
    }
    match spec["conversion"]["strategy"].as_str() {
        None | Some("None") => {}
        Some("Webhook") => causes.push(Cause::forbidden(
            "spec.conversion.strategy",
            "kc does not call conversion webhooks yet: use strategy None (every version stores and serves the same schema)",
        )),
        Some(other) => causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.conversion.strategy",
            format!("Unsupported value: {}: supported values: \"None\", \"Webhook\"", json!(other)),
        )),
    }
    validate_versions(spec, &mut causes);
    causes
}

fn validate_versions(spec: &Value, causes: &mut Vec<Cause>) {
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
        return;
    }
    let mut seen = HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = v["name"].as_str().unwrap_or("");
        if name.is_empty() {
            causes.push(Cause::required(&format!("{path}.name")));
        } else if !is_dns_label(name) {
            causes.push(Cause::invalid(&format!("{path}.name"), name, DNS_LABEL));
        } else if !seen.insert(name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                &format!("{path}.name"),
                format!("Duplicate value: {}", json!(name)),
            ));
        }
        let schema = &v["schema"]["openAPIV3Schema"];
        if schema.is_null() {
            causes.push(Cause::new(
                "FieldValueRequired",
                &format!("{path}.schema.openAPIV3Schema"),
                "Required value: schemas are required".into(),
            ));
        } else {
            schema::check_structural(schema, &format!("{path}.schema.openAPIV3Schema"), causes);
        }
        if let Some(scale) = v["subresources"].get("scale").filter(|s| !s.is_null())
            && scale["specReplicasPath"].as_str().is_none_or(str::is_empty)
        {
            causes.push(Cause::required(&format!(
                "{path}.subresources.scale.specReplicasPath"
            )));
        }
    }
    let storage = versions.iter().filter(|v| v["storage"] == true).count();
    if storage != 1 {
        causes.push(Cause::invalid_value(
            "spec.versions",
            &spec["versions"],
            "must have exactly one version marked as storage version",
        ));
    }
}

/// What a client is told about a CRD kc accepts but does not act on in
/// full: CEL rules (`x-kubernetes-validations`) are stored, not evaluated.
pub fn warnings(crd: &Value) -> Vec<String> {
    fn has_rules(schema: &Value) -> bool {
        match schema {
            Value::Object(m) => {
                m.contains_key("x-kubernetes-validations") || m.values().any(has_rules)
            }
            Value::Array(items) => items.iter().any(has_rules),
            _ => false,
        }
    }
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| has_rules(&v["schema"]))
        .map(|v| {
            format!(
                "version {}: x-kubernetes-validations rules are stored but not evaluated by kc yet",
                v["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Changes an update may not make.
pub fn validate_update(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in ["group", "scope"] {
        if old["spec"][field] != new["spec"][field] {
            causes.push(Cause::invalid_value(
                &format!("spec.{field}"),
                &new["spec"][field],
                "field is immutable",
            ));
        }
    }
    if old["spec"]["names"]["plural"] != new["spec"]["names"]["plural"] {
        causes.push(Cause::invalid_value(
            "spec.names.plural",
            &new["spec"]["names"]["plural"],
            "field is immutable",
        ));
    }
    causes
}

/// Strings of served resources live as long as the process (a Resource row
/// is `'static`); each distinct one is kept once.
fn intern(s: &str) -> &'static str {
    static KEPT: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    let set = kept.get_or_insert_with(HashSet::new);
    if let Some(k) = set.get(s) {
        return k;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

fn strings(v: &Value) -> &'static [&'static str] {
    let list: Vec<&'static str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(intern)
        .collect();
    if list.is_empty() {
        &[]
    } else {
        Box::leak(list.into_boxed_slice())
    }
}

/// The versions a (valid) CRD serves, in Kubernetes' version priority
/// order (discovery's preferred version first).
pub fn served(crd: &Value) -> Vec<Served> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let storage_version = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or("")
        .to_string();
    let mut out: Vec<Served> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let mut subresources: Vec<Subresource> = Vec::new();
            if v["subresources"]["status"].is_object() {
                subresources.push(STATUS);
            }
            let scale = v["subresources"]["scale"].is_object();
            if scale {
                subresources.push(SCALE);
            }
            let resource: &'static Resource = Box::leak(Box::new(Resource {
                group: intern(spec["group"].as_str().unwrap_or("")),
                version: intern(v["name"].as_str().unwrap_or("")),
                kind: intern(names["kind"].as_str().unwrap_or("")),
                plural: intern(names["plural"].as_str().unwrap_or("")),
                singular: intern(names["singular"].as_str().unwrap_or("")),
                short_names: strings(&names["shortNames"]),
                namespaced: spec["scope"] == "Namespaced",
                categories: strings(&names["categories"]),
                subresources: Box::leak(subresources.into_boxed_slice()),
                verbs: registry::ALL_VERBS,
            }));
            Served {
                resource,
                schema: v["schema"]["openAPIV3Schema"].clone(),
                columns: Column::all_of(&v["additionalPrinterColumns"]),
                storage_version: storage_version.clone(),
                list_kind: names["listKind"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect();
    out.sort_by(|a, b| version_priority(a.resource.version, b.resource.version));
    out
}

/// Kubernetes' version order: GA before beta before alpha, higher numbers
/// first; versions not like `v1beta2` last, alphabetically.
pub fn version_priority(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (u8, i64, i64, String) {
        let parse = || -> Option<(u8, i64, i64)> {
            let rest = v.strip_prefix('v')?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let major: i64 = digits.parse().ok()?;
            let tail = &rest[digits.len()..];
            if tail.is_empty() {
                return Some((0, -major, 0));
            }
            for (rank, word) in [(1u8, "beta"), (2, "alpha")] {
                if let Some(n) = tail.strip_prefix(word) {
                    return Some((rank, -major, -n.parse::<i64>().ok()?));
                }
            }
            None
        };
        match parse() {
            Some((rank, major, minor)) => (rank, major, minor, String::new()),
            None => (3, 0, 0, v.to_string()),
        }
    }
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
            "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object"}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}},
            ]}})
    }

    #[test]
    fn a_valid_crd_is_defaulted_and_serves_its_versions_in_priority_order() {
        let mut c = crd();
        apply_defaults(&mut c);
        assert!(validate(&c).is_empty(), "{:?}", validate(&c));
        assert_eq!(c["spec"]["names"]["singular"], "crontab");
        assert_eq!(c["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(c["metadata"]["finalizers"], json!([CLEANUP_FINALIZER]));
        let served = served(&c);
        let versions: Vec<&str> = served.iter().map(|s| s.resource.version).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        assert_eq!(served[0].resource.subresources, &[STATUS, SCALE]);
        assert_eq!(served[0].resource.short_names, &["ct"]);
        assert_eq!(served[1].storage_version, "v1");
    }

    #[test]
    fn bad_crds_are_refused_with_kubernetes_messages() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        c["spec"]["group"] = json!("apps");
        c["spec"]["versions"][0]["storage"] = json!(true);
        let fields: Vec<String> = validate(&c).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["spec.group", "metadata.name", "spec.versions"]);
    }

    #[test]
    fn cel_rules_are_warned_about() {
        let mut c = crd();
        assert!(warnings(&c).is_empty());
        c["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"] = json!({"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}]}});
        assert_eq!(
            warnings(&c),
            ["version v1: x-kubernetes-validations rules are stored but not evaluated by kc yet"]
        );
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1", "v10"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }
}
