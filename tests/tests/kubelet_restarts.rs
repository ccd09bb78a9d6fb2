//! Restart policies through the kubelet: a crashing container under
//! Always goes into CrashLoopBackOff (first restart immediate, the next
//! after >= 10 s), OnFailure/Never end in Succeeded/Failed with the right
//! reasons, a memory hog is reported OOMKilled, and a failing liveness
//! probe gets the container killed and restarted.

mod kubelet_common;

use std::time::{Duration, Instant};

use kubelet_common::{Kubelet, container};

#[test]
fn crash_loop_back_off_waits_between_restarts() {
    let k = Kubelet::start();
    k.apply(
        "crash.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: crash}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sh, -c, 'exit 3']}\n",
    );
    let s = k.wait("crash", 30, "restarted once", |s| {
        container(s, "c")["restartCount"] == 1
    });
    let first = Instant::now();
    assert_eq!(s["phase"], "Running", "{s}");
    let s = k.wait("crash", 30, "in CrashLoopBackOff", |s| {
        container(s, "c")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let c = container(&s, "c");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3, "{s}");
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error", "{s}");
    assert_eq!(c["ready"], false);
    k.wait("crash", 40, "restarted twice", |s| {
        container(s, "c")["restartCount"] == 2
    });
    let gap = first.elapsed();
    assert!(
        gap >= Duration::from_secs(8),
        "second restart after only {gap:?}: no back-off"
    );
    assert!(k.events().iter().any(|e| e["reason"] == "BackOff"));
}

#[test]
fn restart_policies_decide_the_phase() {
    let k = Kubelet::start();
    let pod = |name: &str, policy: &str, code: i32| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  containers:\n  - {{name: c, image: busybox, command: [sh, -c, 'sleep 1; exit {code}']}}\n"
        )
    };
    k.apply("ok.yaml", &pod("ok", "OnFailure", 0));
    k.apply("never.yaml", &pod("never", "Never", 1));
    k.apply("retry.yaml", &pod("retry", "OnFailure", 1));
    let s = k.wait("ok", 40, "Succeeded", |s| s["phase"] == "Succeeded");
    assert_eq!(
        container(&s, "c")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(container(&s, "c")["restartCount"], 0);
    let s = k.wait("never", 40, "Failed", |s| s["phase"] == "Failed");
    let t = &container(&s, "c")["state"]["terminated"];
    assert_eq!(t["reason"], "Error", "{s}");
    assert_eq!(t["exitCode"], 1, "{s}");
    assert_eq!(container(&s, "c")["restartCount"], 0);
    let s = k.wait("retry", 40, "restarted", |s| {
        container(s, "c")["restartCount"].as_i64() >= Some(1)
    });
    assert_eq!(s["phase"], "Running", "{s}");
}

#[test]
fn oom_killed_is_reported() {
    let k = Kubelet::start();
    k.apply(
        "hog.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [dd, if=/dev/zero, of=/dev/null, bs=200M, count=1]
    resources: {limits: {memory: 32Mi}}
"#,
    );
    let s = k.wait("hog", 60, "Failed", |s| s["phase"] == "Failed");
    let t = &container(&s, "c")["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{s}");
    assert_eq!(t["exitCode"], 137, "{s}");
}

#[test]
fn liveness_failure_restarts_the_container() {
    let k = Kubelet::start();
    k.apply(
        "live.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
"#,
    );
    let s = k.wait("live", 60, "restarted by liveness", |s| {
        container(s, "c")["restartCount"] == 1
    });
    let c = container(&s, "c");
    assert!(c["lastState"]["terminated"].is_object(), "{s}");
    let ev = k.events();
    assert!(
        ev.iter().any(|e| e["reason"] == "Unhealthy"
            && e["message"].as_str().unwrap_or("").contains("Liveness")),
        "no Unhealthy event"
    );
    assert!(
        ev.iter().any(|e| e["reason"] == "Killing"
            && e["message"].as_str().unwrap_or("").contains("liveness")),
        "no Killing event"
    );
}
