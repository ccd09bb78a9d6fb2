//! NodeAffinity (preferred): the weights of the matching
//! `preferredDuringSchedulingIgnoredDuringExecution` terms, scaled to 0..=100.

use super::MAX;
use crate::matching::term_matches;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(preferred) = pod
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
    else {
        return 0;
    };
    let total: i64 = preferred.iter().map(|p| i64::from(p.weight.max(0))).sum();
    if total == 0 {
        return 0;
    }
    let matched: i64 = preferred
        .iter()
        .filter(|p| term_matches(&p.preference, &node.name, &node.labels))
        .map(|p| i64::from(p.weight.max(0)))
        .sum();
    matched * MAX / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn preferred_terms_weigh_in() {
        let p = pod(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 80, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 20, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}}}),
        );
        let a = node("a", json!({"metadata": {"labels": {"zone": "a"}}}));
        let b = node(
            "b",
            json!({"metadata": {"labels": {"zone": "b", "disk": "ssd"}}}),
        );
        assert_eq!(score(&p, &a), 80);
        assert_eq!(score(&p, &b), 20);
        assert_eq!(score(&pod("q", json!({})), &a), 0);
    }
}
