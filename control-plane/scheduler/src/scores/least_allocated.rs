//! NodeResourcesFit/LeastAllocated: prefer nodes with the most free cpu and
//! memory after placing the pod (pod count stands in when nothing is requested).

use super::{MAX, fractions};
use crate::snapshot::{NodeInfo, PodInfo};

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let (cpu, mem) = fractions(pod, node);
    let pods = if node.allocatable.pods > 0 {
        ((node.requested.pods + 1) as f64 / node.allocatable.pods as f64).min(1.0)
    } else {
        1.0
    };
    (((1.0 - cpu) + (1.0 - mem) + (1.0 - pods)) / 3.0 * MAX as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    #[test]
    fn emptier_nodes_score_higher() {
        let p = pod("p", json!({}));
        let empty = with_pods("a", json!({}), vec![]);
        let busy = with_pods(
            "b",
            json!({}),
            vec![pod(
                "x",
                json!({"spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "3", "memory": "6Gi"}}}]}}),
            )],
        );
        assert!(score(&p, &empty) > score(&p, &busy));
    }
}
