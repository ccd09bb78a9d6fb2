//! `kubectl logs` of the control plane's mirror pods shows that
//! component's own log, as on Kubernetes (it used to answer 404 "is not
//! running on this node"): the lines of this member's kcnode whose tracing
//! target is the component's (API server, controller manager, store), in
//! order, with `--tail` and `--timestamps`; `--previous` is refused as for
//! a container that never restarted.

use std::time::Duration;

use kc_tests::cluster::{TestCluster, eventually};
use kc_tests::container::{stderr, stdout};

#[test]
fn mirror_pod_logs_show_the_components_own_lines() {
    kc_tests::require_root();
    let cluster = TestCluster::start(1, &[]);
    let cp = &cluster.cp.name;
    let logs = |args: &[&str]| {
        let mut all = vec!["-n", "kube-system", "logs"];
        all.extend(args);
        cluster.kubectl(&all)
    };
    let api = format!("kube-apiserver-{cp}");
    let out = logs(&[&api]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("API server listening") && text.contains("node joined"),
        "{text}"
    );
    assert!(
        text.lines().all(|l| [
            "kc_apiserver",
            "kc_registry",
            "kc_nodeapi",
            "kc_member::single"
        ]
        .iter()
        .any(|t| l.contains(t))),
        "another component's lines in the API server's log:\n{text}"
    );
    let tail = stdout(&logs(&[&api, "--tail=1", "--timestamps"]));
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("20"), "no timestamp: {tail}");
    let cm = format!("kube-controller-manager-{cp}");
    eventually(
        Duration::from_secs(20),
        "the controller manager's lease line",
        || {
            stdout(&logs(&[&cm]))
                .contains("became leader")
                .then_some(())
        },
    );
    let store = stdout(&logs(&[&format!("kc-store-{cp}")]));
    assert!(store.contains("store member started"), "{store}");
    let prev = logs(&[&api, "--previous"]);
    assert!(
        !prev.status.success() && stderr(&prev).contains("previous terminated container"),
        "{}",
        stderr(&prev)
    );
}
