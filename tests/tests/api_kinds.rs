//! The built-in kinds kc serves as API objects (stored, validated,
//! defaulted, printed; what acts on them is their own issue), driven with
//! kubectl 1.32 against `kcnode serve-api`: each conformance behaviour of
//! their API operations and lifecycles, named after its codename and
//! written from its description, plus the pod admission they bring
//! (PriorityClass, RuntimeClass).

mod api_common;

use std::process::{Child, Stdio};
use std::time::Duration;

use api_common::{ApiServer, stderr, stdout};
use serde_json::{Value, json};

/// A kind under test: where it is served and a valid object of it.
struct Kind {
    group: &'static str,
    plural: &'static str,
    namespaced: bool,
    status: bool,
    object: fn(&str) -> Value,
}

impl Kind {
    fn group_version(&self) -> String {
        if self.group.is_empty() {
            "v1".into()
        } else {
            format!("{}/v1", self.group)
        }
    }

    /// The name kubectl knows it by (`ingresses.networking.k8s.io`).
    fn kubectl_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.into()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn collection_path(&self) -> String {
        let root = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}", self.group_version())
        };
        if self.namespaced {
            format!("{root}/namespaces/default/{}", self.plural)
        } else {
            format!("{root}/{}", self.plural)
        }
    }
}

fn raw(api: &ApiServer, path: &str) -> Value {
    serde_json::from_str(&api.ok(&["get", "--raw", path])).expect("a JSON document")
}

fn write_json(api: &ApiServer, verb: &[&str], object: &Value) -> std::process::Output {
    let path = std::env::temp_dir().join(format!(
        "kc-kinds-{}-{}-{}.json",
        std::process::id(),
        object["metadata"]["name"].as_str().unwrap_or("x"),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::write(&path, object.to_string()).expect("write the object");
    let mut args = verb.to_vec();
    args.extend(["-f", path.to_str().expect("utf-8")]);
    let out = api.kubectl(&args);
    let _ = std::fs::remove_file(&path);
    out
}

fn must(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    stdout(&out)
}

fn get(api: &ApiServer, kind: &Kind, name: &str) -> Value {
    serde_json::from_str(&api.ok(&["get", &kind.kubectl_name(), name, "-o", "json"]))
        .expect("kubectl -o json prints JSON")
}

fn names(api: &ApiServer, kind: &Kind, selector: &str) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&api.ok(&["get", &kind.kubectl_name(), "-l", selector, "-o", "json"]))
            .expect("a list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A watch of the kind's collection until `seconds` pass (its event types).
fn watch(api: &ApiServer, kind: &Kind, seconds: u32) -> Child {
    let path = format!(
        "{}?watch=true&labelSelector=e2e%3Dops&timeoutSeconds={seconds}",
        kind.collection_path()
    );
    let child = api
        .kubectl_cmd(&["get", "--raw", &path])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(Duration::from_millis(800));
    child
}

fn watched(child: Child) -> Vec<(String, String)> {
    let out = child.wait_with_output().expect("the watch ends");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// Discovery lists the group, its v1 and the resource (and its status);
/// create, get, list, watch, update, patch (and the status's), delete and
/// deletecollection work, as the "... API operations" behaviours ask.
fn api_operations(kind: &Kind) {
    let api = ApiServer::start();
    if !kind.group.is_empty() {
        let groups = raw(&api, "/apis");
        let group = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == kind.group)
            .cloned()
            .unwrap_or_else(|| panic!("/apis lacks {}", kind.group));
        assert_eq!(
            group["preferredVersion"]["groupVersion"],
            kind.group_version()
        );
        let doc = raw(&api, &format!("/apis/{}", kind.group));
        assert!(
            doc["versions"].to_string().contains(&kind.group_version()),
            "{doc}"
        );
    }
    let root = if kind.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}", kind.group_version())
    };
    let resources = raw(&api, &root);
    let listed: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        listed.contains(&kind.plural),
        "{root} lacks {}: {listed:?}",
        kind.plural
    );
    if kind.status {
        let status = format!("{}/status", kind.plural);
        assert!(listed.contains(&status.as_str()), "{root} lacks {status}");
    }

    let watcher = watch(&api, kind, 8);
    for n in ["ops-1", "ops-2", "ops-3"] {
        let mut o = (kind.object)(n);
        o["metadata"]["labels"] = json!({"e2e": "ops"});
        must(write_json(&api, &["create"], &o), "create");
    }
    assert_eq!(get(&api, kind, "ops-1")["metadata"]["name"], "ops-1");
    assert_eq!(names(&api, kind, "e2e=ops").len(), 3);

    // Update (PUT) and patch.
    let mut current = get(&api, kind, "ops-1");
    current["metadata"]["annotations"] = json!({"updated": "yes"});
    must(write_json(&api, &["replace"], &current), "replace");
    assert_eq!(
        get(&api, kind, "ops-1")["metadata"]["annotations"]["updated"],
        "yes"
    );
    must(
        api.kubectl(&[
            "patch",
            &kind.kubectl_name(),
            "ops-1",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"patched":"yes"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(&api, kind, "ops-1")["metadata"]["annotations"]["patched"],
        "yes"
    );
    if kind.status {
        must(
            api.kubectl(&[
                "patch",
                &kind.kubectl_name(),
                "ops-1",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"metadata":{"annotations":{"status-patched":"yes"}}}"#,
            ]),
            "patch status",
        );
        let mut st = raw(&api, &format!("{}/ops-1/status", kind.collection_path()));
        st["metadata"]["annotations"]["status-updated"] = json!("yes");
        must(
            write_json(&api, &["replace", "--subresource=status"], &st),
            "update status",
        );
    }

    // Delete one, then the collection.
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), "ops-1"]),
        "delete",
    );
    assert_eq!(names(&api, kind, "e2e=ops"), ["ops-2", "ops-3"]);
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), "-l", "e2e=ops"]),
        "deletecollection",
    );
    assert!(names(&api, kind, "e2e=ops").is_empty());
    let events = watched(watcher);
    let of = |t: &str| events.iter().filter(|(k, _)| k == t).count();
    assert_eq!((of("ADDED"), of("DELETED")), (3, 3), "{events:?}");
    assert!(of("MODIFIED") >= 2, "{events:?}");
}

