//! A replicated control plane in a real cluster: three members (`kcnode
//! init`, then `kcnode join --control-plane` twice) and a worker, each a
//! host in its own network namespace on a test LAN.
//!
//! - objects written through member 1 are read through member 3; every
//!   member shows its store/apiserver/scheduler/controller-manager mirror pods;
//! - kill -9 of the kcnode holding the Raft leadership while a client keeps
//!   writing through another member: the API answers again (the time is
//!   printed), every acknowledged write is there, the scheduler and the
//!   controllers resume (a new Deployment gets its pod, an existing
//!   ReplicaSet gets no extra pod), the worker's pod is untouched and its
//!   session moved to a live member; the dead member's mirror pods turn
//!   not ready; the killed member restarts from its
//!   data (no second join) and catches up;
//! - a worker's token cannot join a control-plane member;
//! - a member cut off from the others (its link down) refuses writes with a
//!   503 saying it has no quorum, and converges after the link is back; a
//!   joined member's kcnode restarted with the same command (no token)
//!   resumes as the same member and catches up; the whole control plane
//!   killed and started again comes back with its data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kc_tests::cluster::eventually;
use kc_tests::container::{stderr, stdout};
use kc_tests::ha::{Plane, create_configmap, kubectl, leader_of, restart_args, wait_ready};

fn pod_json(host: &kc_tests::cluster::Host, args: &[&str]) -> serde_json::Value {
    let mut argv = vec!["get", "pod"];
    argv.extend_from_slice(args);
    argv.extend(["-o", "json"]);
    serde_json::from_slice(&kubectl(host, &argv).stdout).unwrap_or_default()
}

