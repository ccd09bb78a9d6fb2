//! InterPodAffinity, the required anti-affinity part with hostname topology:
//! a pod refuses nodes holding pods its required anti-affinity terms select,
//! and, symmetrically, nodes whose pods' terms select it. Terms with another
//! topology key are not evaluated (kc places by hostname only for now).

use k8s_openapi::api::core::v1::PodAffinityTerm;

use super::Refusal;
use crate::matching::label_selector_matches;
use crate::snapshot::{NodeInfo, PodInfo};

const HOSTNAME: &str = "kubernetes.io/hostname";

fn required_terms(pod: &PodInfo) -> &[PodAffinityTerm] {
    pod.affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

/// Whether `term`, written in a pod of `owner_ns`, selects `target`.
fn selects(term: &PodAffinityTerm, owner_ns: &str, target: &PodInfo) -> bool {
    if term.topology_key != HOSTNAME {
        return false;
    }
    let ns_ok = match term.namespaces.as_deref() {
        Some(list) if !list.is_empty() => list.iter().any(|n| n == &target.namespace),
        _ => term.namespace_selector.is_some() || target.namespace == owner_ns,
    };
    ns_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| label_selector_matches(s, &target.labels))
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    let mine = required_terms(pod);
    if mine.is_empty() && node.anti_affinity_pods == 0 {
        return Ok(());
    }
    let conflict = node.pods.values().any(|other| {
        other.key != pod.key
            && (mine.iter().any(|t| selects(t, &pod.namespace, other))
                || required_terms(other)
                    .iter()
                    .any(|t| selects(t, &other.namespace, pod)))
    });
    if conflict {
        Err(vec!["node(s) didn't match pod anti-affinity rules".into()])
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    fn web(name: &str, anti: bool) -> PodInfo {
        let mut spec = json!({"metadata": {"labels": {"app": "web"}}});
        if anti {
            spec["spec"] = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}});
        }
        pod(name, spec)
    }

    #[test]
    fn anti_affinity_on_hostname_both_ways() {
        let n = with_pods("n", json!({}), vec![web("a", false)]);
        assert!(filter(&web("b", true), &n).is_err());
        assert!(filter(&web("b", false), &n).is_ok());
        // The placed pod's own rule refuses newcomers it selects.
        let guarded = with_pods("n", json!({}), vec![web("a", true)]);
        assert!(filter(&web("b", false), &guarded).is_err());
        assert!(filter(&pod("other", json!({})), &guarded).is_ok());
    }
}
