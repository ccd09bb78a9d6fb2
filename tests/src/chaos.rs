//! Chaos helpers for resilience tests: a small cluster of hosts in network
//! namespaces (`ChaosCluster`: one control-plane member, N workers, kcnode
//! processes restartable with the same data dirs), killing every process of
//! a host as a power cut would (`host_pids`, `kill_host`: found by the
//! host's network namespace, its cgroups under `kc/<node>`, its sandbox
//! holders and their descendants; never by name), cutting and restoring a
//! host's link (`link_down`, `link_up`), pod queries through kubectl, and
//! timed waits that print how long a recovery took (`measure`).
//!
//! `ClusterSpec::members` > 1 makes a replicated control plane: hosts
//! `0..members` are members (`kcnode init`, then `kcnode join
//! --control-plane` one at a time), the rest workers; `kubectl` goes
//! through the first member whose kcnode runs (`api_host`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Host, Lan, Proc, eventually, sandbox_holders};
use crate::container::{stderr, stdout};

/// A cluster for chaos tests. Fields drop in order: processes first, then
/// hosts (their containers), then the LAN.
pub struct ChaosCluster {
    /// kcnode processes by host index (0 = the control plane); None while down.
    pub procs: Vec<Option<Proc>>,
    /// Hosts `0..members` are control-plane members, the rest are workers.
    pub hosts: Vec<Host>,
    pub lan: Lan,
    /// `kcnode join` arguments printed by init (token, CA hash, master).
    pub join: Vec<String>,
    /// Extra arguments of every kcnode start (e.g. `--heartbeat 1s`).
    pub node_args: Vec<String>,
    /// How many hosts (the first ones) are control-plane members.
    pub members: usize,
    /// Extra arguments of every member start (`--no-workloads`).
    member_args: Vec<String>,
    starts: usize,
}

/// Options of `ChaosCluster::start`.
pub struct ClusterSpec {
    pub workers: usize,
    /// Control-plane members (1, or 3 for a replicated store).
    pub members: usize,
    /// The control plane runs no pods (`--no-workloads`).
    pub dedicated_control_plane: bool,
    pub heartbeat: &'static str,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            workers: 2,
            members: 1,
            dedicated_control_plane: false,
            heartbeat: "1s",
        }
    }
}

impl ChaosCluster {
    /// Starts `kcnode init`, `spec.members - 1` member joins and
    /// `spec.workers` joins, each host with the `busybox` base image;
    /// returns when every Node is Ready.
    pub fn start(spec: ClusterSpec) -> ChaosCluster {
        assert!(spec.members >= 1, "a cluster needs a control-plane member");
        let mut lan = Lan::new();
        let mut hosts: Vec<Host> = (0..spec.members).map(|_| lan.host("cp")).collect();
        for _ in 0..spec.workers {
            hosts.push(lan.host("w"));
        }
        for h in &hosts {
            let out = h.run(&["image", "base", "busybox"]);
            assert!(
                out.status.success(),
                "busybox on {}: {}",
                h.name,
                stderr(&out)
            );
        }
        let mut cluster = ChaosCluster {
            procs: Vec::new(),
            hosts,
            lan,
            join: Vec::new(),
            node_args: vec!["--heartbeat".into(), spec.heartbeat.into()],
            members: spec.members,
            member_args: Vec::new(),
            starts: 0,
        };
        if spec.dedicated_control_plane {
            cluster.member_args.push("--no-workloads".into());
        }
        let mut init = vec!["init".to_string()];
        init.extend(cluster.member_args.clone());
        let init_proc = cluster.spawn(0, &init);
        cluster.procs.push(Some(init_proc));
        let first = cluster.procs[0].as_mut().expect("just started");
        first.wait_line("--control-plane", Duration::from_secs(60));
        let out = first.stdout();
        let line = |member: bool| {
            out.lines()
                .find(|l| l.contains("kcnode join") && l.contains("--control-plane") == member)
                .map(crate::ha::join_words)
                .expect("init prints a worker and a member join command")
        };
        cluster.join = line(false);
        let member_join = line(true);
        // Members one at a time: each must serve before the next joins.
        for i in 1..cluster.members {
            let mut argv = member_join.clone();
            argv.extend(cluster.member_args.clone());
            let mut p = cluster.spawn(i, &argv);
            p.wait_line("control plane of", Duration::from_secs(120));
            cluster.procs.push(Some(p));
        }
        for i in cluster.members..cluster.hosts.len() {
            let join = cluster.join.clone();
            let p = cluster.spawn(i, &join);
            cluster.procs.push(Some(p));
        }
        cluster.wait_all_ready(Duration::from_secs(60));
        cluster
    }

