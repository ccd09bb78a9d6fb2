//! Label selectors and node selector terms evaluated against label maps:
//! the matching rules node affinity, nodeSelector and pod anti-affinity share.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
pub use kc_client::labels::label_selector_matches;

type Labels = BTreeMap<String, String>;

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// One node selector term: all its expressions and fields hold. An empty
/// term matches nothing, as in Kubernetes.
pub fn term_matches(term: &NodeSelectorTerm, node_name: &str, labels: &Labels) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node_name.to_string();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields.iter().all(|r| {
            let v = (r.key == "metadata.name").then_some(&name);
            requirement_matches(r, v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        }))
        .unwrap();
        assert!(label_selector_matches(&sel, &labels(&[("app", "web")])));
        assert!(!label_selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "db")])
        ));
        assert!(!label_selector_matches(&sel, &labels(&[])));
        assert!(label_selector_matches(
            &LabelSelector::default(),
            &labels(&[])
        ));
    }

    #[test]
    fn node_selector_terms() {
        let term: NodeSelectorTerm = serde_json::from_value(json!({
            "matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]},
                {"key": "cores", "operator": "Gt", "values": ["4"]},
            ],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["bad"]}],
        }))
        .unwrap();
        let good = labels(&[("disk", "ssd"), ("cores", "8")]);
        assert!(term_matches(&term, "n1", &good));
        assert!(!term_matches(&term, "bad", &good));
        assert!(!term_matches(
            &term,
            "n1",
            &labels(&[("disk", "ssd"), ("cores", "2")])
        ));
        assert!(!term_matches(&NodeSelectorTerm::default(), "n1", &good));
    }
}
