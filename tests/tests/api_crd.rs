//! CustomResourceDefinitions end to end, driven with kubectl 1.32 against
//! `kcnode serve-api`: the conformance behaviours of
//! `[sig-api-machinery] CustomResourceDefinition ...` and
//! `CustomResourcePublishOpenAPI ...` (each test named after its codename,
//! written from its description), and what a user of a CRD does first:
//! apply it, apply a custom resource, see its printer columns, get refused
//! with Kubernetes' messages, scale it, patch its status, delete the CRD
//! and see its custom resources go.

mod api_common;

use std::time::{Duration, Instant};

use api_common::{ApiServer, stdout};
use serde_json::{Value, json};

/// A CRD `<plural>.<group>` with one or more versions sharing `schema`.
fn crd(group: &str, plural: &str, kind: &str, versions: &[&str], schema: Value) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": schema}})
        })
        .collect();
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind, "singular": kind.to_lowercase()},
            "versions": versions}})
}

fn crontab_schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["cronSpec"], "description": "The CronTab's schedule and image.",
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$",
                    "description": "When to run, in cron syntax."},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
            }},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    }})
}

/// The CronTab CRD of Kubernetes' documentation, with columns and subresources.
fn crontab_crd() -> Value {
    let mut c = crd(
        "stable.example.com",
        "crontabs",
        "CronTab",
        &["v1"],
        crontab_schema(),
    );
    c["spec"]["names"]["shortNames"] = json!(["ct"]);
    c["spec"]["names"]["categories"] = json!(["all"]);
    c["spec"]["versions"][0]["subresources"] = json!({"status": {},
        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}});
    c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]);
    c
}

fn apply(api: &ApiServer, object: &Value) {
    let out = api.apply_text(&object.to_string(), &[]);
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_json(api: &ApiServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&api.ok(&all)).expect("kubectl -o json prints JSON")
}

fn raw(api: &ApiServer, path: &str) -> Value {
    serde_json::from_str(&api.ok(&["get", "--raw", path])).expect("a JSON document")
}

/// Polls `check` for up to 30 s.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not seen in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the CRD is Established and its resource is in discovery.
fn established(api: &ApiServer, name: &str) {
    eventually(&format!("{name} Established"), || {
        let out = api.kubectl(&[
            "get",
            "crd",
            name,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
        ]);
        (stdout(&out) == "True").then_some(())
    });
}

