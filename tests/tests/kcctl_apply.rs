//! kcctl's writing verbs against a real `kcnode serve-api`: apply (files,
//! folders, multi-document, stdin; server-side), create, delete (by name,
//! file, selector, --all), run, label, annotate, scale, rollout
//! status/history/undo, cordon/uncordon/drain, logs. Results are read back
//! with the real kubectl, so what kcctl changed is what kubectl sees.

mod api_common;
mod kcctl_common;

use api_common::{ApiServer, stdout};
use kcctl_common::{fails, kcctl_stdin, ok, same_as_kubectl};
use serde_json::{Value, json};

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {set: one}}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {set: one}}
spec: {containers: [{name: c, image: busybox}]}
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
"#;

fn json_of(api: &ApiServer, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&api.ok(&full)).expect("kubectl printed JSON")
}

fn names(api: &ApiServer, args: &[&str]) -> Vec<String> {
    let mut full = args.to_vec();
    full.extend(["-o", "name"]);
    api.ok(&full).lines().map(str::to_string).collect()
}

#[test]
fn apply_files_folders_and_stdin_server_side() {
    let api = ApiServer::start();
    let dir = api.dir.path().join("manifests");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("pods.yaml"), PODS).expect("write");
    std::fs::write(dir.join("sub/web.yaml"), DEPLOYMENT).expect("write");
    let out = ok(&api, &["apply", "-f", dir.to_str().expect("utf-8")]);
    assert_eq!(out, "pod/a serverside-applied\npod/b serverside-applied\n");
    let out = ok(&api, &["apply", "-R", "-f", dir.to_str().expect("utf-8")]);
    assert_eq!(
        out,
        "pod/a serverside-applied\npod/b serverside-applied\ndeployment.apps/web serverside-applied\n"
    );
    assert_eq!(names(&api, &["get", "deploy"]), ["deployment.apps/web"]);
    // A change through stdin lands; the field manager is kcctl.
    let changed = DEPLOYMENT.replace("replicas: 2", "replicas: 4");
    let out = kcctl_stdin(&api, &["apply", "-f", "-"], &changed);
    assert_eq!(stdout(&out), "deployment.apps/web serverside-applied\n");
    let d = json_of(&api, &["get", "deploy", "web", "--show-managed-fields"]);
    assert_eq!(d["spec"]["replicas"], 4);
    assert!(
        d["metadata"]["managedFields"].as_array().is_some_and(|m| m
            .iter()
            .any(|f| f["manager"] == "kcctl" && f["operation"] == "Apply")),
        "{d}"
    );
    // -n places objects without a namespace of their own.
    let out = kcctl_stdin(&api, &["apply", "-n", "kube-system", "-f", "-"], PODS);
    assert!(out.status.success());
    assert_eq!(
        names(&api, &["get", "pods", "-n", "kube-system"]),
        ["pod/a", "pod/b"]
    );
}

#[test]
fn create_run_and_delete_like_kubectl() {
    let api = ApiServer::start();
    let out = kcctl_stdin(&api, &["create", "-f", "-"], PODS);
    assert_eq!(stdout(&out), "pod/a created\npod/b created\n");
    let out = kcctl_stdin(&api, &["create", "-f", "-"], PODS);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Error from server (AlreadyExists): pods \"a\" already exists"),
        "{out:?}"
    );
    assert_eq!(
        ok(
            &api,
            &[
                "run", "r1", "--image", "busybox", "--port", "80", "--env", "X=1", "--", "sleep",
                "9"
            ]
        ),
        "pod/r1 created\n"
    );
    let pod = json_of(&api, &["get", "pod", "r1"]);
    assert_eq!(pod["metadata"]["labels"], json!({"run": "r1"}));
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        (c["image"].clone(), c["args"].clone()),
        (json!("busybox"), json!(["sleep", "9"]))
    );
    assert_eq!(c["ports"][0]["containerPort"], 80);
    assert_eq!(c["env"][0], json!({"name": "X", "value": "1"}));
    // Delete by name (kubectl's wording), by label, by file, then --all.
    assert_eq!(ok(&api, &["delete", "pod", "r1"]), "pod \"r1\" deleted\n");
    assert_eq!(
        ok(&api, &["delete", "pods", "-l", "set=one"]),
        "pod \"a\" deleted\npod \"b\" deleted\n"
    );
    api.ok(&["run", "x", "--image", "busybox"]);
    api.ok(&["run", "y", "--image", "busybox"]);
    assert_eq!(
        ok(&api, &["delete", "po", "--all"]),
        "pod \"x\" deleted\npod \"y\" deleted\n"
    );
    assert!(names(&api, &["get", "pods"]).is_empty());
    kcctl_stdin(&api, &["create", "-f", "-"], PODS);
    let out = kcctl_stdin(&api, &["delete", "-f", "-"], PODS);
    assert_eq!(stdout(&out), "pod \"a\" deleted\npod \"b\" deleted\n");
    same_as_kubectl(&api, &["delete", "pod", "a"]);
    assert_eq!(ok(&api, &["delete", "pod", "a", "--ignore-not-found"]), "");
    let err = fails(&api, &["delete", "pods"]);
    assert!(
        err.contains("resource(s) were provided, but no name was specified"),
        "{err}"
    );
}