    /// Starts kcnode on host `i` with `args` (plus `node_args`) and `env`.
    fn spawn_env(&mut self, i: usize, args: &[String], env: &[(&str, &str)]) -> Proc {
        self.starts += 1;
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(self.node_args.iter().map(String::as_str));
        self.hosts[i].spawn_env(&format!("kcnode-{}", self.starts), &all, env)
    }

    fn spawn(&mut self, i: usize, args: &[String]) -> Proc {
        self.spawn_env(i, args, &[])
    }

    /// The command that (re)starts host `i` with its data dir: `init` on
    /// the first member (it reuses its store), `join` on the other members
    /// (they restart from their member file) and on workers (they reuse
    /// their identity and known members).
    pub fn restart_args(&self, i: usize) -> Vec<String> {
        let mut argv: Vec<String> = if i == 0 {
            vec!["init".into()]
        } else {
            vec![
                "join".into(),
                "--master".into(),
                format!("{}:7000", self.hosts[0].ip),
            ]
        };
        if i < self.members {
            argv.extend(self.member_args.clone());
        }
        argv
    }

    /// (Re)starts kcnode on host `i`.
    pub fn start_host(&mut self, i: usize) {
        self.start_host_env(i, &[]);
    }

    /// (Re)starts kcnode on host `i` with extra environment variables
    /// (e.g. `KC_WIRE_MINOR` for an upgrade).
    pub fn start_host_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let args = self.restart_args(i);
        let p = self.spawn_env(i, &args, env);
        self.procs[i] = Some(p);
    }

    /// Power cut of host `i`: SIGKILL to its kcnode and every process of
    /// the host (monitors, shims, sandbox holders, containers).
    pub fn kill_host(&mut self, i: usize) -> usize {
        if let Some(mut p) = self.procs[i].take() {
            p.kill();
        }
        kill_host(&self.hosts[i])
    }

    /// SIGTERM to host `i`'s kcnode; waits up to `timeout` for it to exit.
    pub fn stop_host(&mut self, i: usize, timeout: Duration) {
        if let Some(mut p) = self.procs[i].take() {
            let pid = p.child.id() as i32;
            // SAFETY: a signal to the kcnode this test started (by PID).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!(
                "kcnode on {} did not exit {timeout:?} after SIGTERM; stderr:\n{}",
                self.hosts[i].name,
                tail(&p.stderr(), 20)
            );
        }
    }

    pub fn cp(&self) -> &Host {
        &self.hosts[0]
    }

    /// The member `kubectl` goes through: the first whose kcnode runs
    /// (host 0 when none does).
    pub fn api_index(&self) -> usize {
        (0..self.members)
            .find(|i| matches!(self.procs.get(*i), Some(Some(_))))
            .unwrap_or(0)
    }

    pub fn api_host(&self) -> &Host {
        &self.hosts[self.api_index()]
    }

    /// The index of the member holding the store's Raft leadership, as
    /// the first running member that knows one says (None: no answer now).
    pub fn leader_now(&self) -> Option<usize> {
        (0..self.members)
            .filter(|i| matches!(self.procs.get(*i), Some(Some(_))))
            .find_map(|via| {
                let s = crate::ha::store_status(&self.hosts[via])?;
                let leader = s["leader"].as_u64().filter(|l| *l != 0)?;
                let address = s["members"][leader.to_string()].as_str()?.to_string();
                self.hosts[..self.members]
                    .iter()
                    .position(|h| address.starts_with(&format!("{}:", h.ip)))
            })
    }

    /// The admin kubeconfig of the member `kubectl` goes through.
    pub fn kubeconfig(&self) -> PathBuf {
        self.api_host().kubeconfig()
    }

    /// The admin kubeconfig pointed at the control plane's LAN address, for
    /// commands run on other hosts (`kcnode pull`, `kcnode image push`).
    pub fn lan_kubeconfig(&self) -> PathBuf {
        let text = std::fs::read_to_string(self.kubeconfig()).expect("admin kubeconfig");
        let path = self.cp().data().join("lan.kubeconfig");
        let text = text.replace(
            "https://127.0.0.1:6443",
            &format!("https://{}:6443", self.cp().ip),
        );
        std::fs::write(&path, text).expect("write the LAN kubeconfig");
        path
    }

    /// `kubectl <args>` against the cluster (from the namespace of the
    /// member it goes through, `api_host`).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.api_host().kubectl(&self.kubeconfig(), args)
    }

    /// `kubectl apply -f -` of `manifest`; panics with kubectl's error.
    pub fn apply(&self, manifest: &str) {
        let out = kubectl_stdin(
            self.api_host(),
            &self.kubeconfig(),
            &["apply", "-f", "-"],
            manifest,
        );
        assert!(out.status.success(), "apply: {}", stderr(&out));
    }

    /// `kubectl get <kind> -o json` items (empty on error).
    pub fn items(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The pods with label selector `selector`.
    pub fn pods(&self, selector: &str) -> Vec<Value> {
        self.items(&["pods", "-l", selector])
    }

    /// Node `name`'s Ready condition status ("True", "False", "Unknown"; "" if absent).
    pub fn node_ready(&self, name: &str) -> String {
        let out = self.kubectl(&["get", "node", name, "-o", "json"]);
        let node: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        node["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["status"].as_str())
            .unwrap_or("")
            .to_string()
    }

    pub fn wait_all_ready(&self, timeout: Duration) {
        for h in &self.hosts {
            eventually(timeout, &format!("node {} Ready", h.name), || {
                (self.node_ready(&h.name) == "True").then_some(())
            });
        }
    }

    /// The index of the host whose node is `name`.
    pub fn host_index(&self, node_name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == node_name)
    }

    /// The last lines of every kcnode's stderr (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if let Some(Some(p)) = self.procs.get(i) {
                out += &format!("--- {} ---\n{}\n", h.name, tail(&p.stderr(), 15));
            }
        }
        out
    }
}

