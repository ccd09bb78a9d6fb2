//! The node's side of the stream tunnel against real containers: the
//! hidden `kcnode stream-stdio` serves one tunnel request on stdin/stdout
//! exactly as the node serves a QUIC stream the API server opened, so this
//! drives logs (whole, tail, timestamps, follow until exit), exec (stdin,
//! output, exit code, unknown container) and port-forward (a TCP
//! connection made inside the container's network namespace).

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kc_protocol::frame::{HEADER_LEN, Hello, body_len, decode, encode};
use kc_protocol::streams::{ExecFrame, StreamAccept, StreamRequest};
use kc_tests::container::{Node, busybox_rootfs};

/// One tunnel stream: a `kcnode stream-stdio` child.
struct Stream {
    child: Child,
}

impl Stream {
    fn open(node: &Node, container: &str, req: &StreamRequest) -> Stream {
        let mut child = node
            .cmd()
            .args(["stream-stdio", "--container", container])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kcnode stream-stdio");
        let w = child.stdin.as_mut().unwrap();
        w.write_all(&encode(&Hello::current()).unwrap()).unwrap();
        w.write_all(&encode(req).unwrap()).unwrap();
        w.flush().unwrap();
        Stream { child }
    }

    fn send(&mut self, frame: &ExecFrame) {
        let w = self.child.stdin.as_mut().unwrap();
        w.write_all(&encode(frame).unwrap()).unwrap();
        w.flush().unwrap();
    }

    /// The next frame, read byte-exact (raw stream bytes may follow it).
    fn frame<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let out = self.child.stdout.as_mut().unwrap();
        let mut header = [0u8; HEADER_LEN];
        if out.read_exact(&mut header).is_err() {
            return None;
        }
        let mut body = vec![0u8; body_len(header).unwrap()];
        out.read_exact(&mut body).unwrap();
        Some(decode(&body).unwrap())
    }

    /// The answer, then (for logs) the rest of the stream.
    fn accept_and_rest(mut self) -> (StreamAccept, String) {
        let accept: StreamAccept = self.frame().expect("an answer");
        (accept, self.rest())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logs(tail_lines: Option<i64>, timestamps: bool, follow: bool) -> StreamRequest {
    StreamRequest::Logs {
        namespace: "default".into(),
        pod: "web".into(),
        container: "app".into(),
        follow,
        previous: false,
        tail_lines,
        timestamps,
        since_seconds: None,
        limit_bytes: None,
    }
}

fn exec(command: &[&str], stdin: bool) -> StreamRequest {
    exec_tty(command, stdin, false)
}

fn exec_tty(command: &[&str], stdin: bool, tty: bool) -> StreamRequest {
    StreamRequest::Exec {
        namespace: "default".into(),
        pod: "web".into(),
        container: "app".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        stdin,
        tty,
    }
}

fn wait_for_log(node: &Node, name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.ok(&["logs", name]).contains(text) {
        assert!(Instant::now() < deadline, "{name} never logged {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_exec_and_port_forward_served_from_real_containers() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let serve = "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; \
                 while true; do echo 'Hello, World!' | nc -l -p 5000; done";
    node.ok(&[
        "run", "-d", "--name", "web", "--rootfs", &r, "sh", "-c", serve,
    ]);
    wait_for_log(&node, "web", "three");

    // logs: everything, the last line, timestamps.
    let (a, text) = Stream::open(&node, "web", &logs(None, false, false)).accept_and_rest();
    assert_eq!(a, StreamAccept::Ok);
    assert_eq!(text, "one\ntwo\nthree\n");
    let (_, text) = Stream::open(&node, "web", &logs(Some(1), false, false)).accept_and_rest();
    assert_eq!(text, "three\n");
    let (_, text) = Stream::open(&node, "web", &logs(Some(1), true, false)).accept_and_rest();
    let (ts, line) = text.split_once(' ').expect("a timestamp");
    assert!(ts.ends_with('Z') && ts.contains('T'), "{text:?}");
    assert_eq!(line, "three\n");

    // exec: stdin in, both streams and the exit code out.
    let mut s = Stream::open(
        &node,
        "web",
        &exec(
            &["sh", "-c", "read x; echo got $x; echo err >&2; exit 4"],
            true,
        ),
    );
    assert_eq!(s.frame::<StreamAccept>(), Some(StreamAccept::Ok));
    s.send(&ExecFrame::Stdin(b"abc\n".to_vec()));
    let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(f) = s.frame::<ExecFrame>() {
        match f {
            ExecFrame::Stdout(d) => out.extend(d),
            ExecFrame::Stderr(d) => err.extend(d),
            ExecFrame::Exit { code: c } => code = Some(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "got abc\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(code, Some(4));

    // exec with a terminal: the command sees a pty.
    let mut s = Stream::open(
        &node,
        "web",
        &exec_tty(&["sh", "-c", "tty; exit 2"], false, true),
    );
    assert_eq!(s.frame::<StreamAccept>(), Some(StreamAccept::Ok));
    let (mut out, mut code) = (Vec::new(), None);
    while let Some(f) = s.frame::<ExecFrame>() {
        match f {
            ExecFrame::Stdout(d) | ExecFrame::Stderr(d) => out.extend(d),
            ExecFrame::Exit { code: c } => code = Some(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        String::from_utf8_lossy(&out).contains("/dev/pts/"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(code, Some(2));

    // port-forward: connect to 127.0.0.1:5000 inside the container.
    let mut s = Stream::open(
        &node,
        "web",
        &StreamRequest::PortForward {
            namespace: "default".into(),
            pod: "web".into(),
            port: 5000,
        },
    );
    assert_eq!(s.frame::<StreamAccept>(), Some(StreamAccept::Ok));
    // busybox nc keeps the connection open: read until the greeting.
    let out = s.child.stdout.as_mut().unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("Hello, World!\n") {
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream ended after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), "Hello, World!\n");
    drop(s);

    // A port nobody listens on is a clear failure.
    let (a, _) = Stream::open(
        &node,
        "web",
        &StreamRequest::PortForward {
            namespace: "default".into(),
            pod: "web".into(),
            port: 5999,
        },
    )
    .accept_and_rest();
    match a {
        StreamAccept::Failed { code, message } => {
            assert_eq!(code, 500);
            assert!(message.contains("localhost:5999"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    // An unknown container is a 404.
    let (a, _) = Stream::open(&node, "nope", &logs(None, false, false)).accept_and_rest();
    assert!(matches!(a, StreamAccept::Failed { code: 404, .. }), "{a:?}");
}

#[test]
fn follow_streams_until_the_container_exits() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let script = "echo first; sleep 1; echo second; sleep 1; echo third";
    node.ok(&[
        "run", "-d", "--name", "ticker", "--rootfs", &r, "sh", "-c", script,
    ]);
    wait_for_log(&node, "ticker", "first");
    let started = Instant::now();
    let (a, text) = Stream::open(&node, "ticker", &logs(None, false, true)).accept_and_rest();
    assert_eq!(a, StreamAccept::Ok);
    assert_eq!(text, "first\nsecond\nthird\n");
    // It followed: it ended only once the container had written its last line.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

impl Stream {
    /// Closes our side, then reads the raw bytes until the node closes its.
    fn rest(mut self) -> String {
        self.child.stdin.take();
        let mut rest = Vec::new();
        self.child
            .stdout
            .as_mut()
            .unwrap()
            .read_to_end(&mut rest)
            .unwrap();
        String::from_utf8_lossy(&rest).into_owned()
    }
}
