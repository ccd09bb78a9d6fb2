//! Scores: among the nodes that passed the filters, which is best? Each
//! scorer is a pure function of the pod and a node, answering 0..=100; the
//! weighted sum decides. Named after the Kubernetes plugins.

pub mod balanced_allocation;
pub mod least_allocated;
pub mod node_affinity;
pub mod selector_spread;

use super::snapshot::{NodeInfo, PodInfo};

pub const MAX: i64 = 100;

type Scorer = fn(&PodInfo, &NodeInfo) -> i64;

/// (scorer, weight). Spreading pods of one owner weighs most, so a scaled
/// Deployment lands on distinct nodes first.
pub const SCORERS: &[(Scorer, i64)] = &[
    (least_allocated::score, 1),
    (balanced_allocation::score, 1),
    (selector_spread::score, 2),
    (node_affinity::score, 2),
];

pub fn total(pod: &PodInfo, node: &NodeInfo) -> i64 {
    SCORERS.iter().map(|(f, w)| f(pod, node) * w).sum()
}

/// The fractions of cpu and memory used on `node` if `pod` were added.
pub(crate) fn fractions(pod: &PodInfo, node: &NodeInfo) -> (f64, f64) {
    let frac = |used: i64, req: i64, alloc: i64| {
        if alloc <= 0 {
            1.0
        } else {
            ((used + req) as f64 / alloc as f64).min(1.0)
        }
    };
    (
        frac(
            node.requested.milli_cpu,
            pod.requests.milli_cpu,
            node.allocatable.milli_cpu,
        ),
        frac(
            node.requested.memory,
            pod.requests.memory,
            node.allocatable.memory,
        ),
    )
}