fn flow_schema(name: &str) -> Value {
    json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": name},
        "spec": {"priorityLevelConfiguration": {"name": "global-default"},
            "rules": [{"subjects": [{"kind": "User", "user": {"name": "e2e"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}]}]}})
}

fn priority_level(name: &str) -> Value {
    json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": {"name": name},
        "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 2, "limitResponse": {"type": "Reject"}}}})
}

fn ingress(name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
        "spec": {"rules": [{"host": "e2e.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
}

fn ingress_class(name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": name},
        "spec": {"controller": "example.com/controller"}})
}

fn runtime_class(name: &str) -> Value {
    json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "runc"})
}

fn storage_capacity(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity", "metadata": {"name": name},
        "storageClassName": "e2e", "capacity": "1Gi"})
}

#[test]
fn sig_api_machinery_api_priority_and_fairness_should_support_flow_schema_api_operations() {
    api_operations(&Kind {
        group: "flowcontrol.apiserver.k8s.io",
        plural: "flowschemas",
        namespaced: false,
        status: true,
        object: flow_schema,
    });
}

#[test]
fn sig_api_machinery_api_priority_and_fairness_should_support_priority_level_configuration_api_operations()
 {
    api_operations(&Kind {
        group: "flowcontrol.apiserver.k8s.io",
        plural: "prioritylevelconfigurations",
        namespaced: false,
        status: true,
        object: priority_level,
    });
}

#[test]
fn sig_network_ingress_api_should_support_creating_ingress_api_operations() {
    api_operations(&Kind {
        group: "networking.k8s.io",
        plural: "ingresses",
        namespaced: true,
        status: true,
        object: ingress,
    });
}

