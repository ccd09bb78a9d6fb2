//! TaintToleration: every NoSchedule/NoExecute taint of the node must be
//! tolerated by the pod (PreferNoSchedule only scores, in Kubernetes).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::Refusal;
use crate::snapshot::{NodeInfo, PodInfo};

/// Whether `t` tolerates `taint` (key, operator Equal/Exists, effect).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = t.key.as_deref().unwrap_or("");
    let op = t.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return op == "Exists" && effect_ok;
    }
    let key_ok = key == taint.key;
    let value_ok = match op {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    };
    effect_ok && key_ok && value_ok
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    let untolerated = node.taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !pod.tolerations.iter().any(|t| tolerates(t, taint))
    });
    match untolerated {
        None => Ok(()),
        Some(t) => Err(vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn taints_need_tolerations() {
        let tainted = node(
            "n",
            json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            filter(&pod("p", json!({})), &tainted).unwrap_err(),
            vec!["node(s) had untolerated taint {gpu: yes}"]
        );
        let equal = pod(
            "p",
            json!({"spec": {"tolerations": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}),
        );
        assert!(filter(&equal, &tainted).is_ok());
        let wrong_value = pod(
            "p",
            json!({"spec": {"tolerations": [{"key": "gpu", "value": "no"}]}}),
        );
        assert!(filter(&wrong_value, &tainted).is_err());
        let all = pod(
            "p",
            json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
        );
        assert!(filter(&all, &tainted).is_ok());
        let soft = node(
            "n",
            json!({"spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}),
        );
        assert!(filter(&pod("p", json!({})), &soft).is_ok());
    }
}
