//! The real kubectl (v1.32) against a real `kcnode serve-api`: the commands
//! a user types, with kubectl's own output and error messages.

mod api_common;

use std::process::Stdio;
use std::time::Duration;

use api_common::{ApiServer, rows, stderr, stdout};

/// Deployment `web`: 2 replicas of nginx:1.25 (shared with the kcctl tests).
const DEPLOYMENT: &str = include_str!("api_common/web-deployment.yaml");

#[test]
fn fresh_cluster_has_the_system_namespaces_and_serves_version() {
    let api = ApiServer::start();
    let out = api.ok(&["get", "namespaces"]);
    let names: Vec<String> = rows(&out)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(names.contains(&ns.to_string()), "{ns} missing from:\n{out}");
    }
    assert_eq!(rows(&out)[0], ["NAME", "STATUS", "AGE"]);
    let version = api.ok(&["version"]);
    assert!(version.contains("Server Version: v1.32"), "{version}");
    assert!(api.ok(&["-n", "kube-system", "get", "pod"]).is_empty());
}

#[test]
fn run_get_describe_delete_a_pod() {
    let api = ApiServer::start();
    assert_eq!(
        api.ok(&["run", "--image", "basicserver:0.42", "testpod"])
            .trim(),
        "pod/testpod created"
    );
    let out = api.ok(&["get", "pod"]);
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    assert_eq!(&table[1][..4], ["testpod", "0/1", "Pending", "0"], "{out}");
    let wide = api.ok(&["get", "pod", "-o", "wide"]);
    assert!(rows(&wide)[0].contains(&"NODE".to_string()), "{wide}");
    let all = api.ok(&["get", "pods", "-A"]);
    assert_eq!(rows(&all)[1][0], "default", "{all}");
    let yaml = api.ok(&["get", "po", "testpod", "-o", "yaml"]);
    for want in [
        "restartPolicy: Always",
        "uid:",
        "creationTimestamp:",
        "run: testpod",
        "imagePullPolicy: IfNotPresent",
    ] {
        assert!(yaml.contains(want), "{want} missing in:\n{yaml}");
    }
    let described = api.ok(&["describe", "pod", "testpod"]);
    assert!(
        described.contains("Name:") && described.contains("testpod"),
        "{described}"
    );
    assert_eq!(
        api.ok(&["delete", "pod", "testpod"]).trim(),
        "pod \"testpod\" deleted"
    );
    let err = api.fails(&["get", "pod", "testpod"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"testpod\" not found"),
        "{err}"
    );
}

