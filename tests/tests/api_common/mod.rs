//! Shared harness of the API tests: starts `kcnode serve-api` on a free
//! loopback port with a temporary data dir, waits until it serves, runs the
//! real kubectl against it, and stops the server (by its PID) on drop, also
//! when a test fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// A running `kcnode serve-api`.
pub struct ApiServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
}

impl ApiServer {
    pub fn start() -> Self {
        Self::start_with(tempfile::tempdir().expect("temp dir"), &[])
    }

    /// Starts on a data dir the caller may have prepared (e.g. a shared
    /// cluster CA under `pki/`), with extra `serve-api` arguments.
    pub fn start_with(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        assert!(
            Path::new(KUBECTL).exists(),
            "{KUBECTL} is missing: the API tests drive the real kubectl (v1.32)"
        );
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let mut child = Command::new(kc_tests::bin("kcnode"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["serve-api", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kcnode serve-api");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on https://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split(';').next().unwrap_or("").trim().to_string();
                    let _ = tx.send(addr);
                }
                eprintln!("[kcnode] {line}");
            }
        });
        let mut server = ApiServer {
            child,
            dir,
            kubeconfig,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => server.url = format!("https://{addr}"),
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "kcnode serve-api did not start listening within 30 s (exit status: {status:?})"
                );
            }
        }
        server.wait_ready();
        server
    }

    /// Stops the server (by its PID) and starts it again on the same data
    /// dir with `extra` arguments (it listens on a new port).
    pub fn restart(mut self, extra: &[&str]) -> Self {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::start_with(dir, extra)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() && stdout(&out).contains("ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "API server never became ready: {}",
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("run kubectl")
    }

    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KUBECTL);
        // A hung server fails the test instead of hanging it.
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=60s")
            .args(args);
        cmd.env_remove("KUBECONFIG");
        cmd
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs kubectl and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} should have failed but printed: {}",
            args.join(" "),
            stdout(&out)
        );
        stderr(&out)
    }

    /// Applies a manifest given as text with the given extra args.
    pub fn apply_text(&self, manifest: &str, extra: &[&str]) -> Output {
        let path = self
            .dir
            .path()
            .join(format!("manifest-{}.yaml", rand_suffix()));
        std::fs::write(&path, manifest).expect("write manifest");
        let mut args = vec!["apply", "-f", path.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        self.kubectl(&args)
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("pki/ca.crt")
    }

    pub fn admin_token(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("tokens.csv")).expect("tokens.csv");
        text.split(',').next().expect("a token").to_string()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of the child this harness started.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The whitespace-separated words of each line.
pub fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}
