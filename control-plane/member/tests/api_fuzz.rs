//! Property tests of the request handlers: random and mangled methods,
//! paths, query strings, headers (Content-Type, Accept) and bodies (JSON,
//! YAML, protobuf, every patch type) sent straight into the router. The
//! property: the server never panics and never fails with a 5xx it should
//! not (503 only where a node stream is needed and no node is connected),
//! and every error is a Kubernetes `Status`. Seeded and a fixed number of
//! cases, so it runs in CI in seconds and the same way every time.

mod support;

use axum::body::Body;
use kc_member::apiserver::Authenticator;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::https::TestServer;
use support::router::{send, send_raw};

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW",
];

const PATHS: &[&str] = &[
    "/api",
    "/apis",
    "/api/v1",
    "/apis/apps/v1",
    "/apis/apps",
    "/api/v1/pods",
    "/api/v1/namespaces",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces/fuzz",
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/pods/p",
    "/api/v1/namespaces/default/pods/p/status",
    "/api/v1/namespaces/default/pods/p/binding",
    "/api/v1/namespaces/default/pods/p/eviction",
    "/api/v1/namespaces/default/pods/p/log",
    "/api/v1/namespaces/default/pods/p/exec",
    "/api/v1/namespaces/default/services/s",
    "/api/v1/namespaces/default/configmaps/c",
    "/api/v1/nodes/n1",
    "/api/v1/nodes/n1/status",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/deployments/d",
    "/apis/apps/v1/namespaces/default/deployments/d/scale",
    "/apis/apps/v1/namespaces/default/deployments/d/status",
    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/l",
    "/openapi/v2",
    "/openapi/v3",
    "/openapi/v3/api/v1",
    "/openapi/v3/apis/nope/v9",
    "/metrics",
    "/version",
    "/readyz",
    "/v2/",
];

const SEGMENTS: &[&str] = &[
    "",
    "..",
    "%00",
    "%ff",
    "%2F",
    "x",
    "namespaces",
    "pods",
    "status",
    "scale",
    "UPPER",
    "a.b-c",
    "-",
    "😀",
    "very-long-segment-very-long-segment-very-long-segment-very-long-segment",
];

const QUERY_KEYS: &[&str] = &[
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "fieldManager",
    "fieldValidation",
    "dryRun",
    "force",
    "propagationPolicy",
    "gracePeriodSeconds",
    "watch",
    "allowWatchBookmarks",
    "container",
    "follow",
    "tailLines",
];

const QUERY_VALUES: &[&str] = &[
    "",
    "a=b",
    "a%20in%20(x",
    "!a,b!=c",
    "a%20notin%20()",
    "metadata.name=p",
    "spec.nodeName!=",
    "status.phase==Running",
    "-1",
    "0",
    "5",
    "99999999999999999999",
    "All",
    "Strict",
    "Warn",
    "Ignore",
    "true",
    "false",
    "Foreground",
    "Orphan",
    "bm90IGEgdG9rZW4",
    "eyJydiI6MSwic3RhcnQiOiJ4In0",
    "%ZZ",
    "fuzz",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
    "text/csv",
    "a/b;c=d",
    ";;;",
];

const ACCEPTS: &[&str] = &[
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    "application/vnd.kubernetes.protobuf,application/json",
    "application/vnd.kubernetes.protobuf",
    "*/*",
    "text/html;q=0.1,,,;;",
    "application/json;as=Table;v=v9;g=meta.k8s.io",
];

fn seeds() -> Vec<Vec<u8>> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}});
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    vec![
        serde_json::to_vec(&pod).unwrap(),
        serde_json::to_vec(&deploy).unwrap(),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n".to_vec(),
        br#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"remove","path":"/x"}]"#.to_vec(),
        br#"{"metadata":{"labels":{"a":null},"finalizers":["f"]},"spec":{"containers":[{"name":"c","$patch":"delete"}]}}"#.to_vec(),
        br#"{"apiVersion":"autoscaling/v1","kind":"Scale","spec":{"replicas":-3}}"#.to_vec(),
        br#"{"kind":"DeleteOptions","propagationPolicy":"Orphan","preconditions":{"uid":"x"}}"#.to_vec(),
        br#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#.to_vec(),
        b"k8s\0\n\x0a\x02v1\x12\x03Pod\x12\x10\n\x0e\n\x01p\x12\x00\x1a\x07default".to_vec(),
        Vec::new(),
    ]
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

fn random_path(rng: &mut StdRng) -> String {
    let mut path = pick(rng, PATHS).to_string();
    match rng.random_range(0..6) {
        0 => {
            path.push('/');
            path.push_str(pick(rng, SEGMENTS));
        }
        1 => {
            // Replace one segment.
            let mut segs: Vec<String> = path.split('/').map(str::to_string).collect();
            let at = rng.random_range(0..segs.len());
            segs[at] = pick(rng, SEGMENTS).to_string();
            path = segs.join("/");
        }
        2 => path = path.replace('/', "//"),
        _ => {}
    }
    path
}

fn random_query(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..4);
    let pairs: Vec<String> = (0..n)
        .map(|_| format!("{}={}", pick(rng, QUERY_KEYS), pick(rng, QUERY_VALUES)))
        .collect();
    pairs.join("&")
}