#[test]
fn sig_network_ingress_class_api_should_support_creating_ingress_class_api_operations() {
    api_operations(&Kind {
        group: "networking.k8s.io",
        plural: "ingressclasses",
        namespaced: false,
        status: false,
        object: ingress_class,
    });
}

#[test]
fn sig_node_runtime_class_should_support_runtime_classes_api_operations() {
    api_operations(&Kind {
        group: "node.k8s.io",
        plural: "runtimeclasses",
        namespaced: false,
        status: false,
        object: runtime_class,
    });
}

#[test]
fn sig_storage_csi_storage_capacity_should_support_csi_storage_capacities_api_operations() {
    api_operations(&Kind {
        group: "storage.k8s.io",
        plural: "csistoragecapacities",
        namespaced: true,
        status: false,
        object: storage_capacity,
    });
}

fn pod_template(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name, "labels": {"podtemplate-static": "true"}},
        "template": {"metadata": {"labels": {"app": "e2e"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}})
}

#[test]
fn sig_node_pod_templates_should_run_the_lifecycle_of_pod_templates() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &pod_template("nginx-pod-template")),
        "create",
    );
    must(
        api.kubectl(&[
            "patch",
            "podtemplate",
            "nginx-pod-template",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"podtemplate":"patched"}}}"#,
        ]),
        "patch",
    );
    let kind = Kind {
        group: "",
        plural: "podtemplates",
        namespaced: true,
        status: false,
        object: pod_template,
    };
    assert_eq!(
        get(&api, &kind, "nginx-pod-template")["metadata"]["labels"]["podtemplate"],
        "patched"
    );
    assert_eq!(
        names(&api, &kind, "podtemplate-static=true,podtemplate=patched"),
        ["nginx-pod-template"]
    );
    let table = api.ok(&["get", "podtemplates"]);
    assert!(
        table.starts_with("NAME") && table.contains("CONTAINERS") && table.contains("app=e2e"),
        "{table}"
    );
    must(
        api.kubectl(&["delete", "podtemplate", "nginx-pod-template"]),
        "delete",
    );
    assert!(names(&api, &kind, "podtemplate-static=true").is_empty());
}

#[test]
fn sig_node_pod_templates_should_delete_a_collection_of_pod_templates() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "",
        plural: "podtemplates",
        namespaced: true,
        status: false,
        object: pod_template,
    };
    for n in ["podtemplate-1", "podtemplate-2", "podtemplate-3"] {
        let mut t = pod_template(n);
        t["metadata"]["labels"] = json!({"podtemplate-set": "true"});
        must(write_json(&api, &["create"], &t), "create");
    }
    assert_eq!(names(&api, &kind, "podtemplate-set=true").len(), 3);
    must(
        api.kubectl(&["delete", "podtemplates", "-l", "podtemplate-set=true"]),
        "deletecollection",
    );
    assert!(names(&api, &kind, "podtemplate-set=true").is_empty());
}

#[test]
fn sig_node_pod_templates_should_replace_a_pod_template() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "",
        plural: "podtemplates",
        namespaced: true,
        status: false,
        object: pod_template,
    };
    must(
        write_json(&api, &["create"], &pod_template("podtemplate-replace")),
        "create",
    );
    let mut t = get(&api, &kind, "podtemplate-replace");
    t["metadata"]["annotations"] = json!({"updated": "true"});
    must(write_json(&api, &["replace"], &t), "replace");
    assert_eq!(
        get(&api, &kind, "podtemplate-replace")["metadata"]["annotations"]["updated"],
        "true"
    );
}