#[test]
fn label_annotate_and_scale() {
    let api = ApiServer::start();
    kcctl_stdin(&api, &["apply", "-f", "-"], DEPLOYMENT);
    api.ok(&["run", "p", "--image", "busybox"]);
    assert_eq!(
        ok(&api, &["label", "pod", "p", "tier=fe", "team=a"]),
        "pod/p labeled\n"
    );
    let err = fails(&api, &["label", "pod", "p", "tier=be"]);
    assert_eq!(
        err.trim(),
        "error: 'tier' already has a value (fe), and --overwrite is false"
    );
    assert_eq!(
        ok(&api, &["label", "pod/p", "tier=be", "--overwrite", "team-"]),
        "pod/p labeled\n"
    );
    assert_eq!(
        ok(&api, &["label", "pod/p", "tier=be"]),
        "pod/p not labeled\n"
    );
    assert_eq!(
        json_of(&api, &["get", "pod", "p"])["metadata"]["labels"],
        json!({"run": "p", "tier": "be"})
    );
    assert_eq!(
        ok(&api, &["annotate", "deploy", "web", "note=hello world"]),
        "deployment.apps/web annotated\n"
    );
    assert_eq!(
        json_of(&api, &["get", "deploy", "web"])["metadata"]["annotations"]["note"],
        "hello world"
    );
    assert_eq!(
        ok(&api, &["annotate", "deploy", "web", "note-"]),
        "deployment.apps/web annotated\n"
    );
    assert!(json_of(&api, &["get", "deploy", "web"])["metadata"]["annotations"]["note"].is_null());
    assert_eq!(
        ok(&api, &["scale", "deploy/web", "--replicas", "5"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(
        json_of(&api, &["get", "deploy", "web"])["spec"]["replicas"],
        5
    );
    let err = fails(&api, &["scale", "deploy/nope", "--replicas", "1"]);
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{err}"
    );
}

/// Waits until Deployment `web` reports `n` updated replicas.
fn wait_for_updated_replicas(api: &ApiServer, n: i64) {
    for _ in 0..100 {
        let d = json_of(api, &["get", "deploy", "web"]);
        if d["status"]["updatedReplicas"].as_i64() == Some(n)
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("deployment web did not reach {n} updated replicas in 10 s");
}

/// Waits until the Deployment controller has made `n` ReplicaSets.
fn wait_for_replicasets(api: &ApiServer, n: usize) {
    for _ in 0..100 {
        let list = json_of(api, &["get", "rs"]);
        if list["items"].as_array().map_or(0, Vec::len) >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the Deployment controller did not make {n} ReplicaSets in 10 s");
}

#[test]
fn rollout_status_history_and_undo() {
    let api = ApiServer::start();
    kcctl_stdin(&api, &["apply", "-f", "-"], DEPLOYMENT);
    // Compare once the controller has made the new pods (no node runs
    // them, so the rollout then waits on availability for good).
    wait_for_updated_replicas(&api, 2);
    same_as_kubectl(&api, &["rollout", "status", "deploy/web", "--watch=false"]);
    same_as_kubectl(&api, &["rollout", "history", "deploy/web"]);
    // A second revision, made by the Deployment controller from a changed
    // template (revision 1 has nginx:1.25).
    let image =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.24"}]}}}}"#;
    ok(&api, &["patch", "deploy", "web", "-p", image]);
    wait_for_replicasets(&api, 2);
    same_as_kubectl(&api, &["rollout", "history", "deployment", "web"]);
    assert_eq!(
        ok(&api, &["rollout", "undo", "deploy/web"]),
        "deployment.apps/web rolled back\n"
    );
    let d = json_of(&api, &["get", "deploy", "web"]);
    let tpl = &d["spec"]["template"];
    assert_eq!(tpl["spec"]["containers"][0]["image"], "nginx:1.25");
    assert!(
        tpl["metadata"]["labels"]["pod-template-hash"].is_null(),
        "{tpl}"
    );
    let err = fails(
        &api,
        &["rollout", "undo", "deploy/web", "--to-revision", "9"],
    );
    assert!(err.contains("unable to find specified revision 9"), "{err}");
    let err = fails(&api, &["rollout", "status", "deploy/web", "--timeout", "1"]);
    assert!(err.contains("timed out"), "{err}");
}

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
"#;

#[test]
fn cordon_uncordon_and_drain_a_node() {
    let api = ApiServer::start();
    kcctl_stdin(&api, &["create", "-f", "-"], NODE);
    same_as_kubectl(&api, &["get", "nodes"]);
    assert_eq!(ok(&api, &["cordon", "n1"]), "node/n1 cordoned\n");
    assert_eq!(
        json_of(&api, &["get", "node", "n1"])["spec"]["unschedulable"],
        true
    );
    same_as_kubectl(&api, &["cordon", "n1"]);
    assert_eq!(ok(&api, &["uncordon", "n1"]), "node/n1 uncordoned\n");
    assert!(json_of(&api, &["get", "node", "n1"])["spec"]["unschedulable"].is_null());
    let bare = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bare"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}"#;
    kcctl_stdin(&api, &["create", "-f", "-"], bare);
    let err = fails(&api, &["drain", "n1", "--ignore-daemonsets"]);
    assert!(
        err.contains("cannot delete Pods that declare no controller"),
        "{err}"
    );
    // No kubelet runs here to finish a graceful stop: evict at once.
    let out = ok(
        &api,
        &[
            "drain",
            "n1",
            "--ignore-daemonsets",
            "--force",
            "--grace-period",
            "0",
            "--timeout",
            "30",
        ],
    );
    assert!(out.contains("evicting pod default/bare"), "{out}");
    assert!(out.contains("pod/bare evicted"), "{out}");
    assert!(out.trim_end().ends_with("node/n1 drained"), "{out}");
    assert!(names(&api, &["get", "pods"]).is_empty());
    assert_eq!(
        json_of(&api, &["get", "node", "n1"])["spec"]["unschedulable"],
        true
    );
    let described = ok(&api, &["describe", "node", "n1"]);
    assert!(
        described.contains("Unschedulable:") && described.contains("true"),
        "{described}"
    );
}

#[test]
fn logs_exec_and_port_forward_reach_the_pods_endpoints_like_kubectl() {
    let api = ApiServer::start();
    api.ok(&["run", "p", "--image", "busybox"]);
    // No node runs the pod here: both clients relay the server's refusal
    // (exec through a real TLS WebSocket upgrade with the client cert).
    same_as_kubectl(&api, &["logs", "p"]);
    same_as_kubectl(&api, &["logs", "nope"]);
    same_as_kubectl(&api, &["exec", "p", "--", "ls", "-l"]);
    same_as_kubectl(&api, &["exec", "nope", "--", "ls"]);
    same_as_kubectl(&api, &["port-forward", "p", "8080:80"]);
    same_as_kubectl(&api, &["port-forward", "nope", ":80"]);
}

#[test]
fn create_kinds_by_name_and_patch() {
    let api = ApiServer::start();
    assert_eq!(
        ok(&api, &["create", "namespace", "team"]),
        "namespace/team created\n"
    );
    assert_eq!(
        ok(
            &api,
            &[
                "create",
                "deployment",
                "d1",
                "--image",
                "nginx:1.25",
                "--port",
                "80",
                "-n",
                "team"
            ]
        ),
        "deployment.apps/d1 created\n"
    );
    api.ok(&[
        "create",
        "deployment",
        "d2",
        "--image",
        "nginx:1.25",
        "--port",
        "80",
        "-n",
        "team",
    ]);
    // The same object kubectl builds, but for the name.
    let spec = |v: Value| -> Value {
        serde_json::from_str(&v["spec"].to_string().replace("d2", "d1")).expect("json")
    };
    assert_eq!(
        spec(json_of(&api, &["get", "deploy", "d1", "-n", "team"])),
        spec(json_of(&api, &["get", "deploy", "d2", "-n", "team"]))
    );
    assert_eq!(
        ok(
            &api,
            &[
                "create",
                "configmap",
                "c",
                "--from-literal",
                "a=1",
                "--from-literal",
                "b=x y"
            ]
        ),
        "configmap/c created\n"
    );
    assert_eq!(
        json_of(&api, &["get", "cm", "c"])["data"],
        json!({"a": "1", "b": "x y"})
    );
    let patch = r#"{"spec":{"replicas":3}}"#;
    assert_eq!(
        ok(&api, &["patch", "deploy", "d1", "-n", "team", "-p", patch]),
        "deployment.apps/d1 patched\n"
    );
    same_as_kubectl(&api, &["patch", "deploy", "d1", "-n", "team", "-p", patch]);
    let json_patch = r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#;
    ok(
        &api,
        &[
            "patch",
            "deploy/d1",
            "-n",
            "team",
            "--type",
            "json",
            "-p",
            json_patch,
        ],
    );
    assert_eq!(
        json_of(&api, &["get", "deploy", "d1", "-n", "team"])["spec"]["replicas"],
        4
    );
    let err = fails(&api, &["patch", "deploy", "d1", "-p", "{", "-n", "team"]);
    assert!(err.contains("unable to parse"), "{err}");
}