#[test]
fn apply_client_side_server_side_and_scale_a_deployment() {
    let api = ApiServer::start();
    let out = api.apply_text(DEPLOYMENT, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "deployment.apps/web created",
        "{}",
        stderr(&out)
    );
    let out = api.apply_text(DEPLOYMENT, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "deployment.apps/web unchanged",
        "{}",
        stderr(&out)
    );
    let out = api.apply_text(&DEPLOYMENT.replace("replicas: 2", "replicas: 3"), &[]);
    assert_eq!(
        stdout(&out).trim(),
        "deployment.apps/web configured",
        "{}",
        stderr(&out)
    );
    assert_eq!(
        api.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // Server-side apply creates, then re-applies idempotently.
    let ss = DEPLOYMENT.replace("name: web\n  labels", "name: web3\n  labels");
    for _ in 0..2 {
        let out = api.apply_text(&ss, &["--server-side"]);
        assert_eq!(
            stdout(&out).trim(),
            "deployment.apps/web3 serverside-applied",
            "{}",
            stderr(&out)
        );
    }
    let managers = api.ok(&[
        "get",
        "deploy",
        "web3",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
        "--show-managed-fields",
    ]);
    assert!(managers.contains("kubectl"), "{managers}");
    assert_eq!(
        api.ok(&["scale", "deployment", "web", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    let out = api.ok(&["get", "deployments"]);
    let table = rows(&out);
    assert_eq!(
        table[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    assert_eq!(&table[1][..2], ["web", "0/5"], "{out}");
    let wide = api.ok(&["get", "deploy", "web", "-o", "wide"]);
    assert!(
        wide.contains("nginx:1.25") && wide.contains("app=web"),
        "{wide}"
    );
    assert_eq!(
        api.ok(&["delete", "deployment", "web3"]).trim(),
        "deployment.apps \"web3\" deleted"
    );
}

#[test]
fn label_annotate_and_patch_in_every_format() {
    let api = ApiServer::start();
    api.apply_text(DEPLOYMENT, &[]);
    api.ok(&["run", "p", "--image", "busybox"]);
    assert_eq!(
        api.ok(&["label", "pod", "p", "tier=fe"]).trim(),
        "pod/p labeled"
    );
    assert_eq!(
        api.ok(&["annotate", "pod", "p", "note=hi"]).trim(),
        "pod/p annotated"
    );
    let selected = api.ok(&["get", "pods", "-l", "tier=fe", "-o", "name"]);
    assert_eq!(selected.trim(), "pod/p");
    assert!(
        // (run=p: the Deployment's controller-made pods also lack tier=fe)
        api.ok(&["get", "pods", "-l", "tier!=fe,run=p", "-o", "name"])
            .trim()
            .is_empty()
    );
    assert_eq!(
        api.ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hi"
    );
    // Strategic merge: the container list merges by name.
    api.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}"#,
    ]);
    let c = api.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.metadata.generation}"]);
    assert_eq!(c, "nginx:1.26 80 2");
    api.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    ]);
    api.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    let c = api.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.labels.x} {.spec.replicas}",
    ]);
    assert_eq!(c, "y 4");
    let err = api.fails(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/nope"}]"#,
    ]);
    assert!(err.contains("is invalid"), "{err}");
    assert_eq!(
        api.ok(&["label", "pod", "p", "tier-"]).trim(),
        "pod/p unlabeled"
    );
}

