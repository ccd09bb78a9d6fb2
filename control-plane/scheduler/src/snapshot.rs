//! The scheduler's in-memory view of the cluster: every node with what is
//! bound (or assumed bound) to it, kept up to date incrementally from the
//! node and pod informers, never re-listed per pod.
//!
//! "Assumed" pods are ones this scheduler decided to place and whose binding
//! is in flight: they count against the node at once, so the next decision
//! sees them, and are forgotten if the binding fails. When the pod's watch
//! event arrives with `spec.nodeName` set, the assumption becomes fact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Affinity, Node, Pod, PodSpec, Taint, Toleration};
use serde_json::Value;

use super::quantity;

/// CPU, memory and pod count: what is requested or allocatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.pods += o.pods;
    }
    fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.pods -= o.pods;
    }
}

/// A host port a pod asks for: (protocol, port).
pub type HostPort = (String, i32);

/// What scheduling needs of a pod, decoded once.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub node_selector: BTreeMap<String, String>,
    pub affinity: Option<Affinity>,
    pub tolerations: Vec<Toleration>,
    /// The controller owner's uid (pods of one ReplicaSet spread).
    pub owner: Option<String>,
    pub node_name: Option<String>,
    pub scheduler_name: String,
    /// Succeeded/Failed pods hold no resources.
    pub terminal: bool,
    pub deleting: bool,
}

impl PodInfo {
    pub fn has_required_anti_affinity(&self) -> bool {
        self.affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|t| !t.is_empty())
    }

    /// Decodes a pod; None when it is not a valid Pod. Deserializes from
    /// the borrowed tree (no copy of the whole object first).
    pub fn from_json(object: &Value) -> Option<Self> {
        use serde::Deserialize;
        let pod = Pod::deserialize(object).ok()?;
        Some(Self::from_pod(&pod))
    }

    pub fn from_pod(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let no_spec = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&no_spec);
        let mut requests = Resources {
            pods: 1,
            ..Default::default()
        };
        let mut host_ports = Vec::new();
        for c in &spec.containers {
            if let Some(r) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
                if let Some(q) = r.get("cpu") {
                    requests.milli_cpu += quantity::milli_cpu(&q.0);
                }
                if let Some(q) = r.get("memory") {
                    requests.memory += quantity::bytes(&q.0);
                }
            }
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push((p.protocol.clone().unwrap_or_else(|| "TCP".into()), hp));
                }
            }
        }
        // Init containers run one at a time: the largest counts.
        for c in spec.init_containers.iter().flatten() {
            if let Some(r) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
                if let Some(q) = r.get("cpu") {
                    requests.milli_cpu = requests.milli_cpu.max(quantity::milli_cpu(&q.0));
                }
                if let Some(q) = r.get("memory") {
                    requests.memory = requests.memory.max(quantity::bytes(&q.0));
                }
            }
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        Self {
            key: format!("{namespace}/{name}"),
            namespace,
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            requests,
            host_ports,
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            affinity: spec.affinity.clone(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            owner: meta
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone()),
            node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".into()),
            terminal: matches!(phase, Some("Succeeded") | Some("Failed")),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

/// A node and what is placed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Resources,
    pub requested: Resources,
    /// Pods placed here (bound or assumed), by key.
    pub pods: HashMap<String, Arc<PodInfo>>,
    pub used_ports: HashSet<HostPort>,
    /// Placed pods per controller owner uid (for spreading, without a scan).
    pub owners: HashMap<String, usize>,
    /// Placed pods with required anti-affinity terms (0: the symmetric
    /// anti-affinity check needs no scan).
    pub anti_affinity_pods: usize,
}

impl NodeInfo {
    /// A node with nothing on it yet, from a Node object.
    pub fn from_node(node: &Node) -> Self {
        let mut info = Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            ..Default::default()
        };
        info.set_node(node);
        info
    }

    /// Refreshes what comes from the Node object, keeping the placed pods.
    pub fn set_node(&mut self, node: &Node) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        self.taints = spec.taints.unwrap_or_default();
        self.unschedulable = spec.unschedulable.unwrap_or(false);
        let status = node.status.clone().unwrap_or_default();
        self.ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let alloc = status.allocatable.or(status.capacity).unwrap_or_default();
        self.allocatable = Resources {
            milli_cpu: alloc
                .get("cpu")
                .map(|q| quantity::milli_cpu(&q.0))
                .unwrap_or(0),
            memory: alloc
                .get("memory")
                .map(|q| quantity::bytes(&q.0))
                .unwrap_or(0),
            pods: alloc
                .get("pods")
                .map(|q| quantity::parse(&q.0).unwrap_or(0.0) as i64)
                .unwrap_or(110),
        };
    }

    fn place(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        for p in &pod.host_ports {
            self.used_ports.insert(p.clone());
        }
        if let Some(o) = &pod.owner {
            *self.owners.entry(o.clone()).or_default() += 1;
        }
        if pod.has_required_anti_affinity() {
            self.anti_affinity_pods += 1;
        }
        self.pods.insert(pod.key.clone(), pod);
    }

    fn remove(&mut self, key: &str) {
        if let Some(pod) = self.pods.remove(key) {
            self.requested.sub(&pod.requests);
            for p in &pod.host_ports {
                self.used_ports.remove(p);
            }
            if let Some(o) = &pod.owner
                && let Some(n) = self.owners.get_mut(o)
            {
                *n -= 1;
                if *n == 0 {
                    self.owners.remove(o);
                }
            }
            if pod.has_required_anti_affinity() {
                self.anti_affinity_pods -= 1;
            }
        }
    }
}

