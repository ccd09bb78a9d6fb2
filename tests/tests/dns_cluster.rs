//! Cluster DNS end to end: `kcnode dns serve` in a test network namespace
//! on 10.96.0.10:53 (an address local to the node namespace), queried with busybox
//! nslookup and with a Rust client built on hickory-proto messages.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kc_tests::netns::Netns;
use serde_json::json;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ns: &Netns, snapshot: &std::path::Path) -> Server {
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path()))
        .arg(kc_tests::bin("kcnode"))
        .args(["dns", "serve", "--listen", "10.96.0.10:53", "--snapshot"])
        .arg(snapshot)
        .stdout(Stdio::null())
        .spawn()
        .expect("start kcnode dns serve");
    std::thread::sleep(Duration::from_millis(300));
    Server(child)
}

fn nslookup(ns: &Netns, name: &str) -> String {
    let out = ns.exec("busybox", &["nslookup", name, "10.96.0.10"]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A raw A query over UDP from inside `ns`: (rcode, answer count, first IP).
fn query_a(ns: &Netns, name: &str) -> (u8, u16, Option<String>) {
    let name = name.to_string();
    ns.run(move || {
        // A minimal query: id 0x1234, RD, one question, type A class IN.
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        sock.send_to(&q, "10.96.0.10:53").unwrap();
        let mut buf = [0u8; 1500];
        let (n, _) = sock.recv_from(&mut buf).expect("a DNS reply");
        let reply = &buf[..n];
        assert_eq!(&reply[..2], &[0x12, 0x34], "reply id");
        let rcode = reply[3] & 0x0f;
        let answers = u16::from_be_bytes([reply[6], reply[7]]);
        // the last 4 bytes of a reply whose last answer is an A record
        let ip = (answers > 0).then(|| {
            let a = &reply[n - 4..];
            format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
        });
        (rcode, answers, ip)
    })
}

#[test]
fn services_and_headless_services_resolve() {
    kc_tests::require_root();
    kc_tests::require_program("busybox", "busybox-static");
    let ns = Netns::new("dns", "node");
    // The DNS address is local to the node's namespace (pods route to it
    // through the node).
    ns.ip(&["addr", "add", "10.96.0.10/32", "dev", "lo"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.json");
    let snapshot = |extra: bool| {
        let mut services = vec![
            json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}),
            json!({"metadata": {"name": "db", "namespace": "shop"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
        ];
        if extra {
            services.push(json!({"metadata": {"name": "late", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 81}]}}));
        }
        json!({"services": services, "endpointSlices": [
            {"metadata": {"name": "db-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
             "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432}],
             "endpoints": [{"addresses": ["10.244.1.7"]}, {"addresses": ["10.244.2.9"], "conditions": {"ready": false}}]}]})
        .to_string()
    };
    std::fs::write(&file, snapshot(false)).unwrap();
    let _server = start(&ns, &file);

    let out = nslookup(&ns, "web.default.svc.cluster.local");
    assert!(out.contains("10.96.0.20"), "nslookup web: {out}");
    let out = nslookup(&ns, "db.shop.svc.cluster.local");
    assert!(out.contains("10.244.1.7"), "headless db: {out}");
    assert!(!out.contains("10.244.2.9"), "unready pod listed: {out}");

    assert_eq!(
        query_a(&ns, "web.default.svc.cluster.local"),
        (0, 1, Some("10.96.0.20".into()))
    );
    let (rcode, answers, _) = query_a(&ns, "nope.default.svc.cluster.local");
    assert_eq!((rcode, answers), (3, 0), "NXDOMAIN for an unknown Service");

    // A Service created later is answered once the view changes.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&file, snapshot(true)).unwrap();
    assert_eq!(
        query_a(&ns, "late.default.svc.cluster.local"),
        (0, 1, Some("10.96.0.30".into()))
    );
}
