//! A pod bound to a worker (spec.nodeName; the scheduler is another
//! branch) runs there through the cluster: the worker's session watches it,
//! its kubelet starts it, and its status (Running, hostIP, container ready)
//! comes back to the API; deleting it stops it gracefully and the node
//! removes the object. A kill -9 and restart of the worker's kcnode
//! leaves the pod's container running (adopted); `kcnode leave` cordons
//! and drains the node (pods stopped within their grace period) and
//! deletes it. (podIP comes with pod networking, the network
//! issue: sandboxes have no interface address yet.)

use std::time::Duration;

use kc_tests::cluster::{Lan, eventually, init_and_join};
use kc_tests::container::{stderr, stdout};

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
    cp.apply(&manifest);

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
    let mut restarted = w.spawn(
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

    // A pod bound to the worker while its kcnode is down and deleted before
    // it returns never ran there: the returning node finds it already
    // terminating, has nothing to stop, and removes the object at once
    // (it used to stay Terminating for ever: found by the 3+3 soak).
    restarted.kill();
    cp.apply(&manifest.replace("sleeper", "unstarted"));
    let out = cp.kubectl(&kc, &["delete", "pod", "unstarted", "--wait=false"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    let deleting = cp.kubectl(
        &kc,
        &[
            "get",
            "pod",
            "unstarted",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
    );
    assert!(
        !stdout(&deleting).is_empty(),
        "a bound pod waits for its node: {}",
        stderr(&deleting)
    );
    let _back = w.spawn(
        "rejoin2",
        &["join", "--master", &master, "--heartbeat", "1s"],
    );
    eventually(
        Duration::from_secs(30),
        "unstarted pod removed by its node",
        || {
            let out = cp.kubectl(&kc, &["get", "pod", "unstarted"]);
            (!out.status.success() && stderr(&out).contains("NotFound")).then_some(())
        },
    );

    // `kcnode leave` cordons the node, drains it (its pods are stopped
    // gracefully: SIGTERM, their grace period, then removed), then deletes
    // the Node. The pod's TERM handler leaves a mark on the worker's disk.
    let out_dir = w.data().join("drain-out");
    std::fs::create_dir_all(&out_dir).expect("hostPath dir");
    let graceful = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper2\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 20\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sh\", \"-c\", \"trap 'sleep 2; echo graceful > /out/term; exit 0' TERM; while true; do sleep 0.2; done\"]\n    volumeMounts:\n    - {{name: out, mountPath: /out}}\n  volumes:\n  - name: out\n    hostPath: {{path: {}}}\n",
        w.name,
        out_dir.display()
    );
    cp.apply(&graceful);
    eventually(Duration::from_secs(60), "second pod Running", || {
        let out = cp.kubectl(
            &kc,
            &["get", "pod", "sleeper2", "-o", "jsonpath={.status.phase}"],
        );
        (stdout(&out) == "Running").then_some(())
    });
    let mut leave = w.spawn("leave", &["leave"]);
    eventually(Duration::from_secs(20), "node cordoned by leave", || {
        let out = cp.kubectl(
            &kc,
            &[
                "get",
                "node",
                &w.name,
                "-o",
                "jsonpath={.spec.unschedulable}",
            ],
        );
        (stdout(&out) == "true").then_some(())
    });
    let status = eventually(Duration::from_secs(60), "kcnode leave done", || {
        leave.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "leave: {}", leave.stderr());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("term")).unwrap_or_default(),
        "graceful\n",
        "the pod ran its TERM handler within its grace period"
    );
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
