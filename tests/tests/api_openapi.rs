//! The OpenAPI documents with the real kubectl (v1.32): `kubectl explain`
//! finds each served kind's schema (OpenAPI v3) and prints Kubernetes'
//! field descriptions; `/openapi/v2` (JSON) has the same definitions;
//! client-side apply keeps working with full schemas (its strategic merge
//! patches use the merge keys the schemas carry).

mod api_common;

use api_common::{ApiServer, stderr, stdout};
use serde_json::Value;

#[test]
fn explain_prints_field_descriptions_from_v3_and_v2() {
    let api = ApiServer::start();
    let out = api.ok(&["explain", "pod.spec.containers.image"]);
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: image <string>"), "{out}");
    assert!(out.contains("Container image name."), "{out}");
    let out = api.ok(&["explain", "deployment.spec.replicas"]);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("Number of desired pods."), "{out}");
    let out = api.ok(&["explain", "pods.spec.containers"]);
    assert!(
        out.contains("livenessProbe\t<Probe>") || out.contains("livenessProbe	<Probe>"),
        "{out}"
    );
    let out = api.ok(&["explain", "svc", "--recursive"]);
    assert!(out.contains("clusterIP"), "{out}");
    for kind in [
        "node",
        "configmap",
        "secret",
        "lease",
        "endpointslice",
        "daemonset",
        "replicaset",
        "namespace",
        "event",
        "serviceaccount",
        "endpoints",
    ] {
        let out = api.kubectl(&["explain", kind]);
        assert!(out.status.success(), "explain {kind}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("DESCRIPTION:"),
            "explain {kind}: {}",
            stdout(&out)
        );
    }
    // The v2 document (JSON; kubectl itself asks for v2 only as protobuf,
    // which kc does not serve) carries the same definitions.
    let v2: Value = serde_json::from_str(&api.ok(&["get", "--raw", "/openapi/v2"])).unwrap();
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    let err = api.fails(&["explain", "pod.spec.nope"]);
    assert!(err.contains("field \"nope\" does not exist"), "{err}");
}

#[test]
fn client_side_apply_merges_lists_by_key_with_schemas_served() {
    let api = ApiServer::start();
    let two = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels: {app: d}\n  template:\n    metadata:\n      labels: {app: d}\n    spec:\n      containers:\n      - name: a\n        image: busybox:1\n        env:\n        - {name: X, value: \"1\"}\n      - name: b\n        image: busybox:1\n";
    let out = api.apply_text(two, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another writer adds an env var to container b (not in the manifest).
    api.ok(&["set", "env", "deploy/d", "-c", "b", "Y=kept"]);
    // Change one container's image and one env value: merged by name, so
    // what the manifest does not mention stays.
    let changed = two
        .replace(
            "name: a\n        image: busybox:1",
            "name: a\n        image: busybox:2",
        )
        .replace("value: \"1\"", "value: \"2\"");
    let out = api.apply_text(&changed, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "deployment.apps/d configured",
        "{}",
        stderr(&out)
    );
    let images = api.ok(&[
        "get",
        "deploy",
        "d",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]);
    assert_eq!(images, "busybox:2 busybox:1");
    let env = api.ok(&[
        "get",
        "deploy",
        "d",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[*].value}",
    ]);
    assert_eq!(env, "2");
    let kept = api.ok(&[
        "get",
        "deploy",
        "d",
        "-o",
        "jsonpath={.spec.template.spec.containers[1].env[*].value}",
    ]);
    assert_eq!(kept, "kept", "the list was replaced, not merged by key");
}
