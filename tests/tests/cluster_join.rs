//! `kcnode init` and `kcnode join` between real processes in network
//! namespaces on a test LAN: a worker joins with a good token and its Node
//! becomes Ready with a Lease and a pod CIDR; wrong and expired tokens are
//! refused with the clear message; a wrong CA hash is refused before the
//! token is shown; the control plane shows its parts in kube-system; a
//! restarted worker reconnects with its identity; `leave` removes the Node.

use std::time::Duration;

use kc_tests::cluster::{Host, Lan, Proc, eventually};
use kc_tests::container::{stderr, stdout};

const REFUSAL: &str = "token is invalid or expired";

/// Starts `kcnode init` on `cp`; returns it and the printed join command.
fn init(cp: &Host) -> (Proc, Vec<String>) {
    let mut p = cp.spawn("init", &["init", "--heartbeat", "1s"]);
    let line = p.wait_line("kcnode join", Duration::from_secs(30));
    let words: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
    assert_eq!(words[0], "join", "{line}");
    assert!(
        line.contains("--discovery-token-ca-cert-hash sha256:"),
        "{line}"
    );
    (p, words)
}

fn with_token(join: &[String], token: &str) -> Vec<String> {
    let mut args = join.to_vec();
    let i = args
        .iter()
        .position(|a| a == "--token")
        .expect("--token in the join command");
    args[i + 1] = token.to_string();
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_worker_joins_with_a_good_token_and_becomes_ready() {
    let mut lan = Lan::new();
    let cp = lan.host("cp1");
    let w = lan.host("w1");
    let (init_proc, join) = init(&cp);
    let mut worker = w.spawn(
        "join",
        &strs(&join)
            .iter()
            .copied()
            .chain(["--heartbeat", "1s"])
            .collect::<Vec<_>>(),
    );
    eventually(Duration::from_secs(30), "node w1 Ready", || {
        cp.node_ready(&w.name)
    });
    eventually(Duration::from_secs(10), "node cp1 Ready", || {
        cp.node_ready(&cp.name)
    });

    let kc = cp.kubeconfig();
    let nodes = stdout(&cp.kubectl(&kc, &["get", "nodes", "-o", "wide"]));
    assert!(
        nodes.contains("control-plane"),
        "cp1 has the control-plane role:\n{nodes}"
    );
    assert!(
        nodes.contains(&w.ip),
        "w1 reports its InternalIP {}:\n{nodes}",
        w.ip
    );
    let cidrs = stdout(&cp.kubectl(
        &kc,
        &["get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}"],
    ));
    let cidrs: Vec<&str> = cidrs.split_whitespace().collect();
    assert_eq!(cidrs.len(), 2, "both nodes have a pod CIDR: {cidrs:?}");
    assert_ne!(cidrs[0], cidrs[1], "pod CIDRs are never handed out twice");
    assert!(
        cidrs
            .iter()
            .all(|c| c.starts_with("10.244.") && c.ends_with(".0/24"))
    );

    // The Lease is renewed through the session (heartbeat 1 s).
    let renew = || {
        stdout(&cp.kubectl(
            &kc,
            &[
                "-n",
                "kube-node-lease",
                "get",
                "lease",
                &w.name,
                "-o",
                "jsonpath={.spec.renewTime}",
            ],
        ))
    };
    let first = eventually(Duration::from_secs(10), "worker lease", || {
        Some(renew()).filter(|r| !r.is_empty())
    });
    eventually(Duration::from_secs(10), "worker lease renewed", || {
        (renew() != first).then_some(())
    });

    // kube-system shows the control plane's parts and a proxy per node.
    let pods = eventually(Duration::from_secs(15), "kube-system mirror pods", || {
        let out = stdout(&cp.kubectl(&kc, &["-n", "kube-system", "get", "pod"]));
        (out.contains(&format!("kube-proxy-{}", w.name))
            && out.contains(&format!("kube-apiserver-{}", cp.name)))
        .then_some(out)
    });
    for name in [
        format!("kc-store-{}", cp.name),
        format!("kube-apiserver-{}", cp.name),
        format!("kube-proxy-{}", cp.name),
        format!("kube-proxy-{}", w.name),
    ] {
        let line = pods
            .lines()
            .find(|l| l.starts_with(&name))
            .unwrap_or_else(|| panic!("{name} missing:\n{pods}"));
        assert!(line.contains("Running") && line.contains("1/1"), "{line}");
    }

    // A restarted worker reconnects with the identity it already has.
    worker.kill();
    let restarted = w.spawn(
        "rejoin",
        &[
            "join",
            "--master",
            &format!("{}:7000", cp.ip),
            "--heartbeat",
            "1s",
        ],
    );
    let before = renew();
    eventually(
        Duration::from_secs(15),
        "lease renewed after the restart",
        || (renew() != before).then_some(()),
    );
    assert!(
        restarted.stderr().contains("already joined"),
        "{}",
        restarted.stderr()
    );

    // `leave` stops the agent and deletes the Node.
    let out = w.run(&["leave"]);
    assert!(out.status.success(), "leave: {}", stderr(&out));
    eventually(Duration::from_secs(10), "worker Node gone", || {
        let out = cp.kubectl(&kc, &["get", "node", &w.name]);
        (!out.status.success() && stderr(&out).contains("NotFound")).then_some(())
    });
    drop(restarted);
    drop(init_proc);
}

#[test]
fn a_wrong_token_and_a_wrong_ca_hash_are_refused() {
    let mut lan = Lan::new();
    let cp = lan.host("cp1");
    let w = lan.host("w1");
    let (_init, join) = init(&cp);
    let out = w.run(&strs(&with_token(&join, "abcdef.0123456789abcdef")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(REFUSAL), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kcnode token create"),
        "{}",
        stderr(&out)
    );

    let malformed = w.run(&strs(&with_token(&join, "not-a-token")));
    assert!(!malformed.status.success());
    assert!(
        stderr(&malformed).contains("malformed token"),
        "{}",
        stderr(&malformed)
    );

    let mut bad_hash = join.clone();
    let i = bad_hash
        .iter()
        .position(|a| a == "--discovery-token-ca-cert-hash")
        .unwrap();
    bad_hash[i + 1] = format!("sha256:{}", "0".repeat(64));
    let out = w.run(&strs(&bad_hash));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to join"),
        "{}",
        stderr(&out)
    );
    assert!(
        !w.data().join("pki/node.crt").exists(),
        "no identity after a refusal"
    );
}

#[test]
fn an_expired_token_is_refused() {
    let mut lan = Lan::new();
    let cp = lan.host("cp1");
    let w = lan.host("w1");
    let (_init, _) = init(&cp);
    let out = cp.run(&["token", "create", "--ttl", "1s"]);
    assert!(out.status.success(), "token create: {}", stderr(&out));
    let line = stdout(&out);
    assert!(line.starts_with("kcnode join --master"), "{line}");
    std::thread::sleep(Duration::from_millis(2500));
    let args: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
    let out = w.run(&strs(&args));
    assert!(!out.status.success(), "an expired token must not join");
    assert!(stderr(&out).contains(REFUSAL), "{}", stderr(&out));

    // A fresh token from the same command works.
    let out = cp.run(&["token", "create", "--ttl", "10m"]);
    let args: Vec<String> = stdout(&out)
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let _worker = w.spawn("join", &strs(&args));
    eventually(Duration::from_secs(30), "node w1 Ready", || {
        cp.node_ready(&w.name)
    });
}
