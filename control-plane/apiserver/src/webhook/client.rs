//! Calls a webhook: an HTTPS POST of an AdmissionReview to its
//! `clientConfig` (a `url`, or a `service` resolved by `backend` to one of
//! the Service's ready endpoints), the server verified against the
//! configuration's `caBundle` (by IP for a URL naming one, as
//! `<service>.<namespace>.svc` for a Service).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;

use crate::backend::{self, Trust};
use crate::storage::Storage;

/// Answers above this size are refused (a review is a few objects).
const MAX_ANSWER: usize = 8 << 20;

/// Where a webhook is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub address: String,
    /// The name its certificate must carry.
    pub server_name: String,
    /// The path and query of the request.
    pub path: String,
    /// What error messages call it (the URL Kubernetes would print).
    pub url: String,
}

fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url:?}: only https URLs are allowed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: no host, or user information"));
    }
    Ok((authority.to_string(), path.to_string()))
}

fn host_of(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn with_timeout(path: &str, timeout: Duration) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}timeout={}s", timeout.as_secs())
}

/// Where `config` (a webhook's clientConfig) points, resolving a Service
/// through its Endpoints in this member's store.
pub async fn resolve(
    config: &Value,
    storage: &Storage,
    timeout: Duration,
) -> Result<Endpoint, String> {
    if let Some(url) = config["url"].as_str() {
        let (authority, path) = split_url(url)?;
        let (host, port) = host_of(&authority);
        let port = port.unwrap_or("443");
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        return Ok(Endpoint {
            address,
            server_name: host.to_string(),
            path: with_timeout(&path, timeout),
            url: format!("{url}{}", with_timeout("", timeout)),
        });
    }
    let svc = &config["service"];
    let (ns, name) = (
        svc["namespace"].as_str().unwrap_or(""),
        svc["name"].as_str().unwrap_or(""),
    );
    let port = svc["port"].as_i64().unwrap_or(443);
    let path = with_timeout(svc["path"].as_str().unwrap_or("/"), timeout);
    let url = format!("https://{name}.{ns}.svc:{port}{path}");
    let (address, server_name) = backend::service_endpoint(storage, ns, name, port).await?;
    Ok(Endpoint {
        address,
        server_name,
        path,
        url,
    })
}

/// POSTs `body` to `endpoint`; the answer's body if it is a 200.
pub async fn post(
    endpoint: &Endpoint,
    ca_bundle: &Value,
    body: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let request = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(&endpoint.path)
        .header(hyper::header::HOST, &endpoint.server_name)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let answer = backend::send(
        &endpoint.address,
        &endpoint.server_name,
        Trust::Bundle(ca_bundle),
        request,
    )
    .await?;
    let status = answer.status().as_u16();
    let bytes = Limited::new(answer.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if status != 200 {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        return Err(format!("the server answered {status}: {text}"));
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_name_and_path() {
        let (authority, path) = split_url("https://127.0.0.1:9443/validate?x=1").unwrap();
        assert_eq!(
            (authority.as_str(), path.as_str()),
            ("127.0.0.1:9443", "/validate?x=1")
        );
        assert_eq!(host_of("[::1]:8443"), ("::1", Some("8443")));
        assert_eq!(host_of("hooks.example.com"), ("hooks.example.com", None));
        assert!(split_url("http://x/").is_err());
        assert!(split_url("https://user@x/").is_err());
        assert_eq!(
            with_timeout("/v?x=1", Duration::from_secs(10)),
            "/v?x=1&timeout=10s"
        );
    }
}