fn items(list: &serde_json::Value) -> Vec<serde_json::Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// `text` without ANSI colour sequences (tracing colours its fields).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The addresses the worker's session connected to, in order (its log).
fn connections(log: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter(|l| l.contains("connected to the control plane"))
        .filter_map(|l| l.split("address=").nth(1))
        .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// Creates Deployment `name` (one busybox sleeping) through `host` and
/// waits until its one pod runs; returns the pod.
fn deploy(host: &kc_tests::cluster::Host, name: &str) -> serde_json::Value {
    let out = kubectl(
        host,
        &[
            "create",
            "deployment",
            name,
            "--image",
            "busybox",
            "--",
            "sleep",
            "3600",
        ],
    );
    assert!(
        out.status.success(),
        "create deployment {name}: {}",
        stderr(&out)
    );
    let label = format!("app={name}");
    eventually(
        Duration::from_secs(90),
        &format!("the pod of {name} Running"),
        || {
            let list = items(&pod_json(host, &["-l", &label]));
            (list.len() == 1 && list[0]["status"]["phase"] == "Running").then(|| list[0].clone())
        },
    )
}

#[test]
fn three_members_survive_the_loss_of_the_leader() {
    let mut plane = Plane::start(3);
    let (w, mut worker) = plane.join_worker();
    // Dropped before `plane`: every kcnode is killed before its namespace goes.
    let mut procs = std::mem::take(&mut plane.procs);
    let hosts = plane.refs();
    for h in &hosts {
        wait_ready(hosts[0], &h.name);
    }
    wait_ready(hosts[0], &w.name);

    // Written through member 1, read through member 3.
    create_configmap(hosts[0], "through-cp1").expect("create through cp1");
    let out = kubectl(
        hosts[2],
        &[
            "get",
            "configmap",
            "through-cp1",
            "-o",
            "jsonpath={.data.k}",
        ],
    );
    assert_eq!(
        stdout(&out),
        "through-cp1",
        "read through cp3: {}",
        stderr(&out)
    );

    // A CRD stored through member 1 is served by member 3, which takes
    // a custom resource of it (its API server follows the CRDs in the store).
    hosts[0].apply(
        r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.ha.example.com"},
            "spec": {"group": "ha.example.com", "scope": "Namespaced",
              "names": {"plural": "widgets", "kind": "Widget"},
              "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                  "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}}}}}}}]}}"#,
    );
    eventually(
        Duration::from_secs(30),
        "the custom resource through cp3",
        || {
            let widget = r#"{"apiVersion": "ha.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}"#;
            let path =
                std::env::temp_dir().join(format!("kc-ha-widget-{}.json", std::process::id()));
            std::fs::write(&path, widget).ok()?;
            let created = kubectl(hosts[2], &["create", "-f", path.to_str()?]);
            let _ = std::fs::remove_file(&path);
            let out = kubectl(
                hosts[1],
                &["get", "widgets", "w", "-o", "jsonpath={.spec.size}"],
            );
            (created.status.success() || stdout(&out) == "1").then_some(())
        },
    );
    let out = kubectl(
        hosts[1],
        &["get", "widgets", "w", "-o", "jsonpath={.spec.size}"],
    );
    assert_eq!(
        stdout(&out),
        "1",
        "the widget through cp2: {}",
        stderr(&out)
    );

    // Every member's parts, as mirror pods with a status.
    eventually(
        Duration::from_secs(30),
        "mirror pods of every member",
        || {
            let pods = pod_json(hosts[2], &["-n", "kube-system"]);
            let running: Vec<String> = items(&pods)
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
                .collect();
            hosts
                .iter()
                .all(|h| {
                    [
                        "kc-store",
                        "kube-apiserver",
                        "kube-scheduler",
                        "kube-controller-manager",
                    ]
                    .iter()
                    .all(|c| running.contains(&format!("{c}-{}", h.name)))
                })
                .then_some(())
        },
    );

    // A Deployment whose pod runs on the worker.
    let pod = deploy(hosts[0], "before");
    assert_eq!(pod["spec"]["nodeName"], w.name.as_str(), "{pod}");
    let container = pod["status"]["containerStatuses"][0]["containerID"].clone();

    // Kill -9 the leader while a client writes through a survivor.
    let leader = leader_of(&hosts, 0);
    let survivor = (leader + 1) % 3;
    let leader_address = format!("{}:7000", hosts[leader].ip);
    eprintln!(
        "store leader: {} ({leader_address}); writing through {}",
        hosts[leader].name, hosts[survivor].name
    );
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let kubeconfig = hosts[survivor].kubeconfig();
        let ns = hosts[survivor].ns.name.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("w-{i}");
                let out = std::process::Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{ns}"))
                    .args(["kubectl", "--request-timeout=1s", "--kubeconfig"])
                    .arg(&kubeconfig)
                    .args(["create", "configmap", &name])
                    .output()
                    .expect("kubectl");
                if out.status.success() {
                    acked.lock().unwrap().push((name, Instant::now()));
                }
            }
        })
    };
    eventually(Duration::from_secs(20), "writes before the kill", || {
        (acked.lock().unwrap().len() >= 3).then_some(())
    });
    let killed_at = Instant::now();
    procs[leader].as_mut().expect("leader running").kill();
    let recovered = eventually(
        Duration::from_secs(30),
        "a write acknowledged after the kill",
        || {
            acked
                .lock()
                .unwrap()
                .iter()
                .find(|(_, at)| *at > killed_at)
                .map(|(_, at)| at.duration_since(killed_at))
        },
    );
    eprintln!(
        "FIGURE leader kill -9 -> first acknowledged kubectl write through a survivor: {} ms (includes kubectl start-up)",
        recovered.as_millis()
    );
    eventually(
        Duration::from_secs(30),
        "more writes after the kill",
        || {
            (acked
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, at)| *at > killed_at)
                .count()
                >= 3)
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");

    // Every acknowledged write is there.
    let list: serde_json::Value = serde_json::from_slice(
        &kubectl(hosts[survivor], &["get", "configmap", "-o", "json"]).stdout,
    )
    .expect("configmap list");
    let names: Vec<String> = items(&list)
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(String::from))
        .collect();
    for (name, _) in acked.lock().unwrap().iter() {
        assert!(
            names.contains(name),
            "acknowledged {name} is missing: {names:?}"
        );
    }

    // Scheduler and controllers resume on a live member.
    deploy(hosts[survivor], "after");
    let before = items(&pod_json(hosts[survivor], &["-l", "app=before"]));
    assert_eq!(before.len(), 1, "no duplicate pod of `before`: {before:?}");
    assert_eq!(
        before[0]["metadata"]["uid"], pod["metadata"]["uid"],
        "the same pod"
    );
    let cs = &before[0]["status"]["containerStatuses"][0];
    assert_eq!(
        cs["containerID"], container,
        "the worker's container is untouched"
    );
    assert_eq!(cs["restartCount"], 0, "{cs}");

    // The dead member's parts show as not ready.
    let dead = format!("kube-apiserver-{}", hosts[leader].name);
    eventually(
        Duration::from_secs(60),
        "the dead member's mirror pods not ready",
        || {
            let out = kubectl(
                hosts[survivor],
                &["-n", "kube-system", "get", "pod", &dead, "--no-headers"],
            );
            stdout(&out).contains(" 0/1 ").then_some(())
        },
    );

    // The worker's session is on a live member, and its Node stays Ready.
    eventually(
        Duration::from_secs(30),
        "the worker's session on a live member",
        || {
            let conns = connections(&worker.stderr());
            let last = conns.last()?;
            (last != &leader_address && !last.starts_with("127.")).then_some(())
        },
    );
    wait_ready(hosts[survivor], &w.name);
    let members_file = std::fs::read_to_string(w.data().join("members")).unwrap_or_default();
    assert_eq!(
        members_file.lines().count(),
        3,
        "the worker knows every member: {members_file}"
    );

    // The killed member restarts from its data (no token, no second join)
    // and catches up with what was written meanwhile.
    let args = restart_args(leader);
    let mut back = hosts[leader].spawn("restart", &args);
    back.wait_line("control plane of", Duration::from_secs(60));
    let last = acked.lock().unwrap().last().expect("a write").0.clone();
    eventually(
        Duration::from_secs(30),
        "the restarted member caught up",
        || {
            let out = kubectl(hosts[leader], &["get", "configmap", &last]);
            out.status.success().then_some(())
        },
    );
    procs[leader] = Some(back);
    worker.kill();
}