/// `kubectl <args>` in `host`'s namespace with `input` on stdin.
pub fn kubectl_stdin(host: &Host, kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    crate::require_program("kubectl", "kubectl");
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.ns.name))
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl");
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes());
    child.wait_with_output().expect("kubectl")
}

/// Pod summaries: a pod is "live" while it has no deletionTimestamp.
pub fn is_live(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_string()
}

pub fn is_running_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["ready"] == true))
}

pub fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

pub fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

/// The short runtime ids (as `kcnode ps` prints them) of a pod's containers.
pub fn container_ids(pod: &Value) -> Vec<String> {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["containerID"].as_str())
        .map(|id| short_id(id.rsplit("://").next().unwrap_or(id)))
        .collect()
}

/// A container id as `kcnode ps` prints it (12 characters).
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// One line per pod: name, node, phase, ready, Terminating (for failure messages).
pub fn pod_summary(pods: &[Value]) -> String {
    pods.iter()
        .map(|p| {
            format!(
                "{} node={} phase={} ready={}{}\n",
                name_of(p),
                node_of(p),
                p["status"]["phase"].as_str().unwrap_or("?"),
                is_running_ready(p),
                if is_live(p) { "" } else { " Terminating" }
            )
        })
        .collect()
}

/// How many live pods run on each node.
pub fn spread(pods: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in pods.iter().filter(|p| is_live(p)) {
        *out.entry(node_of(p).to_string()).or_default() += 1;
    }
    out
}

