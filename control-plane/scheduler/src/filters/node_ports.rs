//! NodePorts: a pod's hostPorts must be free on the node.

use super::Refusal;
use crate::snapshot::{NodeInfo, PodInfo};

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    if pod.host_ports.iter().any(|p| node.used_ports.contains(p)) {
        Err(vec![
            "node(s) didn't have free ports for the requested pod ports".into(),
        ])
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::testing::{pod, with_pods};
    use serde_json::json;

    fn with_port(name: &str, port: i32, proto: &str) -> PodInfo {
        pod(
            name,
            json!({"spec": {"containers": [{"name": "c", "image": "i",
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": proto}]}]}}),
        )
    }

    #[test]
    fn host_ports_conflict_per_protocol() {
        let n = with_pods("n", json!({}), vec![with_port("a", 8080, "TCP")]);
        assert!(filter(&with_port("b", 8080, "TCP"), &n).is_err());
        assert!(filter(&with_port("b", 8080, "UDP"), &n).is_ok());
        assert!(filter(&with_port("b", 8081, "TCP"), &n).is_ok());
        assert!(filter(&pod("b", json!({})), &n).is_ok());
    }
}
