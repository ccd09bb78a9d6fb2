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
            if kc_runtime::sandbox::is_holder(pid) {
                // SAFETY: kill of a sandbox holder this test's kcnode started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The PIDs of the pod sandbox holders recorded under a node's data dir.
pub fn sandbox_holders(data: &Path) -> Vec<i32> {
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
        self.spawn_env(label, args, &[])
    }

    /// `spawn` with extra environment variables.
    pub fn spawn_env(&self, label: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let out = self.data().join(format!("{label}.out"));
        let err = self.data().join(format!("{label}.err"));
        let child = self
            .kcnode()
            .args(args)
            .envs(env.iter().copied())
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

    /// Some(()) when `node` is Ready, asked through this host's admin kubeconfig.
    pub fn node_ready(&self, node: &str) -> Option<()> {
        let out = self.kubectl(
            &self.kubeconfig(),
            &[
                "--request-timeout=5s",
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        );
        (crate::container::stdout(&out).trim() == "True").then_some(())
    }

    /// `kubectl apply -f -` of `manifest` in this host's namespace with the
    /// admin kubeconfig (a control-plane host).
    pub fn apply(&self, manifest: &str) {
        self.apply_with(&self.kubeconfig(), manifest)
    }

    /// `kcnode image push <image>` into the cluster registry (a
    /// control-plane host: its admin kubeconfig names the registry).
    pub fn push_image(&self, image: &str) {
        let out = self
            .kcnode()
            .env("KUBECONFIG", self.kubeconfig())
            .args(["image", "push", image])
            .output()
            .expect("kcnode image push");
        assert!(
            out.status.success(),
            "image push {image}: {}",
            crate::container::stderr(&out)
        );
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

/// A TCP forward from `127.0.0.1:<port>` in the test's own network
/// namespace to an address inside a host's namespace (what testnet/up.sh
/// does with socat): each connection is made from a thread that entered
/// the host's namespace. The listener stops on drop; open connections end
/// when their peers close.
pub struct Forward {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Forward {
    /// Listens on `127.0.0.1:<port>` (0: any free port) and forwards to
    /// `target` (e.g. `127.0.0.1:6443`) inside `host`'s namespace.
    pub fn into_host(host: &Host, port: u16, target: &str) -> Forward {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("forward: cannot listen on 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let path = format!("/run/netns/{}", host.ns.name);
        let target = target.to_string();
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (path, target) = (path.clone(), target.clone());
                std::thread::spawn(move || {
                    crate::netns::enter(&path);
                    if let Ok(upstream) = std::net::TcpStream::connect(&target) {
                        splice(conn, upstream);
                    }
                });
            }
        });
        Forward { port, stop }
    }
}

/// Copies bytes both ways between two connections until both are done.
fn splice(a: std::net::TcpStream, b: std::net::TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let (mut a, mut b) = (a, b);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut a2);
    let _ = a2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Host {
    /// `kubectl apply -f -` of `manifest` in this host's namespace with
    /// `kubeconfig`.
    pub fn apply_with(&self, kubeconfig: &Path, manifest: &str) {
        use std::io::Write;
        crate::require_program("kubectl", "kubectl");
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns.name))
            .args(["kubectl", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl apply");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(manifest.as_bytes())
            .expect("write the manifest");
        let out = child.wait_with_output().expect("kubectl apply");
        assert!(
            out.status.success(),
            "apply: {}",
            crate::container::stderr(&out)
        );
    }

    /// Runs `argv` inside this host's network namespace (nsenter).
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns.name))
            .args(argv)
            .output()
            .expect("run nsenter")
    }
}

/// A running cluster on a `Lan`: one control plane (`kcnode init
/// --no-workloads`, so pods land on the workers) and `workers` joined
/// workers with the busybox base image, all Ready; `node_args` go to init
/// and join both (e.g. `--pod-network vxlan`).
pub struct TestCluster {
    /// The kcnode processes (killed on drop first: fields drop in order).
    pub procs: Vec<Proc>,
    pub cp: Host,
    pub workers: Vec<Host>,
    pub kubeconfig: PathBuf,
    pub lan: Lan,
}

impl TestCluster {
    pub fn start(workers: usize, node_args: &[&str]) -> TestCluster {
        let mut lan = Lan::new();
        let cp = lan.host("cp");
        let workers: Vec<Host> = (0..workers).map(|_| lan.host("w")).collect();
        for w in &workers {
            let img = w.run(&["image", "base", "busybox"]);
            assert!(
                img.status.success(),
                "busybox base image: {}",
                crate::container::stderr(&img)
            );
        }
        let mut init_args = vec!["init", "--heartbeat", "1s", "--no-workloads"];
        init_args.extend(node_args);
        let mut init = cp.spawn("init", &init_args);
        let line = init.wait_line("kcnode join", Duration::from_secs(60));
        let mut procs = vec![init];
        for w in &workers {
            let mut join: Vec<&str> = line.split_whitespace().skip(1).collect();
            join.extend(["--heartbeat", "1s"]);
            join.extend(node_args);
            procs.push(w.spawn("join", &join));
        }
        let kubeconfig = cp.kubeconfig();
        for w in &workers {
            eventually(Duration::from_secs(60), "worker Ready", || {
                let out = cp.kubectl(&kubeconfig, &["get", "node", &w.name, "--no-headers"]);
                crate::container::stdout(&out)
                    .contains(" Ready")
                    .then_some(())
            });
        }
        TestCluster {
            cp,
            workers,
            kubeconfig,
            procs,
            lan,
        }
    }

    /// `kubectl <args>` against the cluster (from the control-plane host).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.cp.kubectl(&self.kubeconfig, args)
    }

    pub fn apply(&self, manifest: &str) {
        self.cp.apply_with(&self.kubeconfig, manifest)
    }

    /// The pod's status once it is Running with every container ready.
    pub fn wait_ready(&self, pod: &str, timeout: Duration) -> serde_json::Value {
        eventually(timeout, &format!("pod {pod} Running and ready"), || {
            let out = self.kubectl(&["get", "pod", pod, "-o", "json"]);
            let pod: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let st = &pod["status"];
            let ready = st["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (st["phase"] == "Running" && ready).then(|| st.clone())
        })
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

/// `program --kubeconfig <host's admin kubeconfig> <args>` inside `host`'s
/// network namespace; `program` is `kcctl` (the built one) or `kubectl`.
pub fn client(host: &Host, program: &str, args: &[&str]) -> Command {
    let path = if program == "kcctl" {
        crate::bin("kcctl")
    } else {
        crate::require_program("kubectl", "kubectl")
    };
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", host.ns.name))
        .arg(path)
        .arg("--kubeconfig")
        .arg(host.kubeconfig())
        .args(args)
        .env_remove("KUBECONFIG");
    cmd
}

/// Runs kcctl, then kubectl, with `args` and `input` on stdin; answers
/// (kcctl's output, kubectl's output).
pub fn both_clients(host: &Host, args: &[&str], input: &[u8]) -> (Output, Output) {
    use std::io::Write;
    let run = |program: &str| {
        let mut child = client(host, program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        // A client that fails early reads no input: not this helper's error.
        let _ = child.stdin.take().expect("piped stdin").write_all(input);
        child.wait_with_output().expect("wait")
    };
    (run("kcctl"), run("kubectl"))
}
