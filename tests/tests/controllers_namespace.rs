//! Namespace lifecycle: DELETE marks a namespace Terminating (it stays
//! visible), creates in it are refused with Kubernetes' 403, the Namespace
//! controller deletes everything inside (pods through their hollow node,
//! Deployments with their ReplicaSets, Services, ConfigMaps, Secrets...),
//! waits for objects with finalizers, and only then finalizes the namespace
//! away. The system namespaces cannot be deleted.

use std::time::Duration;

use kc_member::apiserver::registry;
use kc_member::client::resource;
use kc_tests::hollow::{HollowCluster, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "team";

fn deployment() -> Value {
    json!({"metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}})
}

async fn running_pods(c: &HollowCluster) -> usize {
    c.pods(NS)
        .await
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .count()
}

/// How many objects of every namespaced kind `ns` holds.
async fn contents(c: &HollowCluster, ns: &str) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for r in registry::RESOURCES.iter().filter(|r| r.namespaced) {
        let (items, _) = c.client.list(r, Some(ns)).await.expect("list");
        if !items.is_empty() {
            out.push((r.plural, items.len()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_it_then_removes_it() {
    let c = HollowCluster::start(2).await;
    let namespaces = resource("", "v1", "namespaces");
    let configmaps = resource("", "v1", "configmaps");
    c.client
        .create(namespaces, "", json!({"metadata": {"name": NS}}))
        .await
        .expect("namespace");
    let deploys = resource("apps", "v1", "deployments");
    c.client
        .create(deploys, NS, deployment())
        .await
        .expect("deployment");
    c.client
        .create(
            resource("", "v1", "services"),
            NS,
            json!({"metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
        .await
        .expect("service");
    c.client
        .create(
            configmaps,
            NS,
            json!({"metadata": {"name": "cm"}, "data": {"a": "b"}}),
        )
        .await
        .expect("configmap");
    // Held by a finalizer: the namespace must wait for it.
    c.client
        .create(
            configmaps,
            NS,
            json!({"metadata": {"name": "held", "finalizers": ["kc.dev/hold"]}}),
        )
        .await
        .expect("held configmap");
    c.client
        .create(
            resource("", "v1", "secrets"),
            NS,
            json!({"metadata": {"name": "s"}, "stringData": {"p": "q"}}),
        )
        .await
        .expect("secret");
    eventually(WAIT, "3 running pods", || async {
        (running_pods(&c).await == 3).then_some(())
    })
    .await;

    let deleted = c
        .client
        .delete(namespaces, "", NS, json!({}))
        .await
        .expect("delete namespace");
    assert_eq!(deleted.object["status"]["phase"], "Terminating");
    assert!(deleted.object["metadata"]["deletionTimestamp"].is_string());
    let ns = c.client.get(namespaces, "", NS).await.expect("still there");
    assert_eq!(ns["status"]["phase"], "Terminating");

    let refused = c
        .client
        .create(configmaps, NS, json!({"metadata": {"name": "late"}}))
        .await
        .expect_err("creating in a Terminating namespace is refused");
    assert_eq!(refused.code, 403, "{refused}");
    assert_eq!(
        refused.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );

    // Everything but the held ConfigMap goes; the namespace waits for it.
    let left = eventually(WAIT, "only the held configmap left", || async {
        let left = contents(&c, NS).await;
        (left == [("configmaps", 1)]).then_some(left)
    })
    .await;
    assert_eq!(left, [("configmaps", 1)]);
    let ns = eventually(WAIT, "the remaining content reported", || async {
        let ns = c.client.get(namespaces, "", NS).await.ok()?;
        let reported = ns["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "NamespaceContentRemaining"
                    && c["message"]
                        == "Some resources are remaining: configmaps has 1 resource instances"
            })
        });
        reported.then_some(ns)
    })
    .await;
    assert_eq!(ns["status"]["phase"], "Terminating");

    c.client
        .merge_patch(
            configmaps,
            NS,
            "held",
            "",
            &json!({"metadata": {"finalizers": null}}),
        )
        .await
        .expect("release the held configmap");
    eventually(WAIT, "the namespace to go", || async {
        c.client
            .get(namespaces, "", NS)
            .await
            .err()
            .filter(|e| e.code == 404)
    })
    .await;
    assert_eq!(contents(&c, NS).await, []);

    // A namespace of the same name can be made again, and used.
    c.client
        .create(namespaces, "", json!({"metadata": {"name": NS}}))
        .await
        .expect("namespace again");
    c.client
        .create(configmaps, NS, json!({"metadata": {"name": "cm"}}))
        .await
        .expect("a create in the new namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_namespaces_cannot_be_deleted() {
    let c = HollowCluster::start(1).await;
    let namespaces = resource("", "v1", "namespaces");
    for ns in ["default", "kube-system", "kube-public"] {
        let e = c
            .client
            .delete(namespaces, "", ns, json!({}))
            .await
            .expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
        );
        let still = c.client.get(namespaces, "", ns).await.expect("still there");
        assert_eq!(still["status"]["phase"], "Active");
    }
}
