//! Helpers for replicated control-plane tests: `kcnode init` on the first
//! host, `kcnode join --control-plane` on the next ones (one at a time),
//! workers joined with every member known, and the store's view (who leads)
//! read with `kcnode store status` inside a member's namespace.

use std::time::Duration;

use crate::cluster::{Host, Lan, Proc, eventually};
use crate::container::stderr;

/// The two join commands `kcnode init` prints (without the leading `kcnode`).
pub struct JoinCommands {
    pub worker: Vec<String>,
    pub member: Vec<String>,
}

/// The arguments after `kcnode` in a join command line `init` printed.
pub fn join_words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip_while(|w| *w != "kcnode")
        .skip(1)
        .map(String::from)
        .collect()
}

/// Starts `kcnode init` on `host` (extra `args` appended) and reads its
/// join commands.
pub fn init(host: &Host, args: &[&str]) -> (Proc, JoinCommands) {
    let mut argv = vec!["init", "--heartbeat", "1s"];
    argv.extend_from_slice(args);
    let mut p = host.spawn("init", &argv);
    let member_line = p.wait_line("--control-plane", Duration::from_secs(60));
    let worker_line = p
        .stdout()
        .lines()
        .find(|l| l.contains("kcnode join") && !l.contains("--control-plane"))
        .map(str::to_string)
        .expect("a worker join command");
    (
        p,
        JoinCommands {
            worker: join_words(&worker_line),
            member: join_words(&member_line),
        },
    )
}

/// Starts `kcnode <join> <args>` on `host`, labelled `label`.
pub fn join(host: &Host, label: &str, join: &[String], args: &[&str]) -> Proc {
    let mut argv: Vec<&str> = join.iter().map(String::as_str).collect();
    argv.extend_from_slice(args);
    argv.extend(["--heartbeat", "1s"]);
    host.spawn(label, &argv)
}

/// Joins `host` as a control-plane member and waits until it serves.
pub fn join_member(host: &Host, label: &str, cmds: &JoinCommands, args: &[&str]) -> Proc {
    let mut p = join(host, label, &cmds.member, args);
    p.wait_line("control plane of", Duration::from_secs(120));
    p
}

/// A member's view of the store (`kcnode store status` inside its namespace).
pub fn store_status(host: &Host) -> Option<serde_json::Value> {
    let pki = host.data().join("pki");
    let out = host.run(&[
        "store",
        "status",
        "--endpoints",
        "127.0.0.1:7000",
        "--pki-dir",
        pki.to_str()?,
    ]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The index in `members` of the store's current leader, as `members[via]` sees it.
pub fn leader_of(members: &[&Host], via: usize) -> usize {
    eventually(Duration::from_secs(30), "a store leader", || {
        let s = store_status(members[via])?;
        let leader = s["leader"].as_u64().filter(|l| *l != 0)?;
        let address = s["members"][leader.to_string()].as_str()?.to_string();
        members
            .iter()
            .position(|h| address.starts_with(&format!("{}:", h.ip)))
    })
}

/// `kubectl <args>` against `host`'s own API server, with a short timeout.
pub fn kubectl(host: &Host, args: &[&str]) -> std::process::Output {
    let mut argv = vec!["--request-timeout=5s"];
    argv.extend_from_slice(args);
    host.kubectl(&host.kubeconfig(), &argv)
}

/// Waits until `node` is Ready as `via` sees it.
pub fn wait_ready(via: &Host, node: &str) {
    eventually(
        Duration::from_secs(60),
        &format!("node {node} Ready"),
        || via.node_ready(node),
    );
}

/// Creates ConfigMap `name` through `host`; the error text if refused.
pub fn create_configmap(host: &Host, name: &str) -> Result<(), String> {
    let out = kubectl(
        host,
        &[
            "create",
            "configmap",
            name,
            &format!("--from-literal=k={name}"),
        ],
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr(&out))
    }
}

/// A LAN with `members` control-plane hosts (named cp1..) started and joined.
pub struct Plane {
    /// The kcnode processes, by member (dropped first: killed by PID).
    pub procs: Vec<Option<Proc>>,
    pub hosts: Vec<Host>,
    pub joins: JoinCommands,
    pub lan: Lan,
}

impl Plane {
    /// `members` control-plane hosts, running no workloads.
    pub fn start(members: usize) -> Plane {
        let mut lan = Lan::new();
        let hosts: Vec<Host> = (1..=members).map(|i| lan.host(&format!("cp{i}"))).collect();
        let (first, joins) = init(&hosts[0], &["--no-workloads"]);
        let mut procs = vec![Some(first)];
        for h in &hosts[1..] {
            procs.push(Some(join_member(h, "member", &joins, &["--no-workloads"])));
        }
        Plane {
            procs,
            hosts,
            joins,
            lan,
        }
    }

    pub fn refs(&self) -> Vec<&Host> {
        self.hosts.iter().collect()
    }

    /// A worker host `w1` with the busybox base image, joined with the
    /// worker token; its kcnode.
    pub fn join_worker(&mut self) -> (Host, Proc) {
        let w = self.lan.host("w1");
        let img = w.run(&["image", "base", "busybox"]);
        assert!(img.status.success(), "busybox base image: {}", stderr(&img));
        let worker = join(&w, "join", &self.joins.worker, &[]);
        (w, worker)
    }
}

/// The command that restarts member `i` of a `Plane` from its data (no
/// token: member 0 founded the cluster, the others joined it).
pub fn restart_args(i: usize) -> Vec<&'static str> {
    let mut argv = if i == 0 {
        vec!["init"]
    } else {
        vec!["join", "--master", "127.0.0.1:7000", "--control-plane"]
    };
    argv.extend(["--no-workloads", "--heartbeat", "1s"]);
    argv
}