#[test]
fn a_member_without_quorum_refuses_writes_and_converges_after_healing() {
    let mut plane = Plane::start(3);
    let mut procs = std::mem::take(&mut plane.procs);
    // A worker's token does not make a control-plane member.
    let extra = plane.lan.host("cp4");
    let mut argv: Vec<&str> = plane.joins.worker.iter().map(String::as_str).collect();
    argv.push("--control-plane");
    let out = extra.run(&argv);
    assert!(
        !out.status.success(),
        "joined with a worker token: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("workers only"), "{}", stderr(&out));
    let hosts = plane.refs();
    for h in &hosts {
        wait_ready(hosts[0], &h.name);
    }
    let cut = &hosts[2];
    let link = |state: &str| {
        let out = cut.ns.exec(&["ip", "link", "set", "eth0", state]);
        assert!(out.status.success(), "link {state}: {}", stderr(&out));
    };
    link("down");
    // The cut member refuses writes with a clear 503 (once it has noticed).
    // (Attempts before it noticed time out: their outcome is unknown, so
    // each attempt has its own name and only the refused one is checked.)
    let mut attempt = 0;
    let (refused, refusal) = eventually(
        Duration::from_secs(30),
        "the cut member refusing for lack of quorum",
        || {
            attempt += 1;
            let name = format!("on-the-minority-{attempt}");
            match create_configmap(cut, &name) {
                Err(e) if e.contains("quorum") => Some((name, e)),
                _ => None,
            }
        },
    );
    assert!(
        refusal.contains("ServiceUnavailable") || refusal.contains("unavailable"),
        "{refusal}"
    );
    eprintln!("minority write refused: {}", refusal.trim());
    // The majority goes on.
    eventually(
        Duration::from_secs(30),
        "a write through the majority",
        || create_configmap(hosts[0], "on-the-majority").ok(),
    );
    link("up");
    eventually(
        Duration::from_secs(30),
        "the healed member converged",
        || {
            let out = kubectl(cut, &["get", "configmap", "on-the-majority"]);
            out.status.success().then_some(())
        },
    );
    eventually(
        Duration::from_secs(30),
        "the healed member takes writes",
        || create_configmap(cut, "after-healing").ok(),
    );
    // A joined member's kcnode restarts from its data: no token, no second join.
    procs[2].as_mut().expect("cp3 running").kill();
    create_configmap(hosts[0], "while-cp3-was-down").expect("write with cp3 down");
    let mut back = hosts[2].spawn("restart", &restart_args(2));
    back.wait_line("control plane of", Duration::from_secs(60));
    assert!(
        back.stderr().contains("already control-plane member"),
        "restarted as the same member: {}",
        back.stderr()
    );
    eventually(
        Duration::from_secs(30),
        "the restarted cp3 caught up",
        || {
            kubectl(cut, &["get", "configmap", "while-cp3-was-down"])
                .status
                .success()
                .then_some(())
        },
    );
    procs[2] = Some(back);

    // The whole control plane restarts (every kcnode killed, then started
    // again with the same commands): it comes back with its data.
    for p in procs.iter_mut().flatten() {
        p.kill();
    }
    for (i, h) in hosts.iter().enumerate() {
        procs[i] = Some(h.spawn("full-restart", &restart_args(i)));
    }
    for p in procs.iter_mut().flatten() {
        p.wait_line("control plane of", Duration::from_secs(120));
    }
    let out = kubectl(hosts[0], &["get", "configmap", "while-cp3-was-down"]);
    assert!(
        out.status.success(),
        "data after a full restart: {}",
        stderr(&out)
    );
    eventually(
        Duration::from_secs(30),
        "a write after a full restart",
        || create_configmap(hosts[1], "after-full-restart").ok(),
    );

    let out = kubectl(hosts[0], &["get", "configmap", &refused]);
    assert!(
        !out.status.success(),
        "the refused write was not applied: {}",
        stdout(&out)
    );
}
