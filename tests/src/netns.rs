//! Network namespaces for tests: create `kc-test-…` namespaces (removed on
//! drop, also when the test fails), wire them with veths and a bridge, and
//! run Rust code (TCP servers, clients) inside them on a thread that
//! `setns`es into the namespace. Nothing here touches the host's root
//! network namespace.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

/// Runs a command and fails the test with its output if it fails.
pub fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace created by the test, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `kc-test-<tag>-<pid>-<role>` with loopback up.
    pub fn new(tag: &str, role: &str) -> Self {
        let name = format!("kc-test-{tag}{}-{role}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -n <ns> …`
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        sh("ip", &full);
    }

    /// Runs a program inside the namespace (nsenter, not `ip netns exec`,
    /// which remounts /sys).
    pub fn exec(&self, program: &str, args: &[&str]) -> std::process::Output {
        let net = format!("--net={}", self.path());
        Command::new("nsenter")
            .arg(net)
            .arg(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("nsenter {program}: {e}"))
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("thread in netns panicked")
    }

    /// Serves `reply` to every TCP connection on `port` (a thread that lives
    /// as long as the test process).
    pub fn serve_name(&self, port: u16, reply: &str) {
        let path = self.path();
        let reply = reply.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            enter(&path);
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind in netns");
            tx.send(()).unwrap();
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server did not start");
    }

    /// One TCP connection from inside this namespace: what the server said.
    pub fn fetch(&self, addr: &str) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().expect("socket address");
        self.run(move || {
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            conn.set_read_timeout(Some(Duration::from_secs(3))).ok();
            let mut text = String::new();
            conn.read_to_string(&mut text)
                .map_err(|e| format!("read {addr}: {e}"))?;
            Ok(text)
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub(crate) fn enter(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns on a valid namespace fd; affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Connects `inner` to `outer` with a veth pair: `inner` gets `inner_if`
/// with `inner_addr` (CIDR) and a default route via `gateway`; the outer end
/// `outer_if` is brought up (and enslaved to `bridge` if given).
pub fn veth(
    outer: &Netns,
    outer_if: &str,
    inner: &Netns,
    inner_if: &str,
    inner_addr: &str,
    gateway: &str,
    bridge: Option<&str>,
) {
    outer.ip(&[
        "link",
        "add",
        outer_if,
        "type",
        "veth",
        "peer",
        "name",
        inner_if,
        "netns",
        &inner.name,
    ]);
    if let Some(br) = bridge {
        outer.ip(&["link", "set", outer_if, "master", br]);
    }
    outer.ip(&["link", "set", outer_if, "up"]);
    inner.ip(&["addr", "add", inner_addr, "dev", inner_if]);
    inner.ip(&["link", "set", inner_if, "up"]);
    inner.ip(&["route", "add", "default", "via", gateway]);
}
