//! Service proxy benchmark (run by `bench/proxy.sh`): prints figures, asserts
//! nothing about speed.
//!
//! 1. Rule sync time for SERVICES Services × ENDPOINTS endpoints: render
//!    only (`kcnode proxy render`), first apply and re-apply
//!    (`kcnode proxy sync`, one atomic nft transaction) in a test namespace.
//! 2. Connection rate (connect + read a short reply, sequential) from the
//!    node namespace through a ClusterIP vs straight to one pod IP.

use std::time::{Duration, Instant};

use kc_tests::netns::Netns;
use kc_tests::proxy_net::{service, setup, slice};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn timed(ns: &Netns, args: &[&str]) -> Duration {
    let kcnode = kc_tests::bin("kcnode");
    let started = Instant::now();
    let out = ns.exec(kcnode.to_str().unwrap(), args);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "kcnode {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn rate(ns: &Netns, addr: &str, n: usize) -> f64 {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let started = Instant::now();
    let ok = ns.run(move || {
        use std::io::Read;
        let mut ok = 0;
        for _ in 0..n {
            if let Ok(mut c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                let mut s = String::new();
                if c.read_to_string(&mut s).is_ok() && !s.is_empty() {
                    ok += 1;
                }
            }
        }
        ok
    });
    assert_eq!(ok, n, "connections to {addr} failed");
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let services = env("SERVICES", 1000);
    let endpoints = env("ENDPOINTS", 10);
    let conns = env("CONNS", 2000);
    let c = setup();

    // 1. sync time
    let mut svcs = Vec::new();
    let mut slices = Vec::new();
    for i in 0..services {
        let name = format!("s{i}");
        svcs.push(json!({"metadata": {"name": name, "namespace": "bench"},
            "spec": {"clusterIP": format!("10.96.{}.{}", 1 + i / 250, 1 + i % 250),
                "type": "NodePort",
                "ports": [{"name": "http", "port": 80, "nodePort": 30000 + i}]}}));
        let eps: Vec<_> = (0..endpoints)
            .map(|e| json!({"addresses": [format!("10.244.{}.{}", 1 + (i * endpoints + e) / 250, 1 + (i * endpoints + e) % 250)]}))
            .collect();
        slices.push(
            json!({"metadata": {"name": format!("{name}-1"), "namespace": "bench",
                "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": eps}),
        );
    }
    let file = c.dir.path().join("big.json");
    std::fs::write(
        &file,
        json!({"services": svcs, "endpointSlices": slices}).to_string(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let render = timed(&c.node, &["proxy", "render", "--snapshot", f]);
    let first = timed(&c.node, &["proxy", "sync", "--snapshot", f]);
    let again = timed(&c.node, &["proxy", "sync", "--snapshot", f]);
    println!(
        "proxy sync, {services} Services x {endpoints} endpoints (whole kcnode process, JSON parse included):"
    );
    println!(
        "  render only        {:>8.1} ms",
        render.as_secs_f64() * 1e3
    );
    println!("  first apply        {:>8.1} ms", first.as_secs_f64() * 1e3);
    println!("  re-apply (replace) {:>8.1} ms", again.as_secs_f64() * 1e3);

    // 2. connection rate
    c.sync(
        vec![service("web", "10.96.0.10", None, false)],
        vec![slice("web", &[true, true, true])],
    );
    let via_service = rate(&c.node, "10.96.0.10:80", conns);
    let direct = rate(&c.node, "10.244.0.2:8080", conns);
    println!("connection rate from the node namespace, {conns} sequential connect+read:");
    println!("  via ClusterIP      {via_service:>8.0} conn/s");
    println!("  straight to pod IP {direct:>8.0} conn/s");
}
