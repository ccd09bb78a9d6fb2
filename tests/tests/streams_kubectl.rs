//! The API server's streaming subresources driven by the real kubectl 1.32:
//! `kubectl logs` (plain, `--tail`, `-f`), `kubectl exec` (output, exit
//! code, `-i` stdin) and `kubectl port-forward` (SPDY/3.1 inside WebSocket,
//! two connections on one session).
//!
//! The control plane runs in this process (`apiserver::single`) and its
//! [`NodeTunnel`] is an in-memory pipe to a scripted node that speaks the
//! tunnel protocol (`kc_protocol::streams`): this proves the kubectl-facing
//! protocols and the tunnel framing end to end without a running node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kc_member::apiserver::status::ApiError;
use kc_member::apiserver::streams::{
    self, NodeTunnel, TunnelRecv, TunnelSend, wire::read_frame, wire::write_frame,
};
use kc_member::single::{self, SingleConfig};
use kc_protocol::frame::Hello;
use kc_protocol::streams::{ExecFrame, StreamAccept, StreamRequest};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KUBECTL: &str = "/usr/bin/kubectl";
const LOG: &str = "hello from the log\nsecond line\n";

/// A node that answers stream requests from a script; port-forwards go to
/// `web` (whatever port is asked).
struct ScriptedNode {
    web: SocketAddr,
}

impl NodeTunnel for ScriptedNode {
    fn open<'a>(
        &'a self,
        node: &'a str,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<(TunnelSend, TunnelRecv), ApiError>> + Send + 'a>,
    > {
        Box::pin(async move {
            if node != "node1" {
                return Err(streams::node_not_connected(node));
            }
            let (server_end, node_end) = tokio::io::duplex(64 * 1024);
            tokio::spawn(scripted_node(node_end, self.web));
            let (r, w) = tokio::io::split(server_end);
            Ok((Box::pin(w) as TunnelSend, Box::pin(r) as TunnelRecv))
        })
    }
}

async fn scripted_node(stream: tokio::io::DuplexStream, web: SocketAddr) {
    let (mut recv, mut send) = tokio::io::split(stream);
    let hello: Hello = read_frame(&mut recv).await.unwrap().unwrap();
    hello.check().unwrap();
    let req: StreamRequest = read_frame(&mut recv).await.unwrap().unwrap();
    match req {
        StreamRequest::Logs {
            container,
            tail_lines,
            follow,
            ..
        } => {
            if container != "app" {
                let failed = StreamAccept::Failed {
                    code: 404,
                    message: format!("container {container} not found"),
                };
                write_frame(&mut send, &failed).await.unwrap();
                return;
            }
            write_frame(&mut send, &StreamAccept::Ok).await.unwrap();
            let text = match tail_lines {
                Some(1) => "second line\n",
                _ => LOG,
            };
            send.write_all(text.as_bytes()).await.unwrap();
            if follow {
                for i in 0..3 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    send.write_all(format!("followed {i}\n").as_bytes())
                        .await
                        .unwrap();
                }
            }
            send.shutdown().await.unwrap();
        }
        StreamRequest::Exec { command, stdin, .. } => {
            write_frame(&mut send, &StreamAccept::Ok).await.unwrap();
            // A real process takes a moment to start. kubectl (client-go)
            // starts reading the WebSocket before it has registered its
            // streams, and discards output that comes in between ("Unknown
            // stream id 1, discarding message"): answering in the same
            // instant, as a script can, loses that race now and then.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let said = format!("argv: {}\n", command.join(" "));
            write_frame(&mut send, &ExecFrame::Stdout(said.into_bytes()))
                .await
                .unwrap();
            write_frame(&mut send, &ExecFrame::Stderr(b"to stderr\n".to_vec()))
                .await
                .unwrap();
            if stdin {
                // Echo stdin, upper-cased, until the client closes it.
                while let Ok(Some(f)) = read_frame::<_, ExecFrame>(&mut recv).await {
                    match f {
                        ExecFrame::Stdin(d) => {
                            let up = d.to_ascii_uppercase();
                            write_frame(&mut send, &ExecFrame::Stdout(up))
                                .await
                                .unwrap();
                        }
                        ExecFrame::StdinClosed => break,
                        _ => {}
                    }
                }
            }
            let code = if command.first().is_some_and(|c| c == "fail") {
                3
            } else {
                0
            };
            write_frame(&mut send, &ExecFrame::Exit { code })
                .await
                .unwrap();
            send.shutdown().await.unwrap();
        }
        StreamRequest::PortForward { port, .. } => {
            assert_eq!(port, 5000);
            let tcp = TcpStream::connect(web).await.unwrap();
            write_frame(&mut send, &StreamAccept::Ok).await.unwrap();
            let (mut tr, mut tw) = tcp.into_split();
            let up = async {
                let _ = tokio::io::copy(&mut recv, &mut tw).await;
                let _ = tw.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut tr, &mut send).await;
                let _ = send.shutdown().await;
            };
            tokio::join!(up, down);
        }
    }
}

