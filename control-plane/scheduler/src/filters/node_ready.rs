//! NodeReady: only nodes whose Ready condition is True take new pods (in
//! Kubernetes the not-ready taint does this; kc checks the condition too so
//! a node that stopped heartbeating is skipped even before it is tainted).

use super::Refusal;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn filter(_pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    if node.ready {
        Ok(())
    } else {
        Err(vec!["node(s) were not ready".into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn not_ready_nodes_are_refused() {
        let p = pod("p", json!({}));
        assert!(filter(&p, &node("n", json!({}))).is_ok());
        let down = node(
            "n",
            json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
        );
        assert_eq!(
            filter(&p, &down).unwrap_err(),
            vec!["node(s) were not ready"]
        );
    }
}