/// Like `eventually`, and returns how long it took (printed with `what`).
pub fn measure(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    eventually(timeout, what, || check().then_some(()));
    let took = start.elapsed();
    println!("FIGURE {what}: {:.1} s", took.as_secs_f64());
    took
}

/// Waits until `replicas` live pods of `selector` run Ready away from
/// `victim` (none left on it); prints the time it took and the time from
/// `since` (the failure; goal <= 20 s) as FIGURE lines.
pub fn wait_replaced(
    cluster: &ChaosCluster,
    selector: &str,
    replicas: usize,
    victim: &str,
    what: &str,
    since: Instant,
) -> Duration {
    measure(Duration::from_secs(90), what, || {
        let pods = cluster.pods(selector);
        let live: Vec<_> = pods.iter().filter(|p| is_live(p)).collect();
        live.len() == replicas
            && live
                .iter()
                .all(|p| node_of(p) != victim && is_running_ready(p))
    });
    let took = since.elapsed();
    println!(
        "FIGURE {what}, from the failure: {:.1} s (goal <= 20 s)",
        took.as_secs_f64()
    );
    took
}

/// After a cut-off worker (`cluster.hosts[worker]`, Node `node`) is linked
/// again: it is Ready, the Deployment `selector` converges
/// ([`wait_converged`]), and the containers `ids` of its evicted pods stop.
pub fn wait_healed_worker(
    cluster: &ChaosCluster,
    worker: usize,
    node: &str,
    (selector, replicas): (&str, usize),
    old: &[String],
    ids: &[String],
) {
    measure(Duration::from_secs(30), "healed worker Ready again", || {
        cluster.node_ready(node) == "True"
    });
    wait_converged(cluster, selector, replicas, old);
    eventually(
        Duration::from_secs(30),
        "evicted pods' containers stopped on the healed worker",
        || {
            let running = running_containers(&cluster.hosts[worker]);
            (!ids.iter().any(|id| running.contains(id))).then_some(())
        },
    );
}

/// After a lost node is back: the pods named `old` leave the API, never
/// more live pods than `replicas` at any poll, then exactly `replicas`
/// pods, all Running.
pub fn wait_converged(cluster: &ChaosCluster, selector: &str, replicas: usize, old: &[String]) {
    eventually(
        Duration::from_secs(60),
        "the lost node's old pods removed from the API",
        || {
            let pods = cluster.pods(selector);
            let live = pods.iter().filter(|p| is_live(p)).count();
            assert!(
                live <= replicas,
                "{live} live pods for {replicas} replicas: {pods:#?}"
            );
            let names: Vec<&str> = pods.iter().map(name_of).collect();
            (!old.iter().any(|o| names.contains(&o.as_str()))).then_some(())
        },
    );
    let pods = eventually(
        Duration::from_secs(60),
        &format!("exactly {replicas} pods of {selector}, all Running"),
        || {
            let pods = cluster.pods(selector);
            (pods.len() == replicas && pods.iter().all(is_running_ready)).then_some(pods)
        },
    );
    assert_eq!(pods.len(), replicas, "{pods:#?}");
}

/// The ids of containers on `host` that kcnode's runtime reports running.
/// Asserts that every container in `ids` still runs on `host` (e.g. a
/// worker cut off from the control plane keeps its pods).
pub fn assert_containers_running(host: &Host, ids: &[String]) {
    let running = running_containers(host);
    let stopped: Vec<&String> = ids
        .iter()
        .filter(|id| !running.contains(*id) || !container_alive(host, id))
        .collect();
    assert!(
        stopped.is_empty(),
        "containers {stopped:?} stopped on {} (running: {running:?})",
        host.name
    );
}

