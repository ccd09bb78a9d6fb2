//! Which webhooks a request reaches: a webhook's `rules` (operations, API
//! groups, versions, resources with their subresources, scope), then its
//! `namespaceSelector` and `objectSelector`, matched as kube-apiserver
//! matches them. Pure: the namespace's labels are given.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kc_client::labels::{Labels, label_selector_matches, labels_of};
use serde_json::Value;

/// What a request is, as the rules see it.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespaced: bool,
    pub namespace: &'a str,
}

fn listed(list: &Value, want: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|v| v == "*" || v == want)
}

/// `pods` (not its subresources), `pods/*` (its subresources), `*`
/// (every resource), `*/*` (everything), `*/scale` (every scale).
fn resource_listed(list: &Value, resource: &str, subresource: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|entry| match entry.split_once('/') {
            None => subresource.is_empty() && (entry == "*" || entry == resource),
            Some((res, sub)) => {
                (res == "*" || res == resource)
                    && !subresource.is_empty()
                    && (sub == "*" || sub == subresource)
            }
        })
}

/// Whether one RuleWithOperations covers the request.
pub fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !a.namespaced,
        "Namespaced" => a.namespaced,
        _ => true,
    };
    scope_ok
        && listed(&rule["operations"], a.operation)
        && listed(&rule["apiGroups"], a.group)
        && listed(&rule["apiVersions"], a.version)
        && resource_listed(&rule["resources"], a.resource, a.subresource)
}

/// A selector as written (absent or `{}`: everything), or None if it does
/// not decode (a webhook with a broken selector matches nothing).
fn selector(v: &Value) -> Option<LabelSelector> {
    if v.is_null() {
        return Some(LabelSelector::default());
    }
    serde_json::from_value(v.clone()).ok()
}

/// Whether a webhook (or a policy's match constraints) takes the request:
/// some rule covers it, the namespace's labels (None for cluster-scoped
/// requests other than Namespaces) match `namespaceSelector`, and the new
/// or old object's labels match `objectSelector`.
pub fn webhook_matches(
    hook: &Value,
    rules_field: &str,
    a: &Attributes,
    namespace_labels: Option<&Labels>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let covered = hook[rules_field]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| rule_matches(r, a));
    if !covered {
        return false;
    }
    let Some(ns_selector) = selector(&hook["namespaceSelector"]) else {
        return false;
    };
    if let Some(labels) = namespace_labels
        && !label_selector_matches(&ns_selector, labels)
    {
        return false;
    }
    let Some(obj_selector) = selector(&hook["objectSelector"]) else {
        return false;
    };
    let candidates: Vec<&Value> = [object, old].into_iter().flatten().collect();
    candidates.is_empty()
        || candidates
            .iter()
            .any(|o| label_selector_matches(&obj_selector, &labels_of(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(operation: &'a str, resource: &'a str, subresource: &'a str) -> Attributes<'a> {
        Attributes {
            operation,
            group: "",
            version: "v1",
            resource,
            subresource,
            namespaced: true,
            namespace: "default",
        }
    }

    #[test]
    fn rules_match_operations_resources_and_subresources() {
        let rule = json!({"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
            "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"});
        assert!(rule_matches(&rule, &attrs("CREATE", "pods", "")));
        assert!(!rule_matches(&rule, &attrs("DELETE", "pods", "")));
        assert!(!rule_matches(&rule, &attrs("UPDATE", "pods", "status")));
        assert!(!rule_matches(&rule, &attrs("CREATE", "configmaps", "")));
        let subs = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
            "resources": ["pods/*"]});
        assert!(rule_matches(&subs, &attrs("UPDATE", "pods", "status")));
        assert!(!rule_matches(&subs, &attrs("UPDATE", "pods", "")));
        let all = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
            "resources": ["*/*"], "scope": "Cluster"});
        assert!(!rule_matches(&all, &attrs("CREATE", "pods", "")));
    }

    #[test]
    fn selectors_pick_namespaces_and_objects() {
        let hook = json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
            "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}});
        let a = attrs("CREATE", "configmaps", "");
        let on: Labels = [("webhooks".to_string(), "on".to_string())].into();
        let cm = json!({"metadata": {"name": "x"}});
        let skipped = json!({"metadata": {"name": "x", "labels": {"skip": "yes"}}});
        assert!(webhook_matches(
            &hook,
            "rules",
            &a,
            Some(&on),
            Some(&cm),
            None
        ));
        assert!(!webhook_matches(
            &hook,
            "rules",
            &a,
            Some(&Labels::new()),
            Some(&cm),
            None
        ));
        assert!(!webhook_matches(
            &hook,
            "rules",
            &a,
            Some(&on),
            Some(&skipped),
            None
        ));
    }
}
