//! NodeResourcesFit: the pod's cpu/memory requests and one pod slot must fit
//! in the node's allocatable minus what is already placed there.

use super::Refusal;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    let (req, used, alloc) = (&pod.requests, &node.requested, &node.allocatable);
    let mut refusal = Vec::new();
    if used.pods + 1 > alloc.pods {
        refusal.push("Too many pods".to_string());
    }
    if req.milli_cpu > 0 && used.milli_cpu + req.milli_cpu > alloc.milli_cpu {
        refusal.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && used.memory + req.memory > alloc.memory {
        refusal.push("Insufficient memory".to_string());
    }
    if refusal.is_empty() {
        Ok(())
    } else {
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    fn asking(name: &str, cpu: &str, mem: &str) -> PodInfo {
        pod(
            name,
            json!({"spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}),
        )
    }

    #[test]
    fn requests_against_allocatable_minus_placed() {
        // 4 cpu, 8Gi; 3 cpu and 6Gi already placed.
        let n = with_pods("n", json!({}), vec![asking("a", "3", "6Gi")]);
        assert!(filter(&asking("b", "1", "2Gi"), &n).is_ok());
        assert_eq!(
            filter(&asking("b", "1500m", "1Gi"), &n).unwrap_err(),
            vec!["Insufficient cpu"]
        );
        assert_eq!(
            filter(&asking("b", "2", "3Gi"), &n).unwrap_err(),
            vec!["Insufficient cpu", "Insufficient memory"]
        );
        let full = with_pods(
            "n",
            json!({"status": {"allocatable": {"pods": "1"}}}),
            vec![pod("a", json!({}))],
        );
        assert_eq!(
            filter(&pod("b", json!({})), &full).unwrap_err(),
            vec!["Too many pods"]
        );
    }
}
