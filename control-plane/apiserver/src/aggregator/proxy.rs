//! Forwards one request to an aggregated API's backend and streams its
//! answer back (watches included), as kube-aggregator's proxy does: the
//! method, path, query, body and content headers as sent, the caller in
//! `X-Remote-User`/`X-Remote-Group` instead of the client's credentials.

use axum::body::Body;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::Full;

use super::Remote;
use crate::backend::{self, Trust};
use crate::reply::error_response;
use crate::status::ApiError;
use crate::storage::Storage;

/// The headers passed to the backend as the client sent them.
const PASSED: &[header::HeaderName] = &[
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::USER_AGENT,
    header::ACCEPT_ENCODING,
];

fn unavailable(why: impl std::fmt::Display) -> Response {
    error_response(ApiError::unavailable(format!(
        "error trying to reach service: {why}"
    )))
}

#[allow(clippy::too_many_arguments)]
pub async fn forward(
    storage: &Storage,
    remote: &Remote,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
    user: &str,
    groups: &[String],
) -> Response {
    let (address, server_name) =
        match backend::service_endpoint(storage, &remote.namespace, &remote.service, remote.port)
            .await
        {
            Ok(found) => found,
            Err(why) => return unavailable(why),
        };
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(header::HOST, &server_name)
        .header("X-Remote-User", user);
    for g in groups {
        request = request.header("X-Remote-Group", g);
    }
    for name in PASSED {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v);
        }
    }
    let request = match request.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return error_response(ApiError::bad_request(e.to_string())),
    };
    let trust = if remote.insecure {
        Trust::Insecure
    } else {
        Trust::Bundle(&remote.ca_bundle)
    };
    match backend::send(&address, &server_name, trust, request).await {
        Ok(answer) => {
            let (parts, incoming) = answer.into_parts();
            let mut out = Response::new(Body::new(incoming));
            *out.status_mut() = parts.status;
            for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
                if let Some(v) = parts.headers.get(&name) {
                    out.headers_mut().insert(name, v.clone());
                }
            }
            out
        }
        Err(why) => unavailable(why),
    }
}
