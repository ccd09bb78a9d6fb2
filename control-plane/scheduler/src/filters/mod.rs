//! Filters: may this pod go on this node? Each is a pure function of the
//! pod and one node of the snapshot, named after its Kubernetes plugin, and
//! answers with the reasons it refuses in Kubernetes' own words (they are
//! counted into the FailedScheduling message).

pub mod inter_pod_anti_affinity;
pub mod node_affinity;
pub mod node_ports;
pub mod node_ready;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;

use std::collections::BTreeMap;

use super::snapshot::{NodeInfo, PodInfo};

/// Why a node was refused (one or more reasons).
pub type Refusal = Vec<String>;

type Filter = fn(&PodInfo, &NodeInfo) -> Result<(), Refusal>;

/// The filters, in the order they run (cheap and common first).
pub const FILTERS: &[Filter] = &[
    node_ready::filter,
    node_unschedulable::filter,
    node_affinity::filter,
    taint_toleration::filter,
    node_resources_fit::filter,
    node_ports::filter,
    inter_pod_anti_affinity::filter,
];

/// Runs every filter until one refuses.
pub fn run(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    FILTERS.iter().try_for_each(|f| f(pod, node))
}

/// "0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 Insufficient memory."
pub fn message(total: usize, refusals: &BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = refusals.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if parts.is_empty() {
        format!("0/{total} nodes are available: no nodes registered.")
    } else {
        format!("0/{total} nodes are available: {}.", parts.join(", "))
    }
}

#[cfg(test)]
pub mod testing {
    //! Pods and nodes for filter and score tests.
    use serde_json::{Value, json};

    use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

    pub fn node_json(name: &str, extra: Value) -> Value {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]},
        });
        json_patch::merge(&mut n, &extra);
        n
    }

    pub fn node(name: &str, extra: Value) -> NodeInfo {
        NodeInfo::from_node(&serde_json::from_value(node_json(name, extra)).unwrap())
    }

    pub fn pod(name: &str, spec_extra: Value) -> PodInfo {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        });
        json_patch::merge(&mut p, &spec_extra);
        PodInfo::from_json(&p).unwrap()
    }

    /// A snapshot holding `node` with `pods` bound on it.
    pub fn with_pods(node_name: &str, extra: Value, pods: Vec<PodInfo>) -> NodeInfo {
        let mut s = Snapshot::default();
        s.upsert_node(&serde_json::from_value(node_json(node_name, extra)).unwrap());
        for mut p in pods {
            p.node_name = Some(node_name.into());
            s.update_pod(p);
        }
        s.nodes.remove(node_name).unwrap()
    }
}