/// A tiny web server answering every connection `Hello, World!`.
async fn hello_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let _ = c
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!")
                    .await;
                let _ = c.shutdown().await;
            });
        }
    });
    addr
}

struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(KUBECTL);
        c.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        c.kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut c = self.cmd(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run kubectl");
        if let Some(text) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(text.as_bytes()).await.unwrap();
            drop(w);
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60 s"))
            .unwrap()
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

async fn start(dir: &Path) -> (single::Single, Kubectl) {
    assert!(
        Path::new(KUBECTL).exists(),
        "{KUBECTL} is missing: the stream tests drive the real kubectl (v1.32)"
    );
    let kubeconfig = dir.join("admin.kubeconfig");
    let single = single::start(&SingleConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        kubeconfig_out: kubeconfig.clone(),
        cluster_name: "streams-test".into(),
        advertise: Vec::new(),
    })
    .await
    .expect("start the control plane");
    let web = hello_server().await;
    let tunnel: Arc<dyn NodeTunnel> = Arc::new(ScriptedNode { web });
    assert!(single.api.state.tunnel.set(tunnel).is_ok());
    let k = Kubectl { kubeconfig };
    for (name, node) in [("testpod", "node1"), ("elsewhere", "node2")] {
        let manifest = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},
               "spec":{{"nodeName":"{node}","containers":[{{"name":"app","image":"busybox"}}]}}}}"#
        );
        let mut c = k.cmd(&["apply", "-f", "-"]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut w = child.stdin.take().unwrap();
        w.write_all(manifest.as_bytes()).await.unwrap();
        drop(w);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No kubelet here: mark the pod running (port-forward checks it).
        let status = r#"{"status":{"phase":"Running"}}"#;
        let patch = [
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ];
        k.ok(&patch, None).await;
    }
    (single, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_logs_exec_and_port_forward_through_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_single, k) = start(dir.path()).await;

    // logs: whole, tail, follow, unknown container, node not connected.
    assert_eq!(k.ok(&["logs", "testpod"], None).await, LOG);
    assert_eq!(
        k.ok(&["logs", "testpod", "--tail=1"], None).await,
        "second line\n"
    );
    assert_eq!(
        k.ok(&["logs", "-f", "testpod"], None).await,
        format!("{LOG}followed 0\nfollowed 1\nfollowed 2\n")
    );
    let out = k.run(&["logs", "testpod", "-c", "nope"], None).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container nope is not valid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = k.run(&["logs", "elsewhere"], None).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("node agent for node \"node2\" is not connected"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // exec: output of both streams, the exit code, stdin.
    let out = k.run(&["exec", "testpod", "--", "echo", "hi"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "argv: echo hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to stderr\n");
    let out = k.run(&["exec", "testpod", "--", "fail"], None).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echoed = k
        .ok(&["exec", "-i", "testpod", "--", "cat"], Some("abc\ndef\n"))
        .await;
    assert_eq!(echoed, "argv: cat\nABC\nDEF\n");

    // port-forward: a random local port, two connections in one session.
    let mut pf = k.cmd(&["port-forward", "testpod", ":5000"]);
    pf.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = pf.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("kubectl port-forward printed nothing within 30 s")
        .unwrap()
        .unwrap_or_default();
    if line.is_empty() {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
        panic!("kubectl port-forward failed: {err}");
    }
    // "Forwarding from 127.0.0.1:NNNNN -> 5000"
    let local: SocketAddr = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {line:?}"));
    for _ in 0..2 {
        let mut c = TcpStream::connect(local).await.unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut body = String::new();
        tokio::time::timeout(Duration::from_secs(20), c.read_to_string(&mut body))
            .await
            .expect("no answer through port-forward within 20 s")
            .unwrap();
        assert!(body.ends_with("Hello, World!"), "got {body:?}");
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
