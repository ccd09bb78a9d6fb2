//! Admission webhooks end to end: a real HTTPS webhook server (Python's
//! standard library, `webhooks/server.py`, with a CA and certificate made
//! by openssl) registered through Mutating/ValidatingWebhookConfigurations
//! against `kcnode serve-api`, driven with kubectl 1.32. Each conformance
//! behaviour of the AdmissionWebhook suite kc implements, named after its
//! codename and written from its description, plus the failure modes.

mod api_common;
mod https_server;
mod kinds_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use api_common::{ApiServer, stderr};
use https_server::HttpsServer;
use kinds_common::{raw, write_json};
use serde_json::{Value, json};

/// The webhook server the test started.
struct WebhookServer {
    https: HttpsServer,
    log: PathBuf,
}

impl WebhookServer {
    fn start() -> Self {
        let https = HttpsServer::start("webhooks/server.py", &[], &[]);
        let log = https.path("requests.jsonl");
        Self { https, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https.port)
    }

    /// The reviews `/record` has seen.
    fn recorded(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// One webhook calling `path` for `operations` on `resources` of `group`.
fn hook(
    server: &WebhookServer,
    name: &str,
    path: &str,
    group: &str,
    resources: &[&str],
    operations: &[&str],
) -> Value {
    json!({"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
        "timeoutSeconds": 10,
        "clientConfig": {"url": server.url(path), "caBundle": server.https.ca_b64},
        "namespaceSelector": {"matchExpressions": [{"key": "webhook-e2e", "operator": "NotIn", "values": ["skip"]}]},
        "rules": [{"operations": operations, "apiGroups": [group], "apiVersions": ["*"], "resources": resources}]})
}

fn configuration(kind: &str, name: &str, hooks: Vec<Value>) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name, "labels": {"e2e": "webhooks"}}, "webhooks": hooks})
}

fn create(api: &ApiServer, object: &Value) -> std::process::Output {
    write_json(api, &["create"], object)
}

