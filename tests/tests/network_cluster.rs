//! The pod network, Services and cluster DNS in a real cluster (a control
//! plane and two workers, each host a network namespace on one bridge): the
//! node agents route to each other's pod CIDRs, run the nftables service
//! proxy and the cluster DNS. One cluster carries every check:
//!
//! - a pod on one worker reaches a pod on the other by pod IP, and the
//!   server sees the client's pod IP (no NAT);
//! - a ClusterIP spreads connections over its 3 endpoints on 2 workers;
//!   a pod reaches itself through its own Service (hairpin);
//! - a NodePort answers on both workers from a client namespace on the LAN;
//! - `nslookup` in a busybox pod resolves the Service (ClusterIP) and a
//!   headless Service (pod IPs); the pod's resolv.conf names the cluster DNS;
//! - an endpoint made unready (its readiness file removed) leaves the
//!   rotation (the delay after the API shows it unready is printed);
//! - a Deployment behind a Service keeps answering during a rolling update
//!   (failed requests counted and printed; goal zero);
//! - `kcnode leave` removes the worker's kc table, routes and DNS address,
//!   and the other worker its route to the leaver's pods.
//!
//! A second test runs pod-to-pod across workers over the VXLAN overlay.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kc_tests::cluster::{Host, TestCluster, eventually};
use kc_tests::container::{stderr, stdout};
use serde_json::Value;

/// A busybox web server answering `GET /cgi-bin/who` with "<hostname>
/// <client address>" (httpd gives IPv4 clients as `[::ffff:a.b.c.d]`), ready while /tmp/ready exists; on SIGTERM it keeps
/// serving 2 s before it stops (time for the proxies to drop it).
const SERVER: &str = r#"mkdir -p /www/cgi-bin
cat > /www/cgi-bin/who <<'EOF'
#!/bin/sh
echo Content-Type: text/plain
echo
echo "$(hostname) $REMOTE_ADDR" | sed 's/\[::ffff:\(.*\)\]/\1/'
EOF
chmod +x /www/cgi-bin/who
touch /tmp/ready
httpd -f -p 8080 -h /www &
P=$!
trap 'sleep 2; kill $P; exit 0' TERM
wait $P"#;

fn server_container(indent: &str) -> String {
    let script: String = SERVER
        .lines()
        .map(|l| format!("{indent}    {l}\n"))
        .collect();
    format!(
        "{indent}- name: web\n{indent}  image: busybox\n{indent}  command: [sh, -c]\n{indent}  args:\n{indent}  - |\n{script}{indent}  readinessProbe:\n{indent}    exec: {{command: [cat, /tmp/ready]}}\n{indent}    periodSeconds: 1\n{indent}    failureThreshold: 1\n"
    )
}

fn web_pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: web}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 5\n  containers:\n{}",
        server_container("  ")
    )
}

/// A busybox pod named `client` on `node`, idle.
fn client_pod(node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n"
    )
}

/// `GET /cgi-bin/who` of the server at `pod_ip` from the `client` pod.
fn who_from_client(c: &TestCluster, pod_ip: &str) -> String {
    let url = format!("http://{pod_ip}:8080/cgi-bin/who");
    eventually(Duration::from_secs(20), "pod-to-pod across nodes", || {
        let out = c.kubectl(&["exec", "client", "--", "wget", "-qO-", &url]);
        out.status
            .success()
            .then(|| stdout(&out).trim().to_string())
    })
}

