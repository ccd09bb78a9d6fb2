//! kcctl's streaming verbs against a real cluster: a control plane and a
//! worker (network namespaces, `kcnode init` / `join`) running a real
//! container (busybox; its /etc/hostname is checked in metrics_top.rs), where `kcctl exec` (with and without stdin, exit codes),
//! `kcctl logs [-f]` and `kcctl port-forward` + curl work, and print what
//! the real kubectl prints for the same commands.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kc_tests::cluster::{Host, Lan, both_clients, client, eventually, init_and_join};
use kc_tests::container::{stderr, stdout};

/// Runs both clients with `args` and `input` on stdin; asserts the same
/// stdout, stderr and exit code; returns kcctl's output.
fn same_as_kubectl(host: &Host, args: &[&str], input: &[u8]) -> Output {
    let (ours, theirs) = both_clients(host, args, input);
    let what = args.join(" ");
    assert_eq!(
        stdout(&ours),
        stdout(&theirs),
        "`{what}` stdout differs (kcctl, then kubectl)"
    );
    assert_eq!(
        stderr(&ours).trim(),
        stderr(&theirs).trim(),
        "`{what}` stderr differs (kcctl, then kubectl)"
    );
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "`{what}` exit code"
    );
    ours
}

/// A background client, killed (by its PID) on drop.
struct Background {
    child: Child,
    out: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Background {
    fn start(host: &Host, program: &str, args: &[&str]) -> Background {
        let mut child = client(host, program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        Background {
            child,
            out,
            seen: String::new(),
        }
    }

    /// Waits until the output contains `needle`; returns all output so far.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{needle:?}"), timeout, |seen| {
            seen.contains(needle)
        })
    }

    /// Waits until `done(output so far)`; returns the output.
    fn wait_until(&mut self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(text) => self.seen.push_str(&text),
                Err(_) => panic!("no {what} within {timeout:?}; output:\n{}", self.seen),
            }
        }
        self.seen.clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(host: &Host, url: &str) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.ns.name))
        .args(["curl", "-s", "--max-time", "10", url])
        .output()
        .expect("run curl")
}