fn create_cr(api: &ApiServer, object: Value) -> std::process::Output {
    let path = std::env::temp_dir().join(format!(
        "kc-crd-{}-{}.json",
        std::process::id(),
        object["metadata"]["name"].as_str().unwrap_or("x")
    ));
    std::fs::write(&path, object.to_string()).expect("write the object");
    let out = api.kubectl(&["create", "-f", path.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn a_crd_serves_its_custom_resources_like_kubernetes() {
    let api = ApiServer::start();
    apply(&api, &crontab_crd());
    established(&api, "crontabs.stable.example.com");
    assert_eq!(
        api.ok(&[
            "get",
            "crd",
            "crontabs.stable.example.com",
            "-o",
            "jsonpath={.status.acceptedNames.kind} {.status.storedVersions}"
        ]),
        r#"CronTab ["v1"]"#
    );
    let resources = api.ok(&["api-resources", "--api-group=stable.example.com"]);
    assert!(
        resources.contains("crontabs") && resources.contains("ct") && resources.contains("CronTab"),
        "{resources}"
    );

    // kubectl validates on the server (fieldValidation=Strict): an unknown
    // field is refused, as Kubernetes words it.
    let ct = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "my-new-cron-object"},
        "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "junk": true}});
    let err = api_common::stderr(&api.apply_text(&ct.to_string(), &[]));
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.junk""#),
        "{err}"
    );
    // Without validation the unknown field is pruned, with a warning.
    let out = api.apply_text(&ct.to_string(), &["--validate=false"]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));
    let stored = get_json(&api, &["get", "ct", "my-new-cron-object"]);
    assert!(stored["spec"].get("junk").is_none(), "not pruned: {stored}");
    assert_eq!(stored["spec"]["replicas"], 1, "not defaulted: {stored}");
    assert_eq!(stored["metadata"]["generation"], 1);

    // Printer columns, and the category `all`.
    let table = api.ok(&["get", "crontabs"]);
    let rows = api_common::rows(&table);
    assert_eq!(rows[0], ["NAME", "SPEC", "REPLICAS", "AGE"], "{table}");
    assert_eq!(&rows[1][..3], ["my-new-cron-object", "*", "*"], "{table}");
    assert!(
        api.ok(&["get", "all"])
            .contains("crontab.stable.example.com/my-new-cron-object")
    );

    // Schema validation with Kubernetes' messages.
    let bad = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "bad"}, "spec": {"cronSpec": "nope", "replicas": 20}});
    let err = api_common::stderr(&create_cr(&api, bad));
    assert!(
        err.contains(r#"The CronTab "bad" is invalid"#)
            && err.contains(r#"spec.cronSpec: Invalid value: "nope": spec.cronSpec in body should match"#)
            && err.contains("spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
    let missing = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "bad"}, "spec": {"image": "x"}});
    let err = api_common::stderr(&create_cr(&api, missing));
    assert!(err.contains("spec.cronSpec: Required value"), "{err}");

    // The scale and status subresources.
    api.ok(&["scale", "ct", "my-new-cron-object", "--replicas=3"]);
    assert_eq!(
        api.ok(&[
            "get",
            "ct",
            "my-new-cron-object",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    api.ok(&[
        "patch",
        "ct",
        "my-new-cron-object",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":3}}"#,
    ]);
    let scale = raw(
        &api,
        "/apis/stable.example.com/v1/namespaces/default/crontabs/my-new-cron-object/scale",
    );
    assert_eq!(
        (
            scale["kind"].clone(),
            scale["spec"]["replicas"].clone(),
            scale["status"]["replicas"].clone()
        ),
        (json!("Scale"), json!(3), json!(3))
    );
    // The main resource ignores status; the generation follows the spec.
    api.ok(&[
        "patch",
        "ct",
        "my-new-cron-object",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":9},"spec":{"image":"v2"}}"#,
    ]);
    let now = get_json(&api, &["get", "ct", "my-new-cron-object"]);
    assert_eq!(
        (
            now["status"]["replicas"].clone(),
            now["metadata"]["generation"].clone()
        ),
        (json!(3), json!(3)),
        "{now}"
    );

    // Server-side apply of a custom resource.
    let applied = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "applied"}, "spec": {"cronSpec": "0 * * * *"}});
    let out = api.apply_text(&applied.to_string(), &["--server-side"]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));

    // Deleting the CRD deletes its custom resources, then the CRD.
    api.ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--wait=true",
    ]);
    eventually("the CRD gone", || {
        let out = api.kubectl(&["get", "crd", "crontabs.stable.example.com"]);
        (!out.status.success()).then_some(())
    });
    // Created again, it serves an empty collection: nothing outlived it.
    apply(&api, &crontab_crd());
    established(&api, "crontabs.stable.example.com");
    let list = eventually("the new CRD's collection", || {
        let out = api.kubectl(&["get", "crontabs", "-A", "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    });
    assert_eq!(list["items"], json!([]), "{list}");
}

#[test]
fn bad_crds_are_refused_with_kubernetes_messages() {
    let api = ApiServer::start();
    let mut bad = crd("apps", "Foos", "Foo", &["v1"], json!({"type": "object"}));
    bad["metadata"]["name"] = json!("x");
    bad["spec"]["scope"] = json!("Nope");
    bad["spec"]["versions"][0]["storage"] = json!(false);
    bad["spec"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let err = api_common::stderr(&create_cr(&api, bad));
    for want in [
        r#"The CustomResourceDefinition "x" is invalid"#,
        r#"spec.group: Invalid value: "apps": should be a domain with at least one dot"#,
        r#"spec.names.plural: Invalid value: "Foos""#,
        r#"metadata.name: Invalid value: "x": must be spec.names.plural+"."+spec.group"#,
        r#"spec.scope: Unsupported value: "Nope""#,
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        "must have exactly one version marked as storage version",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let mut unstructural = crd(
        "bad.example.com",
        "things",
        "Thing",
        &["v1"],
        json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "array"}}}}}),
    );
    unstructural["metadata"]["name"] = json!("things.bad.example.com");
    let err = api_common::stderr(&create_cr(&api, unstructural));
    assert!(
        err.contains(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value"
        ) && err.contains("properties[a].items: Required value"),
        "{err}"
    );
    assert!(
        api.ok(&["get", "crd"]).trim().is_empty() || !api.ok(&["get", "crd"]).contains("things")
    );
}

