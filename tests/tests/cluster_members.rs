//! Control-plane membership and the cluster's own Services, with real
//! processes: three members (`kcnode init`, `kcnode join --control-plane`
//! twice) and a worker, each a host in its own network namespace.
//!
//! - `kcnode member list` shows id, name, address, role and health;
//!   `default/kubernetes` (10.96.0.1:443 `https`) lists every member's
//!   address in its EndpointSlice and Endpoints, `kube-system/kube-dns` is
//!   10.96.0.10 (53 UDP/TCP); a busybox pod on the worker connects to the
//!   API through the Service by IP and as `kubernetes.default.svc`, and
//!   the worker gets `/version` over HTTPS from 10.96.0.1; each
//!   member's admin kubeconfig names its advertised address and works from
//!   another host;
//! - `kcnode leave` on a follower, then on the leader: each time the
//!   cluster keeps taking writes, the member list shrinks, the worker's
//!   session stays up and its members file drops the leaver, the leaver's
//!   processes, Node and mirror pods are gone and its address leaves the
//!   `kubernetes` endpoints (`--purge` also removes the data dir); on the
//!   last member `kcnode leave` is refused;
//! - with one member dead: `kcnode leave` on a live one is refused (the
//!   remaining two would have no quorum), `kcnode member remove` of a live
//!   member is refused, and of the dead one succeeds from a survivor: the
//!   list shows 2, writes go on, its control-plane mirror pods go away.

use std::time::{Duration, Instant};

use kc_tests::chaos::host_pids;
use kc_tests::cluster::{Host, Lan, Proc, eventually};
use kc_tests::container::{stderr, stdout};
use kc_tests::ha::{self, Plane, create_configmap, kubectl, leader_of, wait_ready};
use serde_json::Value;

