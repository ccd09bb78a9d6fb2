//! Helpers for cluster tests: a LAN of hosts, each its own network
//! namespace with a veth onto one bridge (itself in a namespace of its own,
//! never the host's), and `kcnode` processes started in them with
//! `nsenter --net` (which, unlike `ip netns exec`, leaves /sys alone).
//! Everything is removed on drop, also when a test fails: processes by the
//! PID we started, then namespaces, then data directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bin;
use crate::container::NetNs;

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

    /// A new host on the LAN (10.123.0.<n>/24) named `name`.
    pub fn host(&mut self, name: &str) -> Host {
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
        Host {
            name: name.to_string(),
            ip,
            data: tempfile::tempdir().expect("temp dir"),
            ns,
        }
    }
}

/// One host: a network namespace, an address and a data directory.
pub struct Host {
    pub name: String,
    pub ip: String,
    pub data: tempfile::TempDir,
    pub ns: NetNs,
}

impl Host {
    /// `kcnode --data-dir <mine> --node-name <mine>` inside the namespace.
    pub fn kcnode(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns.name))
            .arg(bin("kcnode"))
            .arg("--data-dir")
            .arg(self.data.path().join("kc"))
            .arg("--node-name")
            .arg(&self.name);
        c
    }

    /// Runs `kcnode <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kcnode().args(args).output().expect("run kcnode")
    }

    /// Starts `kcnode <args>` in the background, output to files.
    pub fn spawn(&self, label: &str, args: &[&str]) -> Proc {
        let out = self.data.path().join(format!("{label}.out"));
        let err = self.data.path().join(format!("{label}.err"));
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
        self.data.path().join("kc/admin.kubeconfig")
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
