//! API aggregation end to end: an APIService backed by a Service whose
//! endpoint is a real HTTPS server the test starts (`aggregated/server.py`,
//! serving `e2e.example.com/v1` Flunders), against `kcnode serve-api`,
//! driven with kubectl 1.32: the Available condition, discovery
//! (`kubectl api-resources`), requests proxied with the caller's name,
//! and what happens when the backend goes away.

mod api_common;
mod https_server;
mod kinds_common;

use std::time::{Duration, Instant};

use api_common::{ApiServer, stderr};
use https_server::HttpsServer;
use kinds_common::write_json;
use serde_json::{Value, json};

const API_SERVICE: &str = "v1.e2e.example.com";

fn must(api: &ApiServer, object: &Value) {
    let out = write_json(api, &["create"], object);
    assert!(out.status.success(), "create: {}", stderr(&out));
}

/// A selector-less Service `e2e-api` whose one endpoint is `port` on
/// this machine, and the APIService proxying `e2e.example.com/v1` to it.
fn register(api: &ApiServer, server: &HttpsServer) {
    must(
        api,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "e2e-api"},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.port}]}}),
    );
    must(
        api,
        &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e2e-api"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "https", "port": server.port}]}]}),
    );
    must(
        api,
        &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {"group": "e2e.example.com", "version": "v1", "groupPriorityMinimum": 2000,
                "versionPriority": 200, "caBundle": server.ca_b64,
                "service": {"namespace": "default", "name": "e2e-api", "port": 443}}}),
    );
}

fn available(api: &ApiServer) -> Value {
    let svc: Value =
        serde_json::from_str(&api.ok(&["get", "apiservice", API_SERVICE, "-o", "json"]))
            .expect("an APIService");
    svc["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("timed out after 30 s waiting for {what}");
}

#[test]
fn an_api_service_backed_by_a_service_is_proxied_and_discovered() {
    let server = HttpsServer::start("aggregated/server.py", &["e2e-api.default.svc"], &[]);
    let api = ApiServer::start();
    register(&api, &server);
    wait("the APIService to be Available", || {
        available(&api)["status"] == "True"
    });
    assert_eq!(available(&api)["reason"], "Passed");
    let printed = api.ok(&["get", "apiservices", API_SERVICE]);
    assert!(
        printed.contains("default/e2e-api") && printed.contains("True"),
        "{printed}"
    );

    // Discovery: the group in /apis, its resources in api-resources.
    let groups = api.ok(&["get", "--raw", "/apis"]);
    assert!(groups.contains("e2e.example.com/v1"), "{groups}");
    let group = api.ok(&["get", "--raw", "/apis/e2e.example.com"]);
    assert!(group.contains("\"kind\":\"APIGroup\""), "{group}");
    wait("kubectl api-resources to list flunders", || {
        api.ok(&["api-resources", "--api-group=e2e.example.com"])
            .contains("flunders")
    });

    // Requests go to the backend, which sees who asked.
    let list: Value = serde_json::from_str(&api.ok(&[
        "get",
        "--raw",
        "/apis/e2e.example.com/v1/namespaces/default/flunders",
    ]))
    .expect("the backend's list");
    assert_eq!(list["kind"], "FlunderList");
    assert_eq!(
        list["items"][0]["metadata"]["annotations"]["seen-user"],
        "kubernetes-admin"
    );
    let printed = api.ok(&["get", "flunders"]);
    assert!(printed.contains("flunder-1"), "{printed}");
    let one: Value =
        serde_json::from_str(&api.ok(&["get", "fl", "flunder-1", "-o", "json"])).unwrap();
    assert_eq!(one["kind"], "Flunder");
    let err = api.fails(&["get", "flunder", "nonesuch"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // Built-in groups are never proxied.
    api.ok(&["get", "deployments"]);
}

#[test]
fn the_built_in_groups_have_local_api_services() {
    let api = ApiServer::start();
    let printed = api.ok(&["get", "apiservices"]);
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for name in [
        "v1.",
        "v1.apps",
        "v1.batch",
        "v2.autoscaling",
        "v1beta1.metrics.k8s.io",
    ] {
        let row = rows
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no APIService {name}: {printed}"));
        assert_eq!(&row[1..3], ["Local", "True"], "{name}");
    }
    // A restart registers nothing twice.
    let api = api.restart(&[]);
    let again = api.ok(&["get", "apiservices"]);
    assert_eq!(again.lines().count(), printed.lines().count());
}

#[test]
fn an_api_service_whose_backend_is_gone_is_unavailable() {
    let server = HttpsServer::start("aggregated/server.py", &["e2e-api.default.svc"], &[]);
    let api = ApiServer::start();
    register(&api, &server);
    wait("the APIService to be Available", || {
        available(&api)["status"] == "True"
    });
    api.ok(&["delete", "endpoints", "e2e-api"]);
    wait("the APIService to lose its endpoints", || {
        available(&api)["reason"] == "MissingEndpoints"
    });
    assert_eq!(available(&api)["status"], "False");
    let err = api.fails(&[
        "get",
        "--raw",
        "/apis/e2e.example.com/v1/namespaces/default/flunders",
    ]);
    assert!(
        err.contains("ServiceUnavailable") || err.contains("503"),
        "{err}"
    );
    let printed = api.ok(&["get", "apiservices", API_SERVICE]);
    assert!(printed.contains("False (MissingEndpoints)"), "{printed}");
    api.ok(&["delete", "service", "e2e-api"]);
    wait("the APIService to lose its Service", || {
        available(&api)["reason"] == "ServiceNotFound"
    });
}

#[test]
fn an_api_service_with_the_wrong_ca_fails_its_discovery_check() {
    let server = HttpsServer::start("aggregated/server.py", &["e2e-api.default.svc"], &[]);
    let other = HttpsServer::start("aggregated/server.py", &["e2e-api.default.svc"], &[]);
    let api = ApiServer::start();
    register(&api, &server);
    api.ok(&[
        "patch",
        "apiservice",
        API_SERVICE,
        "--type=merge",
        "-p",
        &json!({"spec": {"caBundle": other.ca_b64}}).to_string(),
    ]);
    wait("the discovery check to fail", || {
        available(&api)["reason"] == "FailedDiscoveryCheck"
    });
    let message = available(&api)["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("https://e2e-api.default.svc:443/apis/e2e.example.com/v1"),
        "{message}"
    );
}