pub fn running_containers(host: &Host) -> BTreeSet<String> {
    let out = host.run(&["ps", "-q"]);
    stdout(&out).split_whitespace().map(short_id).collect()
}

/// Whether container `id` on `host` has a live init process (its recorded
/// PID exists and is not a zombie), beyond what `kcnode ps` records.
pub fn container_alive(host: &Host, id: &str) -> bool {
    let out = host.run(&["inspect", id]);
    let pid = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v[0]["pid"].as_i64());
    pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Every container id on `host` (any state).
pub fn all_containers(host: &Host) -> BTreeSet<String> {
    let out = host.run(&["ps", "-a", "-q"]);
    stdout(&out).split_whitespace().map(short_id).collect()
}

/// Takes `host`'s only link (eth0, inside its namespace) down.
pub fn link_down(host: &Host) {
    set_link(host, "down");
}

pub fn link_up(host: &Host) {
    set_link(host, "up");
}

fn set_link(host: &Host, state: &str) {
    let out = host.ns.exec(&["ip", "link", "set", "eth0", state]);
    assert!(
        out.status.success(),
        "link {state} on {}: {}",
        host.name,
        stderr(&out)
    );
}

/// Every process of `host`: those in its network namespace (kcnode,
/// monitors, shims), those in its cgroups under `kc/<node>` (containers),
/// its pod sandbox holders, and all their descendants.
pub fn host_pids(host: &Host) -> BTreeSet<i32> {
    let netns = inode(&format!("/run/netns/{}", host.ns.name));
    let cgroup = format!("/kc/{}/", host.name);
    let sandboxes: BTreeSet<i32> = sandbox_holders(host.data()).into_iter().collect();
    let procs = processes();
    let mut found: BTreeSet<i32> = procs
        .iter()
        .filter(|p| {
            sandboxes.contains(&p.pid)
                || (netns.is_some() && p.netns == netns)
                || p.cgroup
                    .lines()
                    .any(|l| l.contains(&cgroup) || l.ends_with(&cgroup[..cgroup.len() - 1]))
        })
        .map(|p| p.pid)
        .collect();
    loop {
        let more: Vec<i32> = procs
            .iter()
            .filter(|p| found.contains(&p.ppid) && !found.contains(&p.pid))
            .map(|p| p.pid)
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    let me = std::process::id() as i32;
    found.remove(&me);
    found
}

/// SIGKILLs every process of `host` until none is left (a process may
/// fork while we kill); returns how many were killed.
pub fn kill_host(host: &Host) -> usize {
    let mut killed = BTreeSet::new();
    for _ in 0..20 {
        let pids = host_pids(host);
        if pids.is_empty() {
            return killed.len();
        }
        for pid in &pids {
            // SAFETY: SIGKILL to a process of this test's host, found by the
            // host's namespace/cgroups/sandboxes, never by name.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
            killed.insert(*pid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "processes of {} survive SIGKILL: {:?}",
        host.name,
        host_pids(host)
    );
}

struct ProcInfo {
    pid: i32,
    ppid: i32,
    netns: Option<u64>,
    cgroup: String,
}

fn processes() -> Vec<ProcInfo> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Zombies are already dead; they go with their parent.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("");
        if state == "Z" {
            continue;
        }
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let netns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .and_then(|l| {
                let s = l.to_string_lossy().into_owned();
                s.trim_start_matches("net:[")
                    .trim_end_matches(']')
                    .parse()
                    .ok()
            });
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        out.push(ProcInfo {
            pid,
            ppid,
            netns,
            cgroup,
        });
    }
    out
}

fn inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
