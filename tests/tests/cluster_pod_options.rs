//! What a pod asks of its node, through a real worker (control plane and
//! worker in their own network namespaces, the real kubectl):
//! `imagePullPolicy` (Always pulls from the cluster registry, IfNotPresent
//! uses the node's own image without asking the registry, Never with the
//! image missing waits with ErrImageNeverPull), `kubectl logs` with
//! `--tail`, `-f` (follows until the container ends) and `--previous` (the
//! run before a restart), and the kubelet's Events for the notable steps
//! (Pulled, Created, Started).

use std::time::Duration;

use kc_tests::cluster::{Host, Lan, eventually};
use kc_tests::container::{stderr, stdout};

/// A one-container pod on `node`.
fn pod(name: &str, node: &str, image: &str, policy: &str, restart: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  \
         restartPolicy: {restart}\n  terminationGracePeriodSeconds: 0\n  containers:\n  \
         - name: main\n    image: {image}\n    imagePullPolicy: {policy}\n    \
         command: [\"sh\", \"-c\", {script:?}]\n"
    )
}

fn pod_json(cp: &Host, name: &str) -> Option<serde_json::Value> {
    let out = cp.kubectl(&cp.kubeconfig(), &["get", "pod", name, "-o", "json"]);
    serde_json::from_slice(&out.stdout).ok()
}

fn phase(cp: &Host, name: &str) -> String {
    pod_json(cp, name)
        .and_then(|p| p["status"]["phase"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn ok(host: &Host, args: &[&str]) -> String {
    let out = host.run(args);
    assert!(out.status.success(), "kcnode {args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn pull_policies_logs_and_events_through_a_worker() {
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    // The registry gets `pulled:1`; the worker alone has `localonly:1`.
    ok(&cp, &["image", "base", "busybox"]);
    ok(&cp, &["tag", "busybox", "pulled:1"]);
    ok(&w, &["image", "base", "busybox"]);
    ok(&w, &["tag", "busybox", "localonly:1"]);
    let mut init = cp.spawn("init", &["init", "--heartbeat", "1s"]);
    let line = init.wait_line("kcnode join", Duration::from_secs(30));
    let mut join: Vec<&str> = line.split_whitespace().skip(1).collect();
    join.extend(["--heartbeat", "1s"]);
    let _worker = w.spawn("join", &join);
    let kc = cp.kubeconfig();
    eventually(Duration::from_secs(30), "worker Ready", || {
        let out = cp.kubectl(&kc, &["get", "node", &w.name, "--no-headers"]);
        stdout(&out).contains(" Ready").then_some(())
    });
    cp.push_image("pulled:1");

    let node = w.name.as_str();
    let sleep = "sleep 3600";
    cp.apply(&pod("always", node, "pulled:1", "Always", "Always", sleep));
    cp.apply(&pod(
        "local",
        node,
        "localonly:1",
        "IfNotPresent",
        "Always",
        sleep,
    ));
    cp.apply(&pod("never", node, "absent:1", "Never", "Always", sleep));
    let talk = "echo one; echo two; sleep 2; echo three";
    cp.apply(&pod(
        "talker",
        node,
        "busybox",
        "IfNotPresent",
        "Never",
        talk,
    ));
    let crash = "echo run; sleep 1; exit 3";
    cp.apply(&pod(
        "crasher",
        node,
        "busybox",
        "IfNotPresent",
        "Always",
        crash,
    ));

    // Always: pulled from the registry into the worker's store.
    eventually(Duration::from_secs(60), "pod always Running", || {
        (phase(&cp, "always") == "Running").then_some(())
    });
    assert!(
        ok(&w, &["images"]).contains("pulled"),
        "pulled:1 on the worker"
    );
    // IfNotPresent: the worker's own image (the registry has none).
    eventually(Duration::from_secs(60), "pod local Running", || {
        (phase(&cp, "local") == "Running").then_some(())
    });
    // Never, image missing: waits with ErrImageNeverPull, no pull.
    let waiting = eventually(Duration::from_secs(60), "ErrImageNeverPull", || {
        let p = pod_json(&cp, "never")?;
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ErrImageNeverPull").then_some(w)
    });
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or("")
            .contains("absent:1"),
        "{waiting}"
    );
    assert!(!ok(&w, &["images"]).contains("absent"), "nothing pulled");

    // logs -f follows until the container ends; then --tail.
    eventually(Duration::from_secs(60), "talker started", || {
        let p = phase(&cp, "talker");
        (p == "Running" || p == "Succeeded").then_some(())
    });
    let follow = cp.kubectl(&kc, &["logs", "-f", "talker"]);
    assert!(follow.status.success(), "logs -f: {}", stderr(&follow));
    assert_eq!(stdout(&follow), "one\ntwo\nthree\n");
    let tail = cp.kubectl(&kc, &["logs", "talker", "--tail=1"]);
    assert_eq!(stdout(&tail), "three\n", "{}", stderr(&tail));

    // --previous: the run before the restart.
    eventually(Duration::from_secs(90), "crasher restarted", || {
        let p = pod_json(&cp, "crasher")?;
        (p["status"]["containerStatuses"][0]["restartCount"].as_i64()? >= 1).then_some(())
    });
    let previous = cp.kubectl(&kc, &["logs", "crasher", "--previous"]);
    assert!(
        previous.status.success(),
        "logs --previous: {}",
        stderr(&previous)
    );
    assert_eq!(stdout(&previous), "run\n");

    // Events for the notable steps, recorded by the worker's kubelet.
    let events = cp.kubectl(&kc, &["get", "events", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).expect("events");
    let reasons = |pod: &str| -> Vec<String> {
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["involvedObject"]["name"] == pod)
            .filter_map(|e| e["reason"].as_str().map(str::to_string))
            .collect()
    };
    for step in ["Pulled", "Created", "Started"] {
        assert!(
            reasons("always").iter().any(|r| r == step),
            "{step}: {events}"
        );
    }
    let never = reasons("never");
    assert!(
        never
            .iter()
            .any(|r| r == "Failed" || r == "ErrImageNeverPull"),
        "{never:?}"
    );
    let pulled: Vec<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == "always" && e["reason"] == "Pulled")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        pulled.iter().any(|m| m.contains("Successfully pulled")),
        "{pulled:?}"
    );
}
