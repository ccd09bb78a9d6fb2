//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes no new
//! pods unless they tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use super::Refusal;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    if !node.unschedulable {
        return Ok(());
    }
    let tolerated = pod.tolerations.iter().any(|t| {
        let key_ok = t.key.as_deref() == Some("node.kubernetes.io/unschedulable")
            || (t.key.as_deref().unwrap_or("").is_empty()
                && t.operator.as_deref() == Some("Exists"));
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == "NoSchedule");
        key_ok && effect_ok
    });
    if tolerated {
        Ok(())
    } else {
        Err(vec!["node(s) were unschedulable".into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn cordoned_nodes_refuse_unless_tolerated() {
        let cordoned = node("n", json!({"spec": {"unschedulable": true}}));
        assert!(filter(&pod("p", json!({})), &cordoned).is_err());
        let tolerant = pod(
            "p",
            json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert!(filter(&tolerant, &cordoned).is_ok());
        assert!(filter(&pod("p", json!({})), &node("n", json!({}))).is_ok());
    }
}
