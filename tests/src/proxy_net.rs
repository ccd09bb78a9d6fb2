//! A node network for service-proxy tests and benchmarks: a "node"
//! namespace with `kc0` holding the pods' gateway 10.244.0.1 and three
//! "pods" routed on /32 veths as kcnode makes them (10.244.0.2-4, each a TCP server on 8080
//! answering its own name) and an outside "client" (192.168.77.2, routed
//! via the node's 192.168.77.1). `Cluster::sync` runs `kcnode proxy sync`
//! in the node namespace.

use std::path::Path;

use serde_json::{Value, json};

use crate::netns::Netns;

pub struct Cluster {
    pub node: Netns,
    pub pods: Vec<(String, Netns)>,
    pub client: Netns,
    pub dir: tempfile::TempDir,
}

pub const PODS: [(&str, &str); 3] = [
    ("pod-a", "10.244.0.2"),
    ("pod-b", "10.244.0.3"),
    ("pod-c", "10.244.0.4"),
];

pub fn setup() -> Cluster {
    crate::require_root();
    crate::require_program("nft", "nftables");
    let node = Netns::new("px", "node");
    node.ip(&["link", "add", "kc0", "type", "bridge"]);
    node.ip(&["addr", "add", "10.244.0.1/24", "dev", "kc0"]);
    node.ip(&["link", "set", "kc0", "up"]);
    // A router for its pods, as kcnode makes the node (network/sysctl.rs).
    let fwd = node.exec(
        "sh",
        &[
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects",
        ],
    );
    assert!(fwd.status.success(), "ip_forward: {fwd:?}");
    // ClusterIPs are routed toward kc0 (as the node agent does).
    node.ip(&["route", "add", "10.96.0.0/16", "dev", "kc0"]);
    let mut pods = Vec::new();
    for (i, (name, ip)) in PODS.iter().enumerate() {
        let pod = Netns::new("px", name);
        // Routed like kcnode's pods (network/bridge.rs): a /32 on the pod's
        // eth0, an on-link gateway, a /32 route on the node. Every packet
        // is routed by the node, so conntrack sees both directions, also
        // for hairpin traffic, without br_netfilter.
        let vpod = format!("vpod{i}");
        node.ip(&[
            "link", "add", &vpod, "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
        ]);
        node.ip(&["link", "set", &vpod, "up"]);
        pod.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
        pod.ip(&["link", "set", "eth0", "up"]);
        pod.ip(&["route", "add", "10.244.0.1", "dev", "eth0", "scope", "link"]);
        pod.ip(&[
            "route",
            "add",
            "default",
            "via",
            "10.244.0.1",
            "dev",
            "eth0",
        ]);
        node.ip(&["route", "add", &format!("{ip}/32"), "dev", &vpod]);
        pod.serve_name(8080, name);
        pods.push((name.to_string(), pod));
    }
    let client = Netns::new("px", "client");
    node.ip(&[
        "link",
        "add",
        "vclient",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &client.name,
    ]);
    node.ip(&["addr", "add", "192.168.77.1/24", "dev", "vclient"]);
    node.ip(&["link", "set", "vclient", "up"]);
    client.ip(&["addr", "add", "192.168.77.2/24", "dev", "eth0"]);
    client.ip(&["link", "set", "eth0", "up"]);
    client.ip(&["route", "add", "default", "via", "192.168.77.1"]);
    Cluster {
        node,
        pods,
        client,
        dir: tempfile::tempdir().unwrap(),
    }
}

pub fn service(name: &str, ip: &str, node_port: Option<u16>, affinity: bool) -> Value {
    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
    }
    json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
            "clusterIP": ip, "ports": [port],
            "sessionAffinity": if affinity { "ClientIP" } else { "None" }}})
}

pub fn slice(service: &str, ready: &[bool]) -> Value {
    let endpoints: Vec<Value> = PODS
        .iter()
        .zip(ready)
        .map(|((_, ip), ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    json!({"metadata": {"name": format!("{service}-x"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints})
}

impl Cluster {
    pub fn sync(&self, services: Vec<Value>, slices: Vec<Value>) {
        let file = self.dir.path().join("snapshot.json");
        std::fs::write(
            &file,
            json!({"services": services, "endpointSlices": slices}).to_string(),
        )
        .unwrap();
        let kcnode = crate::bin("kcnode");
        let out = self.node.exec(
            kcnode.to_str().unwrap(),
            &[
                "proxy",
                "sync",
                "--snapshot",
                Path::new(&file).to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "kcnode proxy sync: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn pod(&self, name: &str) -> &Netns {
        &self.pods.iter().find(|(n, _)| n == name).unwrap().1
    }
}