/// `kcnode member list --json` on `host`.
fn member_list(host: &Host) -> Vec<Value> {
    let out = host.run(&["member", "list", "--json"]);
    assert!(out.status.success(), "member list: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("member list JSON")
}

/// The (name, role, healthy) of each member, as `host` lists them.
fn members_brief(host: &Host) -> Vec<(String, String, bool)> {
    member_list(host)
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["role"].as_str().unwrap_or("").to_string(),
                m["healthy"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// `kubectl get -o json` through `via`.
fn get_json(via: &Host, args: &[&str]) -> Value {
    let mut argv = vec!["get"];
    argv.extend_from_slice(args);
    argv.extend(["-o", "json"]);
    let out = kubectl(via, &argv);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The addresses in the `kubernetes` EndpointSlice and Endpoints, sorted;
/// None while the two disagree.
fn api_endpoints(via: &Host) -> Option<Vec<String>> {
    let slice = get_json(via, &["-n", "default", "endpointslice", "kubernetes"]);
    let mut from_slice: Vec<String> = slice["endpoints"]
        .as_array()?
        .iter()
        .filter_map(|e| e["addresses"][0].as_str().map(String::from))
        .collect();
    let ep = get_json(via, &["-n", "default", "endpoints", "kubernetes"]);
    let mut from_endpoints: Vec<String> = ep["subsets"]
        .as_array()?
        .iter()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect();
    from_slice.sort();
    from_endpoints.sort();
    (from_slice == from_endpoints).then_some(from_slice)
}

/// Waits until the `kubernetes` endpoints are exactly `hosts`' addresses.
fn wait_api_endpoints(via: &Host, hosts: &[&Host]) {
    let mut want: Vec<String> = hosts.iter().map(|h| h.ip.clone()).collect();
    want.sort();
    eventually(
        Duration::from_secs(30),
        &format!("kubernetes endpoints {want:?}"),
        || (api_endpoints(via)? == want).then_some(()),
    );
}

/// The names of the kube-system mirror pods of `node`.
fn mirror_pods_of(via: &Host, node: &str) -> Vec<String> {
    get_json(via, &["-n", "kube-system", "pod"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["spec"]["nodeName"] == node)
        .filter(|p| p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string())
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect()
}

/// Whether the Node `name` exists, as `via` sees it (None: no answer).
fn node_exists(via: &Host, name: &str) -> Option<bool> {
    let out = kubectl(via, &["get", "node", name, "-o", "name"]);
    if out.status.success() {
        Some(true)
    } else if stderr(&out).contains("NotFound") {
        Some(false)
    } else {
        None
    }
}

/// `kcnode leave <args>` on `host`; its stderr, asserting success.
fn leave(host: &Host, args: &[&str]) -> String {
    let started = Instant::now();
    let mut argv = vec!["leave"];
    argv.extend_from_slice(args);
    let out = host.run(&argv);
    assert!(
        out.status.success(),
        "kcnode leave on {}: {}",
        host.name,
        stderr(&out)
    );
    println!("kcnode leave on {} took {:?}", host.name, started.elapsed());
    stderr(&out)
}

/// After `kcnode leave` on `gone`: its kcnode exited, no process of the
/// host is left, and its Node and mirror pods are gone (seen through `via`).
fn check_left(gone: &Host, proc: &mut Proc, via: &Host) {
    eventually(
        Duration::from_secs(15),
        "the leaver's kcnode exited",
        || proc.child.try_wait().ok().flatten().map(|_| ()),
    );
    eventually(Duration::from_secs(15), "no process of the leaver", || {
        host_pids(gone).is_empty().then_some(())
    });
    eventually(Duration::from_secs(30), "the leaver's Node deleted", || {
        (!node_exists(via, &gone.name)?).then_some(())
    });
    eventually(
        Duration::from_secs(30),
        "the leaver's mirror pods gone",
        || mirror_pods_of(via, &gone.name).is_empty().then_some(()),
    );
    assert!(
        !gone.data().join("member.json").exists(),
        "member.json left behind"
    );
}

/// Creates a ConfigMap through `via`, retrying for up to 10 s; panics if
/// the cluster never takes it.
fn write_through(via: &Host, name: &str) {
    let mut last = String::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match create_configmap(via, name) {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the cluster takes no write through {}: {last}", via.name);
}

/// The worker's persisted member list.
fn worker_members(worker: &Host) -> Vec<String> {
    std::fs::read_to_string(worker.data().join("members"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Waits until the worker's members file lists exactly `hosts`' members.
fn wait_worker_members(worker: &Host, hosts: &[&Host]) {
    let mut want: Vec<String> = hosts.iter().map(|h| format!("{}:7000", h.ip)).collect();
    want.sort();
    eventually(
        Duration::from_secs(30),
        &format!("the worker's members file {want:?}"),
        || {
            let mut have = worker_members(worker);
            have.sort();
            (have == want).then_some(())
        },
    );
}

/// A busybox pod `client` on `node`, idle.
fn client_pod(node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: IfNotPresent\n    command: [sleep, '3600']\n"
    )
}

/// Waits until `check` passes, for up to 90 s (the worker's routes and
/// DNAT to the remaining member took over 30 s under the full suite's
/// load, twice; 17 s alone); panics with its last error and what
/// `diagnose` shows then.
fn within_90s(
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
    diagnose: impl Fn() -> String,
) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(90) {
        match check() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not after 90 s; last: {last}\n{}", diagnose());
}

/// The worker's Service DNAT targets and `via`'s routes (for failures).
fn network_state(via: &Host, worker: &Host) -> String {
    let rules = stdout(&worker.exec(&["nft", "list", "table", "ip", "kc"]));
    let dnat: Vec<&str> = rules.lines().filter(|l| l.contains("dnat")).collect();
    let routes = stdout(&via.exec(&["ip", "route"]));
    format!(
        "worker DNAT: {dnat:?}\n{} routes:\n{routes}\nworker members: {:?}",
        via.name,
        worker_members(worker)
    )
}

/// The API server answers through the `kubernetes` Service: from the
/// `client` pod, a connection to `target`:443 (an address or
/// `kubernetes.default.svc`, resolved by the cluster DNS) gets the TLS
/// server's answer; from the worker's own namespace (the same node proxy rules),
/// `GET https://10.96.0.1/version` returns the version. (busybox's wget
/// crashes in its own TLS code on the API server's handshake, so the
/// HTTPS request is made with curl from the node.)
fn api_through_service(via: &Host, worker: &Host, target: &str) {
    // "hello" is no TLS ClientHello: the API server answers with a TLS
    // alert record (0x15, version 3.3) and closes.
    let script = format!(
        "echo hello | nc -w 3 {target} 443 2>/tmp/nc.err | od -An -tx1 | head -1; cat /tmp/nc.err"
    );
    within_90s(
        &format!("a TLS answer at {target}:443 from a pod"),
        || {
            let out = kubectl(via, &["exec", "client", "--", "sh", "-c", &script]);
            let text = format!("{}{}", stdout(&out), stderr(&out));
            if out.status.success() && text.trim().starts_with("15 03 03") {
                Ok(())
            } else {
                Err(text)
            }
        },
        || network_state(via, worker),
    );
    within_90s(
        "GET https://10.96.0.1/version from the worker",
        || {
            let out = worker.exec(&[
                "curl",
                "-sk",
                "--max-time",
                "3",
                "https://10.96.0.1/version",
            ]);
            let body = stdout(&out);
            if body.contains("gitVersion") {
                Ok(())
            } else {
                Err(format!("{body}{}", stderr(&out)))
            }
        },
        || network_state(via, worker),
    );
}

#[test]
fn members_leave_and_the_kubernetes_service_follows() {
    kc_tests::require_program("curl", "curl");
    let mut lan = Lan::new();
    let hosts: Vec<Host> = (1..=3).map(|i| lan.host(&format!("cp{i}"))).collect();
    let worker = lan.host("w");
    let img = worker.run(&["image", "base", "busybox"]);
    assert!(img.status.success(), "busybox: {}", stderr(&img));
    let (first, cmds) = ha::init(&hosts[0], &["--no-workloads"]);
    let mut procs = vec![first];
    for h in &hosts[1..] {
        procs.push(ha::join_member(h, "member", &cmds, &["--no-workloads"]));
    }
    let mut worker_proc = ha::join(&worker, "join", &cmds.worker, &[]);
    wait_ready(&hosts[0], &worker.name);
    let all: Vec<&Host> = hosts.iter().collect();

    // The member list names every member (by its Node, registered just
    // after the member starts), one leader, all healthy.
    for h in &hosts {
        wait_ready(&hosts[0], &h.name);
    }
    let brief = members_brief(&hosts[0]);
    assert_eq!(brief.len(), 3, "{brief:?}");
    for h in &hosts {
        assert!(
            brief.iter().any(|(n, _, ok)| n == &h.name && *ok),
            "{} not healthy in {brief:?}",
            h.name
        );
    }
    assert_eq!(
        brief.iter().filter(|(_, r, _)| r == "leader").count(),
        1,
        "{brief:?}"
    );

    // Each admin kubeconfig names its member's own advertised address and
    // serves from another host (the worker's namespace).
    for h in &hosts {
        let text = std::fs::read_to_string(h.kubeconfig()).expect("admin kubeconfig");
        let server = format!("server: https://{}:6443", h.ip);
        assert!(text.contains(&server), "{}: {text}", h.name);
        let out = worker.kubectl(
            &h.kubeconfig(),
            &["--request-timeout=5s", "get", "node", &worker.name],
        );
        assert!(
            out.status.success(),
            "{}'s kubeconfig from another host: {}",
            h.name,
            stderr(&out)
        );
    }

    // The cluster's own Services.
    // (The store's leader creates them within a few seconds of starting.)
    let service = |ns: &str, name: &str| {
        eventually(
            Duration::from_secs(20),
            &format!("Service {ns}/{name}"),
            || {
                let svc = get_json(&hosts[0], &["-n", ns, "svc", name]);
                svc["spec"]["clusterIP"].is_string().then_some(svc)
            },
        )
    };
    let svc = service("default", "kubernetes");
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1", "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["name"], "https", "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443, "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 6443, "{svc}");
    let dns = service("kube-system", "kube-dns");
    assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10", "{dns}");
    let dns_ports: Vec<(String, String)> = dns["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["protocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        dns_ports,
        [
            ("dns".into(), "UDP".into()),
            ("dns-tcp".into(), "TCP".into())
        ]
    );
    wait_api_endpoints(&hosts[0], &all);

    // A pod on the worker reaches the API through the Service.
    hosts[0].apply(&client_pod(&worker.name));
    eventually(Duration::from_secs(60), "the client pod Running", || {
        let pod = get_json(&hosts[0], &["pod", "client"]);
        (pod["status"]["phase"] == "Running").then_some(())
    });
    api_through_service(&hosts[0], &worker, "10.96.0.1");
    api_through_service(&hosts[0], &worker, "kubernetes.default.svc");

    // A follower leaves.
    let leader = leader_of(&all, 0);
    let f = (0..3).find(|i| *i != leader).unwrap();
    let stay: Vec<usize> = (0..3).filter(|i| *i != f).collect();
    let via = &hosts[stay[0]];
    let text = leave(&hosts[f], &[]);
    assert!(text.contains("removed from the control plane"), "{text}");
    check_left(&hosts[f], &mut procs[f], via);
    write_through(via, "after-follower-left");
    let brief = members_brief(via);
    assert_eq!(brief.len(), 2, "{brief:?}");
    let remaining: Vec<&Host> = stay.iter().map(|i| &hosts[*i]).collect();
    wait_worker_members(&worker, &remaining);
    wait_ready(via, &worker.name);
    wait_api_endpoints(via, &remaining);
    api_through_service(via, &worker, "10.96.0.1");

    // The leader leaves (it hands the leadership over first).
    let leader = stay[leader_of(&remaining, 0)];
    let last = *stay.iter().find(|i| **i != leader).unwrap();
    let text = leave(&hosts[leader], &["--purge"]);
    assert!(
        text.contains("handing the control plane's leadership"),
        "{text}"
    );
    let via = &hosts[last];
    check_left(&hosts[leader], &mut procs[leader], via);
    assert!(!hosts[leader].data().exists(), "--purge kept the data dir");
    write_through(via, "after-leader-left");
    let brief = members_brief(via);
    assert_eq!(brief, vec![(via.name.clone(), "leader".into(), true)]);
    wait_worker_members(&worker, &[via]);
    wait_ready(via, &worker.name);
    wait_api_endpoints(via, &[via]);
    api_through_service(via, &worker, "10.96.0.1");
    assert!(
        worker_proc.child.try_wait().ok().flatten().is_none(),
        "the worker's kcnode stopped:\n{}",
        worker_proc.stderr()
    );

    // The last member refuses to leave.
    let out = via.run(&["leave"]);
    assert!(!out.status.success(), "the last member left");
    assert!(
        stderr(&out).contains("last voting member"),
        "{}",
        stderr(&out)
    );
    write_through(via, "after-refusal");
    worker_proc.kill();
}

#[test]
fn a_dead_member_is_removed_from_a_survivor() {
    let mut plane = Plane::start(3);
    let hosts = plane.refs();
    let (cp1, cp3) = (hosts[0], hosts[2]);
    wait_ready(cp1, &cp3.name);
    eventually(Duration::from_secs(30), "cp3's mirror pods", || {
        (mirror_pods_of(cp1, &cp3.name).len() >= 4).then_some(())
    });
    // Power cut of cp3's kcnode.
    if let Some(mut p) = plane.procs[2].take() {
        p.kill();
    }
    let hosts = plane.refs();
    let (cp1, cp2, cp3) = (hosts[0], hosts[1], hosts[2]);
    eventually(Duration::from_secs(20), "cp3 unreachable", || {
        members_brief(cp1)
            .iter()
            .any(|(n, _, ok)| n == &cp3.name && !ok)
            .then_some(())
    });
    wait_api_endpoints(cp1, &[cp1, cp2]);

    // Leaving now would leave cp1 alone with a dead cp3: refused.
    let out = cp2.run(&["leave"]);
    assert!(!out.status.success(), "cp2 left without a quorum behind");
    assert!(stderr(&out).contains("quorum"), "{}", stderr(&out));
    assert_eq!(members_brief(cp1).len(), 3);

    // A live member is not removed from elsewhere.
    let out = cp1.run(&["member", "remove", &cp2.name]);
    assert!(!out.status.success(), "a live member was removed");
    assert!(stderr(&out).contains("still answers"), "{}", stderr(&out));

    // The dead one is.
    let out = cp1.run(&["member", "remove", &cp3.name]);
    assert!(
        out.status.success(),
        "member remove {}: {}",
        cp3.name,
        stderr(&out)
    );
    assert!(stdout(&out).contains("removed member"), "{}", stdout(&out));
    let brief = members_brief(cp1);
    assert_eq!(brief.len(), 2, "{brief:?}");
    assert!(brief.iter().all(|(_, _, ok)| *ok), "{brief:?}");
    write_through(cp2, "after-remove");
    eventually(
        Duration::from_secs(30),
        "cp3's control-plane mirror pods gone",
        || {
            let left = mirror_pods_of(cp1, &cp3.name);
            left.iter()
                .all(|p| p.starts_with("kube-proxy-"))
                .then_some(())
        },
    );
    wait_api_endpoints(cp1, &[cp1, cp2]);
}