/// `sh -c script` in `pod` (kubectl exec); its stdout.
fn in_pod(c: &TestCluster, pod: &str, script: &str) -> String {
    let out = c.kubectl(&["exec", pod, "--", "sh", "-c", script]);
    assert!(
        out.status.success(),
        "exec in {pod}: {script}\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// One `GET /cgi-bin/who` from `host`'s namespace with busybox wget.
fn who_from(host: &Host, url: &str) -> Option<String> {
    let out = host.exec(&["busybox", "wget", "-qO-", url]);
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

/// Answers ("<hostname> <client>") per hostname.
fn count_by_server(lines: &str) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for l in lines.lines().filter(|l| !l.trim().is_empty()) {
        let host = l.split_whitespace().next().unwrap_or("").to_string();
        *n.entry(host).or_default() += 1;
    }
    n
}

fn service_field(c: &TestCluster, svc: &str, path: &str) -> String {
    let out = c.kubectl(&["get", "svc", svc, "-o", &format!("jsonpath={{{path}}}")]);
    assert!(out.status.success(), "svc {svc}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// Is the endpoint `ip` listed not ready in the Service's EndpointSlices?
fn endpoint_unready(c: &TestCluster, svc: &str, ip: &str) -> bool {
    let out = c.kubectl(&[
        "get",
        "endpointslices",
        "-l",
        &format!("kubernetes.io/service-name={svc}"),
        "-o",
        "json",
    ]);
    let Ok(list) = serde_json::from_slice::<Value>(&out.stdout) else {
        return false;
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .any(|e| e["addresses"][0] == ip && e["conditions"]["ready"] == false)
}

#[test]
fn pods_services_and_dns_work_across_the_cluster() {
    let mut c = TestCluster::start(2, &[]);
    let client_host = c.lan.host("client");
    let (w1, w2) = (c.workers[0].name.clone(), c.workers[1].name.clone());
    for (pod, node) in [("web-0", &w1), ("web-1", &w2), ("web-2", &w1)] {
        c.apply(&web_pod(pod, node));
    }
    c.apply(&client_pod(&w2));
    c.apply(concat!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: 8080}\n",
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-headless\nspec:\n  clusterIP: None\n  selector: {app: web}\n  ports:\n  - {port: 8080}\n",
    ));
    let mut ips = BTreeMap::new();
    for pod in ["web-0", "web-1", "web-2", "client"] {
        let st = c.wait_ready(pod, Duration::from_secs(90));
        ips.insert(pod, st["podIP"].as_str().unwrap_or_default().to_string());
    }
    let client_ip = ips["client"].clone();
    assert!(
        client_ip.starts_with("10.244."),
        "client pod IP {client_ip}"
    );

    // Pod to pod across nodes (client on w2, web-0 on w1), source kept.
    assert_eq!(
        who_from_client(&c, &ips["web-0"]),
        format!("web-0 {client_ip}"),
        "the server sees the client's pod IP"
    );

    // ClusterIP: spread over the 3 endpoints on 2 workers, no NAT for pods.
    let cip = service_field(&c, "web", ".spec.clusterIP");
    let loop30 =
        format!("for i in $(seq 30); do wget -qO- http://{cip}/cgi-bin/who || echo FAILED; done");
    let lines = eventually(Duration::from_secs(20), "3 endpoints answering", || {
        let lines = in_pod(&c, "client", &loop30);
        (count_by_server(&lines).len() == 3).then_some(lines)
    });
    let counts = count_by_server(&lines);
    println!("ClusterIP {cip}: 30 requests from the client pod: {counts:?}");
    assert!(!lines.contains("FAILED"), "{lines}");
    assert!(
        lines.lines().all(|l| l.ends_with(&format!(" {client_ip}"))),
        "pod clients are not NATed: {lines}"
    );
    // Hairpin: web-1 reaches itself through its own Service.
    let hairpin = in_pod(&c, "web-1", &loop30);
    assert!(!hairpin.contains("FAILED"), "{hairpin}");
    assert!(
        count_by_server(&hairpin).contains_key("web-1"),
        "web-1 never reached itself through its Service: {hairpin}"
    );

    // NodePort from a namespace on the LAN that is no node, on both workers.
    let node_port = service_field(&c, "web", ".spec.ports[0].nodePort");
    for w in &c.workers {
        let url = format!("http://{}:{node_port}/cgi-bin/who", w.ip);
        let answer = eventually(Duration::from_secs(20), "NodePort answers", || {
            who_from(&client_host, &url)
        });
        assert!(answer.starts_with("web-"), "NodePort {url}: {answer}");
    }

    // Cluster DNS from a busybox pod.
    let resolv = in_pod(&c, "client", "cat /etc/resolv.conf");
    assert!(
        resolv.contains("nameserver 10.96.0.10")
            && resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains("options ndots:5"),
        "{resolv}"
    );
    let lookup = in_pod(&c, "client", "nslookup web.default.svc.cluster.local");
    assert!(lookup.contains(&cip), "nslookup web: {lookup}");
    let headless = in_pod(
        &c,
        "client",
        "nslookup web-headless.default.svc.cluster.local",
    );
    for pod in ["web-0", "web-1", "web-2"] {
        assert!(headless.contains(&ips[pod]), "headless: {headless}");
    }
    let short = in_pod(&c, "client", "wget -qO- http://web/cgi-bin/who");
    assert!(
        short.starts_with("web-"),
        "short name via search path: {short}"
    );

    // An endpoint made unready leaves the rotation.
    let w1_host = &c.workers[0];
    let url = format!("http://{cip}/cgi-bin/who");
    in_pod(&c, "web-2", "rm /tmp/ready");
    let removed = Instant::now();
    let unready_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (seen_at, stop) = (unready_at.clone(), done.clone());
        let c = &c;
        let ip = ips["web-2"].clone();
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if endpoint_unready(c, "web", &ip) {
                    *seen_at.lock().unwrap() = Some(Instant::now());
                    return;
                }
            }
        });
        let mut last_web2 = None;
        let mut total = 0;
        loop {
            if let Some(answer) = who_from(w1_host, &url) {
                total += 1;
                if answer.starts_with("web-2 ") {
                    last_web2 = Some(Instant::now());
                }
            }
            let seen = *unready_at.lock().unwrap();
            if seen.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
                break;
            }
            assert!(
                removed.elapsed() < Duration::from_secs(30),
                "web-2 never shown unready in its EndpointSlice"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        done.store(true, Ordering::Relaxed);
        let seen = unready_at.lock().unwrap().expect("unready seen");
        let tail = seen + Duration::from_secs(2);
        assert!(
            last_web2.is_none_or(|t| t < tail),
            "web-2 still answered 2 s after it was unready in the API"
        );
        println!(
            "unready endpoint: API shows it {:?} after the readiness file went; last answer from it {} ({} requests via the ClusterIP from a node)",
            seen - removed,
            match last_web2 {
                Some(t) if t > seen => format!("{:?} after that", t - seen),
                Some(t) => format!("{:?} before that", seen - t),
                None => "none".into(),
            },
            total
        );
    });

    rolling_update_keeps_answering(&c);
    leave_removes_the_nodes_network(&c);
}

