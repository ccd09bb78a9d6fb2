//! The service proxy end to end: `kcnode proxy sync` applies nftables rules
//! in a "node" network namespace with a bridge `kc0` and three "pods"
//! (namespaces on veths, 10.244.0.2-4, each a TCP server answering its own
//! name). Proves ClusterIP spreading from the node and from a pod (including
//! hairpin to itself), NodePort from an outside client, an unready endpoint
//! leaving the rotation, ClientIP affinity, reject when a Service has no
//! endpoints, and removal of the table.

use std::collections::BTreeMap;
use std::path::Path;

use kc_tests::netns::{Netns, veth};
use serde_json::{Value, json};

struct Cluster {
    node: Netns,
    pods: Vec<(String, Netns)>,
    client: Netns,
    dir: tempfile::TempDir,
}

const PODS: [(&str, &str); 3] = [
    ("pod-a", "10.244.0.2"),
    ("pod-b", "10.244.0.3"),
    ("pod-c", "10.244.0.4"),
];

fn setup() -> Cluster {
    kc_tests::require_root();
    kc_tests::require_program("nft", "nftables");
    let node = Netns::new("px", "node");
    node.ip(&["link", "add", "kc0", "type", "bridge"]);
    node.ip(&["addr", "add", "10.244.0.1/24", "dev", "kc0"]);
    node.ip(&["link", "set", "kc0", "up"]);
    let fwd = node.exec("sysctl", &["-w", "net.ipv4.ip_forward=1"]);
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
    let nf = node.exec("sysctl", &["-w", "net.bridge.bridge-nf-call-iptables=1"]);
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

fn service(name: &str, ip: &str, node_port: Option<u16>, affinity: bool) -> Value {
    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
    }
    json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
            "clusterIP": ip, "ports": [port],
            "sessionAffinity": if affinity { "ClientIP" } else { "None" }}})
}

fn slice(service: &str, ready: &[bool]) -> Value {
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
    fn sync(&self, services: Vec<Value>, slices: Vec<Value>) {
        let file = self.dir.path().join("snapshot.json");
        std::fs::write(
            &file,
            json!({"services": services, "endpointSlices": slices}).to_string(),
        )
        .unwrap();
        let kcnode = kc_tests::bin("kcnode");
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

    fn pod(&self, name: &str) -> &Netns {
        &self.pods.iter().find(|(n, _)| n == name).unwrap().1
    }
}

/// Who answered `n` connections from `from` to `addr`.
fn tally(from: &Netns, addr: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let who = from
            .fetch(addr)
            .unwrap_or_else(|e| panic!("from {}: {e}", from.name));
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

fn assert_spread(seen: &BTreeMap<String, usize>, expected: &[&str]) {
    let names: Vec<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(names, expected, "connections went to {seen:?}");
}

#[test]
fn cluster_ip_node_port_hairpin_affinity_and_removal() {
    let c = setup();
    let all = [true, true, true];
    c.sync(
        vec![
            service("web", "10.96.0.10", Some(30080), false),
            service("sticky", "10.96.0.20", None, true),
            service("empty", "10.96.0.30", None, false),
        ],
        vec![slice("web", &all), slice("sticky", &all)],
    );

    // ClusterIP from the node: spread over all three.
    assert_spread(
        &tally(&c.node, "10.96.0.10:80", 60),
        &["pod-a", "pod-b", "pod-c"],
    );
    // From a pod: reaches the others and itself (hairpin, masqueraded).
    assert_spread(
        &tally(c.pod("pod-a"), "10.96.0.10:80", 60),
        &["pod-a", "pod-b", "pod-c"],
    );
    // NodePort from outside the node.
    assert_spread(
        &tally(&c.client, "192.168.77.1:30080", 60),
        &["pod-a", "pod-b", "pod-c"],
    );
    // sessionAffinity ClientIP: one client sticks to one pod.
    let sticky = tally(c.pod("pod-b"), "10.96.0.20:80", 20);
    assert_eq!(sticky.len(), 1, "affinity broken: {sticky:?}");
    // No endpoints: refused at once, not a timeout.
    let err = c.node.fetch("10.96.0.30:80").unwrap_err();
    assert!(
        err.contains("refused") || err.contains("unreachable"),
        "{err}"
    );

    // pod-c goes unready: it leaves the rotation.
    c.sync(
        vec![service("web", "10.96.0.10", Some(30080), false)],
        vec![slice("web", &[true, true, false])],
    );
    assert_spread(&tally(&c.node, "10.96.0.10:80", 40), &["pod-a", "pod-b"]);
    assert_spread(
        &tally(&c.client, "192.168.77.1:30080", 40),
        &["pod-a", "pod-b"],
    );

    // Removal leaves no kc table behind.
    let kcnode = kc_tests::bin("kcnode");
    let out = c.node.exec(kcnode.to_str().unwrap(), &["proxy", "remove"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = c.node.exec("nft", &["list", "tables"]);
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("kc"),
        "table still there"
    );
    assert!(
        c.node.fetch("10.96.0.10:80").is_err(),
        "ClusterIP still answers after removal"
    );
}