#[test]
fn sig_api_machinery_custom_resource_definition_resources_simple_custom_resource_definition_creating_deleting_custom_resource_definition_objects_works()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "mygroup.example.com",
            "noxus",
            "Noxu",
            &["v1"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        ),
    );
    established(&api, "noxus.mygroup.example.com");
    api.ok(&["delete", "crd", "noxus.mygroup.example.com"]);
    eventually("the CRD deleted", || {
        (!api
            .kubectl(&["get", "crd", "noxus.mygroup.example.com"])
            .status
            .success())
        .then_some(())
    });
}

#[test]
fn sig_api_machinery_custom_resource_definition_resources_simple_custom_resource_definition_listing_custom_resource_definition_objects_works()
 {
    let api = ApiServer::start();
    for i in 0..10 {
        let mut c = crd(
            &format!("g{i}.example.com"),
            "widgets",
            "Widget",
            &["v1"],
            json!({"type": "object"}),
        );
        c["metadata"]["labels"] = json!({"e2e-list-test": "listed"});
        apply(&api, &c);
    }
    apply(
        &api,
        &crd(
            "other.example.com",
            "widgets",
            "Widget",
            &["v1"],
            json!({"type": "object"}),
        ),
    );
    let listed = get_json(&api, &["get", "crd", "-l", "e2e-list-test=listed"]);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(10));
    api.ok(&["delete", "crd", "-l", "e2e-list-test=listed"]);
    let left = eventually("the labeled CRDs deleted", || {
        let all = get_json(&api, &["get", "crd"]);
        (all["items"].as_array().map(Vec::len) == Some(1)).then_some(all)
    });
    assert_eq!(
        left["items"][0]["metadata"]["name"],
        "widgets.other.example.com"
    );
}

#[test]
fn sig_api_machinery_custom_resource_definition_resources_simple_custom_resource_definition_getting_updating_patching_custom_resource_definition_status_sub_resource_works()
 {
    let api = ApiServer::start();
    let name = "noxus.status.example.com";
    apply(
        &api,
        &crd(
            "status.example.com",
            "noxus",
            "Noxu",
            &["v1"],
            json!({"type": "object"}),
        ),
    );
    established(&api, name);
    let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}/status");
    let got = raw(&api, &path);
    assert_eq!(got["kind"], "CustomResourceDefinition");
    // Update: a condition of the test's own, kept beside the server's.
    let mut updated = got.clone();
    updated["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "StatusUpdated", "status": "True", "reason": "E2E", "message": "Set from e2e test", "lastTransitionTime": "2026-01-01T00:00:00Z"}));
    let file = std::env::temp_dir().join(format!("kc-crd-status-{}.json", std::process::id()));
    std::fs::write(&file, updated.to_string()).unwrap();
    api.ok(&[
        "replace",
        "--subresource=status",
        "-f",
        file.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&file);
    let types = || {
        api.ok(&[
            "get",
            "crd",
            name,
            "-o",
            "jsonpath={.status.conditions[*].type}",
        ])
    };
    assert!(types().contains("StatusUpdated"), "{}", types());
    // Patch: another condition.
    api.ok(&["patch", "crd", name, "--subresource=status", "--type=json", "-p",
        r#"[{"op":"add","path":"/status/conditions/-","value":{"type":"StatusPatched","status":"True","reason":"E2E","message":"Set from e2e test","lastTransitionTime":"2026-01-01T00:00:00Z"}}]"#]);
    std::thread::sleep(Duration::from_millis(500));
    let now = types();
    assert!(
        now.contains("StatusUpdated")
            && now.contains("StatusPatched")
            && now.contains("Established"),
        "{now}"
    );
}

#[test]
fn sig_api_machinery_custom_resource_definition_resources_should_include_custom_resource_definition_resources_in_discovery_documents()
 {
    let api = ApiServer::start();
    let groups = raw(&api, "/apis");
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "apiextensions.k8s.io")
        .cloned()
        .expect("/apis lists apiextensions.k8s.io");
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        "apiextensions.k8s.io/v1"
    );
    let doc = raw(&api, "/apis/apiextensions.k8s.io");
    assert_eq!(
        doc["versions"][0]["groupVersion"],
        "apiextensions.k8s.io/v1"
    );
    let list = raw(&api, "/apis/apiextensions.k8s.io/v1");
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "customresourcedefinitions"),
        "{list}"
    );
}