/// Create, read, patch a label, delete, create again, update a label, then
/// deletecollection: the lifecycle the storage behaviours describe.
fn lifecycle(api: &ApiServer, kind: &Kind, selector_label: &str) {
    let name = |i: u32| format!("e2e-{}-{i}", kind.plural);
    let mut first = (kind.object)(&name(1));
    first["metadata"]["labels"] = json!({selector_label: "true"});
    must(write_json(api, &["create"], &first), "create");
    assert_eq!(get(api, kind, &name(1))["metadata"]["name"], name(1));
    must(
        api.kubectl(&[
            "patch",
            &kind.kubectl_name(),
            &name(1),
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"true"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(api, kind, &name(1))["metadata"]["labels"]["patched"],
        "true"
    );
    assert_eq!(
        names(api, kind, &format!("{selector_label}=true")),
        [name(1)]
    );
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), &name(1)]),
        "delete",
    );
    assert!(
        !api.kubectl(&["get", &kind.kubectl_name(), &name(1)])
            .status
            .success()
    );
    let mut second = (kind.object)(&name(2));
    second["metadata"]["labels"] = json!({selector_label: "true"});
    must(write_json(api, &["create"], &second), "create again");
    let mut got = get(api, kind, &name(2));
    got["metadata"]["labels"]["updated"] = json!("true");
    must(write_json(api, &["replace"], &got), "update");
    assert_eq!(
        get(api, kind, &name(2))["metadata"]["labels"]["updated"],
        "true"
    );
    must(
        api.kubectl(&[
            "delete",
            &kind.kubectl_name(),
            "-l",
            &format!("{selector_label}=true"),
        ]),
        "deletecollection",
    );
    assert!(names(api, kind, &format!("{selector_label}=true")).is_empty());
}

fn csi_driver(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name}, "spec": {}})
}

fn csi_node(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": name},
        "spec": {"drivers": [{"name": "e2e.example.com", "nodeID": name}]}})
}

fn storage_class(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "e2e.example.com/fake"})
}

fn volume_attachment(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": name},
        "spec": {"attacher": "e2e.example.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}}})
}

#[test]
fn sig_storage_csi_inline_volumes_should_run_through_the_lifecycle_of_a_csi_driver() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "storage.k8s.io",
        plural: "csidrivers",
        namespaced: false,
        status: false,
        object: csi_driver,
    };
    lifecycle(&api, &kind, "e2e-csidriver");
    // Kubernetes' defaults.
    must(
        write_json(&api, &["create"], &csi_driver("defaults")),
        "create",
    );
    let d = get(&api, &kind, "defaults");
    assert_eq!(
        (
            d["spec"]["attachRequired"].clone(),
            d["spec"]["volumeLifecycleModes"].clone()
        ),
        (json!(true), json!(["Persistent"]))
    );
}

#[test]
fn sig_storage_csi_nodes_csi_conformance_should_run_through_the_lifecycle_of_a_csinode() {
    let api = ApiServer::start();
    lifecycle(
        &api,
        &Kind {
            group: "storage.k8s.io",
            plural: "csinodes",
            namespaced: false,
            status: false,
            object: csi_node,
        },
        "e2e-csinode",
    );
}

#[test]
fn sig_storage_storage_classes_csi_conformance_should_run_through_the_lifecycle_of_a_storage_class()
{
    let api = ApiServer::start();
    let kind = Kind {
        group: "storage.k8s.io",
        plural: "storageclasses",
        namespaced: false,
        status: false,
        object: storage_class,
    };
    lifecycle(&api, &kind, "e2e-sc");
    must(
        write_json(&api, &["create"], &storage_class("immutable")),
        "create",
    );
    let err = stderr(&api.kubectl(&[
        "patch",
        "sc",
        "immutable",
        "--type=merge",
        "-p",
        r#"{"provisioner":"other"}"#,
    ]));
    assert!(
        err.contains("provisioner: Invalid value") && err.contains("field is immutable"),
        "{err}"
    );
    let table = api.ok(&["get", "sc", "immutable"]);
    assert!(
        table.contains("PROVISIONER") && table.contains("Delete") && table.contains("Immediate"),
        "{table}"
    );
}

