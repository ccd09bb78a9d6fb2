//! Helpers for the container tests: a busybox root filesystem built from
//! the host's static busybox, and `Node`, a private kcnode (its own data dir
//! and node name, hence its own cgroup parent `kc/<node>`) whose Drop
//! removes every container it made, its cgroups and its files — also when
//! the test failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{bin, require_program, require_root};

/// A busybox rootfs in a temp dir: /bin/busybox plus a symlink per applet,
/// /etc/passwd and /etc/group with root and nobody, /www/index.html.
pub fn busybox_rootfs() -> tempfile::TempDir {
    let busybox = require_program("busybox", "busybox-static");
    let dir = tempfile::Builder::new()
        .prefix("kc-rootfs-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "www", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(root.join("www/index.html"), "hello from kc\n").unwrap();
    dir
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private kcnode: own data dir and node name.
pub struct Node {
    pub data: tempfile::TempDir,
    pub name: String,
    /// Run kcnode in this network namespace (`nsenter --net`, which unlike
    /// `ip netns exec` leaves the mounts, /sys/fs/cgroup included, alone).
    pub netns: Option<String>,
}

impl Node {
    pub fn new() -> Node {
        require_root();
        let data = tempfile::Builder::new()
            .prefix("kc-data-")
            .tempdir()
            .expect("temp dir");
        Node {
            data,
            name: unique("kct"),
            netns: None,
        }
    }

    /// A `kcnode` command for this node.
    pub fn cmd(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new(require_program("nsenter", "util-linux"));
                c.arg(format!("--net=/run/netns/{ns}")).arg(bin("kcnode"));
                c
            }
            None => Command::new(bin("kcnode")),
        };
        c.env("KC_DATA_DIR", self.data.path())
            .env("KC_NODE_NAME", &self.name)
            .env_remove("RUST_LOG");
        c
    }

    /// Runs kcnode with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run kcnode")
    }

    /// Runs kcnode and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kcnode {args:?} failed: {}\nstdout: {}",
            stderr(&out),
            stdout(&out)
        );
        stdout(&out)
    }

    /// `inspect` as JSON (the first element).
    pub fn inspect(&self, key: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", key]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// Waits until the container is recorded as exited; returns its state.
    pub fn wait_exited(&self, key: &str, secs: u64) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let s = self.inspect(key);
            if s["status"] == "exited" {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "container {key} still {} after {secs}s",
                s["status"]
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The node's runtime dirs on tmpfs, where `--rm` containers live.
    pub fn runtime_dirs(&self) -> Vec<PathBuf> {
        ["/run/kc", "/dev/shm/kc"]
            .iter()
            .map(|p| Path::new(p).join(&self.name))
            .collect()
    }

    /// Container directories left anywhere (data dir and runtime dirs).
    pub fn leftover_container_dirs(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.data.path().join("containers")];
        roots.extend(self.runtime_dirs().iter().map(|d| d.join("containers")));
        roots
            .iter()
            .flat_map(|r| {
                std::fs::read_dir(r)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
            })
            .collect()
    }

    /// This node's cgroup directories (`kc/<node>` under each hierarchy).
    pub fn cgroup_parents(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = entry.path().join("kc").join(&self.name);
            if p.exists() {
                out.push(p);
            }
        }
        let p = Path::new("/sys/fs/cgroup/kc").join(&self.name);
        if p.exists() {
            out.push(p);
        }
        out
    }

    /// The container cgroups left under this node's parents.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        self.cgroup_parents()
            .iter()
            .flat_map(|p| {
                std::fs::read_dir(p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
            })
            .collect()
    }

    /// A container's cgroup dir in the given v1 controller (or v2 root).
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        let v1 = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("kc")
            .join(&self.name)
            .join(id);
        if v1.exists() {
            v1
        } else {
            Path::new("/sys/fs/cgroup/kc").join(&self.name).join(id)
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        for p in self.cgroup_parents() {
            for child in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&p);
        }
        for d in self.runtime_dirs() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A network namespace created for a test, removed on drop. Loopback is up.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        require_program("ip", "iproute2");
        let name = unique("kc-test");
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        let ns = NetNs { name };
        let st = ns.exec(&["ip", "link", "set", "lo", "up"]).status.success();
        assert!(st, "bring lo up in {}", ns.name);
        ns
    }

    /// Runs a program inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .expect("ip netns exec")
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
