//! Helpers for the kubelet tests: `Kubelet`, a real `kcnode kubelet
//! --manifests DIR` on a private node (own data dir, node name and cgroup
//! parent) with the busybox base image, plus readers for the status files
//! and events it writes. Drop kills the kubelet by its PID, then the pod
//! sandboxes' holders it started; the `Node` removes the containers.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kc_tests::container::Node;
use serde_json::Value;

pub struct Kubelet {
    pub manifests: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
    // Dropped last: removes the containers, cgroups and data dir.
    pub node: Node,
}

impl Kubelet {
    /// A node with the busybox image and a running kubelet on an empty
    /// manifests directory.
    pub fn start() -> Kubelet {
        Kubelet::start_in(None, &[])
    }

    /// The same, with kcnode in network namespace `netns` and extra flags.
    pub fn start_in(netns: Option<String>, extra: &[&str]) -> Kubelet {
        let mut node = Node::new();
        node.netns = netns;
        node.ok(&["image", "base", "busybox"]);
        let manifests = tempfile::Builder::new()
            .prefix("kc-manifests-")
            .tempdir()
            .expect("temp dir");
        let mut k = Kubelet {
            manifests,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            node,
        };
        k.spawn();
        k
    }

    /// Starts (or restarts) the kubelet process.
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.node.data.path().join("kubelet.log")).unwrap();
        let child = self
            .node
            .cmd()
            .env("RUST_LOG", "info")
            .args(["kubelet", "--manifests"])
            .arg(self.manifests.path())
            .args(["--host-ip", "192.0.2.10"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kcnode kubelet");
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// SIGKILL to the kubelet process (its containers keep running).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn apply(&self, file: &str, yaml: &str) {
        let tmp = self.manifests.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.manifests.path().join(file)).unwrap();
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.manifests.path().join(file)).unwrap();
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.node
            .data
            .path()
            .join("kubelet/status")
            .join(format!("default_{name}.json"))
    }

    /// The last reported status of pod `name` (default namespace).
    pub fn status(&self, name: &str) -> Option<Value> {
        let bytes = std::fs::read(self.status_path(name)).ok()?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .map(|v| v["status"].clone())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.node.data.path().join("kubelet.log")).unwrap_or_default()
    }

    /// Waits until `pred` holds for the pod's status; answers that status.
    pub fn wait(&self, name: &str, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status(name)
                && pred(&s)
            {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "pod {name}: not {what} after {secs}s; last status: {}\nkubelet log:\n{}",
                    self.status(name).map(|s| s.to_string()).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the pod's status file is gone (PodTerminated).
    pub fn wait_gone(&self, name: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.status_path(name).exists() {
            assert!(
                Instant::now() < deadline,
                "pod {name} still there after {secs}s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The events written so far.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.node.data.path().join("kubelet/events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The output of a container by its `kc://` id.
    pub fn logs(&self, container_id: &str) -> String {
        let id = container_id.trim_start_matches("kc://");
        self.node.ok(&["logs", id])
    }

    fn sandbox_holders(&self) -> Vec<i32> {
        std::fs::read_dir(self.node.data.path().join("sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("sandbox.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter_map(|v| v["pid"].as_i64())
            .map(|p| p as i32)
            .collect()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.kill();
        for pid in self.sandbox_holders() {
            if kc_runtime::sandbox::is_holder(pid) {
                // SAFETY: kill of a sandbox holder this test's kubelet started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The status of container `name` in a pod status.
pub fn container<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The value of condition `kind` ("True"/"False").
pub fn condition(status: &Value, kind: &str) -> String {
    status["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == kind))
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}
