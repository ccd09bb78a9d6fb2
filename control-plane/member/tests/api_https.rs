//! The API server over real HTTPS: who may do what (anonymous, bearer
//! token, admin and node certificates), body limits, malformed bodies and
//! Status errors as the wire carries them.

mod support;

use kc_member::apiserver::Authenticator;
use kc_member::pki::{CertRequest, Identity};
use serde_json::{Value, json};
use support::https::{TestServer, request};

const JSON: (&str, &str) = ("content-type", "application/json");

fn status(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

fn pod(name: &str, node: Option<&str>) -> Vec<u8> {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    serde_json::to_vec(&p).unwrap()
}

#[tokio::test]
async fn anonymous_requests_get_401_and_tokens_are_users() {
    let mut auth = Authenticator::new();
    auth.add_token(
        "s3cret",
        Identity {
            user: "alice".into(),
            groups: vec!["system:masters".into()],
        },
    );
    auth.add_token(
        "weak",
        Identity {
            user: "bob".into(),
            groups: vec![],
        },
    );
    let server = TestServer::start(auth).await;
    let mut anon = server.client(None).connect().await;
    let (code, body) = request(&mut anon, "GET", "/api/v1/pods", &[], vec![]).await;
    assert_eq!(code, 401);
    assert_eq!(status(&body)["reason"], "Unauthorized");
    // Health and version are public, like Kubernetes' system:public-info-viewer.
    assert_eq!(
        request(&mut anon, "GET", "/readyz", &[], vec![]).await.0,
        200
    );
    assert_eq!(
        request(&mut anon, "GET", "/version", &[], vec![]).await.0,
        200
    );
    let (code, _) = request(
        &mut anon,
        "GET",
        "/api/v1/pods",
        &[("authorization", "Bearer s3cret")],
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = request(
        &mut anon,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("authorization", "Bearer weak")],
        vec![],
    )
    .await;
    assert_eq!(code, 403);
    let s = status(&body);
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("User \"bob\" cannot list resource \"pods\""),
        "{s}"
    );
}

#[tokio::test]
async fn a_node_writes_only_its_own_node_lease_and_pods() {
    let server = TestServer::start(Authenticator::new()).await;
    let mut admin = server.client(Some(&server.admin)).connect().await;
    let n1 = server.ca.issue(&CertRequest::node("n1", &[], &[])).unwrap();
    let mut node = server.client(Some(&n1)).connect().await;
    // Its own Node: yes; another's: no.
    let own = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .unwrap();
    assert_eq!(
        request(&mut node, "POST", "/api/v1/nodes", &[JSON], own)
            .await
            .0,
        201
    );
    let other = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}),
    )
    .unwrap();
    assert_eq!(
        request(&mut admin, "POST", "/api/v1/nodes", &[JSON], other)
            .await
            .0,
        201
    );
    let patch = br#"{"metadata":{"labels":{"x":"y"}}}"#.to_vec();
    let mp = ("content-type", "application/merge-patch+json");
    assert_eq!(
        request(&mut node, "PATCH", "/api/v1/nodes/n1", &[mp], patch.clone())
            .await
            .0,
        200
    );
    assert_eq!(
        request(&mut node, "PATCH", "/api/v1/nodes/n2", &[mp], patch.clone())
            .await
            .0,
        403
    );
    // Pods bound to it: yes; others: no. Reads: anything.
    assert_eq!(
        request(
            &mut admin,
            "POST",
            "/api/v1/namespaces/default/pods",
            &[JSON],
            pod("mine", Some("n1"))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        request(
            &mut admin,
            "POST",
            "/api/v1/namespaces/default/pods",
            &[JSON],
            pod("theirs", Some("n2"))
        )
        .await
        .0,
        201
    );
    let status_patch = br#"{"status":{"phase":"Running"}}"#.to_vec();
    assert_eq!(
        request(
            &mut node,
            "PATCH",
            "/api/v1/namespaces/default/pods/mine/status",
            &[mp],
            status_patch.clone()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        request(
            &mut node,
            "PATCH",
            "/api/v1/namespaces/default/pods/theirs/status",
            &[mp],
            status_patch
        )
        .await
        .0,
        403
    );
    assert_eq!(
        request(
            &mut node,
            "GET",
            "/api/v1/namespaces/default/pods/theirs",
            &[],
            vec![]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        request(
            &mut node,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &[JSON],
            b"{}".to_vec()
        )
        .await
        .0,
        403
    );
    // Its lease in kube-node-lease.
    let lease = serde_json::to_vec(&json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}})).unwrap();
    let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    assert_eq!(
        request(&mut node, "POST", path, &[JSON], lease).await.0,
        201
    );
}

