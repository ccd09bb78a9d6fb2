//! The built-in kinds kc serves as API objects (stored, validated,
//! defaulted, printed; what acts on them is their own issue), driven with
//! kubectl 1.32 against `kcnode serve-api`: each conformance behaviour of
//! their API operations and lifecycles, named after its codename and
//! written from its description, plus the pod admission they bring
//! (PriorityClass, RuntimeClass).

mod api_common;
mod kinds_common;

use api_common::{ApiServer, stderr};
use kinds_common::{Kind, api_operations, get, lifecycle, must, names, raw, write_json};
use serde_json::{Value, json};

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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
            version: "v1",
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
        version: "v1",
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
            version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
        version: "v1",
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
