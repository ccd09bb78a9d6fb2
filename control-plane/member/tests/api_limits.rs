//! The max-in-flight limits: beyond them a request gets 429 TooManyRequests
//! with Retry-After, counted apart for reads and writes; watches do not
//! count; a slot is given back when its request ends.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use kc_member::apiserver::Authenticator;
use serde_json::Value;
use support::https::TestServer;
use support::router::{send, send_raw};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_limit_get_429_with_retry_after() {
    let server = TestServer::start(Authenticator::new()).await;
    let state = server.api.state.clone();
    state.inflight.set_limits(1, 1);
    // A create whose body never finishes holds the only write slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let held_state = state.clone();
    let held = tokio::spawn(async move {
        send_raw(
            &held_state,
            "POST",
            PODS,
            &[("content-type", "application/json")],
            body,
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.inflight.mutating.in_use() == 0 {
        assert!(Instant::now() < deadline, "the held create never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (code, headers, body) = send(&state, "POST", PODS, &[], pod("b")).await;
    assert_eq!(code, 429, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["retry-after"], "1");
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["retryAfterSeconds"], 1);
    // Reads have their own slot; watches are not counted at all.
    let (code, _, _) = send(&state, "GET", PODS, &[], vec![]).await;
    assert_eq!(code, 200);
    let watch = send_raw(
        &state,
        "GET",
        &format!("{PODS}?watch=true"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(watch.status().as_u16(), 200);
    let (code, _, _) = send(&state, "GET", "/api/v1/namespaces/default", &[], vec![]).await;
    assert_eq!(code, 200, "an open watch took the read slot");
    // The held create finishes and gives its slot back.
    tx.send(Ok(bytes::Bytes::from(pod("a")))).await.unwrap();
    drop(tx);
    assert_eq!(held.await.unwrap().status().as_u16(), 201);
    assert_eq!(state.inflight.mutating.in_use(), 0);
    let (code, _, body) = send(&state, "POST", PODS, &[], pod("b")).await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    // 0 lifts the limit.
    state.inflight.set_limits(0, 0);
    let (code, _, _) = send(&state, "GET", PODS, &[], vec![]).await;
    assert_eq!(code, 200);
}
