//! kcctl's reading verbs against a real `kcnode serve-api`, each compared
//! with what the real kubectl prints for the same command: `get` in every
//! output format, selectors, all namespaces, several types, watch, errors,
//! `describe`, `version`, `api-resources`.

mod api_common;
mod kcctl_common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use api_common::{ApiServer, stderr, stdout};
use kcctl_common::{fails, kcctl, ok, same_as_kubectl};

const OBJECTS: &str = concat!(
    include_str!("api_common/web-deployment.yaml"),
    r#"---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports: [{port: 80, name: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: kube-system}
data: {a: "1"}
"#
);

fn cluster_with_objects() -> ApiServer {
    let api = ApiServer::start();
    let out = kcctl_common::kcctl_stdin(&api, &["apply", "-f", "-"], OBJECTS);
    assert!(out.status.success(), "apply failed: {}", stderr(&out));
    ok(
        &api,
        &[
            "run",
            "testpod",
            "--image",
            "basicserver:0.42",
            "--port",
            "8080",
            "-l",
            "app=web,tier=fe",
        ],
    );
    ok(
        &api,
        &[
            "run", "other", "--image", "busybox", "--env", "A=1", "--", "sleep", "3600",
        ],
    );
    api
}

#[test]
fn get_tables_match_kubectl_in_every_layout() {
    let api = cluster_with_objects();
    for args in [
        vec!["get", "namespaces"],
        vec!["get", "ns", "default"],
        vec!["get", "pods"],
        vec!["get", "po", "-o", "wide"],
        vec!["get", "pod", "testpod"],
        vec!["get", "pods", "testpod", "other"],
        vec!["get", "pod/testpod", "pod/other"],
        vec!["get", "pods", "-l", "tier=fe"],
        vec!["get", "pods", "-l", "tier!=fe"],
        vec!["get", "pods", "--field-selector", "metadata.name=other"],
        vec!["get", "deploy"],
        vec!["get", "deployments.apps", "-o", "wide"],
        vec!["get", "svc", "-o", "wide"],
        vec!["get", "cm", "-A"],
        vec!["get", "pods", "-A"],
        vec!["get", "po,deploy,svc"],
        vec!["get", "pods", "--no-headers"],
        vec!["get", "pods", "-o", "name"],
        vec!["get", "deploy", "web", "-o", "name"],
        vec!["get", "po", "-n", "kube-system"],
        vec!["get", "rs"],
        vec!["get", "all"],
        vec!["get", "all", "-A"],
        vec!["get", "svc", "-n", "kube-public", "-o", "yaml"],
        vec!["get", "svc", "-n", "kube-public", "-o", "json"],
        vec!["get", "svc", "-n", "kube-public", "-o", "name"],
    ] {
        same_as_kubectl(&api, &args);
    }
}

#[test]
fn get_json_and_yaml_carry_the_same_objects_as_kubectl() {
    let api = cluster_with_objects();
    for args in [
        vec!["get", "pod", "testpod", "-o", "json"],
        vec!["get", "pods", "-o", "json"],
        vec!["get", "deploy", "web", "-o", "json"],
    ] {
        // JSON text is identical: same key order and 4-space indent.
        assert_eq!(ok(&api, &args), api.ok(&args), "{}", args.join(" "));
    }
    // YAML text is identical too, quoting and folding included.
    kcctl_common::kcctl_stdin(&api, &["create", "-f", "-"], TRICKY);
    for args in [
        vec!["get", "cm", "tricky", "-o", "yaml"],
        vec!["get", "pods", "-o", "yaml"],
        vec!["get", "svc", "web", "-o", "yaml"],
        vec!["get", "deploy,cm", "-A", "-o", "yaml"],
    ] {
        assert_eq!(ok(&api, &args), api.ok(&args), "{}", args.join(" "));
    }
    let list = ok(&api, &["get", "pods", "-o", "yaml"]);
    assert!(list.starts_with("apiVersion: v1\nitems:\n"), "{list}");
    assert!(list.contains("kind: List"), "{list}");
}

/// Strings YAML must quote, fold or block in different ways.
const TRICKY: &str = r##"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"tricky","annotations":{"a":"*","b":"a: b","c":"","d":"true","e":"1.5","f":"tab\there","g":"line1\nline2","h":"trail\n","i":" lead","j":"x #y","k":"0x1F","l":"2001-12-14","m":"-x","n":"- x","o":"it's","p":"#c","q":"@x","s":"{a}","t":"a,b","u":"~","v":"yes","w":"NO","x":"1e3","y":"+1","z":"é unicode"}},"data":{"long":"this is a very long string with many spaces in it that goes well beyond eighty columns of width for sure yes"}}"##;

