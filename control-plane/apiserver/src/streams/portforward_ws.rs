//! `pods/portforward` over the WebSocket channel protocol
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `portforward.k8s.io`), what
//! the official client libraries speak: the ports are the `?ports=` query
//! (comma-separated or repeated); port number i has data channel 2i and
//! error channel 2i+1, and the first message on each carries the port as
//! two little-endian bytes. Each port is one connection into the pod for
//! the life of the socket; the socket closes when every port's connection
//! has ended. (kubectl's SPDY tunnel is in `portforward`.)

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use kc_protocol::streams::StreamRequest;
use tokio::sync::mpsc;

use super::super::status::ApiError;
use super::NodeTunnel;
use super::channel;

/// The subprotocols that mean this framing, preferred first.
pub const PROTOCOLS: [&str; 3] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "portforward.k8s.io",
];

/// The ports of `?ports=80,8080` (the parameter may repeat).
pub fn ports(pairs: &[(String, String)]) -> Result<Vec<u16>, ApiError> {
    let mut out = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "ports") {
        for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => out.push(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid port {p:?} in the ports query parameter: ports are 1-65535"
                    )));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "the ports query parameter is required for port-forward over WebSocket (e.g. ?ports=8080)",
        ));
    }
    if out.len() > 127 {
        return Err(ApiError::bad_request("at most 127 ports per port-forward"));
    }
    Ok(out)
}

/// The first message of channel `ch`: the port, little-endian.
pub fn port_header(ch: u8, port: u16) -> Vec<u8> {
    channel::encode(ch, &port.to_le_bytes())
}

/// Runs the session on an upgraded socket.
pub async fn run(
    socket: WebSocket,
    tunnel: Arc<dyn NodeTunnel>,
    namespace: String,
    pod: String,
    node: String,
    ports: Vec<u16>,
) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if ws_tx.send(Message::Binary(msg.into())).await.is_err() {
                return;
            }
        }
        let _ = ws_tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    });
    let mut upstreams: Vec<Option<mpsc::UnboundedSender<Option<Vec<u8>>>>> = Vec::new();
    let mut tasks = Vec::new();
    for (i, &port) in ports.iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        let _ = out_tx.send(port_header(data, port));
        let _ = out_tx.send(port_header(error, port));
        let (tx, rx) = mpsc::unbounded_channel();
        upstreams.push(Some(tx));
        let req = StreamRequest::PortForward {
            namespace: namespace.clone(),
            pod: pod.clone(),
            port,
        };
        tasks.push(tokio::spawn(forward(
            tunnel.clone(),
            node.clone(),
            req,
            (data, error),
            rx,
            out_tx.clone(),
        )));
    }
    drop(out_tx);
    let reader = async {
        while let Some(Ok(msg)) = ws_rx.next().await {
            let bytes = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_str().as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&ch, data)) = bytes.split_first() else {
                continue;
            };
            if ch == channel::CLOSE {
                // v5: the client closed its side of a channel.
                if let Some(&closed) = data.first()
                    && closed % 2 == 0
                    && let Some(slot) = upstreams.get_mut(usize::from(closed / 2))
                    && let Some(tx) = slot.take()
                {
                    let _ = tx.send(None);
                }
                continue;
            }
            if ch % 2 == 0
                && !data.is_empty()
                && let Some(Some(tx)) = upstreams.get(usize::from(ch / 2))
            {
                let _ = tx.send(Some(data.to_vec()));
            }
        }
    };
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let all_done = futures::future::join_all(tasks);
    tokio::select! {
        _ = reader => {}
        _ = all_done => {}
    }
    // The client left (or every connection ended): nothing more to copy.
    for a in aborts {
        a.abort();
    }
    let _ = writer.await;
}

/// One port's connection into the pod, copied both ways.
async fn forward(
    tunnel: Arc<dyn NodeTunnel>,
    node: String,
    req: StreamRequest,
    (data, error): (u8, u8),
    from_client: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let (send, recv) = match super::open(Some(&tunnel), &node, &req).await {
        Ok(s) => s,
        Err(e) => {
            let port = match &req {
                StreamRequest::PortForward { port, .. } => *port,
                _ => 0,
            };
            let _ = out.send(channel::encode(
                error,
                format!(
                    "error forwarding port {port} to pod {}: {}",
                    req.pod(),
                    e.message
                )
                .as_bytes(),
            ));
            return;
        }
    };
    let up = super::splice(send, recv, from_client, |bytes| {
        out.send(channel::encode(data, bytes)).is_ok()
    })
    .await;
    up.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ports_come_from_the_query_comma_separated_or_repeated() {
        assert_eq!(ports(&pairs(&[("ports", "80,8080")])).unwrap(), [80, 8080]);
        assert_eq!(
            ports(&pairs(&[("ports", "80"), ("ports", "81")])).unwrap(),
            [80, 81]
        );
        assert!(ports(&pairs(&[])).unwrap_err().message.contains("required"));
        assert!(ports(&pairs(&[("ports", "0")])).is_err());
        assert!(ports(&pairs(&[("ports", "http")])).is_err());
    }

    #[test]
    fn each_channel_opens_with_its_port_little_endian() {
        assert_eq!(port_header(0, 80), [0, 80, 0]);
        assert_eq!(port_header(3, 8080), [3, 0x90, 0x1f]);
    }
}