#[tokio::test]
async fn bad_bodies_are_status_errors_not_crashes() {
    let server = TestServer::start(Authenticator::new()).await;
    let mut c = server.client(Some(&server.admin)).connect().await;
    let path = "/api/v1/namespaces/default/pods";
    let (code, body) = request(&mut c, "POST", path, &[JSON], b"{not json".to_vec()).await;
    assert_eq!(code, 400);
    assert_eq!(status(&body)["kind"], "Status");
    let (code, _) = request(&mut c, "POST", path, &[JSON], vec![b' '; 4 * 1024 * 1024]).await;
    assert_eq!(code, 413);
    // The server may close a connection whose body it refused to read.
    let mut c = server.client(Some(&server.admin)).connect().await;
    let (code, body) = request(
        &mut c,
        "POST",
        path,
        &[JSON],
        br#"{"metadata":{"name":"x"},"spec":{"containers":[]}}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status(&body)["details"]["causes"][0]["field"],
        "spec.containers"
    );
    let (code, body) = request(
        &mut c,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &[JSON],
        br#"{"metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","bogus":1}]}}"#
            .to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        status(&body)["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.containers[0].bogus\"")
    );
    let (code, _) = request(
        &mut c,
        "PATCH",
        &format!("{path}/x"),
        &[("content-type", "text/csv")],
        b"a,b".to_vec(),
    )
    .await;
    assert_eq!(code, 415);
    let (code, _) = request(&mut c, "GET", "/api/v1/widgets", &[], vec![]).await;
    assert_eq!(code, 404);
    let (code, _) = request(
        &mut c,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/x/nope",
        &[],
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    // Random bytes as every content type.
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for i in 0..200 {
        let len = rng.random_range(0..64);
        let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 {
            body.splice(0..0, b"k8s\0".iter().copied());
        }
        for ct in [
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
            "application/apply-patch+yaml",
            "application/strategic-merge-patch+json",
        ] {
            let (method, p) = if ct.contains("patch") {
                ("PATCH", format!("{path}/x?fieldManager=f"))
            } else {
                ("POST", path.to_string())
            };
            let (code, _) =
                request(&mut c, method, &p, &[("content-type", ct)], body.clone()).await;
            assert!((400..500).contains(&code), "{ct}: {code}");
        }
    }
    assert_eq!(request(&mut c, "GET", "/readyz", &[], vec![]).await.0, 200);
}

#[tokio::test]
async fn discovery_honours_accept_and_metrics_count_requests() {
    let server = TestServer::start(Authenticator::new()).await;
    let mut c = server.client(Some(&server.admin)).connect().await;
    let v2 =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, body) = request(&mut c, "GET", "/apis", &[("accept", v2)], vec![]).await;
    assert_eq!(code, 200);
    assert_eq!(status(&body)["kind"], "APIGroupDiscoveryList");
    let (_, body) = request(
        &mut c,
        "GET",
        "/apis",
        &[("accept", "application/json")],
        vec![],
    )
    .await;
    assert_eq!(status(&body)["kind"], "APIGroupList");
    let (_, body) = request(&mut c, "GET", "/metrics", &[], vec![]).await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("apiserver_request_total{code=\"200\",resource=\"\",verb=\"get\"}"),
        "{text}"
    );
}
