//! Helpers for cluster tests: a LAN of hosts, each its own network
//! namespace with a veth onto one bridge (itself in a namespace of its own,
//! never the host's), and `kcnode` processes started in them with
//! `nsenter --net` (which, unlike `ip netns exec`, leaves /sys alone).
//! Everything is removed on drop, also when a test fails: processes by the
//! PID we started, then namespaces, then data directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::container::{NetNs, Node, unique};

/// The bridge namespace and the subnet of a test LAN.
pub struct Lan {
    pub bridge: NetNs,
    next: u8,
}

impl Default for Lan {
    fn default() -> Self {
        Self::new()
    }
}

impl Lan {
    pub fn new() -> Lan {
        crate::require_root();
        let bridge = NetNs::new();
        let ok = bridge
            .exec(&["ip", "link", "add", "br0", "type", "bridge"])
            .status
            .success()
            && bridge
                .exec(&["ip", "link", "set", "br0", "up"])
                .status
                .success();
        assert!(ok, "cannot make the bridge in {}", bridge.name);
        Lan { bridge, next: 1 }
    }

    /// A new host on the LAN (10.123.0.<n>/24), its node named
    /// `<role>-<unique>` (unique, so parallel tests never share cgroups).
    pub fn host(&mut self, role: &str) -> Host {
        let n = self.next;
        self.next += 1;
        let ns = NetNs::new();
        let veth = format!("v{n}");
        let ip = format!("10.123.0.{n}");
        let steps: Vec<Vec<String>> = vec![
            vec![
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            ["link", "set", &veth, "master", "br0", "up"]
                .map(String::from)
                .to_vec(),
        ];
        for step in steps {
            let mut argv = vec!["ip".to_string()];
            argv.extend(step);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = self.bridge.exec(&argv);
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                crate::container::stderr(&out)
            );
        }
        for argv in [
            vec!["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
        ] {
            let out = ns.exec(&argv);
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                crate::container::stderr(&out)
            );
        }
        let mut node = Node::new();
        node.name = unique(role);
        node.netns = Some(ns.name.clone());
        Host {
            name: node.name.clone(),
            ip,
            node,
            ns,
        }
    }
}

/// One host: a network namespace, an address and a kc node (data
/// directory, name; its containers and cgroups are removed on drop).
pub struct Host {
    pub name: String,
    pub ip: String,
    pub node: Node,
    pub ns: NetNs,
}

impl Drop for Host {
    fn drop(&mut self) {
        // Pod sandboxes outlive kcnode by design (adoption): stop them.
        for pid in sandbox_holders(self.node.data.path()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("pause") {
                // SAFETY: kill of a sandbox holder this test's kcnode started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn sandbox_holders(data: &Path) -> Vec<i32> {
    std::fs::read_dir(data.join("sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("sandbox.json")).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter_map(|v| v["pid"].as_i64())
        .map(|p| p as i32)
        .collect()
}

impl Host {
    /// `kcnode` with this host's data dir and node name, in its namespace.
    pub fn kcnode(&self) -> Command {
        self.node.cmd()
    }

    pub fn data(&self) -> &Path {
        self.node.data.path()
    }

    /// Runs `kcnode <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kcnode().args(args).output().expect("run kcnode")
    }

    /// Starts `kcnode <args>` in the background, output to files.
    pub fn spawn(&self, label: &str, args: &[&str]) -> Proc {
        let out = self.data().join(format!("{label}.out"));
        let err = self.data().join(format!("{label}.err"));
        let child = self
            .kcnode()
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&out).expect("log file"))
            .stderr(std::fs::File::create(&err).expect("log file"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kcnode");
        Proc { child, out, err }
    }

    /// The admin kubeconfig `kcnode init` writes.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data().join("admin.kubeconfig")
    }

    /// `kubectl <args>` in this host's namespace with `kubeconfig`.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        crate::require_program("kubectl", "kubectl");
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns.name))
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }
}

/// A background kcnode; killed (by its PID) on drop.
pub struct Proc {
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Proc {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until stdout has a line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.contains(needle)) {
                return line.trim().to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kcnode exited ({status}) before printing {needle:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} after {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Some, or fails after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A two-host cluster: `kcnode init` on `cp`, `kcnode join` on `w` (which
/// first gets the busybox base image), heartbeats every second; returns
/// (init, join) once `w`'s Node is Ready.
pub fn init_and_join(cp: &Host, w: &Host) -> (Proc, Proc) {
    let img = w.run(&["image", "base", "busybox"]);
    assert!(
        img.status.success(),
        "busybox base image: {}",
        crate::container::stderr(&img)
    );
    let mut init = cp.spawn("init", &["init", "--heartbeat", "1s"]);
    let line = init.wait_line("kcnode join", Duration::from_secs(30));
    let mut join: Vec<&str> = line.split_whitespace().skip(1).collect();
    join.extend(["--heartbeat", "1s"]);
    let worker = w.spawn("join", &join);
    let kc = cp.kubeconfig();
    eventually(Duration::from_secs(30), "worker Ready", || {
        let out = cp.kubectl(&kc, &["get", "node", &w.name, "--no-headers"]);
        crate::container::stdout(&out)
            .contains(" Ready")
            .then_some(())
    });
    (init, worker)
}
