//! The kubelet runs pods from a static manifests directory: a two-container
//! pod shares localhost (the client reaches the server on 127.0.0.1) and
//! becomes Running and Ready through its startup (exec) and readiness
//! (httpGet, tcpSocket) probes; env comes from
//! values, the downward API, a ConfigMap and a Secret; volumes (emptyDir
//! filled by an init container, configMap, secret) are mounted; deleting
//! the manifest stops the pod gracefully and removes every trace of it.

mod kubelet_common;

use kubelet_common::{Kubelet, condition, container};

const TWO: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: two, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: server
    image: busybox
    command: ["sh", "-c", "echo hello-from-server > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    startupProbe: {exec: {command: [test, -f, /tmp/index.html]}, periodSeconds: 1}
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
  - name: client
    image: busybox
    # The pod's containers share one network: the client's probe reaches the server.
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
    command: ["sh", "-c", "while true; do wget -qO- http://127.0.0.1:8080/index.html; sleep 1; done"]
"#;

#[test]
fn two_container_pod_shares_localhost_becomes_ready_and_is_deleted() {
    let k = Kubelet::start();
    k.apply("two.yaml", TWO);
    let s = k.wait("two", 60, "Ready", |s| condition(s, "Ready") == "True");
    assert_eq!(s["phase"], "Running", "{s}");
    for c in ["PodScheduled", "Initialized", "ContainersReady"] {
        assert_eq!(condition(&s, c), "True", "{c}: {s}");
    }
    assert_eq!(s["hostIP"], "192.0.2.10", "{s}");
    assert!(s["startTime"].is_string(), "{s}");
    let client = container(&s, "client");
    assert_eq!(client["restartCount"], 0, "{s}");
    assert!(client["state"]["running"].is_object(), "{s}");
    let id = client["containerID"]
        .as_str()
        .expect("client container id")
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !k.logs(&id).contains("hello-from-server") {
        assert!(
            std::time::Instant::now() < deadline,
            "client never reached the server on localhost: {}",
            k.logs(&id)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let reasons: Vec<String> = k
        .events()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        reasons.iter().filter(|r| *r == "Started").count() >= 2,
        "{reasons:?}"
    );

    // Deletion: graceful stop, then containers, sandbox and records go.
    k.remove("two.yaml");
    k.wait_gone("two", 30);
    let ps = k.node.ok(&["ps", "-a", "-q"]);
    assert!(ps.trim().is_empty(), "containers left after deletion: {ps}");
    let sandboxes = std::fs::read_dir(k.node.data.path().join("sandboxes"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(sandboxes, 0, "sandbox left after deletion");
    let records = std::fs::read_dir(k.node.data.path().join("kubelet/pods"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(records, 0, "pod record left after deletion");
    assert!(k.events().iter().any(|e| e["reason"] == "Killing"));
}

const CONFIGURED: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: bonjour, file.txt: from-configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: czNjcjN0}
---
apiVersion: v1
kind: Pod
metadata: {name: configured}
spec:
  restartPolicy: Never
  initContainers:
  - name: prepare
    image: busybox
    command: ["sh", "-c", "echo made-by-init > /work/init.txt"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MESSAGE, value: "$(GREETING)-world"}
    command: ["sh", "-c", "echo env=$MESSAGE,$PASSWORD,$POD_NAME; cat /work/init.txt /cfg/file.txt /sec/password; echo; touch /cfg/x 2>/dev/null && echo cfg-writable || echo cfg-read-only"]
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: settings}}
  - {name: sec, secret: {secretName: creds}}
"#;

#[test]
fn env_volumes_and_init_containers() {
    let k = Kubelet::start();
    k.apply("configured.yaml", CONFIGURED);
    let s = k.wait("configured", 60, "Succeeded", |s| {
        s["phase"] == "Succeeded" || s["phase"] == "Failed"
    });
    assert_eq!(s["phase"], "Succeeded", "{s}\n{}", k.log());
    let init = &s["initContainerStatuses"][0];
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{s}");
    let main = container(&s, "main");
    assert_eq!(main["state"]["terminated"]["reason"], "Completed", "{s}");
    let out = k.logs(main["containerID"].as_str().unwrap());
    assert!(out.contains("env=bonjour-world,s3cr3t,configured"), "{out}");
    assert!(out.contains("made-by-init"), "{out}");
    assert!(out.contains("from-configmap"), "{out}");
    assert!(out.contains("s3cr3t"), "{out}");
    assert!(out.contains("cfg-read-only"), "{out}");
    assert_eq!(condition(&s, "Ready"), "False");
}

#[test]
fn missing_image_waits_with_err_image_never_pull() {
    let k = Kubelet::start();
    k.apply(
        "missing.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: missing}\nspec:\n  containers:\n  - {name: c, image: 'nosuch:1.0', imagePullPolicy: Never}\n",
    );
    let s = k.wait("missing", 30, "waiting", |s| {
        container(s, "c")["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    });
    assert_eq!(s["phase"], "Pending", "{s}");
    assert!(
        k.events().iter().any(|e| e["type"] == "Warning"),
        "no warning event"
    );
}

#[test]
fn deletion_sends_sigterm_first() {
    let k = Kubelet::start();
    let out = tempfile::tempdir().unwrap();
    k.apply(
        "graceful.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "trap 'echo got-term > /out/term; exit 0' TERM; touch /out/started; while true; do sleep 0.2; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes: [{{name: out, hostPath: {{path: {}, type: Directory}}}}]
"#,
            out.path().display()
        ),
    );
    k.wait("graceful", 60, "Running", |s| s["phase"] == "Running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !out.path().join("started").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "container never wrote to the hostPath volume"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    k.remove("graceful.yaml");
    k.wait_gone("graceful", 40);
    let term = std::fs::read_to_string(out.path().join("term")).unwrap_or_default();
    assert_eq!(
        term.trim(),
        "got-term",
        "the container was not sent SIGTERM before being removed"
    );
}
