//! A pod bound to a worker (spec.nodeName; the scheduler is another
//! branch) runs there through the cluster: the worker's session watches it,
//! its kubelet starts it, and its status (Running, hostIP, container ready)
//! comes back to the API; deleting it stops it gracefully and the node
//! removes the object. A kill -9 and restart of the worker's kcnode
//! leaves the pod's container running (adopted); `kcnode leave` drains
//! the node and deletes it. (podIP comes with pod networking, the network
//! issue: sandboxes have no interface address yet.)

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use kc_tests::cluster::{Lan, eventually, init_and_join};
use kc_tests::container::{stderr, stdout};

/// `kubectl apply -f -` of `manifest` inside `host`'s namespace.
fn apply(host: &kc_tests::cluster::Host, manifest: &str) {
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.ns.name))
        .args(["kubectl", "--kubeconfig"])
        .arg(host.kubeconfig())
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
    assert!(out.status.success(), "apply: {}", stderr(&out));
}

#[test]
fn a_pod_on_a_worker_runs_survives_a_restart_and_goes_on_delete_and_leave() {
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    let (_init, mut worker) = init_and_join(&cp, &w);
    let kc = cp.kubeconfig();

    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n",
        w.name
    );
    apply(&cp, &manifest);

    let status = eventually(Duration::from_secs(60), "pod Running", || {
        let out = cp.kubectl(&kc, &["get", "pod", "sleeper", "-o", "json"]);
        let pod: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let st = pod["status"].clone();
        (st["phase"] == "Running" && st["containerStatuses"][0]["ready"] == true).then_some(st)
    });
    assert_eq!(status["hostIP"], w.ip.as_str(), "{status}");
    // The pod has an address from the worker's pod CIDR (10.244.0.0/16).
    let pod_ip = status["podIP"].as_str().unwrap_or_default();
    assert!(pod_ip.starts_with("10.244."), "no pod IP: {status}");
    let wide = stdout(&cp.kubectl(&kc, &["get", "pod", "sleeper", "-o", "wide"]));
    assert!(wide.contains(&w.name) && wide.contains("1/1"), "{wide}");

    // Restarting the worker's kcnode (kill -9) does not restart the pod:
    // the new process adopts the running container, status continues.
    let started = status["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    let container = status["containerStatuses"][0]["containerID"].clone();
    worker.kill();
    let master = format!("{}:7000", cp.ip);
    let _restarted = w.spawn(
        "rejoin",
        &["join", "--master", &master, "--heartbeat", "1s"],
    );
    std::thread::sleep(Duration::from_secs(4));
    let after = eventually(Duration::from_secs(30), "pod still Running", || {
        let out = cp.kubectl(&kc, &["get", "pod", "sleeper", "-o", "json"]);
        let pod: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (pod["status"]["phase"] == "Running").then_some(pod["status"].clone())
    });
    let cs = &after["containerStatuses"][0];
    assert_eq!(
        cs["containerID"], container,
        "same container after the restart: {after}"
    );
    assert_eq!(cs["state"]["running"]["startedAt"], started, "{after}");
    assert_eq!(cs["restartCount"], 0, "{after}");

    let out = cp.kubectl(&kc, &["delete", "pod", "sleeper", "--wait=false"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    eventually(Duration::from_secs(30), "pod removed by its node", || {
        let out = cp.kubectl(&kc, &["get", "pod", "sleeper"]);
        (!out.status.success() && stderr(&out).contains("NotFound")).then_some(())
    });

    // `kcnode leave` drains the node (its pods are stopped and removed),
    // then deletes the Node.
    apply(&cp, &manifest.replace("name: sleeper", "name: sleeper2"));
    eventually(Duration::from_secs(60), "second pod Running", || {
        let out = cp.kubectl(
            &kc,
            &["get", "pod", "sleeper2", "-o", "jsonpath={.status.phase}"],
        );
        (stdout(&out) == "Running").then_some(())
    });
    let out = w.run(&["leave"]);
    assert!(out.status.success(), "leave: {}", stderr(&out));
    let pods = cp.kubectl(&kc, &["get", "pod", "sleeper2"]);
    assert!(
        stderr(&pods).contains("NotFound"),
        "drained: {}",
        stdout(&pods)
    );
    let node = cp.kubectl(&kc, &["get", "node", &w.name]);
    assert!(
        stderr(&node).contains("NotFound"),
        "node removed: {}",
        stdout(&node)
    );
    let refused = cp.run(&["leave"]);
    assert!(
        !refused.status.success(),
        "leave on the control plane is refused"
    );
}