#[test]
fn sig_storage_volume_attachment_conformance_should_run_through_the_lifecycle_of_a_volume_attachment()
 {
    let api = ApiServer::start();
    lifecycle(
        &api,
        &Kind {
            group: "storage.k8s.io",
            plural: "volumeattachments",
            namespaced: false,
            status: true,
            object: volume_attachment,
        },
        "e2e-va",
    );
}

#[test]
fn sig_storage_volume_attachment_conformance_should_apply_changes_to_a_volumeattachment_status() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "storage.k8s.io",
        plural: "volumeattachments",
        namespaced: false,
        status: true,
        object: volume_attachment,
    };
    must(
        write_json(&api, &["create"], &volume_attachment("va-status")),
        "create",
    );
    must(
        api.kubectl(&[
            "patch",
            "volumeattachment",
            "va-status",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"true"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(&api, &kind, "va-status")["metadata"]["labels"]["patched"],
        "true"
    );
    let path = "/apis/storage.k8s.io/v1/volumeattachments/va-status/status";
    assert_ne!(raw(&api, path)["status"]["attached"], true);
    must(
        api.kubectl(&[
            "patch",
            "volumeattachment",
            "va-status",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"attached":true}}"#,
        ]),
        "patch status",
    );
    assert_eq!(raw(&api, path)["status"]["attached"], true);
    let mut st = raw(&api, path);
    st["status"]["attached"] = json!(false);
    must(
        write_json(&api, &["replace", "--subresource=status"], &st),
        "update status",
    );
    assert_eq!(raw(&api, path)["status"]["attached"], false);
    must(
        api.kubectl(&["delete", "volumeattachment", "va-status"]),
        "delete",
    );
    assert!(
        !api.kubectl(&["get", "volumeattachment", "va-status"])
            .status
            .success()
    );
}

#[test]
fn sig_scheduling_scheduler_preemption_serial_priority_class_endpoints_verify_priority_class_endpoints_can_be_operated_with_different_http_methods()
 {
    let api = ApiServer::start();
    // The system classes exist from the start.
    let listed = api.ok(&["get", "priorityclasses"]);
    assert!(
        listed.contains("system-node-critical") && listed.contains("2000001000"),
        "{listed}"
    );
    for (n, v) in [("p1", 1), ("p2", 2)] {
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": n}, "value": v});
        must(write_json(&api, &["create"], &pc), "create");
    }
    // Mutable fields: patch and update.
    must(
        api.kubectl(&[
            "patch",
            "pc",
            "p1",
            "--type=merge",
            "-p",
            r#"{"description":"patched"}"#,
        ]),
        "patch description",
    );
    let kind = Kind {
        group: "scheduling.k8s.io",
        plural: "priorityclasses",
        namespaced: false,
        status: false,
        object: |_| Value::Null,
    };
    let mut p2 = get(&api, &kind, "p2");
    p2["description"] = json!("updated");
    must(write_json(&api, &["replace"], &p2), "update description");
    assert_eq!(get(&api, &kind, "p2")["description"], "updated");
    // Immutable ones: both fail.
    let err = stderr(&api.kubectl(&["patch", "pc", "p1", "--type=merge", "-p", r#"{"value":10}"#]));
    assert!(
        err.contains("Value: Forbidden: may not be changed in an update."),
        "{err}"
    );
    let mut p2 = get(&api, &kind, "p2");
    p2["preemptionPolicy"] = json!("Never");
    let err = stderr(&write_json(&api, &["replace"], &p2));
    assert!(
        err.contains("preemptionPolicy") && err.contains("field is immutable"),
        "{err}"
    );
    // Reserved names and values.
    let bad = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-mine"}, "value": 5});
    assert!(
        stderr(&write_json(&api, &["create"], &bad))
            .contains("priority class names with 'system-' prefix are reserved")
    );
    let high = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "huge"}, "value": 1_000_000_001});
    assert!(
        stderr(&write_json(&api, &["create"], &high))
            .contains("maximum allowed value of a user defined priority is 1000000000")
    );
}

