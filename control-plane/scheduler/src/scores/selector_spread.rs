//! SelectorSpread: prefer nodes with fewer pods of the same controller
//! owner, so a scaled ReplicaSet/Deployment spreads across nodes.

use super::MAX;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(owner) = pod.owner.as_deref() else {
        return MAX;
    };
    let placed_here = node
        .pods
        .get(&pod.key)
        .is_some_and(|p| p.owner.as_deref() == Some(owner));
    let same = node.owners.get(owner).copied().unwrap_or(0) as i64 - i64::from(placed_here);
    // 0 siblings: 100; each sibling halves what is left.
    MAX >> same.min(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    fn owned(name: &str) -> PodInfo {
        pod(
            name,
            json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": true}]}}),
        )
    }

    #[test]
    fn siblings_lower_the_score() {
        let empty = with_pods("a", json!({}), vec![]);
        let one = with_pods("b", json!({}), vec![owned("x")]);
        let p = owned("p");
        assert!(score(&p, &empty) > score(&p, &one));
        assert_eq!(score(&pod("lonely", json!({})), &one), MAX);
    }
}
