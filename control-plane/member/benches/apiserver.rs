//! API server benchmarks over real HTTPS on loopback (a single-member store
//! underneath), printing figures:
//! - creates/s and create latency with 50 concurrent clients (10,000 pods);
//! - LIST of 10,000 pods as JSON and as a Table (kubectl get), latency;
//! - 1,000 concurrent watchers receiving one write: delivery latency.
//!
//! Run: `cargo bench -p kc-member --bench apiserver`
//! (`KC_BENCH_PODS`, `KC_BENCH_CLIENTS`, `KC_BENCH_WATCHERS` scale it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kc_member::apiserver::{Authenticator, registry, table, table_decode};
use kc_member::store::api::KeyValue;

#[path = "../tests/support/https.rs"]
mod https;

use https::TestServer;

async fn request(
    s: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    accept: &str,
    body: Option<Vec<u8>>,
) -> (u16, Bytes) {
    let headers = [("accept", accept), ("content-type", "application/json")];
    https::request(s, method, path, &headers, body.unwrap_or_default()).await
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} n={:<6} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80}]}]}
    }))
    .expect("json")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pods = env_or("KC_BENCH_PODS", 10_000);
    let clients = env_or("KC_BENCH_CLIENTS", 50);
    let watchers = env_or("KC_BENCH_WATCHERS", 1_000);
    let server = TestServer::start(Authenticator::new()).await;
    let client = Arc::new(server.client(Some(&server.admin)));
    println!(
        "kc API server benchmark: {pods} pods, {clients} create clients, {watchers} watchers (HTTPS, loopback, 1-member store)"
    );

    // Creates with 50 clients.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await;
            let mut lat = Vec::new();
            for i in (c..pods).step_by(clients) {
                let t = Instant::now();
                let (code, body) = request(
                    &mut conn,
                    "POST",
                    "/api/v1/namespaces/default/pods",
                    "application/json",
                    Some(pod(&format!("pod-{i:05}"))),
                )
                .await;
                assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut create_lat = Vec::new();
    for t in tasks {
        create_lat.extend(t.await.expect("create task"));
    }
    let took = started.elapsed();
    println!(
        "create: {:.0} pods/s ({pods} in {:.2} s)",
        pods as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    report(
        &format!("create pod ({clients} concurrent clients)"),
        create_lat,
    );

    // LIST 10k pods.
    let mut conn = client.connect().await;
    for (name, accept) in [
        ("LIST all pods, JSON", "application/json"),
        (
            "LIST all pods, Table (kubectl get)",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        ),
    ] {
        let mut lat = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let (code, body) = request(
                &mut conn,
                "GET",
                "/api/v1/namespaces/default/pods",
                accept,
                None,
            )
            .await;
            lat.push(t.elapsed());
            assert_eq!(code, 200);
            assert!(body.len() > pods * 100, "the list holds every pod");
        }
        report(&format!("{name} ({pods} pods)"), lat);
    }

    // Table rendering alone, in process, same objects: decoding whole
    // objects (before) vs only what the rows read (what LIST now does).
    let (_, body) = request(
        &mut conn,
        "GET",
        "/api/v1/namespaces/default/pods",
        "application/json",
        None,
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&body).expect("list json");
    let kvs: Vec<KeyValue> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .enumerate()
        .map(|(i, o)| KeyValue {
            key: format!("/registry/core/pods/default/{i}").into_bytes(),
            value: serde_json::to_vec(o).expect("json"),
            create_revision: 1,
            mod_revision: 2,
            version: 1,
            lease: 0,
        })
        .collect();
    let pods_resource = registry::lookup("", "v1", "pods").expect("pods are served");
    let keep_all = |_: &serde_json::Value| true;
    for (name, decode) in [
        ("whole objects", None),
        (
            "only what rows read",
            table_decode::table_keep(pods_resource),
        ),
    ] {
        let mut lat = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let bytes = table::table_bytes(
                pods_resource,
                "v1",
                &kvs,
                &keep_all,
                serde_json::json!({}),
                decode,
            )
            .expect("table");
            lat.push(t.elapsed());
            assert!(bytes.len() > pods * 100, "the table holds every pod");
        }
        report(&format!("Table rendering in process, {name}"), lat);
    }

    // 1,000 watchers, one write.
    let (_, body) = request(
        &mut conn,
        "GET",
        "/api/v1/namespaces/kube-public/pods",
        "application/json",
        None,
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&body).expect("list json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let (go_tx, _) = tokio::sync::broadcast::channel::<Instant>(1);
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let client = client.clone();
        let ready = ready_tx.clone();
        let mut go = go_tx.subscribe();
        let rv = rv.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await;
            let req = hyper::Request::builder()
                .uri(format!(
                    "/api/v1/namespaces/kube-public/pods?watch=true&resourceVersion={rv}"
                ))
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .expect("request");
            let mut resp = conn.send_request(req).await.expect("watch");
            let _ = ready.send(()).await;
            let sent = go.recv().await.expect("go");
            loop {
                match resp.body_mut().frame().await {
                    Some(Ok(f)) if f.data_ref().is_some_and(|d| !d.is_empty()) => {
                        return sent.elapsed();
                    }
                    Some(Ok(_)) => continue,
                    _ => panic!("watch ended before the event"),
                }
            }
        }));
    }
    for _ in 0..watchers {
        ready_rx.recv().await.expect("watcher ready");
    }
    // Let the watch registrations reach the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut writer = client.connect().await;
    let sent = Instant::now();
    let _ = go_tx.send(sent);
    let (code, _) = request(
        &mut writer,
        "POST",
        "/api/v1/namespaces/kube-public/pods",
        "application/json",
        Some(pod("watched")),
    )
    .await;
    assert_eq!(code, 201);
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.expect("watcher"));
    }
    report(&format!("watch event delivery ({watchers} watchers)"), lat);
}
