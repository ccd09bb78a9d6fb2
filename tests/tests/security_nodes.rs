//! The API server's doors end to end, on a real cluster: a worker's own
//! certificate (the one `kcnode join` got) may write its own Node and the
//! pods bound to it, but not another node's Node or pods, and cannot create
//! pods for another node (NodeRestriction); a request with no credentials
//! gets 401 with a Status body.

use std::path::PathBuf;
use std::process::{Command, Output};

use kc_member::pki::IssuedCert;
use kc_member::store::client::StoreClient;
use kc_member::store::transport::MemberTls;
use kc_tests::chaos::{ChaosCluster, ClusterSpec};
use kc_tests::container::{stderr, stdout};

/// Asks the store's QUIC door of the control plane (UDP 7000, ALPN
/// `kc-store/1`) for its status with host `host`'s own certificate, from
/// a thread inside the control plane's network namespace: Ok(leader id) or
/// the error the client got.
fn store_status_as(cluster: &ChaosCluster, host: usize) -> Result<u64, String> {
    let pki: PathBuf = cluster.hosts[host].data().join("pki");
    let tls = MemberTls {
        ca_pem: std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt"),
        cert: IssuedCert::load(&pki, "node").expect("node certificate"),
    };
    let ns = format!("/run/netns/{}", cluster.cp().ns.name);
    let addr = format!("{}:7000", cluster.cp().ip);
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&ns).expect("open netns");
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {ns}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = StoreClient::connect(&addr, &tls)
                .await
                .map_err(|e| e.to_string())?;
            let status = tokio::time::timeout(std::time::Duration::from_secs(10), client.status())
                .await
                .map_err(|_| "timed out".to_string())?;
            status.map(|s| s.leader).map_err(|e| e.to_string())
        })
    })
    .join()
    .expect("store client thread")
}

/// kubectl as node `host` (its certificate), in the control plane's namespace.
fn as_node(cluster: &ChaosCluster, host: usize, args: &[&str]) -> Output {
    let pki: PathBuf = cluster.hosts[host].data().join("pki");
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cluster.cp().ns.name))
        .arg("kubectl")
        .arg(format!("--server=https://{}:6443", cluster.cp().ip))
        .arg(format!(
            "--certificate-authority={}",
            pki.join("ca.crt").display()
        ))
        .arg(format!(
            "--client-certificate={}",
            pki.join("node.crt").display()
        ))
        .arg(format!("--client-key={}", pki.join("node.key").display()))
        .arg("--kubeconfig=/dev/null")
        .args(args)
        .output()
        .expect("run kubectl")
}

fn forbidden(out: &Output, what: &str) {
    assert!(
        !out.status.success() && stderr(out).contains("Forbidden"),
        "{what}: want Forbidden, got {} / {}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn a_node_certificate_writes_only_its_own_node_and_pods_and_anonymous_gets_401() {
    kc_tests::require_program("curl", "curl");
    let cluster = ChaosCluster::start(ClusterSpec {
        workers: 2,
        dedicated_control_plane: true,
        ..ClusterSpec::default()
    });
    let (a, b) = (cluster.hosts[1].name.clone(), cluster.hosts[2].name.clone());
    let pod = |name: &str, node: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"
        )
    };
    cluster.apply(&pod("on-a", &a));
    cluster.apply(&pod("on-b", &b));

    // The store itself is for control-plane members only: a worker's node
    // certificate (same CA) is refused at its door, the member's works.
    let member = store_status_as(&cluster, 0);
    assert!(member.is_ok(), "the member's own certificate: {member:?}");
    let worker = store_status_as(&cluster, 1);
    assert!(
        worker.is_err(),
        "a worker's certificate must not reach the store: {worker:?}"
    );

    // Reads are allowed; its own Node and pods are writable.
    let out = as_node(&cluster, 1, &["get", "pods", "-o", "name"]);
    assert!(stdout(&out).contains("pod/on-b"), "{}", stderr(&out));
    let out = as_node(&cluster, 1, &["label", "node", &a, "chaos=own"]);
    assert!(out.status.success(), "own node: {}", stderr(&out));
    let out = as_node(&cluster, 1, &["annotate", "pod", "on-a", "chaos=own"]);
    assert!(out.status.success(), "own pod: {}", stderr(&out));

    // Another node's objects are not.
    forbidden(
        &as_node(&cluster, 1, &["label", "node", &b, "chaos=other"]),
        "label another node",
    );
    forbidden(
        &as_node(&cluster, 1, &["annotate", "pod", "on-b", "chaos=other"]),
        "annotate another node's pod",
    );
    forbidden(
        &as_node(&cluster, 1, &["delete", "pod", "on-b", "--wait=false"]),
        "delete another node's pod",
    );
    forbidden(
        &as_node(
            &cluster,
            1,
            &[
                "patch",
                "pod",
                "on-b",
                "--subresource=status",
                "--type=merge",
                "-p",
                "{\"status\":{\"phase\":\"Failed\"}}",
            ],
        ),
        "set another node's pod status",
    );
    forbidden(
        &as_node(&cluster, 1, &["delete", "node", &b, "--wait=false"]),
        "delete another node",
    );
    let manifest = cluster.hosts[1].data().join("other-pod.yaml");
    std::fs::write(&manifest, pod("made-by-a", &b)).unwrap();
    forbidden(
        &as_node(
            &cluster,
            1,
            &["create", "-f", manifest.to_str().expect("utf-8 path")],
        ),
        "create a pod bound to another node",
    );
    // Nothing changed for b.
    let out = cluster.kubectl(&["get", "pod", "on-b", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pod JSON");
    assert!(v["metadata"]["deletionTimestamp"].is_null(), "{v}");
    assert!(v["metadata"]["annotations"]["chaos"].is_null(), "{v}");
    assert_ne!(v["status"]["phase"], "Failed", "{v}");
    let out = cluster.kubectl(&["get", "node", &b, "--show-labels"]);
    assert!(!stdout(&out).contains("chaos="), "{}", stdout(&out));

    // No credentials at all: 401 with a Status body.
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cluster.cp().ns.name))
        .args(["curl", "-sS", "-w", "\n%{http_code}", "--cacert"])
        .arg(cluster.cp().data().join("pki/ca.crt"))
        .arg(format!(
            "https://{}:6443/api/v1/namespaces/default/pods",
            cluster.cp().ip
        ))
        .output()
        .expect("curl");
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    assert_eq!(code, "401", "{text} {}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(body).expect("a Status body");
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["reason"], "Unauthorized", "{status}");
}
