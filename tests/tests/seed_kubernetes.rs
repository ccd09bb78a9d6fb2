//! The seed guide's Kubernetes chapter, verbatim, as an end-to-end test:
//! a cluster of one control plane and two workers (hosts are network
//! namespaces on a bridge), `basicserver:0.42` built and loaded into the
//! cluster (`kcnode image push`), then from this machine's side with the
//! real kubectl: `kubectl run --image basicserver:0.42 testpod`, `kubectl
//! get pod` shows it Running, `kubectl -n kube-system get pod` lists the
//! control-plane parts and a proxy per node, `kubectl port-forward testpod
//! 5000:5000` and `curl http://localhost:5000` prints `Hello, World!`.
//!
//! "This machine's side" is the test's own network namespace: its
//! kubeconfig reaches the API server through a userland forward into the
//! control plane's namespace (as testnet/up.sh does), so no interface or
//! route is added to the host. Port 5000 is the seed's; if something on
//! this machine already listens there, the test says so and uses a free
//! port instead.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kc_tests::cluster::{Forward, Host, Lan, eventually};
use kc_tests::container::{stderr, stdout};
use kc_tests::require_program;

/// The seed's port for the pod, or a free one if 5000 is taken here.
fn local_port() -> u16 {
    match std::net::TcpListener::bind(("127.0.0.1", 5000)) {
        Ok(_) => 5000,
        Err(e) => {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
            let port = l.local_addr().expect("address").port();
            eprintln!("port 5000 is taken on this machine ({e}): port-forward uses {port}");
            port
        }
    }
}

/// kubectl run in the test's own namespace with `kubeconfig`.
fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl")
}

/// A background `kubectl port-forward`, killed by its PID on drop.
struct PortForward(Child);

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kcnode join` on `w` with the control plane's join command.
fn join(w: &Host, join_line: &str) -> kc_tests::cluster::Proc {
    let mut args: Vec<&str> = join_line.split_whitespace().skip(1).collect();
    args.extend(["--heartbeat", "1s"]);
    w.spawn("join", &args)
}

#[test]
fn the_seed_kubernetes_chapter_runs_verbatim() {
    require_program("kubectl", "kubectl");
    require_program("curl", "curl");
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w1 = lan.host("w1");
    let w2 = lan.host("w2");

    // The image of the seed's Containers chapter, built on the control plane.
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../testnet/images/hello");
    for args in [
        vec!["image", "base", "busybox"],
        vec!["build", "-t", "basicserver:0.42", hello],
    ] {
        let out = cp.run(&args);
        assert!(out.status.success(), "kcnode {args:?}: {}", stderr(&out));
    }

    let mut init = cp.spawn("init", &["init", "--heartbeat", "1s"]);
    let line = init.wait_line("kcnode join", Duration::from_secs(30));
    let _w1 = join(&w1, &line);
    let _w2 = join(&w2, &line);
    let kc = cp.kubeconfig();
    eventually(Duration::from_secs(30), "3 nodes Ready", || {
        let out = cp.kubectl(&kc, &["get", "nodes", "--no-headers"]);
        (stdout(&out).matches(" Ready ").count() == 3).then_some(())
    });

    // Image loaded into the cluster (its registry).
    cp.push_image("basicserver:0.42");

    // From this machine's side: a kubeconfig through a forward to the API.
    let api = Forward::into_host(&cp, 0, "127.0.0.1:6443");
    let text = std::fs::read_to_string(&kc).expect("admin kubeconfig");
    // The admin kubeconfig names the control plane's advertised address.
    let server = format!("server: https://{}:6443", cp.ip);
    assert!(text.contains(&server), "{text}");
    let local = cp.data().join("local.kubeconfig");
    std::fs::write(
        &local,
        text.replace(&server, &format!("server: https://127.0.0.1:{}", api.port)),
    )
    .expect("write kubeconfig");

    let out = kubectl(&local, &["run", "--image", "basicserver:0.42", "testpod"]);
    assert!(out.status.success(), "kubectl run: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "pod/testpod created");

    let table = eventually(Duration::from_secs(90), "testpod Running", || {
        let out = kubectl(&local, &["get", "pod"]);
        let text = stdout(&out);
        text.lines()
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() >= 3 && cols[0] == "testpod" && cols[1] == "1/1" && cols[2] == "Running"
            })
            .then_some(text)
    });
    assert!(
        table.starts_with("NAME      READY   STATUS    RESTARTS   AGE"),
        "{table}"
    );

    let system = stdout(&kubectl(&local, &["-n", "kube-system", "get", "pod"]));
    for part in [
        "kc-store",
        "kube-apiserver",
        "kube-scheduler",
        "kube-controller-manager",
    ] {
        assert!(
            system.contains(&format!("{part}-{}", cp.name)),
            "{part}: {system}"
        );
    }
    for node in [&cp.name, &w1.name, &w2.name] {
        assert!(
            system.contains(&format!("kube-proxy-{node}")),
            "proxy on {node}: {system}"
        );
    }

    let port = local_port();
    let mapping = format!("{port}:5000");
    let mut pf = PortForward(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&local)
            .args(["port-forward", "testpod", &mapping])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward"),
    );
    // Kept open to the end: kubectl writes a line per connection.
    let mut output = BufReader::new(pf.0.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    output.read_line(&mut first).expect("port-forward output");
    assert!(
        first.starts_with(&format!("Forwarding from 127.0.0.1:{port} -> 5000")),
        "{first:?}"
    );
    let url = format!("http://localhost:{port}");
    let body = eventually(Duration::from_secs(20), "curl through port-forward", || {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", &url])
            .output()
            .expect("curl");
        (out.status.success() && !out.stdout.is_empty()).then(|| stdout(&out))
    });
    assert_eq!(body, "Hello, World!\n");
    drop(pf);
    drop(output);
}
