//! NodeResourcesBalancedAllocation: prefer nodes where cpu and memory use
//! stay even after placing the pod.

use super::{MAX, fractions};
use crate::snapshot::{NodeInfo, PodInfo};

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let (cpu, mem) = fractions(pod, node);
    ((1.0 - (cpu - mem).abs()) * MAX as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    #[test]
    fn balance_is_preferred() {
        let p = pod(
            "p",
            json!({"spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}}),
        );
        let empty = with_pods("a", json!({}), vec![]);
        let cpu_heavy = with_pods(
            "b",
            json!({}),
            vec![pod(
                "x",
                json!({"spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}}}]}}),
            )],
        );
        assert_eq!(score(&p, &empty), MAX);
        assert!(score(&p, &cpu_heavy) < MAX);
    }
}
