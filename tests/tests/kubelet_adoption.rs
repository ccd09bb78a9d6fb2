//! Restarting kcnode does not hurt workloads: after the kubelet process is
//! killed with SIGKILL and started again, it adopts the running container
//! (same container, same PID, restartCount unchanged) and keeps reporting.

mod kubelet_common;

use kubelet_common::{Kubelet, condition, container};

#[test]
fn restarting_kcnode_keeps_pods_running() {
    let mut k = Kubelet::start();
    k.apply(
        "steady.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: steady}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sleep, '600']}\n",
    );
    let s = k.wait("steady", 60, "Ready", |s| condition(s, "Ready") == "True");
    let id = container(&s, "c")["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("kc://")
        .to_string();
    let pid = k.node.inspect(&id)["pid"].as_i64().expect("container pid");
    let started = container(&s, "c")["state"]["running"]["startedAt"].clone();

    k.kill();
    std::fs::remove_file(
        k.node
            .data
            .path()
            .join("kubelet/status/default_steady.json"),
    )
    .unwrap();
    k.spawn();
    let s = k.wait("steady", 30, "reported again", |s| {
        condition(s, "Ready") == "True"
    });
    // Give the new kubelet a few passes to do anything it wrongly would.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let s2 = k.status("steady").unwrap_or(s);
    let c = container(&s2, "c");
    assert_eq!(c["restartCount"], 0, "{s2}");
    assert_eq!(
        c["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("kc://"),
        id,
        "{s2}"
    );
    assert_eq!(c["state"]["running"]["startedAt"], started, "{s2}");
    assert_eq!(k.node.inspect(&id)["pid"].as_i64(), Some(pid));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container process gone"
    );
    assert_eq!(
        k.node.ok(&["ps", "-q"]).split_whitespace().count(),
        1,
        "a second container was started"
    );
}
