//! The service proxy end to end: `kcnode proxy sync` applies nftables rules
//! in a "node" network namespace with three "pods" routed on /32 veths as
//! kcnode makes them (10.244.0.2-4, each a TCP server answering its own
//! name). Proves ClusterIP spreading from the node and from a pod (including
//! hairpin to itself), NodePort from an outside client, an unready endpoint
//! leaving the rotation, ClientIP affinity, reject when a Service has no
//! endpoints, and removal of the table.

use std::collections::BTreeMap;

use kc_tests::netns::Netns;
use kc_tests::proxy_net::{service, setup, slice};

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