#[test]
fn errors_read_like_kubectls() {
    let api = cluster_with_objects();
    same_as_kubectl(&api, &["get", "pod", "nope"]);
    same_as_kubectl(&api, &["get", "widgets"]);
    same_as_kubectl(&api, &["get", "pods", "-n", "empty-ns"]);
    same_as_kubectl(&api, &["delete", "pod", "nope"]);
    same_as_kubectl(&api, &["describe", "pod", "nope"]);
    let err = fails(&api, &["run", "testpod", "--image", "x"]);
    assert_eq!(
        err.trim(),
        "Error from server (AlreadyExists): pods \"testpod\" already exists"
    );
    let err = fails(&api, &["get", "pods", "-o", "xml"]);
    assert!(err.starts_with("error: unable to match a printer"), "{err}");
    // A server that is not there: kubectl's connection message.
    let err = fails(&api, &["--server", "https://127.0.0.1:1", "get", "pods"]);
    assert!(
        err.contains("The connection to the server 127.0.0.1:1 was refused"),
        "{err}"
    );
}

/// `describe` output with the Age cell of each event row masked (the two
/// commands run a second apart; the scheduler's events are recent).
fn events_age_masked(describe: &str) -> String {
    let mut in_events = false;
    describe
        .lines()
        .map(|line| {
            if line.starts_with("Events:") {
                in_events = true;
            }
            let mut words: Vec<&str> = line.split_whitespace().collect();
            if in_events && words.len() > 2 && (words[0] == "Normal" || words[0] == "Warning") {
                words[2] = "*";
            }
            words.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn describe_matches_kubectl_for_pods_deployments_services() {
    let api = cluster_with_objects();
    // Both describe the Service once the controller has made its slice.
    for _ in 0..100 {
        let slices = api.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "name",
        ]);
        if !slices.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for args in [
        vec!["describe", "pod", "testpod"],
        vec!["describe", "pod", "other"],
        vec!["describe", "deployment", "web"],
        vec!["describe", "svc", "web"],
    ] {
        let ours = ok(&api, &args);
        let theirs = api.ok(&args);
        assert_eq!(
            events_age_masked(&ours),
            events_age_masked(&theirs),
            "`{}` differs",
            args.join(" ")
        );
    }
    let generic = ok(&api, &["describe", "cm", "settings", "-n", "kube-system"]);
    assert!(generic.starts_with("Name:"), "{generic}");
    assert!(
        generic.contains("Namespace:") && generic.contains("Events:"),
        "{generic}"
    );
}

#[test]
fn get_watch_prints_new_objects_as_they_come() {
    let api = cluster_with_objects();
    let mut child = kcctl_common::kcctl_cmd(&api, &["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kcctl get -w");
    let stdout_pipe = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |word: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let hit = line.starts_with(word);
                seen.push(line);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    assert!(
        wait_for("testpod", &mut seen),
        "initial list missing: {seen:?}"
    );
    ok(&api, &["run", "late", "--image", "busybox"]);
    let found = wait_for("late ", &mut seen);
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "the watch never showed the new pod: {seen:?}");
    assert_eq!(
        seen[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    // Later rows stay aligned with the first table.
    let status_col = seen[0].find("STATUS").expect("STATUS column");
    let late = seen
        .iter()
        .find(|l| l.starts_with("late "))
        .expect("late row");
    assert_eq!(&late[status_col..status_col + 7], "Pending", "{seen:?}");
}

#[test]
fn version_api_resources_config_and_completion() {
    let api = ApiServer::start();
    let ours = ok(&api, &["version"]);
    let theirs = api.ok(&["version"]);
    let server = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Server Version:"))
            .map(str::to_string)
    };
    assert_eq!(server(&ours), server(&theirs));
    assert!(ours.starts_with("Client Version: v"), "{ours}");
    let resources = ok(&api, &["api-resources"]);
    for want in [
        "pods",
        "po",
        "deployments",
        "deploy",
        "apps/v1",
        "Deployment",
    ] {
        assert!(
            resources.split_whitespace().any(|w| w == want),
            "{want} missing:\n{resources}"
        );
    }
    same_as_kubectl(&api, &["config", "get-contexts"]);
    same_as_kubectl(&api, &["config", "current-context"]);
    let view = ok(&api, &["config", "view"]);
    assert!(
        view.contains("DATA+OMITTED") && !view.contains("BEGIN"),
        "{view}"
    );
    let raw = ok(&api, &["config", "view", "--raw"]);
    assert!(raw.contains("certificate-authority-data: LS0t"), "{raw}");
    let out = kcctl(&api, &["config", "use-context", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no context exists with the name: \"nope\""),
        "{}",
        stderr(&out)
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&api, &["completion", shell]);
        assert!(
            script.contains("kcctl") && script.contains("rollout"),
            "{shell}: {script}"
        );
    }
    // metrics.k8s.io is served; with no node reporting, both say so.
    same_as_kubectl(&api, &["top", "pod"]);
    same_as_kubectl(&api, &["top", "node"]);
    same_as_kubectl(&api, &["top", "pod", "--sort-by=age"]);
    let _ = stdout;
}

#[test]
fn describe_lists_the_objects_events_like_kubectl() {
    let api = cluster_with_objects();
    let pod = api.ok(&["get", "pod", "testpod", "-o", "json"]);
    let pod: serde_json::Value = serde_json::from_str(&pod).expect("pod JSON");
    let uid = pod["metadata"]["uid"].as_str().expect("uid");
    for (name, reason, kind, count, first, last) in [
        (
            "testpod.1",
            "Scheduled",
            "Normal",
            1,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ),
        (
            "testpod.2",
            "BackOff",
            "Warning",
            5,
            "2025-12-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ),
    ] {
        let event = serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "testpod", "namespace": "default", "uid": uid},
            "reason": reason, "type": kind, "count": count,
            "message": format!("{reason} happened to default/testpod"),
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": first, "lastTimestamp": last,
        });
        let out = kcctl_common::kcctl_stdin(&api, &["create", "-f", "-"], &event.to_string());
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // The scheduler's FailedScheduling event is seconds old: its age may
    // tick between the two runs, so a difference is compared again.
    let mut tries = 0;
    let ours = loop {
        let ours = ok(&api, &["describe", "pod", "testpod"]);
        let theirs = api.ok(&["describe", "pod", "testpod"]);
        if ours == theirs {
            break ours;
        }
        tries += 1;
        assert!(
            tries < 5,
            "describe differs from kubectl's 5 times:\n{ours}---\n{theirs}"
        );
    };
    assert!(ours.contains("  Warning  BackOff"), "{ours}");
    same_as_kubectl(&api, &["get", "events"]);
}

#[test]
fn kubeconfig_from_env_with_ca_file_token_and_context_namespace() {
    let api = cluster_with_objects();
    // A second kubeconfig: CA as a file relative to it, a bearer token, two
    // contexts with different namespaces; found through $KUBECONFIG.
    let path = api.dir.path().join("token.kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kc\n  cluster:\n    server: {}\n    certificate-authority: pki/ca.crt\nusers:\n- name: admin\n  user:\n    token: {}\ncontexts:\n- name: sys\n  context: {{cluster: kc, user: admin, namespace: kube-system}}\n- name: def\n  context: {{cluster: kc, user: admin}}\ncurrent-context: sys\n",
        api.url,
        api.admin_token()
    );
    std::fs::write(&path, config).expect("write kubeconfig");
    let run = |args: &[&str]| {
        std::process::Command::new(kc_tests::bin("kcctl"))
            .args(args)
            .env("KUBECONFIG", &path)
            .output()
            .expect("run kcctl")
    };
    let out = run(&["get", "cm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("settings"), "{}", stdout(&out));
    // The default namespace (context "def"): the two bare pods, next to the
    // pods the Deployment controller made for the seeded Deployment.
    let out = run(&["--context", "def", "get", "pods", "-o", "name"]);
    let names = stdout(&out);
    assert!(
        names.starts_with("pod/other\npod/testpod\n") && !names.contains("kube-system"),
        "{names}{}",
        stderr(&out)
    );
    let out = run(&["config", "use-context", "def"]);
    assert_eq!(stdout(&out), "Switched to context \"def\".\n");
    assert_eq!(stdout(&run(&["config", "current-context"])), "def\n");
    let out = run(&[
        "config",
        "set-context",
        "--current",
        "--namespace",
        "kube-system",
    ]);
    assert_eq!(
        stdout(&out),
        "Context \"def\" modified.\n",
        "{}",
        stderr(&out)
    );
    assert!(stdout(&run(&["get", "cm"])).contains("settings"));
    let out = run(&["--token", "wrong", "get", "pods"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: You must be logged in to the server (Unauthorized)\n"
    );
}
