//! `GET /api/v1/namespaces/<ns>/pods/<name>/log`: the container's log as
//! `text/plain`, streamed from the node as it reads it (chunked, so
//! `follow=true` keeps the response open while the container writes).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use kc_protocol::streams::StreamRequest;
use tokio::io::AsyncReadExt;

use super::super::rest::Query;
use super::super::status::ApiError;
use super::{NodeTunnel, PodPlace, TunnelRecv};

fn flag(query: &Query, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn number(query: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match query.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{key}={v:?} is not a whole number"))),
    }
}

/// The node request for a log query.
pub fn request(
    namespace: &str,
    pod: &str,
    place: &PodPlace,
    query: &Query,
) -> Result<StreamRequest, ApiError> {
    let tail_lines = number(query, "tailLines")?;
    if tail_lines.is_some_and(|t| t < 0) {
        return Err(ApiError::bad_request("tailLines must be 0 or more"));
    }
    Ok(StreamRequest::Logs {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: place.container.clone(),
        follow: flag(query, "follow"),
        previous: flag(query, "previous"),
        tail_lines,
        timestamps: flag(query, "timestamps"),
        since_seconds: number(query, "sinceSeconds")?,
        limit_bytes: number(query, "limitBytes")?,
    })
}

/// Streams the log of the pod's container.
pub async fn serve(
    tunnel: Option<&Arc<dyn NodeTunnel>>,
    namespace: &str,
    pod: &str,
    place: &PodPlace,
    query: &Query,
) -> Result<Response, ApiError> {
    let req = request(namespace, pod, place, query)?;
    let (send, recv) = super::open(tunnel, &place.node, &req).await?;
    let stream = futures::stream::unfold(
        (recv, send),
        |(mut recv, send): (TunnelRecv, _)| async move {
            let mut buf = vec![0u8; 32 * 1024];
            match recv.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), (recv, send)))
                }
                Err(e) => Some((Err(e), (recv, send))),
            }
        },
    );
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_become_the_request() {
        let q: Query = [("follow", "true"), ("tailLines", "5"), ("timestamps", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let place = PodPlace {
            node: "n".into(),
            container: "c".into(),
        };
        let r = request("ns", "p", &place, &q).unwrap();
        assert_eq!(
            r,
            StreamRequest::Logs {
                namespace: "ns".into(),
                pod: "p".into(),
                container: "c".into(),
                follow: true,
                previous: false,
                tail_lines: Some(5),
                timestamps: true,
                since_seconds: None,
                limit_bytes: None,
            }
        );
        let bad: Query = [("tailLines".to_string(), "x".to_string())]
            .into_iter()
            .collect();
        assert_eq!(request("ns", "p", &place, &bad).unwrap_err().code, 400);
    }
}
