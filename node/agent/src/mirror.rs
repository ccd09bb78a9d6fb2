//! Mirror pods: how a host shows its own parts in `kube-system` (the
//! store, API server, scheduler and controller manager on control-plane
//! members, the proxy on every node), as the kubelet does for static pods.
//! Pure: the agent sends these through its session.

use serde_json::{Value, json};

/// The annotation that marks a mirror pod (the API server's convention).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// One part of a host shown as a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The pod name prefix and container name (`kube-apiserver`).
    pub component: &'static str,
    /// `control-plane` or `node`.
    pub tier: &'static str,
    /// Why it is shown as running (a note on what actually serves it).
    pub served_by: &'static str,
}

/// The parts of a control-plane member that run in this process.
pub fn control_plane_parts() -> Vec<Part> {
    vec![
        Part {
            component: "kc-store",
            tier: "control-plane",
            served_by: "the Raft store actor of kcnode",
        },
        Part {
            component: "kube-apiserver",
            tier: "control-plane",
            served_by: "the API server of kcnode",
        },
        Part {
            component: "kube-scheduler",
            tier: "control-plane",
            served_by: "the scheduler of kcnode (active on the Lease holder)",
        },
        Part {
            component: "kube-controller-manager",
            tier: "control-plane",
            served_by: "the controller manager of kcnode (active on the Lease holder)",
        },
    ]
}

/// The part every node runs.
pub fn node_parts() -> Vec<Part> {
    vec![Part {
        component: "kube-proxy",
        tier: "node",
        // Honest: the service proxy actor does not exist yet; the node
        // agent (this kcnode process) is what runs.
        served_by: "the kcnode node agent (service proxying not implemented yet)",
    }]
}

/// The mirror pod of `part` on `node`, Running and Ready since `started`.
pub fn mirror_pod(part: &Part, node: &str, host_ip: &str, started: &str, pid: u32) -> Value {
    let name = format!("{}-{node}", part.component);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": { "component": part.component, "tier": part.tier },
            "annotations": {
                MIRROR_ANNOTATION: format!("{}-{node}-{started}", part.component),
                "kubernetes.io/config.source": "kcnode",
                "kc.io/served-by": part.served_by,
            },
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "priority": 2000001000,
            "tolerations": [{ "operator": "Exists" }],
            "containers": [{ "name": part.component, "image": format!("kc/kcnode:{}", env!("CARGO_PKG_VERSION")) }],
        },
        "status": {
            "phase": "Running",
            "hostIP": host_ip,
            "podIP": host_ip,
            "podIPs": [{ "ip": host_ip }],
            "startTime": started,
            "conditions": [
                { "type": "Initialized", "status": "True", "lastTransitionTime": started },
                { "type": "Ready", "status": "True", "lastTransitionTime": started },
                { "type": "ContainersReady", "status": "True", "lastTransitionTime": started },
                { "type": "PodScheduled", "status": "True", "lastTransitionTime": started },
            ],
            "containerStatuses": [{
                "name": part.component,
                "ready": true,
                "started": true,
                "restartCount": 0,
                "image": format!("kc/kcnode:{}", env!("CARGO_PKG_VERSION")),
                "imageID": "",
                "containerID": format!("kc://{pid}"),
                "state": { "running": { "startedAt": started } },
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pods_are_named_after_part_and_node_and_run() {
        let p = &control_plane_parts()[1];
        let pod = mirror_pod(p, "cp1", "10.0.0.1", "2026-11-24T00:00:00Z", 42);
        assert_eq!(pod["metadata"]["name"], "kube-apiserver-cp1");
        assert_eq!(pod["metadata"]["namespace"], "kube-system");
        assert!(pod["metadata"]["annotations"][MIRROR_ANNOTATION].is_string());
        assert_eq!(pod["spec"]["nodeName"], "cp1");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
    }
}
