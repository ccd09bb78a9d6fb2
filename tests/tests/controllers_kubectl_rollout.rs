//! The real kubectl's `rollout status / history / undo` against `kcnode
//! serve-api` running its scheduler and controllers over hollow nodes.

mod api_common;

use api_common::ApiServer;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"#;

#[test]
fn rollout_status_history_and_undo() {
    let api = ApiServer::start_with(
        tempfile::tempdir().expect("temp dir"),
        &["--hollow-nodes", "3"],
    );
    api.apply_text(DEPLOYMENT, &[]);
    let status = api.ok(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let ready = api.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready.trim(), "3");
    api.ok(&["set", "image", "deployment/web", "web=nginx:1.26"]);
    let status = api.ok(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let history = api.ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("REVISION") && history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    let undo = api.ok(&["rollout", "undo", "deployment/web"]);
    assert!(undo.contains("rolled back"), "{undo}");
    let status = api.ok(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let image = api.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.trim(), "nginx:1.25");
    let history = api.ok(&["rollout", "history", "deployment/web"]);
    let sets = api.ok(&["get", "rs", "-o", "json"]);
    assert!(
        history.contains("2 ") && history.contains("3 ") && !history.contains("\n1 "),
        "{history}\n{sets}"
    );
    let pods = api.ok(&["get", "pods", "-o", "wide"]);
    assert!(
        pods.contains("Running") && pods.contains("hollow-"),
        "{pods}"
    );
}
