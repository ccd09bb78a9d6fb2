//! Streaming subresources of pods: `pods/log`, `pods/exec` and
//! `pods/portforward`, served by tunnelling to the node agent that runs the
//! pod.
//!
//! Map of the module:
//! - [`NodeTunnel`]: how the API server opens a byte stream to a node (the
//!   cluster's registry of node QUIC connections implements it);
//! - `nodes`: the node agents' QUIC connections as a `NodeTunnel`;
//! - `wire`: frame I/O on such a stream (shared with the node's side);
//! - `logs`: `GET …/log` (plain, or chunked with `follow=true`);
//! - `channel` + `exec`: the WebSocket channel protocol (`v5.channel.k8s.io`,
//!   `v4.channel.k8s.io`) kubectl exec speaks;
//! - `relay`: streams for nodes connected to another member, asked of the
//!   other members (`kc-relay/1`);
//! - `spdy` + `portforward`: SPDY/3.1 inside WebSocket messages, which
//!   kubectl port-forward speaks.
//!
//! Every handler first resolves the pod (node, container) from the store,
//! opens the tunnel, sends the [`StreamRequest`] and waits for the node's
//! [`StreamAccept`], so failures (no such container, node gone) become a
//! Status answer before any upgrade or streaming starts.

pub mod channel;
pub mod exec;
pub mod logs;
pub mod nodes;
pub mod portforward;
pub mod portforward_ws;
pub mod relay;
pub mod spdy;
// Frames on byte streams: kc-protocol's `frame_io`, under its old name.
pub use kc_protocol::frame_io as wire;

use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use kc_protocol::frame::Hello;
use kc_protocol::streams::{StreamAccept, StreamRequest};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::status::ApiError;

/// The write half of a tunnelled stream (a `quinn::SendStream` in production).
pub type TunnelSend = Pin<Box<dyn AsyncWrite + Send>>;
/// The read half of a tunnelled stream (a `quinn::RecvStream` in production).
pub type TunnelRecv = Pin<Box<dyn AsyncRead + Send>>;

/// Copies one forwarded connection both ways: what `from_client` yields
/// into `send` (`None`, or the channel closing, shuts it), and what `recv`
/// reads into `deliver` until the node's side ends or `deliver` refuses.
/// Returns the client-to-node half, still running, for the caller to await
/// or abort.
pub async fn splice(
    mut send: TunnelSend,
    mut recv: TunnelRecv,
    mut from_client: tokio::sync::mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    mut deliver: impl FnMut(&[u8]) -> bool,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = tokio::spawn(async move {
        while let Some(Some(data)) = from_client.recv().await {
            if send.write_all(&data).await.is_err() {
                return;
            }
            let _ = send.flush().await;
        }
        let _ = send.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match recv.read(&mut buf).await {
            Ok(n) if n > 0 && deliver(&buf[..n]) => {}
            _ => break,
        }
    }
    up
}

/// Opens streams to node agents. Implemented over the control plane's QUIC
/// connections to its nodes; a test implements it over in-memory pipes.
pub trait NodeTunnel: Send + Sync {
    /// A new bidirectional stream to node `node_name`'s agent. Errors are
    /// answered to the client as they are (503 when the node is not
    /// connected).
    fn open<'a>(
        &'a self,
        node_name: &'a str,
    ) -> BoxFuture<'a, Result<(TunnelSend, TunnelRecv), ApiError>>;
}

/// The 503 answered when no agent of `node` is connected.
pub fn node_not_connected(node: &str) -> ApiError {
    ApiError::unavailable(format!(
        "node agent for node \"{node}\" is not connected: check that kcnode runs on that node and can reach the control plane"
    ))
}

/// Where a pod's stream goes: its node and the chosen container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlace {
    pub node: String,
    pub container: String,
}

/// Finds the node of `pod` and the container meant by `requested` (the
/// only container, or the `kubectl.kubernetes.io/default-container`, when
/// none is named). Pure over the pod object.
pub fn place(pod: &Value, requested: Option<&str>) -> Result<PodPlace, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod \"{name}\" is not scheduled to a node yet: wait until it is scheduled (kubectl get pod {name} -o wide)"
        )));
    }
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let init_names: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let container = match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) || init_names.contains(&c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None => {
            let default = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
                .as_str()
                .filter(|d| names.contains(d));
            match (default, names.as_slice()) {
                (Some(d), _) => d.to_string(),
                (None, [only]) => only.to_string(),
                (None, _) => {
                    return Err(ApiError::bad_request(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        names.join(" ")
                    )));
                }
            }
        }
    };
    Ok(PodPlace {
        node: node.to_string(),
        container,
    })
}

/// Opens a stream to `node`, sends `request` and waits for the node's
/// acceptance.
pub async fn open(
    tunnel: Option<&Arc<dyn NodeTunnel>>,
    node: &str,
    request: &StreamRequest,
) -> Result<(TunnelSend, TunnelRecv), ApiError> {
    let tunnel = tunnel.ok_or_else(|| node_not_connected(node))?;
    let (mut send, mut recv) = tunnel.open(node).await?;
    let lost = |e: wire::WireError| {
        ApiError::unavailable(format!(
            "stream to node \"{node}\" for pod {} failed: {e}",
            request.pod()
        ))
    };
    wire::write_frame(&mut send, &Hello::current())
        .await
        .map_err(lost)?;
    wire::write_frame(&mut send, request).await.map_err(lost)?;
    match wire::read_frame::<_, StreamAccept>(&mut recv)
        .await
        .map_err(lost)?
    {
        Some(StreamAccept::Ok) => Ok((send, recv)),
        Some(StreamAccept::Failed { code, message }) => Err(ApiError::from_code(code, message)),
        None => Err(ApiError::unavailable(format!(
            "node \"{node}\" closed the stream for pod {} without answering",
            request.pod()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], node: &str) -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "nodeName": node,
                "containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>(),
            }
        })
    }

    #[test]
    fn the_only_container_is_the_default() {
        let p = place(&pod(&["app"], "n1"), None).unwrap();
        assert_eq!(
            p,
            PodPlace {
                node: "n1".into(),
                container: "app".into()
            }
        );
    }

    #[test]
    fn several_containers_need_a_name() {
        let e = place(&pod(&["a", "b"], "n1"), None).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("choose one of: [a b]"), "{}", e.message);
        assert_eq!(
            place(&pod(&["a", "b"], "n1"), Some("b")).unwrap().container,
            "b"
        );
        assert_eq!(
            place(&pod(&["a", "b"], "n1"), Some("c")).unwrap_err().code,
            400
        );
    }

    #[test]
    fn an_unscheduled_pod_is_refused() {
        let e = place(&pod(&["a"], ""), None).unwrap_err();
        assert!(e.message.contains("not scheduled"), "{}", e.message);
    }
}