fn random_body(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut body = seeds[rng.random_range(0..seeds.len())].clone();
    if rng.random_bool(0.3) {
        return (0..rng.random_range(0..80)).map(|_| rng.random()).collect();
    }
    for _ in 0..rng.random_range(0..5) {
        if body.is_empty() {
            break;
        }
        let at = rng.random_range(0..body.len());
        match rng.random_range(0..4) {
            0 => body[at] = rng.random(),
            1 => {
                body.remove(at);
            }
            2 => {
                const BYTES: &[u8] = b"{}[]\":,0nt$-\\\n: ";
                body.insert(at, BYTES[rng.random_range(0..BYTES.len())]);
            }
            _ => body.truncate(at),
        }
    }
    body
}

/// Requests that make sense (method, path, Content-Type, seed body), so the
/// run also reaches creates, updates and patches, not only 404s.
const PLAUSIBLE: &[(&str, &str, &str, usize)] = &[
    (
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        0,
    ),
    (
        "PUT",
        "/api/v1/namespaces/default/pods/p",
        "application/json",
        0,
    ),
    (
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        "application/json",
        1,
    ),
    (
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/d",
        "application/json",
        1,
    ),
    (
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=fuzz",
        "application/apply-patch+yaml",
        1,
    ),
    (
        "PATCH",
        "/api/v1/namespaces/default/pods/p?fieldManager=other&force=true",
        "application/apply-patch+yaml",
        0,
    ),
    (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/yaml",
        2,
    ),
    (
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/d",
        "application/json-patch+json",
        3,
    ),
    (
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        "application/strategic-merge-patch+json",
        4,
    ),
    (
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        "application/merge-patch+json",
        4,
    ),
    (
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/d/scale",
        "application/json",
        5,
    ),
    (
        "DELETE",
        "/api/v1/namespaces/default/configmaps/c",
        "application/json",
        6,
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        "application/json",
        7,
    ),
    (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        8,
    ),
];

/// A node stream with no node connected is a 503 by design.
fn needs_a_node(path: &str) -> bool {
    ["/log", "/exec", "/portforward", "/attach"]
        .iter()
        .any(|s| path.contains(s))
}

#[tokio::test(flavor = "multi_thread")]
async fn random_requests_get_answers_or_status_errors_never_panics() {
    let server = TestServer::start(Authenticator::new()).await;
    let state = server.api.state.clone();
    let seeds = seeds();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    for case in 0..3000 {
        let plausible = rng.random_bool(0.5);
        let (method, path, query, content_type, body) = if plausible {
            let (m, p, ct, seed) = PLAUSIBLE[rng.random_range(0..PLAUSIBLE.len())];
            let mut body = seeds[seed].clone();
            if rng.random_bool(0.3) {
                body = random_body(&mut rng, &seeds[seed..=seed]);
            }
            let (p, q) = p.split_once('?').unwrap_or((p, ""));
            let mut q = q.to_string();
            if rng.random_bool(0.3) {
                q = [q, random_query(&mut rng)].join("&");
            }
            (m, p.to_string(), q, Some(ct), body)
        } else {
            let ct = rng.random_bool(0.8).then(|| pick(&mut rng, CONTENT_TYPES));
            (
                pick(&mut rng, METHODS),
                random_path(&mut rng),
                random_query(&mut rng),
                ct,
                random_body(&mut rng, &seeds),
            )
        };
        let uri = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        if rng.random_bool(0.8) {
            headers.push(("accept", pick(&mut rng, ACCEPTS)));
        }
        if rng.random_bool(0.3) {
            headers.push(("user-agent", "fuzz/1.0 (linux)"));
        }
        if axum::http::Request::builder()
            .method(method)
            .uri(&uri)
            .body(())
            .is_err()
        {
            continue; // Not a request any client could send.
        }
        let what = format!(
            "case {case}: {method} {uri} {headers:?} body {:?}",
            String::from_utf8_lossy(&body)
        );
        let streaming = query.contains("watch=true") || query.contains("follow=true");
        let (code, text) = if streaming {
            // A watch answers at once and streams: look at the code only.
            let resp = send_raw(&state, method, &uri, &headers, Body::from(body)).await;
            (resp.status().as_u16(), None)
        } else {
            let (code, _, body) = send(&state, method, &uri, &headers, body).await;
            (code, Some(body))
        };
        *codes.entry(code).or_default() += 1;
        assert!(
            code < 500 || (code == 503 && needs_a_node(&path)),
            "{what}: answered {code}: {:?}",
            text.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        );
        if let Some(body) = text
            && code >= 400
            && method != "HEAD"
            && !path.starts_with("/v2")
        {
            let status: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {body:?}"));
            assert_eq!(status["kind"], "Status", "{what}: {status}");
            assert_eq!(status["code"], code, "{what}: {status}");
        }
    }
    eprintln!("answers by code: {codes:?}");
    // The run reached the handlers' interesting parts, not only 404s.
    for code in [200, 201, 400, 404, 405, 415] {
        assert!(codes.contains_key(&code), "no {code} among {codes:?}");
    }
    assert_eq!(send(&state, "GET", "/readyz", &[], vec![]).await.0, 200);
}
