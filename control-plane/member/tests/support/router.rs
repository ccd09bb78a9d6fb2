//! Requests straight into the API server's router (no TLS, no sockets), as
//! the cluster administrator: for tests that send many requests or need to
//! hold one open (a body that never ends).

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use kc_member::apiserver::handler::{ApiState, PeerIdentity};
use kc_member::apiserver::server;
use kc_member::pki::{ADMIN_GROUP, ADMIN_USER, Identity};
use tower::ServiceExt;

/// A request as the admin; returns the response (body unread).
pub async fn send_raw(
    state: &Arc<ApiState>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> axum::response::Response {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(body).expect("a valid request");
    req.extensions_mut().insert(PeerIdentity(Some(Identity {
        user: ADMIN_USER.into(),
        groups: vec![ADMIN_GROUP.into()],
    })));
    server::router(state.clone())
        .oneshot(req)
        .await
        .expect("the router is infallible")
}

/// A request as the admin; returns the code, headers and whole body.
pub async fn send(
    state: &Arc<ApiState>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, axum::http::HeaderMap, bytes::Bytes) {
    let resp = send_raw(state, method, uri, headers, Body::from(body)).await;
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (code, headers, body)
}