/// Where a pod is in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Bound(String),
    Assumed(String),
}

impl Placement {
    pub fn node(&self) -> &str {
        match self {
            Placement::Bound(n) | Placement::Assumed(n) => n,
        }
    }
}

/// All nodes and placed pods.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub nodes: HashMap<String, NodeInfo>,
    /// Node names in a stable order, for round-robin sampling.
    pub order: Vec<String>,
    placed: HashMap<String, Placement>,
    /// Pods bound to nodes not (yet) known, placed when the node appears.
    orphans: HashMap<String, Arc<PodInfo>>,
}

impl Snapshot {
    pub fn upsert_node(&mut self, node: &Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(info) => info.set_node(node),
            None => {
                let mut info = NodeInfo::from_node(node);
                let waiting: Vec<String> = self
                    .orphans
                    .iter()
                    .filter(|(_, p)| p.node_name.as_deref() == Some(name.as_str()))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in waiting {
                    if let Some(p) = self.orphans.remove(&k) {
                        info.place(p);
                    }
                }
                self.nodes.insert(name.clone(), info);
                let at = self.order.binary_search(&name).unwrap_or_else(|i| i);
                self.order.insert(at, name);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name) {
            for (k, p) in info.pods {
                self.placed.remove(&k);
                if p.node_name.is_some() {
                    self.orphans.insert(k, p);
                }
            }
        }
        if let Ok(i) = self.order.binary_search_by(|n| n.as_str().cmp(name)) {
            self.order.remove(i);
        }
    }

    /// A pod's new state from the watch: placed where it is bound, or
    /// removed when it holds nothing. Returns whether it is still placed.
    pub fn update_pod(&mut self, pod: PodInfo) -> bool {
        let key = pod.key.clone();
        if pod.terminal || pod.node_name.is_none() {
            // Unbound pods keep an assumption made for them.
            if pod.terminal || !matches!(self.placed.get(&key), Some(Placement::Assumed(_))) {
                self.remove_pod(&key);
            }
            return false;
        }
        let node = pod.node_name.clone().unwrap_or_default();
        self.remove_pod(&key);
        let pod = Arc::new(pod);
        match self.nodes.get_mut(&node) {
            Some(info) => {
                info.place(pod);
                self.placed.insert(key, Placement::Bound(node));
            }
            None => {
                self.orphans.insert(key, pod);
            }
        }
        true
    }

    pub fn remove_pod(&mut self, key: &str) {
        self.orphans.remove(key);
        if let Some(p) = self.placed.remove(key)
            && let Some(info) = self.nodes.get_mut(p.node())
        {
            info.remove(key);
        }
    }

    /// Counts `pod` against `node` before its binding is written.
    pub fn assume(&mut self, pod: &PodInfo, node: &str) {
        self.remove_pod(&pod.key);
        if let Some(info) = self.nodes.get_mut(node) {
            let mut p = pod.clone();
            p.node_name = Some(node.to_string());
            info.place(Arc::new(p));
            self.placed
                .insert(pod.key.clone(), Placement::Assumed(node.to_string()));
        }
    }

    /// Drops an assumption whose binding failed (a bound placement stays).
    pub fn forget(&mut self, key: &str) {
        if matches!(self.placed.get(key), Some(Placement::Assumed(_))) {
            self.remove_pod(key);
        }
    }

    pub fn placement(&self, key: &str) -> Option<&Placement> {
        self.placed.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn node(name: &str, cpu: &str, mem: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap()
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str) -> PodInfo {
        PodInfo::from_json(&json!({
            "metadata": {"name": name, "namespace": "d"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu}}}]},
        }))
        .unwrap()
    }

    #[test]
    fn assumed_and_bound_pods_count_once_and_forget_frees() {
        let mut s = Snapshot::default();
        s.upsert_node(&node("n1", "2", "1Gi"));
        let p = pod("a", None, "500m");
        s.assume(&p, "n1");
        assert_eq!(s.nodes["n1"].requested.milli_cpu, 500);
        // The watch confirms the binding: still counted once.
        s.update_pod(pod("a", Some("n1"), "500m"));
        assert_eq!(s.nodes["n1"].requested.milli_cpu, 500);
        assert_eq!(s.placement("d/a"), Some(&Placement::Bound("n1".into())));
        // forget does not undo a real binding.
        s.forget("d/a");
        assert_eq!(s.nodes["n1"].requested.pods, 1);
        s.remove_pod("d/a");
        assert_eq!(s.nodes["n1"].requested, Resources::default());
        s.assume(&pod("b", None, "1"), "n1");
        s.forget("d/b");
        assert_eq!(s.nodes["n1"].requested, Resources::default());
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_the_node() {
        let mut s = Snapshot::default();
        s.update_pod(pod("a", Some("n2"), "1"));
        s.upsert_node(&node("n2", "4", "1Gi"));
        assert_eq!(s.nodes["n2"].requested.milli_cpu, 1000);
        assert_eq!(s.nodes["n2"].allocatable.milli_cpu, 4000);
        assert!(s.nodes["n2"].ready);
    }
}
