//! Published ports: `-p HOST:CTR` serves on the host port of the network
//! namespace kcnode runs in. The test runs kcnode inside a namespace it
//! created (never the host's), with busybox httpd in the container.

use std::time::{Duration, Instant};

use kc_tests::container::{NetNs, Node, busybox_rootfs, stdout};
use kc_tests::require_program;

#[test]
fn published_port_serves_from_the_container() {
    require_program("curl", "curl");
    let ns = NetNs::new();
    let mut node = Node::new();
    node.netns = Some(ns.name.clone());
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "5000:8080",
        "--rootfs",
        &r,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let out = ns.exec(&[
            "curl",
            "-s",
            "--max-time",
            "2",
            "http://localhost:5000/index.html",
        ]);
        let body = stdout(&out);
        if body.contains("hello") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "hello from kc\n");
    // Only the published port is forwarded.
    let out = ns.exec(&[
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://localhost:8080/index.html",
    ]);
    assert!(
        !out.status.success(),
        "the container port leaked into the caller's namespace"
    );
    node.ok(&["rm", "-f", "web"]);
    let out = ns.exec(&[
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://localhost:5000/index.html",
    ]);
    assert!(!out.status.success(), "port still served after rm");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let ns = NetNs::new();
    let mut node = Node::new();
    node.netns = Some(ns.name.clone());
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&[
        "run", "-d", "--name", "first", "-p", "5001:80", "--rootfs", &r, "sleep", "60",
    ]);
    let out = node.run(&[
        "run", "-d", "--name", "second", "-p", "5001:80", "--rootfs", &r, "sleep", "60",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot publish port 5001"), "{err}");
    let out = node.run(&["inspect", "second"]);
    assert!(
        !out.status.success(),
        "a container was left by the failed run"
    );
    assert_eq!(node.ok(&["ps", "-a", "-q"]).lines().count(), 1);
}

#[test]
fn network_host_shares_the_callers_namespace_and_none_has_only_loopback() {
    let ns = NetNs::new();
    let made = ns.exec(&[
        "ip", "link", "add", "kcv0", "type", "veth", "peer", "name", "kcv1",
    ]);
    assert!(
        made.status.success(),
        "veth in the test namespace: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut node = Node::new();
    node.netns = Some(ns.name.clone());
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let out = node.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--rootfs",
        &r,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(
        out, "kcv0\nkcv1\nlo\n",
        "--network host does not see the caller's interfaces"
    );
    let out = node.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        &r,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out, "lo\n");
}