#[test]
fn sig_api_machinery_custom_resource_definition_resources_custom_resource_defaulting_for_requests_and_from_storage_works()
 {
    let api = ApiServer::start();
    let name = "widgets.defaults.example.com";
    let schema = |defaults: Value| {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}}}}})
        .pipe(|mut s| {
            for (k, v) in defaults.as_object().unwrap() {
                s["properties"]["spec"]["properties"][k]["default"] = v.clone();
            }
            s
        })
    };
    apply(
        &api,
        &crd(
            "defaults.example.com",
            "widgets",
            "Widget",
            &["v1"],
            schema(json!({})),
        ),
    );
    established(&api, name);
    let cr = |n: &str| json!({"apiVersion": "defaults.example.com/v1", "kind": "Widget", "metadata": {"name": n}, "spec": {}});
    assert!(create_cr(&api, cr("first")).status.success());
    let spec =
        |n: &str| get_json(&api, &["get", "widgets.defaults.example.com", n])["spec"].clone();
    assert_eq!(spec("first"), json!({}));
    // A default added: read from storage, the old object has it.
    apply(
        &api,
        &crd(
            "defaults.example.com",
            "widgets",
            "Widget",
            &["v1"],
            schema(json!({"a": "A"})),
        ),
    );
    eventually("the default a on the stored object", || {
        (spec("first")["a"] == "A").then_some(())
    });
    // A new object gets it on the request (so it is stored).
    assert!(create_cr(&api, cr("second")).status.success());
    assert_eq!(spec("second")["a"], "A");
    // The default moved to b: b appears; the stored a of the second stays.
    apply(
        &api,
        &crd(
            "defaults.example.com",
            "widgets",
            "Widget",
            &["v1"],
            schema(json!({"b": "B"})),
        ),
    );
    eventually("the default b", || {
        (spec("second")["b"] == "B").then_some(())
    });
    assert_eq!(spec("second")["a"], "A");
}

/// `.pipe` for building values inline.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for Value {}

