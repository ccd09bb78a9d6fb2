//! A binding of a pod to a node: what the scheduler posts to
//! `pods/<name>/binding` (the API server judges it).

use serde_json::{Map, Value};

/// One binding: pod `namespace/pod` goes to `node`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub namespace: String,
    pub pod: String,
    /// The pod's uid as the binder saw it (a precondition), if known.
    pub uid: Option<String>,
    pub node: String,
    /// Merged into the pod's annotations.
    pub annotations: Map<String, Value>,
}

impl Binding {
    pub fn new(namespace: &str, pod: &str, uid: Option<&str>, node: &str) -> Self {
        Self {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: uid.filter(|u| !u.is_empty()).map(str::to_string),
            node: node.into(),
            annotations: Map::new(),
        }
    }
}
