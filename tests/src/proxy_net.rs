//! A node network for service-proxy tests and benchmarks: a "node"
//! namespace with bridge `kc0` (10.244.0.1/24, hairpin on each port, as
//! kubenet does), three "pods" (10.244.0.2-4, each a TCP server on 8080
//! answering its own name) and an outside "client" (192.168.77.2, routed
//! via the node's 192.168.77.1). `Cluster::sync` runs `kcnode proxy sync`
//! in the node namespace.

use std::path::Path;

use serde_json::{Value, json};

use crate::netns::{Netns, veth};

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
    let fwd = node.exec("sh", &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    assert!(fwd.status.success(), "ip_forward: {fwd:?}");
    // Pod-to-pod traffic through a ClusterIP is bridged back; conntrack must
    // see it (br_netfilter), as with kube-proxy.
    if !node
        .exec(
            "test",
            &["-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"],
        )
        .status
        .success()
    {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
    }
    let nf = node.exec(
        "sh",
        &[
            "-c",
            "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        ],
    );
    assert!(
        nf.status.success(),
        "bridged traffic must pass netfilter: load the br_netfilter module ({})",
        String::from_utf8_lossy(&nf.stderr)
    );
    // ClusterIPs are routed toward the bridge (the node's default route in a real cluster).
    node.ip(&["route", "add", "10.96.0.0/16", "dev", "kc0"]);
    let mut pods = Vec::new();
    for (i, (name, ip)) in PODS.iter().enumerate() {
        let pod = Netns::new("px", name);
        veth(
            &node,
            &format!("vpod{i}"),
            &pod,
            "eth0",
            &format!("{ip}/24"),
            "10.244.0.1",
            Some("kc0"),
        );
        // As kubenet does: a pod reaching itself through its Service is
        // DNATed back out of the port it came in on (hairpin).
        node.ip(&[
            "link",
            "set",
            &format!("vpod{i}"),
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
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