#[test]
fn services_and_configmaps_from_manifests() {
    let api = ApiServer::start();
    let manifest = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1", b: "2"}
"#;
    let out = api.apply_text(manifest, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svc = api.ok(&["get", "svc"]);
    let table = rows(&svc);
    assert_eq!(
        table[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{svc}"
    );
    assert_eq!(table[1][0], "web");
    assert_eq!(table[1][1], "ClusterIP");
    assert!(table[1][2].starts_with("10.96."), "{svc}");
    assert_eq!(table[1][4], "80/TCP");
    let cm = api.ok(&["get", "cm", "settings"]);
    assert_eq!(&rows(&cm)[1][..2], ["settings", "2"], "{cm}");
    // Re-applying keeps the allocated cluster IP.
    let ip = api.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let out = api.apply_text(
        &manifest.replace("targetPort: 8080", "targetPort: 9090"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        api.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]),
        ip
    );
    assert_eq!(
        api.ok(&["delete", "configmap", "settings"]).trim(),
        "configmap \"settings\" deleted"
    );
}

#[test]
fn errors_print_kubectls_usual_messages() {
    let api = ApiServer::start();
    let err = api.fails(&["run", "Bad_Name", "--image", "x"]);
    assert!(err.contains("The Pod \"Bad_Name\" is invalid"), "{err}");
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
    let err = api.fails(&["get", "deployment", "missing"]);
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"missing\" not found"),
        "{err}"
    );
    api.ok(&["run", "dup", "--image", "x"]);
    let err = api.fails(&["run", "dup", "--image", "x"]);
    assert!(
        err.contains("Error from server (AlreadyExists): pods \"dup\" already exists"),
        "{err}"
    );
    // A stale resourceVersion is a conflict.
    let yaml = api.ok(&["get", "pod", "dup", "-o", "yaml"]);
    api.ok(&["label", "pod", "dup", "changed=yes"]);
    let stale = api.dir.path().join("stale.yaml");
    std::fs::write(
        &stale,
        yaml.replace("run: dup", "run: dup\n    again: \"1\""),
    )
    .unwrap();
    let err = api.fails(&["replace", "-f", stale.to_str().unwrap()]);
    assert!(err.contains("the object has been modified; please apply your changes to the latest version and try again"), "{err}");
    let err = api.fails(&["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    let err = api.fails(&["delete", "namespace", "default"]);
    assert!(err.contains("Forbidden"), "{err}");
}

#[test]
fn unknown_credentials_are_refused_and_tokens_work() {
    let api = ApiServer::start();
    let ca = api.ca_pem();
    let ca = ca.to_str().unwrap();
    let empty = api.dir.path().join("empty.kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let empty = empty.to_str().unwrap();
    let out = std::process::Command::new(api_common::KUBECTL)
        .args([
            "--server",
            &api.url,
            "--certificate-authority",
            ca,
            "--kubeconfig",
            empty,
            "--token",
            "not-a-token",
            "get",
            "pods",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error: You must be logged in to the server"),
        "{}",
        stderr(&out)
    );
    let token = api.admin_token();
    let out = std::process::Command::new(api_common::KUBECTL)
        .args([
            "--server",
            &api.url,
            "--certificate-authority",
            ca,
            "--kubeconfig",
            empty,
            "--token",
            &token,
            "get",
            "ns",
            "default",
            "-o",
            "name",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "namespace/default", "{}", stderr(&out));
}

#[test]
fn get_watch_streams_changes() {
    let api = ApiServer::start();
    api.ok(&["run", "first", "--image", "x"]);
    let mut watcher = api
        .kubectl_cmd(&["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Collect the watcher's lines on a thread; wait for each expected row.
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = |what: &dyn Fn(&[String]) -> bool, step: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !what(&seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "kubectl get -w did not show {step}; it printed:\n{}",
                    seen.join("\n")
                ),
            }
        }
    };
    let count = |lines: &[String], name: &str| {
        lines
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(name))
            .count()
    };
    wait_for(
        &|l| count(l, "NAME") == 1 && count(l, "first") == 1,
        "the header and the first pod",
    );
    api.ok(&["run", "second", "--image", "x"]);
    wait_for(&|l| count(l, "second") >= 1, "the new pod");
    api.ok(&["label", "pod", "first", "seen=yes"]);
    wait_for(&|l| count(l, "first") >= 2, "the relabelled pod");
    api.ok(&["delete", "pod", "second"]);
    wait_for(&|l| count(l, "second") >= 2, "the deleted pod");
    // SAFETY: kill(2) on the PID of the kubectl this test started.
    unsafe {
        libc::kill(watcher.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = watcher.wait();
    assert_eq!(count(&seen, "NAME"), 1, "one header:\n{}", seen.join("\n"));
}

/// kubectl's create subcommands send protobuf bodies.
#[test]
fn create_subcommands_work() {
    let api = ApiServer::start();
    for (args, want) in [
        (
            vec!["create", "configmap", "cm1", "--from-literal=a=b"],
            "configmap/cm1 created",
        ),
        (
            vec!["create", "secret", "generic", "s1", "--from-literal=p=q"],
            "secret/s1 created",
        ),
        (
            vec!["create", "namespace", "team"],
            "namespace/team created",
        ),
        (
            vec!["create", "serviceaccount", "robot"],
            "serviceaccount/robot created",
        ),
        (
            vec![
                "create",
                "service",
                "nodeport",
                "np",
                "--tcp=80:8080",
                "--node-port=30080",
            ],
            "service/np created",
        ),
        (
            vec![
                "create",
                "deployment",
                "d1",
                "--image=nginx",
                "--replicas=2",
                "--port=80",
            ],
            "deployment.apps/d1 created",
        ),
    ] {
        assert_eq!(api.ok(&args).trim(), want);
    }
    assert_eq!(
        api.ok(&["get", "cm", "cm1", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    assert_eq!(
        api.ok(&["get", "secret", "s1", "-o", "jsonpath={.data.p}"]),
        "cQ=="
    );
    let svc = api.ok(&["get", "svc", "np"]);
    assert_eq!(rows(&svc)[1][4], "80:30080/TCP", "{svc}");
    let d = api.ok(&["get", "deploy", "d1", "-o", "jsonpath={.spec.replicas} {.spec.strategy.type} {.spec.template.spec.containers[0].ports[0].containerPort}"]);
    assert_eq!(d, "2 RollingUpdate 80");
    let all = api.ok(&["get", "all"]);
    assert!(
        all.contains("service/np") && all.contains("deployment.apps/d1"),
        "{all}"
    );
}