#[test]
fn sig_api_machinery_custom_resource_definition_watch_privileged_cluster_admin_custom_resource_definition_watch_watch_on_custom_resource_definition_objects()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "watch.example.com",
            "noxus",
            "Noxu",
            &["v1beta1"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        ),
    );
    established(&api, "noxus.watch.example.com");
    let watch = api
        .kubectl_cmd(&[
            "get",
            "--raw",
            "/apis/watch.example.com/v1beta1/namespaces/default/noxus?watch=true&timeoutSeconds=6",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(Duration::from_millis(800));
    let noxu = json!({"apiVersion": "watch.example.com/v1beta1", "kind": "Noxu", "metadata": {"name": "name1"}, "content": {"key": "value"}});
    assert!(create_cr(&api, noxu).status.success());
    api.ok(&[
        "patch",
        "noxus.watch.example.com",
        "name1",
        "--type=merge",
        "-p",
        r#"{"dummy":"test"}"#,
    ]);
    api.ok(&["delete", "noxus.watch.example.com", "name1"]);
    let out = watch
        .wait_with_output()
        .expect("the watch ends at its timeout");
    let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
}

/// The OpenAPI v3 index's paths.
fn openapi_paths(api: &ApiServer) -> Vec<String> {
    raw(api, "/openapi/v3")["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn published(api: &ApiServer, gv: &str, kind: &str) -> bool {
    let out = api.kubectl(&["get", "--raw", &format!("/openapi/v3/apis/{gv}")]);
    out.status.success()
        && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|d| {
            d["components"]["schemas"]
                .as_object()
                .is_some_and(|s| s.keys().any(|k| k.ends_with(&format!(".{kind}"))))
        })
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_crd_with_validation_schema()
 {
    let api = ApiServer::start();
    apply(&api, &crontab_crd());
    established(&api, "crontabs.stable.example.com");
    eventually("published", || {
        published(&api, "stable.example.com/v1", "CronTab").then_some(())
    });
    let good = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "good"}, "spec": {"cronSpec": "* * * * *"}});
    assert!(api.apply_text(&good.to_string(), &[]).status.success());
    let unknown = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "u"}, "spec": {"cronSpec": "* * * * *", "nope": 1}});
    assert!(!api.apply_text(&unknown.to_string(), &[]).status.success());
    let required = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "r"}, "spec": {}});
    assert!(!api.apply_text(&required.to_string(), &[]).status.success());
    let explain = api.ok(&["explain", "crontabs"]);
    assert!(
        explain.contains("KIND:       CronTab") && explain.contains("spec"),
        "{explain}"
    );
    let nested = api.ok(&["explain", "crontabs.spec"]);
    assert!(
        nested.contains("cronSpec") && nested.contains("When to run, in cron syntax."),
        "{nested}"
    );
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_crd_preserving_unknown_fields_at_the_schema_root()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "root.example.com",
            "things",
            "Thing",
            &["v1"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        ),
    );
    established(&api, "things.root.example.com");
    let any = json!({"apiVersion": "root.example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "a": {"b": 1}, "spec": {"c": true}});
    let out = api.apply_text(&any.to_string(), &[]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));
    assert_eq!(get_json(&api, &["get", "things", "t"])["a"]["b"], 1);
    assert!(api.ok(&["explain", "things"]).contains("KIND:       Thing"));
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_crd_preserving_unknown_fields_in_an_embedded_object()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "embedded.example.com",
            "things",
            "Thing",
            &["v1"],
            json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "description": "Specification of Thing"}}}),
        ),
    );
    established(&api, "things.embedded.example.com");
    let any = json!({"apiVersion": "embedded.example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"free": {"form": 1}}});
    let out = api.apply_text(&any.to_string(), &[]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));
    assert_eq!(
        get_json(&api, &["get", "things", "t"])["spec"]["free"]["form"],
        1
    );
    assert!(
        api.ok(&["explain", "things.spec"])
            .contains("Specification of Thing")
    );
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_crd_without_validation_schema()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "noschema.example.com",
            "things",
            "Thing",
            &["v1"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        ),
    );
    established(&api, "things.noschema.example.com");
    let any = json!({"apiVersion": "noschema.example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "whatever": [1, 2]});
    assert!(api.apply_text(&any.to_string(), &[]).status.success());
    assert!(api.ok(&["explain", "things"]).contains("DESCRIPTION:"));
}

/// Applies a CRD per `(group, plural, kind)` and waits until each kind's
/// schema is in its group-version's OpenAPI document.
fn all_published(api: &ApiServer, crds: &[(&str, &str, &str)]) {
    for (group, plural, kind) in crds {
        apply(api, &crd(group, plural, kind, &["v1"], crontab_schema()));
    }
    eventually("every CRD published", || {
        crds.iter()
            .all(|(group, _, kind)| published(api, &format!("{group}/v1"), kind))
            .then_some(())
    });
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_multiple_crds_of_different_groups()
 {
    let api = ApiServer::start();
    all_published(
        &api,
        &[
            ("one.example.com", "foos", "Foo"),
            ("two.example.com", "bars", "Bar"),
        ],
    );
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_multiple_crds_of_same_group_and_version_but_different_kinds()
 {
    let api = ApiServer::start();
    all_published(
        &api,
        &[
            ("same.example.com", "foos", "Foo"),
            ("same.example.com", "bars", "Bar"),
        ],
    );
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_works_for_multiple_crds_of_same_group_but_different_versions()
 {
    let api = ApiServer::start();
    apply(
        &api,
        &crd(
            "versions.example.com",
            "foos",
            "Foo",
            &["v2", "v1"],
            crontab_schema(),
        ),
    );
    eventually("both versions published", || {
        (published(&api, "versions.example.com/v1", "Foo")
            && published(&api, "versions.example.com/v2", "Foo"))
        .then_some(())
    });
    // Each version serves the objects, under its own apiVersion.
    let foo = json!({"apiVersion": "versions.example.com/v1", "kind": "Foo", "metadata": {"name": "f"}, "spec": {"cronSpec": "* * * * *"}});
    assert!(create_cr(&api, foo).status.success());
    for v in ["v1", "v2"] {
        let got = get_json(
            &api,
            &["get", &format!("foos.{v}.versions.example.com"), "f"],
        );
        assert_eq!(got["apiVersion"], format!("versions.example.com/{v}"));
    }
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_removes_definition_from_spec_when_one_version_gets_changed_to_not_be_served()
 {
    let api = ApiServer::start();
    let mut c = crd(
        "served.example.com",
        "foos",
        "Foo",
        &["v2", "v1"],
        crontab_schema(),
    );
    apply(&api, &c);
    eventually("both versions published", || {
        (published(&api, "served.example.com/v1", "Foo")
            && published(&api, "served.example.com/v2", "Foo"))
        .then_some(())
    });
    c["spec"]["versions"][1]["served"] = json!(false);
    apply(&api, &c);
    eventually("v1 withdrawn", || {
        (!openapi_paths(&api).contains(&"apis/served.example.com/v1".to_string())
            && !published(&api, "served.example.com/v1", "Foo"))
        .then_some(())
    });
    assert!(published(&api, "served.example.com/v2", "Foo"));
}

#[test]
fn sig_api_machinery_custom_resource_publish_open_api_privileged_cluster_admin_updates_the_published_spec_when_one_version_gets_renamed()
 {
    let api = ApiServer::start();
    let mut c = crd(
        "renamed.example.com",
        "foos",
        "Foo",
        &["v2", "v3"],
        crontab_schema(),
    );
    apply(&api, &c);
    eventually("published", || {
        published(&api, "renamed.example.com/v3", "Foo").then_some(())
    });
    c["spec"]["versions"][1]["name"] = json!("v4");
    apply(&api, &c);
    eventually("the rename published", || {
        let paths = openapi_paths(&api);
        (paths.contains(&"apis/renamed.example.com/v4".to_string())
            && !paths.contains(&"apis/renamed.example.com/v3".to_string()))
        .then_some(())
    });
    assert!(published(&api, "renamed.example.com/v4", "Foo"));
}

#[test]
fn cel_rules_are_accepted_with_a_warning_that_kc_does_not_evaluate_them() {
    let api = ApiServer::start();
    let c = crd(
        "cel.example.com",
        "rules",
        "Rule",
        &["v1"],
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0"}],
            "properties": {"a": {"type": "integer"}}}}}),
    );
    let out = api.apply_text(&c.to_string(), &[]);
    assert!(out.status.success(), "{}", api_common::stderr(&out));
    let err = api_common::stderr(&out);
    assert!(
        err.contains("Warning: version v1: x-kubernetes-validations rules are stored but not evaluated by kc yet"),
        "{err}"
    );
}
