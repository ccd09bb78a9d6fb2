//! Bad input at the API server's door, end to end: a real `kcnode
//! serve-api` gets a fixed number of seeded malformed bodies (mutated
//! objects, wrong types, huge numbers and strings, JSON and YAML nested
//! tens of thousands deep, YAML alias bombs, truncated and random bytes) on
//! create, replace and every patch type. Every answer is a 4xx (or a 2xx
//! when a mutation happens to be valid) with a `Status` body, never a 5xx
//! or a dropped connection; afterwards the server still serves and the
//! objects made before are still there. A request without credentials gets
//! 401 with a Status body.

mod api_common;

use std::process::Command;

use api_common::{ApiServer, stderr, stdout};
use kc_tests::fuzz;
use rand::Rng;
use serde_json::{Value, json};

const CASES: usize = 160;

/// One request with curl: (HTTP code, body).
fn request(
    api: &ApiServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let dir = api.dir.path();
    let input = dir.join("fuzz-body");
    let output = dir.join("fuzz-answer");
    std::fs::write(&input, body).expect("write body");
    let _ = std::fs::remove_file(&output);
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-o"])
        .arg(&output)
        .args(["-w", "%{http_code}", "-X", method, "--cacert"])
        .arg(api.ca_pem())
        .args(["-H", &format!("Content-Type: {content_type}")])
        .arg("--data-binary")
        .arg(format!("@{}", input.display()))
        .arg(format!("{}{path}", api.url));
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("run curl");
    let code = stdout(&out).trim().parse().unwrap_or(0);
    assert!(
        code != 0,
        "{method} {path}: no HTTP answer (connection dropped?): {}",
        stderr(&out)
    );
    (code, std::fs::read(&output).unwrap_or_default())
}

fn samples() -> Vec<(&'static str, &'static str, Value)> {
    let meta = |name: &str| json!({"name": name, "labels": {"app": "fuzz"}});
    vec![
        (
            "/api/v1/namespaces/default/configmaps",
            "configmaps/keep",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("keep"), "data": {"k": "v"}}),
        ),
        (
            "/api/v1/namespaces/default/pods",
            "pods/keep",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("keep"),
                   "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"],
                            "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            "deployments/keep",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("keep"),
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fuzz"}},
                            "template": {"metadata": {"labels": {"app": "fuzz"}},
                                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            "services/keep",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("keep"),
                   "spec": {"selector": {"app": "fuzz"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        ),
    ]
}

#[test]
fn malformed_bodies_get_4xx_statuses_and_lose_nothing() {
    kc_tests::require_program("curl", "curl");
    let api = ApiServer::start();
    let token = api.admin_token();
    let samples = samples();
    for (collection, _, sample) in &samples {
        let (code, body) = request(
            &api,
            Some(&token),
            "POST",
            collection,
            "application/json",
            sample.to_string().as_bytes(),
        );
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    }
    let mut rng = fuzz::rng(9);
    let mut codes = std::collections::BTreeMap::new();
    for case in 0..CASES {
        let (collection, _, sample) = &samples[rng.random_range(0..samples.len())];
        let (body, mut content_type) = fuzz::bad_body(&mut rng, sample);
        let item_path = format!("{collection}/keep");
        let (method, path) = match rng.random_range(0..6) {
            0 | 1 => ("POST", collection.to_string()),
            2 => ("PUT", item_path),
            3 => {
                content_type = "application/merge-patch+json";
                ("PATCH", item_path)
            }
            4 => {
                content_type = "application/strategic-merge-patch+json";
                ("PATCH", item_path)
            }
            _ => {
                content_type = if rng.random_range(0..2) == 0 {
                    "application/json-patch+json"
                } else {
                    "application/apply-patch+yaml"
                };
                ("PATCH", format!("{item_path}?fieldManager=fuzz&force=true"))
            }
        };
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        eprintln!(
            "case {case}: {method} {path} ({content_type}, {} bytes): {shown:.120}",
            body.len()
        );
        let (code, answer) = request(&api, Some(&token), method, &path, content_type, &body);
        *codes.entry(code).or_insert(0) += 1;
        assert!(
            code < 500,
            "case {case}: {method} {path} ({content_type}) answered {code}: {}\nbody sent: {shown}",
            String::from_utf8_lossy(&answer)
        );
        if code >= 400 {
            let status: Value = serde_json::from_slice(&answer).unwrap_or_else(|e| {
                panic!(
                    "case {case}: {code} without a Status body ({e}): {}\nbody sent: {shown}",
                    String::from_utf8_lossy(&answer)
                )
            });
            assert_eq!(status["kind"], "Status", "case {case}: {status}");
            assert!(
                status["message"].as_str().is_some_and(|m| !m.is_empty()),
                "case {case}: a Status without a message: {status}"
            );
        }
    }
    eprintln!("answers by HTTP code: {codes:?}");
    assert!(
        codes.keys().any(|c| *c >= 400),
        "no malformed body was refused: {codes:?}"
    );

    // Still serving, nothing lost.
    let out = api.ok(&["get", "--raw", "/readyz"]);
    assert!(out.contains("ok"), "{out}");
    for (_, item, _) in &samples {
        let out = api.kubectl(&["get", item, "-o", "name"]);
        assert!(out.status.success(), "{item} lost: {}", stderr(&out));
    }

    // No credentials: 401 with a Status.
    let (code, answer) = request(
        &api,
        None,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        b"",
    );
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&answer));
    let status: Value = serde_json::from_slice(&answer).expect("a Status body");
    assert_eq!(status["reason"], "Unauthorized", "{status}");
    let (code, _) = request(
        &api,
        Some("not-a-token"),
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        b"",
    );
    assert_eq!(code, 401, "a wrong token");
}
