//! NodeAffinity: `spec.nodeSelector` and required node affinity
//! (`requiredDuringSchedulingIgnoredDuringExecution`: any term may match).

use super::Refusal;
use crate::matching::term_matches;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let required = pod
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| term_matches(t, &node.name, &node.labels))
    });
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(vec![
            "node(s) didn't match Pod's node affinity/selector".into(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn node_selector_and_required_affinity() {
        let ssd = node("a", json!({"metadata": {"labels": {"disk": "ssd"}}}));
        let hdd = node("b", json!({"metadata": {"labels": {"disk": "hdd"}}}));
        let by_selector = pod("p", json!({"spec": {"nodeSelector": {"disk": "ssd"}}}));
        assert!(filter(&by_selector, &ssd).is_ok());
        assert!(filter(&by_selector, &hdd).is_err());
        let by_affinity = pod(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}]}}}}}),
        );
        assert!(filter(&by_affinity, &ssd).is_err());
        assert!(filter(&by_affinity, &hdd).is_ok());
        assert!(filter(&pod("p", json!({})), &hdd).is_ok());
    }
}
