//! Request bodies are read whole before a request is routed.
//!
//! A handler that answers early (404 for a resource not served, 405, 401)
//! used to drop the body unread; hyper then closed the keep-alive
//! connection without `Connection: close`, and a client that reused the
//! pooled connection (urllib3, Go's transport) lost its next request. Every
//! API handler reads the body into memory anyway, so reading it here first
//! costs nothing and leaves no unread bytes on the connection.
//!
//! A body over the limit gets kube-apiserver's 413 ("Request entity too
//! large: limit is 3145728"); the rest of it is drained (up to
//! `DRAIN_LIMIT`, for `DRAIN_TIME`) so the client, still sending, reads
//! the answer instead of a reset, and the connection is closed after it.
//! The registry's `/v2/` streams blobs of any size and is left alone.
//!
//! Also here: parsing a write's body by its Content-Type (JSON, YAML,
//! kubectl's protobuf) and a DELETE's options.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Version, header};
use axum::response::Response;
use http_body_util::BodyExt;

use serde_json::{Value, json};

use super::protobuf;
use super::rest;
use super::status::ApiError;

/// The most of an oversized body read (and thrown away) before answering.
const DRAIN_LIMIT: usize = 64 << 20;

/// How long the drain of an oversized or failed body may take.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Either the request with its body in memory, or the answer to send
/// without routing it.
pub enum Buffered {
    Ready(Request<Body>),
    Answer(Response),
}

/// Whether `path` is served from a buffered body (everything but `/v2/`).
pub fn buffers(path: &str) -> bool {
    !(path == "/v2" || path.starts_with("/v2/"))
}

/// Reads the body of `req` (at most `limit` bytes) into memory.
pub async fn buffer<B>(req: Request<B>, limit: usize) -> Buffered
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    let http1 = req.version() < Version::HTTP_2;
    let (parts, mut body) = req.into_parts();
    let mut data = bytes::BytesMut::new();
    let failure = loop {
        match body.frame().await {
            None => return Buffered::Ready(Request::from_parts(parts, Body::from(data.freeze()))),
            Some(Err(e)) => {
                break ApiError::bad_request(format!("could not read the request body: {e}"));
            }
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                if data.len() + chunk.len() > limit {
                    drain(&mut body, data.len() + chunk.len()).await;
                    break ApiError::too_large(limit);
                }
                data.extend_from_slice(&chunk);
            }
        }
    };
    let mut resp = super::reply::error_response(failure);
    if http1 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Buffered::Answer(resp)
}

/// Reads and discards the rest of `body`, within the drain limits.
async fn drain<B>(body: &mut B, mut read: usize)
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
{
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while read <= DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
}

/// Parses a create/update body by Content-Type (JSON when absent).
pub fn parse_write_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" | "" | "*/*" | "text/plain" | "application/x-www-form-urlencoded" => {
            rest::parse_body(body, false)
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => rest::parse_body(body, true),
        protobuf::CONTENT_TYPE => protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// DeleteOptions from a DELETE's body (none: the defaults).
pub fn delete_options(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_write_body(headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Vec<u8>, version: Version) -> Request<http_body_util::Full<bytes::Bytes>> {
        let mut req = Request::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *req.version_mut() = version;
        req
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_kept_whole() {
        let Buffered::Ready(req) =
            buffer(request(b"{\"a\":1}".to_vec(), Version::HTTP_11), 100).await
        else {
            panic!("refused")
        };
        let got = axum::body::to_bytes(req.into_body(), 100).await.unwrap();
        assert_eq!(&got[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn an_oversized_body_is_413_and_closes_an_http1_connection() {
        let Buffered::Answer(resp) = buffer(request(vec![b'x'; 101], Version::HTTP_11), 100).await
        else {
            panic!("accepted")
        };
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.headers()[header::CONNECTION], "close");
        let body = axum::body::to_bytes(resp.into_body(), 10_000)
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status["message"], "Request entity too large: limit is 100");
        assert_eq!(status["reason"], "RequestEntityTooLarge");
        // HTTP/2 has no Connection header (the stream alone is reset).
        let Buffered::Answer(resp) = buffer(request(vec![b'x'; 101], Version::HTTP_2), 100).await
        else {
            panic!("accepted")
        };
        assert!(resp.headers().get(header::CONNECTION).is_none());
    }

    #[test]
    fn the_registry_streams_its_bodies() {
        assert!(!buffers("/v2/"));
        assert!(!buffers("/v2/web/blobs/uploads/"));
        assert!(buffers("/api/v1/namespaces/default/configmaps"));
        assert!(buffers("/v2beta"));
    }
}
