//! One scheduling decision over the snapshot: filter nodes, score the
//! feasible ones, pick the best. Pure; no I/O.
//!
//! Like kube-scheduler's `percentageOfNodesToScore`, a large cluster is
//! searched from a rotating start only until enough feasible nodes are found
//! (at least 100, or a share of the cluster shrinking from 50% to 5%): the
//! answer is as good in practice and the cost per pod stays flat. When no
//! node is feasible, every node was examined and the refusals are counted.

use std::collections::BTreeMap;

use super::filters;
use super::scores;
use super::snapshot::{PodInfo, Snapshot};

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Node(String),
    /// The FailedScheduling message.
    Unschedulable(String),
}

/// How many feasible nodes to find before stopping the search.
pub fn feasible_to_find(nodes: usize) -> usize {
    if nodes <= 100 {
        return nodes;
    }
    let percent = (50 - nodes as i64 / 125).max(5) as usize;
    (nodes * percent / 100).max(100)
}

/// Chooses a node for `pod`. `start` rotates the search start between calls.
pub fn decide(snapshot: &Snapshot, pod: &PodInfo, start: &mut usize) -> Decision {
    let n = snapshot.order.len();
    let want = feasible_to_find(n);
    let mut best: Option<(&str, i64)> = None;
    let mut found = 0;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut examined = 0;
    for i in 0..n {
        let name = &snapshot.order[(*start + i) % n];
        let Some(node) = snapshot.nodes.get(name) else {
            continue;
        };
        examined = i + 1;
        match filters::run(pod, node) {
            Ok(()) => {
                found += 1;
                let score = scores::total(pod, node);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((name, score));
                }
                if found >= want {
                    break;
                }
            }
            Err(reasons) => {
                for r in reasons {
                    *refusals.entry(r).or_default() += 1;
                }
            }
        }
    }
    if n > 0 {
        *start = (*start + examined) % n;
    }
    match best {
        Some((name, _)) => Decision::Node(name.to_string()),
        None => Decision::Unschedulable(filters::message(n, &refusals)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node_json, pod};
    use serde_json::json;

    fn snapshot(nodes: Vec<serde_json::Value>) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.upsert_node(&serde_json::from_value(n).unwrap());
        }
        s
    }

    #[test]
    fn failure_message_counts_reasons_per_node() {
        let s = snapshot(vec![
            node_json("a", json!({"status": {"allocatable": {"memory": "1Gi"}}})),
            node_json("b", json!({"status": {"allocatable": {"memory": "1Gi"}}})),
            node_json(
                "c",
                json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
            ),
        ]);
        let big = pod(
            "p",
            json!({"spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"memory": "2Gi"}}}]}}),
        );
        assert_eq!(
            decide(&s, &big, &mut 0),
            Decision::Unschedulable(
                "0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {dedicated: db}.".into()
            )
        );
        let small = pod("q", json!({}));
        assert!(matches!(decide(&s, &small, &mut 0), Decision::Node(n) if n == "a" || n == "b"));
    }

    #[test]
    fn replicas_spread_over_nodes() {
        let mut s = snapshot(vec![
            node_json("a", json!({})),
            node_json("b", json!({})),
            node_json("c", json!({})),
        ]);
        let mut start = 0;
        let mut used = std::collections::HashSet::new();
        for i in 0..3 {
            let p = pod(
                &format!("p{i}"),
                json!({"metadata": {"ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": true}]}}),
            );
            let Decision::Node(n) = decide(&s, &p, &mut start) else {
                panic!("unschedulable")
            };
            s.assume(&p, &n);
            used.insert(n);
        }
        assert_eq!(used.len(), 3, "three replicas on three nodes: {used:?}");
    }

    #[test]
    fn search_stops_early_only_on_large_clusters() {
        assert_eq!(feasible_to_find(50), 50);
        assert_eq!(feasible_to_find(1000), 420);
        assert_eq!(feasible_to_find(5000), 500);
        assert_eq!(
            decide(&Snapshot::default(), &pod("p", json!({})), &mut 0),
            Decision::Unschedulable("0/0 nodes are available: no nodes registered.".into())
        );
    }
}