/// `kcnode leave` on the second worker: its kc table, routes and DNS
/// address go, and the first worker drops its route to the leaver's pods.
fn leave_removes_the_nodes_network(c: &TestCluster) {
    let (w1, w2) = (&c.workers[0], &c.workers[1]);
    let cidr = stdout(&c.kubectl(&["get", "node", &w2.name, "-o", "jsonpath={.spec.podCIDR}"]));
    let routes = |h: &Host| stdout(&h.exec(&["ip", "route", "show", "proto", "152"]));
    assert!(
        routes(w1).contains(cidr.trim()),
        "w1 routes: {}",
        routes(w1)
    );
    let out = w2.run(&["leave"]);
    assert!(out.status.success(), "leave: {}", stderr(&out));
    let table = w2.exec(&["nft", "list", "table", "ip", "kc"]);
    assert!(
        !table.status.success(),
        "the kc table outlived leave: {}",
        stdout(&table)
    );
    assert_eq!(routes(w2).trim(), "", "w2 kept routes");
    let lo = stdout(&w2.exec(&["ip", "addr", "show", "dev", "lo"]));
    assert!(!lo.contains("10.96.0.10"), "DNS address kept: {lo}");
    eventually(
        Duration::from_secs(20),
        "w1 drops the route to w2's pods",
        || (!routes(w1).contains(cidr.trim())).then_some(()),
    );
}

/// A Deployment of 3 behind a Service, updated while a node requests its
/// ClusterIP without pause: failures are counted (goal zero).
fn rolling_update_keeps_answering(c: &TestCluster) {
    c.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: roll\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: roll}}\n  template:\n    metadata:\n      labels: {{app: roll}}\n    spec:\n      terminationGracePeriodSeconds: 5\n      containers:\n{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: roll\nspec:\n  selector: {{app: roll}}\n  ports:\n  - {{port: 80, targetPort: 8080}}\n",
        server_container("      ")
    ));
    let status = |c: &TestCluster| {
        let out = c.kubectl(&["rollout", "status", "deploy/roll", "--timeout=180s"]);
        assert!(out.status.success(), "rollout: {}", stderr(&out));
    };
    status(c);
    let cip = service_field(c, "roll", ".spec.clusterIP");
    let url = format!("http://{cip}/cgi-bin/who");
    let node = &c.workers[1];
    eventually(Duration::from_secs(20), "roll Service answers", || {
        who_from(node, &url)
    });
    let done = AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !done.load(Ordering::Relaxed) {
                match who_from(node, &url) {
                    Some(_) => ok += 1,
                    None => failed += 1,
                }
            }
            (ok, failed)
        });
        let out = c.kubectl(&["set", "env", "deploy/roll", "V=2"]);
        assert!(out.status.success(), "set env: {}", stderr(&out));
        std::thread::sleep(Duration::from_secs(2));
        status(c);
        // The last old pod's termination grace, then a little more.
        std::thread::sleep(Duration::from_secs(4));
        done.store(true, Ordering::Relaxed);
        load.join().expect("load thread")
    });
    println!("rolling update behind a Service: {ok} requests answered, {failed} failed");
    assert!(ok > 0, "no request answered during the rolling update");
    assert_eq!(failed, 0, "requests failed during the rolling update");
}

#[test]
fn pods_reach_pods_across_nodes_over_vxlan() {
    let c = TestCluster::start(2, &["--pod-network", "vxlan"]);
    let (w1, w2) = (c.workers[0].name.clone(), c.workers[1].name.clone());
    c.apply(&web_pod("web-0", &w1));
    c.apply(&client_pod(&w2));
    let web = c.wait_ready("web-0", Duration::from_secs(90));
    let client = c.wait_ready("client", Duration::from_secs(90));
    assert_eq!(
        who_from_client(&c, web["podIP"].as_str().unwrap()),
        format!("web-0 {}", client["podIP"].as_str().unwrap()),
        "over VXLAN, the server sees the client's pod IP"
    );
    // The overlay really carries it: the worker has the VXLAN device and
    // its route to the other worker's pods goes through it.
    let routes = stdout(&c.workers[1].exec(&["ip", "route", "show", "proto", "152"]));
    assert!(routes.contains("dev kcvx"), "routes: {routes}");
}
