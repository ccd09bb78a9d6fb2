//! The node session survives the control plane going away: when the
//! control-plane process is killed and started again (same data dir: same
//! CA, store and certificates), the worker's session reconnects with
//! back-off and renews its Lease again, without re-joining.

use std::time::Duration;

use kc_tests::cluster::{Lan, eventually, init_and_join};
use kc_tests::container::stdout;

#[test]
fn a_worker_session_reconnects_after_the_control_plane_restarts() {
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    let (mut init, worker) = init_and_join(&cp, &w);
    let kc = cp.kubeconfig();
    let renew = || {
        let out = cp.kubectl(
            &kc,
            &[
                "-n",
                "kube-node-lease",
                "get",
                "lease",
                &w.name,
                "-o",
                "jsonpath={.spec.renewTime}",
            ],
        );
        Some(stdout(&out)).filter(|r| !r.is_empty())
    };
    let before = eventually(Duration::from_secs(30), "worker lease", renew);

    init.kill();
    std::thread::sleep(Duration::from_secs(2));
    let mut again = cp.spawn("init-again", &["init", "--heartbeat", "1s"]);
    again.wait_line("kcnode join", Duration::from_secs(30));
    eventually(
        Duration::from_secs(20),
        "lease renewed after the restart",
        || renew().filter(|r| *r != before),
    );
    let log = worker.stderr();
    assert!(
        log.contains("session lost") || log.contains("cannot connect"),
        "the worker noticed the outage:\n{log}"
    );
    assert!(
        log.matches("connected to the control plane").count() >= 2,
        "the worker reconnected:\n{log}"
    );
}