fn must(api: &ApiServer, object: &Value) {
    let out = create(api, object);
    assert!(out.status.success(), "create: {}", stderr(&out));
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// Makes requests (`make(1)`, `make(2)`, ...) until one is refused, as
/// they are once a webhook is in force; that refusal's message.
fn refusal(what: &str, mut make: impl FnMut(u32) -> std::process::Output) -> String {
    let mut n = 0;
    let mut last = String::new();
    wait(what, || {
        n += 1;
        let out = make(n);
        last = stderr(&out);
        !out.status.success()
    });
    last
}

/// Makes requests until one succeeds.
fn allowance(what: &str, mut make: impl FnMut(u32) -> std::process::Output) {
    let mut n = 0;
    wait(what, || {
        n += 1;
        make(n).status.success()
    });
}

/// Waits until a non-compliant configmap is refused: the configurations
/// are in force (the API server follows them with a watch).
fn wait_denying(api: &ApiServer) {
    refusal("the validating webhook to be in force", |n| {
        create(
            api,
            &configmap(&format!("probe-{n}"), json!({"deny": "yes"})),
        )
    });
}

fn validating(server: &WebhookServer, api: &ApiServer, name: &str) {
    must(
        api,
        &configuration(
            "ValidatingWebhookConfiguration",
            name,
            vec![hook(
                server,
                "deny.e2e.example.com",
                "/validate",
                "",
                &["configmaps", "pods"],
                &["CREATE", "UPDATE"],
            )],
        ),
    );
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_be_able_to_deny_pod_and_configmap_creation()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    validating(&server, &api, "deny-config");
    wait_denying(&api);

    let out = create(&api, &configmap("refused", json!({"deny": "yes"})));
    let err = stderr(&out);
    assert!(
        err.contains(
            "admission webhook \"deny.e2e.example.com\" denied the request: the object carries what the e2e webhook refuses"
        ),
        "{err}"
    );
    assert!(
        api.fails(&["get", "configmap", "refused"])
            .contains("NotFound")
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "refused-pod", "labels": {"webhook-e2e": "deny"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    assert!(!create(&api, &pod).status.success(), "a non-compliant pod");

    // A compliant object is created, with the webhook's warning.
    let out = create(&api, &configmap("compliant", json!({"ok": "yes"})));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Warning: validated by the e2e webhook"),
        "{}",
        stderr(&out)
    );
    // Updating or patching it to be non-compliant is refused.
    let err = api.fails(&[
        "patch",
        "configmap",
        "compliant",
        "--type=merge",
        "-p",
        r#"{"data":{"deny":"now"}}"#,
    ]);
    assert!(err.contains("denied the request"), "{err}");
    let mut current: Value =
        serde_json::from_str(&api.ok(&["get", "configmap", "compliant", "-o", "json"])).unwrap();
    current["data"]["deny"] = json!("again");
    let out = write_json(&api, &["replace"], &current);
    assert!(!out.status.success(), "an update to non-compliance");

    // A namespace the webhook's namespaceSelector leaves out is not checked.
    api.ok(&["create", "namespace", "exempt"]);
    api.ok(&["label", "namespace", "exempt", "webhook-e2e=skip"]);
    let out = write_json(
        &api,
        &["create", "-n", "exempt"],
        &configmap("exempt", json!({"deny": "yes"})),
    );
    assert!(out.status.success(), "exempt namespace: {}", stderr(&out));

    // A webhook that hangs times the create out, and refuses it.
    let mut slow = hook(
        &server,
        "slow.e2e.example.com",
        "/slow",
        "",
        &["configmaps"],
        &["CREATE"],
    );
    slow["timeoutSeconds"] = json!(1);
    must(
        &api,
        &configuration("ValidatingWebhookConfiguration", "slow-config", vec![slow]),
    );
    let last = refusal("the hanging webhook to time creates out", |n| {
        create(
            &api,
            &configmap(&format!("hangs-{n}"), json!({"ok": "yes"})),
        )
    });
    assert!(
        last.contains("failed calling webhook \"slow.e2e.example.com\"")
            && last.contains("context deadline exceeded"),
        "{last}"
    );
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_mutate_configmap() {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    must(
        &api,
        &configuration(
            "MutatingWebhookConfiguration",
            "ordered",
            vec![
                hook(
                    &server,
                    "stage1.e2e.example.com",
                    "/stage1",
                    "",
                    &["configmaps"],
                    &["CREATE"],
                ),
                hook(
                    &server,
                    "stage2.e2e.example.com",
                    "/stage2",
                    "",
                    &["configmaps"],
                    &["CREATE"],
                ),
            ],
        ),
    );
    let mut n = 0;
    wait("both mutations", || {
        n += 1;
        let name = format!("mutated-{n}");
        must(&api, &configmap(&name, json!({"mutation-start": "yes"})));
        let cm: Value =
            serde_json::from_str(&api.ok(&["get", "configmap", &name, "-o", "json"])).unwrap();
        cm["data"]["mutation-stage-1"] == "yes" && cm["data"]["mutation-stage-2"] == "yes"
    });
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_mutate_pod_and_apply_defaults_after_mutation()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    must(
        &api,
        &configuration(
            "MutatingWebhookConfiguration",
            "init",
            vec![hook(
                &server,
                "init.e2e.example.com",
                "/init",
                "",
                &["pods"],
                &["CREATE"],
            )],
        ),
    );
    let mut n = 0;
    wait("the webhook's init container, defaulted", || {
        n += 1;
        let name = format!("webhook-pod-{n}");
        must(
            &api,
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        );
        let pod: Value =
            serde_json::from_str(&api.ok(&["get", "pod", &name, "-o", "json"])).unwrap();
        let init = &pod["spec"]["initContainers"][0];
        init["name"] == "webhook-added-init-container" && init["terminationMessagePolicy"] == "File"
    });
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_honor_timeout() {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    let timed = |name: &str, timeout: u64, policy: &str| {
        let mut h = hook(
            &server,
            &format!("{name}.e2e.example.com"),
            "/slow",
            "",
            &["configmaps"],
            &["CREATE"],
        );
        h["timeoutSeconds"] = json!(timeout);
        h["failurePolicy"] = json!(policy);
        h["namespaceSelector"] = json!({"matchLabels": {"e2e-timeout": name}});
        h
    };
    // Made in this order, so once the last is in force the others are.
    for (name, timeout, policy) in [
        ("short-ignore", 1, "Ignore"),
        ("long", 10, "Fail"),
        ("short-fail", 1, "Fail"),
    ] {
        api.ok(&["create", "namespace", name]);
        api.ok(&["label", "namespace", name, &format!("e2e-timeout={name}")]);
        must(
            &api,
            &configuration(
                "ValidatingWebhookConfiguration",
                name,
                vec![timed(name, timeout, policy)],
            ),
        );
    }
    let create_in =
        |ns: &str, name: &str| write_json(&api, &["create", "-n", ns], &configmap(name, json!({})));
    let last = refusal("the 1 s Fail webhook to time out", |n| {
        create_in("short-fail", &format!("cm-{n}"))
    });
    assert!(last.contains("context deadline exceeded"), "{last}");
    let started = Instant::now();
    let out = create_in("short-ignore", "ignored");
    assert!(out.status.success(), "Ignore: {}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the 1 s timeout held"
    );
    let started = Instant::now();
    let out = create_in("long", "waited");
    assert!(out.status.success(), "10 s timeout: {}", stderr(&out));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "the create waited for the 5 s webhook: {waited:?}"
    );
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_unconditionally_reject_operations_on_fail_closed_webhook()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    let mut closed = hook(
        &server,
        "fail-closed.e2e.example.com",
        "/validate",
        "",
        &["configmaps"],
        &["CREATE"],
    );
    closed["clientConfig"] = json!({"url": server.url("/validate")});
    must(
        &api,
        &configuration(
            "ValidatingWebhookConfiguration",
            "fail-closed",
            vec![closed],
        ),
    );
    let last = refusal("the fail-closed webhook to refuse", |n| {
        create(&api, &configmap(&format!("closed-{n}"), json!({})))
    });
    assert!(
        last.contains("failed calling webhook \"fail-closed.e2e.example.com\"")
            && last.contains("caBundle"),
        "{last}"
    );
}

#[test]
fn webhooks_that_answer_garbage_fail_the_request_or_are_ignored() {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    let garbage = hook(
        &server,
        "garbage.e2e.example.com",
        "/garbage",
        "",
        &["configmaps"],
        &["CREATE"],
    );
    must(
        &api,
        &configuration("ValidatingWebhookConfiguration", "garbage", vec![garbage]),
    );
    let last = refusal("the garbage webhook to fail creates", |n| {
        create(&api, &configmap(&format!("g-{n}"), json!({})))
    });
    assert!(last.contains("received invalid webhook response"), "{last}");
    let mut config: Value = serde_json::from_str(&api.ok(&[
        "get",
        "validatingwebhookconfiguration",
        "garbage",
        "-o",
        "json",
    ]))
    .unwrap();
    config["webhooks"][0]["failurePolicy"] = json!("Ignore");
    let out = write_json(&api, &["replace"], &config);
    assert!(out.status.success(), "{}", stderr(&out));
    allowance("Ignore to let creates through", |n| {
        create(&api, &configmap(&format!("g-{n}"), json!({})))
    });
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_not_be_able_to_mutate_or_prevent_deletion_of_webhook_configuration_objects()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    let resources = [
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    ];
    must(
        &api,
        &configuration(
            "ValidatingWebhookConfiguration",
            "deny-configs",
            vec![hook(
                &server,
                "deny-all.e2e.example.com",
                "/deny-all",
                "admissionregistration.k8s.io",
                &resources,
                &["*"],
            )],
        ),
    );
    must(
        &api,
        &configuration(
            "MutatingWebhookConfiguration",
            "label-configs",
            vec![
                hook(
                    &server,
                    "label.e2e.example.com",
                    "/label",
                    "admissionregistration.k8s.io",
                    &resources,
                    &["*"],
                ),
                // The same configuration on configmaps shows it is in force.
                hook(
                    &server,
                    "label-cm.e2e.example.com",
                    "/label",
                    "",
                    &["configmaps"],
                    &["CREATE"],
                ),
            ],
        ),
    );
    let mut n = 0;
    wait("the labelling webhook to be in force", || {
        n += 1;
        let name = format!("in-force-{n}");
        must(&api, &configmap(&name, json!({})));
        let cm: Value =
            serde_json::from_str(&api.ok(&["get", "configmap", &name, "-o", "json"])).unwrap();
        cm["metadata"]["labels"]["mutated"] == "yes"
    });
    let victim = configuration("ValidatingWebhookConfiguration", "victim", vec![]);
    must(&api, &victim);
    let got: Value = serde_json::from_str(&api.ok(&[
        "get",
        "validatingwebhookconfiguration",
        "victim",
        "-o",
        "json",
    ]))
    .unwrap();
    assert!(got["metadata"]["labels"].get("mutated").is_none(), "{got}");
    api.ok(&["delete", "validatingwebhookconfiguration", "victim"]);
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_listing_validating_webhooks_should_work()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    for i in 0..10 {
        validating(&server, &api, &format!("listed-{i}"));
    }
    let list: Value = serde_json::from_str(&api.ok(&[
        "get",
        "validatingwebhookconfigurations",
        "-l",
        "e2e=webhooks",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 10);
    wait_denying(&api);
    api.ok(&[
        "delete",
        "validatingwebhookconfigurations",
        "-l",
        "e2e=webhooks",
    ]);
    allowance("creates to be allowed again", |n| {
        create(
            &api,
            &configmap(&format!("free-{n}"), json!({"deny": "yes"})),
        )
    });
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_listing_mutating_webhooks_should_work()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    for i in 0..10 {
        must(
            &api,
            &configuration(
                "MutatingWebhookConfiguration",
                &format!("labels-{i}"),
                vec![hook(
                    &server,
                    "label.e2e.example.com",
                    "/label",
                    "",
                    &["configmaps"],
                    &["CREATE"],
                )],
            ),
        );
    }
    let labelled = |name: &str| -> bool {
        let cm: Value =
            serde_json::from_str(&api.ok(&["get", "configmap", name, "-o", "json"])).unwrap();
        cm["metadata"]["labels"]["mutated"] == "yes"
    };
    let mut n = 0;
    wait("configmaps to be mutated", || {
        n += 1;
        let name = format!("m-{n}");
        must(&api, &configmap(&name, json!({})));
        labelled(&name)
    });
    api.ok(&[
        "delete",
        "mutatingwebhookconfigurations",
        "-l",
        "e2e=webhooks",
    ]);
    wait("configmaps to be left alone", || {
        n += 1;
        let name = format!("m-{n}");
        must(&api, &configmap(&name, json!({})));
        !labelled(&name)
    });
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_patching_updating_a_validating_webhook_should_work()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    validating(&server, &api, "patched");
    wait_denying(&api);
    api.ok(&[
        "patch",
        "validatingwebhookconfiguration",
        "patched",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["UPDATE"]}]"#,
    ]);
    allowance("creates to pass the UPDATE-only webhook", |n| {
        create(&api, &configmap(&format!("p-{n}"), json!({"deny": "yes"})))
    });
    api.ok(&[
        "patch",
        "validatingwebhookconfiguration",
        "patched",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["CREATE"]}]"#,
    ]);
    wait_denying(&api);
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_include_webhook_resources_in_discovery_documents()
 {
    let api = ApiServer::start();
    let groups = raw(&api, "/apis");
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "admissionregistration.k8s.io")
        .cloned()
        .expect("the group in /apis");
    assert!(
        group["versions"]
            .to_string()
            .contains("admissionregistration.k8s.io/v1")
    );
    let resources = raw(&api, "/apis/admissionregistration.k8s.io/v1");
    let names = resources["resources"].to_string();
    for r in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        assert!(names.contains(r), "{r}: {names}");
    }
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_be_able_to_deny_custom_resource_creation_update_and_deletion()
 {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.e2e.example.com"},
        "spec": {"group": "e2e.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    must(&api, &crd);
    wait("the CRD to be served", || {
        api.kubectl(&["get", "widgets"]).status.success()
    });
    let widget = |name: &str, data: Value| json!({"apiVersion": "e2e.example.com/v1", "kind": "Widget", "metadata": {"name": name}, "data": data});
    // Made before the webhook: then updated and deleted under it.
    must(&api, &widget("old", json!({"ok": "yes"})));
    must(&api, &widget("doomed", json!({"deny": "yes"})));
    must(
        &api,
        &configuration(
            "ValidatingWebhookConfiguration",
            "deny-widgets",
            vec![hook(
                &server,
                "deny-widgets.e2e.example.com",
                "/validate",
                "e2e.example.com",
                &["widgets"],
                &["CREATE", "UPDATE", "DELETE"],
            )],
        ),
    );
    refusal("widget creates to be refused", |n| {
        create(&api, &widget(&format!("w-{n}"), json!({"deny": "yes"})))
    });
    let err = api.fails(&[
        "patch",
        "widgets",
        "old",
        "--type=merge",
        "-p",
        r#"{"data":{"deny":"now"}}"#,
    ]);
    assert!(err.contains("denied the request"), "{err}");
    let err = api.fails(&["delete", "widget", "doomed"]);
    assert!(err.contains("denied the request"), "{err}");
    assert!(api.kubectl(&["get", "widget", "doomed"]).status.success());
}

#[test]
fn sig_api_machinery_admission_webhook_privileged_cluster_admin_should_deny_crd_creation() {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    must(
        &api,
        &configuration(
            "ValidatingWebhookConfiguration",
            "deny-crds",
            vec![hook(
                &server,
                "deny-crd.e2e.example.com",
                "/deny-all",
                "apiextensions.k8s.io",
                &["customresourcedefinitions"],
                &["CREATE"],
            )],
        ),
    );
    let last = refusal("CRD creates to be refused", |n| {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("things{n}.e2e.example.com")},
            "spec": {"group": "e2e.example.com", "scope": "Namespaced",
                "names": {"plural": format!("things{n}"), "kind": format!("Thing{n}")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        create(&api, &crd)
    });
    assert!(last.contains("denied by the e2e webhook"), "{last}");
}

#[test]
fn webhooks_receive_the_caller_the_operation_and_dry_run() {
    let server = WebhookServer::start();
    let api = ApiServer::start();
    must(
        &api,
        &configuration(
            "ValidatingWebhookConfiguration",
            "record",
            vec![hook(
                &server,
                "record.e2e.example.com",
                "/record",
                "",
                &["configmaps"],
                &["*"],
            )],
        ),
    );
    let mut n = 0;
    wait("a recorded review", || {
        n += 1;
        must(&api, &configmap(&format!("r-{n}"), json!({})));
        !server.recorded().is_empty()
    });
    let out = write_json(
        &api,
        &["create", "--dry-run=server"],
        &configmap("dry", json!({})),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    api.ok(&["delete", "configmap", "r-1"]);
    let reviews = server.recorded();
    let first = &reviews[0];
    assert_eq!(first["operation"], "CREATE");
    assert_eq!(first["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(first["kind"]["kind"], "ConfigMap");
    assert_eq!(first["namespace"], "default");
    let dry = reviews
        .iter()
        .find(|r| r["name"] == "dry")
        .expect("the dry-run create was reviewed");
    assert_eq!(dry["dryRun"], true);
    let delete = reviews
        .iter()
        .find(|r| r["operation"] == "DELETE")
        .expect("the delete was reviewed");
    assert_eq!(delete["oldObject"]["metadata"]["name"], "r-1");
    assert!(delete["object"].is_null());
    assert!(api.fails(&["get", "configmap", "dry"]).contains("NotFound"));
}
