//! The real kubectl against `kcnode serve-api` with hollow nodes: `kubectl
//! create job` (protobuf), `kubectl wait` on the Complete and Failed
//! conditions, `kubectl get jobs` with kubectl's columns; a namespace that
//! `kubectl get ns` shows Terminating while an object with a finalizer
//! holds it, creates into it refused with Kubernetes' message, then gone;
//! system namespaces refused.

mod api_common;

use api_common::{ApiServer, rows};

#[test]
fn kubectl_create_job_runs_to_completion_or_failure() {
    let api = ApiServer::start_with(
        tempfile::tempdir().expect("temp dir"),
        &["--hollow-nodes", "2"],
    );
    let resources = api.ok(&["api-resources", "--api-group=batch"]);
    assert!(
        rows(&resources)
            .iter()
            .any(|r| r == &["jobs", "batch/v1", "true", "Job"]),
        "{resources}"
    );
    assert_eq!(
        api.ok(&["create", "job", "ok", "--image=busybox", "--", "true"])
            .trim(),
        "job.batch/ok created"
    );
    assert_eq!(
        api.ok(&["create", "job", "bad", "--image=busybox", "--", "false"])
            .trim(),
        "job.batch/bad created"
    );
    let met = api.ok(&[
        "wait",
        "--for=condition=complete",
        "job/ok",
        "--timeout=60s",
    ]);
    assert_eq!(met.trim(), "job.batch/ok condition met");
    let met = api.ok(&["wait", "--for=condition=failed", "job/bad", "--timeout=60s"]);
    assert_eq!(met.trim(), "job.batch/bad condition met");

    let table = api.ok(&["get", "jobs"]);
    let rows = rows(&table);
    assert_eq!(
        rows[0],
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    assert_eq!(rows[1][..3], ["bad", "Failed", "0/1"], "{table}");
    assert_eq!(rows[2][..3], ["ok", "Complete", "1/1"], "{table}");
    let failed = api.ok(&["get", "job", "bad", "-o", "jsonpath={.status.failed}"]);
    assert_eq!(failed, "7", "backoffLimit 6 (the default) + 1 failed pods");
    let pods = api.ok(&["get", "pods", "-l", "job-name=ok", "--no-headers"]);
    let pods = api_common::rows(&pods);
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0][2], "Completed", "{pods:?}");
    let wide = api.ok(&["get", "job", "ok", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("busybox") && wide.contains("SELECTOR"),
        "{wide}"
    );
}

#[test]
fn kubectl_sees_a_terminating_namespace_until_it_is_empty() {
    let api = ApiServer::start_with(
        tempfile::tempdir().expect("temp dir"),
        &["--hollow-nodes", "1"],
    );
    api.ok(&["create", "namespace", "t"]);
    api.ok(&[
        "create",
        "configmap",
        "held",
        "-n",
        "t",
        "--from-literal=a=b",
    ]);
    // The finalizer that holds the namespace's deletion open, set or cleared.
    let hold = |finalizers: &str| {
        let patch = format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#);
        api.ok(&[
            "patch",
            "configmap",
            "held",
            "-n",
            "t",
            "--type=merge",
            "-p",
            &patch,
        ]);
    };
    hold(r#"["kc.dev/hold"]"#);
    api.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "t",
        "--image=nginx",
        "--replicas=2",
    ]);
    let deleted = api.ok(&["delete", "namespace", "t", "--wait=false"]);
    assert_eq!(deleted.trim(), "namespace \"t\" deleted");
    let ns = api.ok(&["get", "ns", "t", "--no-headers"]);
    assert_eq!(rows(&ns)[0][..2], ["t", "Terminating"], "{ns}");
    let err = api.fails(&["create", "configmap", "late", "-n", "t"]);
    assert_eq!(
        err.trim(),
        "error: failed to create configmap: configmaps \"late\" is forbidden: unable to create new content in namespace t because it is being terminated"
    );
    hold("null");
    api.ok(&["wait", "--for=delete", "namespace/t", "--timeout=30s"]);
    let err = api.fails(&["get", "ns", "t"]);
    assert!(err.contains("namespaces \"t\" not found"), "{err}");
    let err = api.fails(&["delete", "namespace", "kube-system"]);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
}
