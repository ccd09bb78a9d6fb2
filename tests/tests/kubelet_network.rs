//! The pod network: with `--pod-cidr`, kcnode (here inside a network
//! namespace the test made) gives each pod an address from the CIDR on the
//! `kc0` bridge; podIP is real: the node reaches a pod's server at its
//! podIP, and another pod reaches it too. Deleting the pod removes its
//! veth and frees its address.

mod kubelet_common;

use std::process::Command;

use kc_tests::container::NetNs;
use kc_tests::require_program;
use kubelet_common::{Kubelet, container};

#[test]
fn pods_get_real_addresses_on_the_bridge() {
    let ns = NetNs::new();
    let k = Kubelet::start_in(Some(ns.name.clone()), &["--pod-cidr", "10.88.0.0/24"]);
    k.apply(
        "web.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: busybox, command: [sh, -c, 'echo hello-from-web > /tmp/i.html; exec httpd -f -p 8080 -h /tmp']}\n",
    );
    let s = k.wait("web", 60, "Running with a podIP", |s| {
        s["phase"] == "Running" && s["podIP"].is_string()
    });
    let ip = s["podIP"].as_str().unwrap().to_string();
    assert!(
        ip.starts_with("10.88.0.") && ip != "10.88.0.1",
        "podIP {ip} not from the CIDR"
    );

    // From the node's network namespace, over the bridge.
    let busybox = require_program("busybox", "busybox-static");
    let nsenter = require_program("nsenter", "util-linux");
    let url = format!("http://{ip}:8080/i.html");
    let mut body = String::new();
    for _ in 0..50 {
        let out = Command::new(&nsenter)
            .arg(format!("--net=/run/netns/{}", ns.name))
            .arg(&busybox)
            .args(["wget", "-qO-", &url])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains("hello-from-web") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        body.contains("hello-from-web"),
        "node cannot reach the pod at {url}: {body:?}"
    );

    // From another pod.
    k.apply(
        "client.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: c, image: busybox, command: [sh, -c, 'wget -qO- {url}; echo my-ip=$MY_IP'], env: [{{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}]}}\n"
        ),
    );
    let s = k.wait("client", 60, "finished", |s| {
        s["phase"] == "Succeeded" || s["phase"] == "Failed"
    });
    let client_ip = s["podIP"].as_str().unwrap_or("").to_string();
    assert_ne!(client_ip, ip, "two pods share an address");
    let out = k.logs(container(&s, "c")["containerID"].as_str().unwrap());
    assert!(
        out.contains("hello-from-web"),
        "pod-to-pod failed: {out}\n{s}"
    );
    assert!(
        out.contains(&format!("my-ip={client_ip}")),
        "downward podIP: {out}"
    );

    k.remove("web.yaml");
    k.wait_gone("web", 30);
    let links = Command::new(&nsenter)
        .arg(format!("--net=/run/netns/{}", ns.name))
        .args(["ip", "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(
        links.matches("kcv").count(),
        1,
        "web's veth left behind:\n{links}"
    );
    let table = std::fs::read_to_string(k.node.data.path().join("network/ipam.json")).unwrap();
    assert!(
        !table.contains(&format!("\"{ip}\"")),
        "web's address not freed: {table}"
    );
}

#[test]
fn host_network_pod_listens_in_the_node_network() {
    let ns = NetNs::new();
    let k = Kubelet::start_in(Some(ns.name.clone()), &["--pod-cidr", "10.89.0.0/24"]);
    k.apply(
        "hostnet.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hostnet}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo hello-host > /tmp/i.html; exec httpd -f -p 18080 -h /tmp']\n    readinessProbe: {httpGet: {path: /i.html, port: 18080}, periodSeconds: 1}\n",
    );
    let s = k.wait("hostnet", 60, "Ready", |s| {
        kubelet_common::condition(s, "Ready") == "True"
    });
    assert_eq!(s["podIP"], "192.0.2.10", "{s}");
    let out = Command::new(require_program("nsenter", "util-linux"))
        .arg(format!("--net=/run/netns/{}", ns.name))
        .arg(require_program("busybox", "busybox-static"))
        .args(["wget", "-qO-", "http://127.0.0.1:18080/i.html"])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("hello-host"),
        "not listening in the node's network: {body:?}"
    );
    let links = Command::new(require_program("nsenter", "util-linux"))
        .arg(format!("--net=/run/netns/{}", ns.name))
        .args(["ip", "-o", "link"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("kcv"),
        "a hostNetwork pod got a veth"
    );
}

/// Pods started together are plugged in concurrently through netlink: each
/// gets its own /32 on `eth0` (up), an on-link route to the gateway and a
/// default route through it (as the pod itself sees them with busybox
/// `ip`), the node a /32 route over the pod's veth, and the node reaches
/// every pod.
#[test]
fn pods_started_together_get_routed_addresses() {
    let ns = NetNs::new();
    let k = Kubelet::start_in(Some(ns.name.clone()), &["--pod-cidr", "10.90.0.0/24"]);
    let names = ["n0", "n1", "n2", "n3"];
    for n in names {
        k.apply(
            &format!("{n}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {n}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: busybox, command: [sh, -c, 'ip addr show dev eth0; ip link show dev eth0; ip route; echo net-done; exec sleep 600']}}\n"
            ),
        );
    }
    let nsenter = require_program("nsenter", "util-linux");
    let busybox = require_program("busybox", "busybox-static");
    let node = |args: &[&str]| {
        let out = Command::new(&nsenter)
            .arg(format!("--net=/run/netns/{}", ns.name))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut ips = Vec::new();
    for n in names {
        let s = k.wait(n, 60, "Running with a podIP", |s| {
            s["phase"] == "Running" && s["podIP"].is_string()
        });
        let ip = s["podIP"].as_str().unwrap().to_string();
        let id = container(&s, "c")["containerID"]
            .as_str()
            .unwrap()
            .to_string();
        let mut seen = String::new();
        for _ in 0..50 {
            seen = k.logs(&id);
            if seen.contains("net-done") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            seen.contains(&format!("inet {ip}/32")),
            "{n}: eth0 lacks {ip}/32:\n{seen}"
        );
        assert!(
            seen.lines()
                .any(|l| l.contains(": eth0@") && l.contains(",UP,LOWER_UP")),
            "{n}: eth0 not up:\n{seen}"
        );
        assert!(
            seen.contains("default via 10.90.0.1 dev eth0"),
            "{n}: no default route via the gateway:\n{seen}"
        );
        assert!(
            seen.contains("10.90.0.1 dev eth0 scope link"),
            "{n}: no on-link route to the gateway:\n{seen}"
        );
        let route = node(&["ip", "route", "show", &format!("{ip}/32")]);
        assert!(
            route.contains("dev kcv") && route.contains("scope link"),
            "{n}: the node has no route to {ip} over a pod veth: {route:?}"
        );
        let ping = node(&[busybox.to_str().unwrap(), "ping", "-c", "1", "-W", "5", &ip]);
        assert!(
            ping.contains("1 packets received"),
            "{n}: the node cannot reach {ip}: {ping}"
        );
        ips.push(ip);
    }
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ips.len(),
        "two pods share an address: {ips:?}"
    );
}
