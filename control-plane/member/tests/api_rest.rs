//! The REST verbs on a real single-member store (no HTTP): pagination,
//! resourceVersion semantics of list and watch, conflicts, finalizers,
//! graceful pod deletion, compaction (410), and random bodies (no panic).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kc_member::apiserver::negotiate::Rendering;
use kc_member::apiserver::patch::PatchType;
use kc_member::apiserver::registry::{Resource, lookup};
use kc_member::apiserver::rest::{Query, Rest, Target};
use kc_member::apiserver::{Storage, bootstrap, watch};
use kc_member::store::StoreHandle;
use kc_member::store::raft_node::{self, NoPeers, StoreConfig};
use serde_json::{Value, json};

struct Cluster {
    rest: Rest,
    store: StoreHandle,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let peers = BTreeMap::from([(1u64, "127.0.0.1:0".to_string())]);
    let (store, _thread) = raft_node::start(
        StoreConfig::new(1, dir.path().join("store"), peers),
        Arc::new(NoPeers),
    )
    .unwrap();
    let rest = Rest::new(Storage::new(Arc::new(store.clone())));
    bootstrap(&rest).await.unwrap();
    Cluster {
        rest,
        store,
        _dir: dir,
    }
}

fn pods() -> &'static Resource {
    lookup("", "v1", "pods").unwrap()
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn q(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn target(name: &str) -> Target {
    Target {
        resource: pods(),
        namespace: "default".into(),
        name: name.into(),
        subresource: String::new(),
    }
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("stream open");
    serde_json::from_slice(&line).unwrap()
}

#[tokio::test]
async fn list_pages_with_limit_and_continue_at_one_revision() {
    let c = cluster().await;
    for i in 0..7 {
        let labels = json!({"n": if i % 2 == 0 { "even" } else { "odd" }});
        c.rest
            .create(
                pods(),
                "default",
                pod(&format!("p{i}"), labels),
                &Query::new(),
            )
            .await
            .unwrap();
    }
    let first = c
        .rest
        .list(pods(), Some("default"), &q(&[("limit", "3")]))
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let rv = first["metadata"]["resourceVersion"].clone();
    // A write between pages does not show in later pages (same revision).
    c.rest
        .create(pods(), "default", pod("p9", json!({})), &Query::new())
        .await
        .unwrap();
    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = c
            .rest
            .list(
                pods(),
                Some("default"),
                &q(&[("limit", "3"), ("continue", &t)]),
            )
            .await
            .unwrap();
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"].as_str().map(str::to_string);
    }
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    // Selectors with limits still fill pages.
    let odd = c
        .rest
        .list(
            pods(),
            None,
            &q(&[("labelSelector", "n=odd"), ("limit", "2")]),
        )
        .await
        .unwrap();
    assert_eq!(odd["items"].as_array().unwrap().len(), 2);
    assert!(odd["metadata"]["continue"].is_string());
    let by_name = c
        .rest
        .list(pods(), None, &q(&[("fieldSelector", "metadata.name=p4")]))
        .await
        .unwrap();
    assert_eq!(by_name["items"][0]["metadata"]["name"], "p4");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_is_a_conflict() {
    let c = cluster().await;
    let created = c
        .rest
        .create(pods(), "default", pod("a", json!({})), &Query::new())
        .await
        .unwrap()
        .object;
    let mut v1 = created.clone();
    v1["metadata"]["labels"] = json!({"x": "1"});
    let updated = c
        .rest
        .update(&target("a"), v1.clone(), &Query::new())
        .await
        .unwrap()
        .object;
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    v1["metadata"]["labels"] = json!({"x": "2"});
    let err = c
        .rest
        .update(&target("a"), v1, &Query::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    // A create of an existing name is AlreadyExists.
    let err = c
        .rest
        .create(pods(), "default", pod("a", json!({})), &Query::new())
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    // generateName makes unique names.
    let generated = json!({"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let a = c
        .rest
        .create(pods(), "default", generated.clone(), &Query::new())
        .await
        .unwrap()
        .object;
    let b = c
        .rest
        .create(pods(), "default", generated, &Query::new())
        .await
        .unwrap()
        .object;
    assert_ne!(a["metadata"]["name"], b["metadata"]["name"]);
    assert!(a["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    // Unknown namespace.
    let err = c
        .rest
        .create(pods(), "nowhere", pod("z", json!({})), &Query::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn watch_from_zero_lists_first_and_exact_versions_resume() {
    let c = cluster().await;
    let a = c
        .rest
        .create(
            pods(),
            "default",
            pod("a", json!({"app": "web"})),
            &Query::new(),
        )
        .await
        .unwrap()
        .object;
    let mut rx = watch::start(
        &c.rest,
        pods(),
        Some("default"),
        &q(&[("labelSelector", "app=web")]),
        Rendering::Json,
    )
    .await
    .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "a");
    // Leaving the selection is a DELETED; unrelated objects are not seen.
    c.rest
        .create(
            pods(),
            "default",
            pod("other", json!({"app": "db"})),
            &Query::new(),
        )
        .await
        .unwrap();
    c.rest
        .patch(
            &target("a"),
            PatchType::Merge,
            br#"{"metadata":{"labels":{"app":"db"}}}"#,
            &Query::new(),
        )
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    // Resume from the create's version: the later change is replayed.
    let rv = a["metadata"]["resourceVersion"].as_str().unwrap();
    let mut rx = watch::start(
        &c.rest,
        pods(),
        Some("default"),
        &q(&[("resourceVersion", rv)]),
        Rendering::Json,
    )
    .await
    .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("other"))
    );
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["labels"]["app"].as_str()
        ),
        (Some("MODIFIED"), Some("db"))
    );
    // Deletes carry the last state with the delete's version.
    c.rest
        .delete(&target("other"), &json!({}), &Query::new())
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "other");
}

#[tokio::test]
async fn table_watch_and_bookmarks() {
    let c = cluster().await;
    let mut rx = watch::start(
        &c.rest,
        pods(),
        Some("default"),
        &q(&[("resourceVersion", "1")]),
        Rendering::Table("v1"),
    )
    .await
    .unwrap();
    c.rest
        .create(pods(), "default", pod("t", json!({})), &Query::new())
        .await
        .unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(ev["object"]["kind"], "Table");
    assert_eq!(ev["object"]["rows"][0]["cells"][0], "t");
    assert_eq!(ev["object"]["columnDefinitions"][1]["name"], "Ready");
}

#[tokio::test]
async fn compacted_versions_are_gone() {
    let c = cluster().await;
    let a = c
        .rest
        .create(pods(), "default", pod("a", json!({})), &Query::new())
        .await
        .unwrap()
        .object;
    let old_rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..3 {
        c.rest
            .patch(
                &target("a"),
                PatchType::Merge,
                format!(r#"{{"metadata":{{"labels":{{"i":"{i}"}}}}}}"#).as_bytes(),
                &Query::new(),
            )
            .await
            .unwrap();
    }
    let now = c.rest.get(&target("a")).await.unwrap();
    let now_rv: i64 = now["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    c.store.compact(now_rv).await.unwrap();
    let err = match watch::start(
        &c.rest,
        pods(),
        Some("default"),
        &q(&[("resourceVersion", &old_rv)]),
        Rendering::Json,
    )
    .await
    {
        Err(e) => e,
        Ok(mut rx) => {
            let ev = next_event(&mut rx).await;
            assert_eq!(ev["type"], "ERROR");
            assert_eq!(ev["object"]["code"], 410);
            return;
        }
    };
    assert_eq!(err.code, 410);
}

#[tokio::test]
async fn finalizers_and_bound_pods_delete_gracefully() {
    let c = cluster().await;
    let mut p = pod("f", json!({}));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.rest
        .create(pods(), "default", p, &Query::new())
        .await
        .unwrap();
    let out = c
        .rest
        .delete(&target("f"), &json!({}), &Query::new())
        .await
        .unwrap();
    assert!(out.object["metadata"]["deletionTimestamp"].is_string());
    assert!(
        c.rest.get(&target("f")).await.is_ok(),
        "held by its finalizer"
    );
    // Removing the last finalizer deletes it.
    c.rest
        .patch(
            &target("f"),
            PatchType::Json,
            br#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
            &Query::new(),
        )
        .await
        .unwrap();
    assert_eq!(c.rest.get(&target("f")).await.unwrap_err().code, 404);
    // A pod bound to a node is marked; unbound pods go at once.
    c.rest
        .create(pods(), "default", pod("bound", json!({})), &Query::new())
        .await
        .unwrap();
    c.rest
        .bind(&target("bound"), &json!({"target": {"name": "n1"}}))
        .await
        .unwrap();
    let err = c
        .rest
        .bind(&target("bound"), &json!({"target": {"name": "n2"}}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);
    let out = c
        .rest
        .delete(&target("bound"), &json!({}), &Query::new())
        .await
        .unwrap();
    assert_eq!(out.object["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(c.rest.get(&target("bound")).await.is_ok());
    c.rest
        .delete(
            &target("bound"),
            &json!({"gracePeriodSeconds": 0}),
            &Query::new(),
        )
        .await
        .unwrap();
    assert_eq!(c.rest.get(&target("bound")).await.unwrap_err().code, 404);
    // Preconditions.
    c.rest
        .create(pods(), "default", pod("pre", json!({})), &Query::new())
        .await
        .unwrap();
    let err = c
        .rest
        .delete(
            &target("pre"),
            &json!({"preconditions": {"uid": "nope"}}),
            &Query::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);
}

/// Deleting a namespace only marks it Terminating (the Namespace controller,
/// not running here, empties and finalizes it): it stays readable, its
/// objects stay until the controller removes them, new content is refused,
/// and the system namespaces cannot be deleted.
#[tokio::test]
async fn deleting_a_namespace_marks_it_terminating() {
    let c = cluster().await;
    let ns = lookup("", "v1", "namespaces").unwrap();
    c.rest
        .create(ns, "", json!({"metadata": {"name": "team"}}), &Query::new())
        .await
        .unwrap();
    c.rest
        .create(pods(), "team", pod("x", json!({})), &Query::new())
        .await
        .unwrap();
    let t = Target {
        resource: ns,
        namespace: String::new(),
        name: "team".into(),
        subresource: String::new(),
    };
    c.rest.delete(&t, &json!({}), &Query::new()).await.unwrap();
    let marked = c.rest.get(&t).await.unwrap();
    assert_eq!(marked["status"]["phase"], "Terminating");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let err = c
        .rest
        .create(pods(), "team", pod("y", json!({})), &Query::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert!(err.message.contains("being terminated"), "{}", err.message);
    let sys = Target {
        name: "kube-system".into(),
        ..t
    };
    assert_eq!(
        c.rest
            .delete(&sys, &json!({}), &Query::new())
            .await
            .unwrap_err()
            .code,
        403
    );
}

/// Random and mangled bodies through every write verb: errors, never panics.
#[tokio::test]
async fn random_bodies_never_panic() {
    use rand::{Rng, SeedableRng};
    let c = cluster().await;
    c.rest
        .create(pods(), "default", pod("fuzz", json!({})), &Query::new())
        .await
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let seeds: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&pod("fuzz", json!({"a": "b"}))).unwrap(),
        br#"{"spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":"eighty"}]}]}}"#.to_vec(),
        br#"[{"op":"add","path":"/metadata/labels/x","value":1}]"#.to_vec(),
        br#"{"metadata":{"labels":null},"spec":{"containers":[{"$patch":"delete"}]}}"#.to_vec(),
    ];
    for i in 0..400 {
        let mut body = seeds[i % seeds.len()].clone();
        for _ in 0..rng.random_range(0..6) {
            if body.is_empty() {
                break;
            }
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..3) {
                0 => body[at] = rng.random(),
                1 => {
                    body.remove(at);
                }
                _ => {
                    const BYTES: &[u8] = b"{}[]\":,0nt$";
                    body.insert(at, BYTES[rng.random_range(0..BYTES.len())]);
                }
            }
        }
        let value = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        let _ = c
            .rest
            .create(
                pods(),
                "default",
                value.clone(),
                &q(&[("fieldValidation", "Strict")]),
            )
            .await;
        let _ = c.rest.update(&target("fuzz"), value, &Query::new()).await;
        for kind in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ] {
            let _ = c
                .rest
                .patch(
                    &target("fuzz"),
                    kind,
                    &body,
                    &q(&[("fieldManager", "fuzz")]),
                )
                .await;
        }
    }
}

fn services() -> &'static Resource {
    lookup("", "v1", "services").unwrap()
}

fn svc_target(name: &str) -> Target {
    Target {
        resource: services(),
        namespace: "default".into(),
        name: name.into(),
        subresource: String::new(),
    }
}

/// ClusterIPs and NodePorts: concurrent creates never share one, a taken
/// one asked for is 422, and delete frees it for the next Service.
#[tokio::test]
async fn service_ips_and_node_ports_are_never_handed_out_twice() {
    let c = cluster().await;
    let rest = Arc::new(c.rest.clone());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let rest = rest.clone();
        tasks.push(tokio::spawn(async move {
            let s = json!({"metadata": {"name": format!("s{i}")},
                "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
            rest.create(services(), "default", s, &Query::new())
                .await
                .unwrap()
                .object
        }));
    }
    let mut ips = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for t in tasks {
        let s = t.await.unwrap();
        let ip = s["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.96."), "{ip}");
        assert_eq!(s["spec"]["clusterIPs"], json!([ip]));
        assert!(ips.insert(ip.clone()), "ClusterIP {ip} handed out twice");
        let port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(ports.insert(port), "NodePort {port} handed out twice");
    }

    let fixed = |name: &str| {
        json!({"metadata": {"name": name}, "spec": {"clusterIP": "10.96.0.10",
            "type": "NodePort", "ports": [{"port": 53, "nodePort": 30053}]}})
    };
    c.rest
        .create(services(), "default", fixed("dns"), &Query::new())
        .await
        .unwrap();
    let err = c
        .rest
        .create(services(), "default", fixed("dns2"), &Query::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("provided IP is already allocated"),
        "{}",
        err.message
    );
    let mut other_ip = fixed("dns3");
    other_ip["spec"]["clusterIP"] = json!("10.96.0.11");
    let err = c
        .rest
        .create(services(), "default", other_ip, &Query::new())
        .await
        .unwrap_err();
    assert!(
        err.message.contains("provided port is already allocated"),
        "{}",
        err.message
    );

    c.rest
        .delete(&svc_target("dns"), &json!({}), &Query::new())
        .await
        .unwrap();
    let again = c
        .rest
        .create(services(), "default", fixed("dns2"), &Query::new())
        .await
        .unwrap();
    assert_eq!(again.object["spec"]["clusterIP"], "10.96.0.10");
    // An update that omits the allocated values keeps them.
    let mut body = again.object.clone();
    body["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("nodePort");
    body["spec"].as_object_mut().unwrap().remove("clusterIP");
    let updated = c
        .rest
        .update(&svc_target("dns2"), body, &Query::new())
        .await
        .unwrap();
    assert_eq!(updated.object["spec"]["ports"][0]["nodePort"], 30053);
    assert_eq!(updated.object["spec"]["clusterIP"], "10.96.0.10");

    let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}});
    let h = c
        .rest
        .create(services(), "default", headless, &Query::new())
        .await
        .unwrap();
    assert_eq!(h.object["spec"]["clusterIPs"], json!(["None"]));
}