fn pod(name: &str, spec: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    for (k, v) in spec.as_object().unwrap() {
        p["spec"][k] = v.clone();
    }
    p
}

#[test]
fn pods_take_their_priority_from_their_priority_class() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "",
        plural: "pods",
        namespaced: true,
        status: false,
        object: |_| Value::Null,
    };
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"});
    must(write_json(&api, &["create"], &pc), "create the class");
    must(
        write_json(
            &api,
            &["create"],
            &pod("classy", json!({"priorityClassName": "high"})),
        ),
        "create the pod",
    );
    let p = get(&api, &kind, "classy");
    assert_eq!(
        (
            p["spec"]["priority"].clone(),
            p["spec"]["preemptionPolicy"].clone()
        ),
        (json!(1000), json!("Never"))
    );
    let err = stderr(&write_json(
        &api,
        &["create"],
        &pod("lost", json!({"priorityClassName": "nope"})),
    ));
    assert!(
        err.contains(r#"pods "lost" is forbidden: no PriorityClass with name nope was found"#),
        "{err}"
    );
    // A global default class applies to pods without one.
    let dflt = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "dflt"}, "value": 7, "globalDefault": true});
    must(
        write_json(&api, &["create"], &dflt),
        "create the default class",
    );
    must(
        write_json(&api, &["create"], &pod("plain", json!({}))),
        "create a plain pod",
    );
    let p = get(&api, &kind, "plain");
    assert_eq!(
        (
            p["spec"]["priority"].clone(),
            p["spec"]["priorityClassName"].clone()
        ),
        (json!(7), json!("dflt"))
    );
}

/// Creating pod `pod` of RuntimeClass `class` is refused as missing.
fn refused_for_a_missing_runtime_class(api: &ApiServer, pod_name: &str, class: &str) {
    let err = stderr(&write_json(
        api,
        &["create"],
        &pod(pod_name, json!({ "runtimeClassName": class })),
    ));
    assert!(
        err.contains(&format!(
            r#"pod rejected: RuntimeClass "{class}" not found"#
        )),
        "{err}"
    );
}

#[test]
fn sig_node_runtime_class_should_reject_a_pod_requesting_a_non_existent_runtime_class() {
    let api = ApiServer::start();
    refused_for_a_missing_runtime_class(&api, "rc-missing", "non-existent");
}

#[test]
fn sig_node_runtime_class_should_reject_a_pod_requesting_a_deleted_runtime_class() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &runtime_class("deleted-rc")),
        "create the class",
    );
    must(
        api.kubectl(&["delete", "runtimeclass", "deleted-rc"]),
        "delete the class",
    );
    refused_for_a_missing_runtime_class(&api, "rc-deleted", "deleted-rc");
}

#[test]
fn pods_of_a_runtime_class_get_its_overhead_and_scheduling() {
    let api = ApiServer::start();
    let kind = Kind {
        group: "",
        plural: "pods",
        namespaced: true,
        status: false,
        object: |_| Value::Null,
    };
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "with-overhead"}, "handler": "runc",
        "overhead": {"podFixed": {"cpu": "10m", "memory": "1Mi"}},
        "scheduling": {"nodeSelector": {"sandboxed": "yes"}, "tolerations": [{"key": "sandbox", "operator": "Exists"}]}});
    must(write_json(&api, &["create"], &rc), "create the class");
    must(
        write_json(
            &api,
            &["create"],
            &pod("with-rc", json!({"runtimeClassName": "with-overhead"})),
        ),
        "create the pod",
    );
    let p = get(&api, &kind, "with-rc");
    assert_eq!(
        p["spec"]["overhead"],
        json!({"cpu": "10m", "memory": "1Mi"})
    );
    assert_eq!(p["spec"]["nodeSelector"]["sandboxed"], "yes");
    assert!(
        p["spec"]["tolerations"].to_string().contains("sandbox"),
        "{p}"
    );
}