/// Sends `request` to 127.0.0.1:`port` in `host`'s namespace and prints
/// everything received until the peer closes (fails after 10 s without EOF).
fn until_eof(host: &Host, port: u16, request: &[u8]) -> Output {
    let python = kc_tests::require_program("python3", "python3");
    let script = "import socket, sys\n\
        s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n\
        s.sendall(sys.stdin.buffer.read())\n\
        while chunk := s.recv(65536):\n    sys.stdout.buffer.write(chunk)\n";
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.ns.name))
        .arg(python)
        .args(["-c", script, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child.stdin.take().unwrap().write_all(request).unwrap();
    child.wait_with_output().expect("wait for python3")
}

#[test]
fn exec_logs_and_port_forward_reach_a_real_container_like_kubectl() {
    kc_tests::require_root();
    kc_tests::require_program("curl", "curl");
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    let (_init, _worker) = init_and_join(&cp, &w);
    let kc = cp.kubeconfig();

    // A web server and a ticking log line.
    let script = "echo hello-from-pod > /tmp/index.html; httpd -p 8080 -h /tmp; echo started; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done";
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"nodeName": w.name, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox",
                                 "command": ["sh", "-c", script]}]}
    });
    let mut apply = client(&cp, "kcctl", &["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcctl apply");
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.to_string().as_bytes())
        .unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "apply: {}", stderr(&out));
    eventually(Duration::from_secs(60), "pod Running", || {
        let out = cp.kubectl(
            &kc,
            &["get", "pod", "web", "-o", "jsonpath={.status.phase}"],
        );
        (stdout(&out) == "Running").then_some(())
    });

    // exec: output, stdin, exit codes, errors — as kubectl.
    let out = same_as_kubectl(&cp, &["exec", "web", "--", "hostname"], b"");
    assert_eq!(stdout(&out), "web\n", "{}", stderr(&out));
    let out = same_as_kubectl(
        &cp,
        &["exec", "-i", "web", "--", "tr", "a-z", "A-Z"],
        b"piped in\n",
    );
    assert_eq!(stdout(&out), "PIPED IN\n");
    let out = same_as_kubectl(
        &cp,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(3));
    same_as_kubectl(&cp, &["exec", "web", "--", "/no/such/binary"], b"");
    same_as_kubectl(&cp, &["exec", "nope", "--", "true"], b"");

    // logs: the whole log as kubectl prints it, then -f follows new lines.
    eventually(Duration::from_secs(10), "a few ticks", || {
        let out = client(&cp, "kcctl", &["logs", "web"]).output().unwrap();
        stdout(&out).contains("tick 2\n").then_some(())
    });
    let ours = client(&cp, "kcctl", &["logs", "web", "--tail", "2"])
        .output()
        .unwrap();
    let theirs = client(&cp, "kubectl", &["logs", "web", "--tail", "2"])
        .output()
        .unwrap();
    assert!(ours.status.success(), "{}", stderr(&ours));
    let (a, b) = (stdout(&ours), stdout(&theirs));
    assert_eq!(a.lines().count(), 2, "{a}");
    // A tick may land between the two commands: same lines, or one later.
    assert!(
        a == b || a.lines().nth(1) == b.lines().next(),
        "logs --tail 2:\n{a}---\n{b}"
    );
    same_as_kubectl(&cp, &["logs", "nope"], b"");
    let full = stdout(&client(&cp, "kcctl", &["logs", "web"]).output().unwrap());
    assert!(full.starts_with("started\ntick 1\n"), "{full}");
    let last: u32 = full
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("tick "))
        .and_then(|n| n.parse().ok())
        .expect("a tick line");
    let mut follow = Background::start(&cp, "kcctl", &["logs", "-f", "web"]);
    let seen = follow.wait_for(&format!("tick {}\n", last + 2), Duration::from_secs(15));
    assert!(seen.starts_with("started\ntick 1\n"), "{seen}");
    drop(follow);

    // port-forward: both clients print the same banner; curl goes through
    // each, many times.
    let mut ours = Background::start(&cp, "kcctl", &["port-forward", "pod/web", "18080:8080"]);
    let mut theirs = Background::start(&cp, "kubectl", &["port-forward", "pod/web", "18081:8080"]);
    let banner = ours.wait_for("[::1]:18080", Duration::from_secs(15));
    let theirs_banner = theirs.wait_for("[::1]:18081", Duration::from_secs(15));
    assert_eq!(
        banner,
        theirs_banner.replace("18081", "18080"),
        "port-forward banner"
    );
    for port in [18080, 18081] {
        for i in 0..20 {
            let out = curl(&cp, &format!("http://127.0.0.1:{port}/index.html"));
            assert_eq!(
                stdout(&out),
                "hello-from-pod\n",
                "request {i} through port {port}"
            );
        }
    }
    // The pod closing the connection reaches the client (HTTP/1.0: the
    // server closes after the answer, the client reads until EOF).
    for port in [18080, 18081] {
        let out = until_eof(&cp, port, b"GET /index.html HTTP/1.0\r\n\r\n");
        assert!(
            out.status.success() && stdout(&out).ends_with("hello-from-pod\n"),
            "port {port}: no EOF after the answer: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // One line per connection, naming the local port (as kubectl does).
    ours.wait_until("21 handled connections", Duration::from_secs(5), |seen| {
        seen.matches("Handling connection for 18080\n").count() == 21
    });
    // A port nothing listens on: the connection fails, the forward lives on.
    let mut closed = Background::start(&cp, "kcctl", &["port-forward", "web", "18082:9999"]);
    closed.wait_for("Forwarding from", Duration::from_secs(15));
    assert_ne!(
        stdout(&curl(&cp, "http://127.0.0.1:18082/")),
        "hello-from-pod\n"
    );
    let out = curl(&cp, "http://127.0.0.1:18080/index.html");
    assert_eq!(
        stdout(&out),
        "hello-from-pod\n",
        "the working forward still works"
    );
}
