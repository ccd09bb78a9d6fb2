//! `pods/portforward` over WebSocket (`SPDY/3.1+portforward.k8s.io`):
//! a SPDY session inside the WebSocket's binary messages. kubectl opens,
//! per local TCP connection, an `error` stream and a `data` stream sharing a
//! `requestid`; each data stream becomes one tunnelled stream to the node,
//! which connects to the port inside the pod's network namespace. Bytes
//! flow as DATA frames; FIN closes a direction, RST_STREAM the stream.
//! Failures are written on the request's error stream, as kubectl prints
//! what arrives there. Clients that ask for the channel protocol instead
//! (the official client libraries) are served by `portforward_ws`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use kc_protocol::streams::StreamRequest;
use tokio::sync::mpsc;

use super::super::status::ApiError;
use super::spdy::{self, Codec, Frame};
use super::{NodeTunnel, portforward_ws};

/// Upgrades and runs the SPDY session, or the channel protocol
/// (`portforward_ws`) when that is what the client asks for.
pub fn serve(
    tunnel: Option<Arc<dyn NodeTunnel>>,
    ws: WebSocketUpgrade,
    namespace: &str,
    pod: &str,
    node: &str,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let mut known = vec![spdy::WEBSOCKET_PROTOCOL];
    known.extend(portforward_ws::PROTOCOLS);
    let ws = ws.protocols(known.clone());
    let spdy = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(spdy::WEBSOCKET_PROTOCOL) => true,
        Some(_) => false,
        None => {
            return Err(ApiError::bad_request(format!(
                "port-forward needs one of the WebSocket subprotocols {known:?}"
            )));
        }
    };
    let Some(tunnel) = tunnel else {
        return Err(super::node_not_connected(node));
    };
    if !spdy {
        let ports = portforward_ws::ports(pairs)?;
        let (namespace, pod, node) = (namespace.to_string(), pod.to_string(), node.to_string());
        return Ok(ws.on_upgrade(move |socket| {
            portforward_ws::run(socket, tunnel, namespace, pod, node, ports)
        }));
    }
    let session = Session {
        tunnel,
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        node: node.to_string(),
    };
    Ok(ws.on_upgrade(move |socket| session.run(socket)))
}

struct Session {
    tunnel: Arc<dyn NodeTunnel>,
    namespace: String,
    pod: String,
    node: String,
}

impl Session {
    async fn run(self, socket: WebSocket) {
        let (mut ws_tx, mut ws_rx) = socket.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
        // One writer owns the compression context for server->client frames.
        let writer = tokio::spawn(async move {
            let mut codec = Codec::new();
            while let Some(frame) = out_rx.recv().await {
                match codec.encode(&frame) {
                    Ok(bytes) => {
                        if ws_tx.send(Message::Binary(bytes.into())).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("port-forward: cannot encode a SPDY frame: {e}"),
                }
            }
        });
        let mut codec = Codec::new();
        let mut error_streams: HashMap<String, u32> = HashMap::new();
        let mut upstreams: HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>> = HashMap::new();
        let mut tasks = Vec::new();
        'session: while let Some(Ok(msg)) = ws_rx.next().await {
            let bytes = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            codec.push(&bytes);
            loop {
                let frame = match codec.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("port-forward to pod {}: {e}", self.pod);
                        let _ = out_tx.send(Frame::GoAway {
                            last_good: 0,
                            status: 1,
                        });
                        break 'session;
                    }
                };
                match frame {
                    Frame::SynStream {
                        stream_id, headers, ..
                    } => {
                        let _ = out_tx.send(Frame::SynReply {
                            stream_id,
                            fin: false,
                            headers: Vec::new(),
                        });
                        let request_id = spdy::header(&headers, "requestid")
                            .unwrap_or("")
                            .to_string();
                        match spdy::header(&headers, "streamtype") {
                            Some("error") => {
                                error_streams.insert(request_id, stream_id);
                            }
                            Some("data") => {
                                let port = spdy::header(&headers, "port")
                                    .and_then(|p| p.parse::<u16>().ok());
                                let (tx, rx) = mpsc::unbounded_channel();
                                upstreams.insert(stream_id, tx);
                                // Long sessions with many connections keep
                                // no state of finished ones.
                                let error_stream = error_streams.remove(&request_id);
                                tasks.retain(|t: &tokio::task::JoinHandle<()>| !t.is_finished());
                                tasks.push(tokio::spawn(self.forward(
                                    stream_id,
                                    error_stream,
                                    port,
                                    rx,
                                    out_tx.clone(),
                                )));
                            }
                            _ => {
                                let _ = out_tx.send(Frame::RstStream {
                                    stream_id,
                                    status: spdy::RST_PROTOCOL_ERROR,
                                });
                            }
                        }
                    }
                    Frame::Data {
                        stream_id,
                        fin,
                        data,
                    } => {
                        if let Some(tx) = upstreams.get(&stream_id) {
                            if !data.is_empty() {
                                let _ = tx.send(Some(data));
                            }
                            if fin {
                                let _ = tx.send(None);
                                upstreams.remove(&stream_id);
                            }
                        }
                    }
                    Frame::RstStream { stream_id, .. } => {
                        upstreams.remove(&stream_id);
                    }
                    Frame::Ping { id } => {
                        let _ = out_tx.send(Frame::Ping { id });
                    }
                    Frame::GoAway { .. } => break 'session,
                    _ => {}
                }
            }
        }
        drop(upstreams);
        for t in tasks {
            t.abort();
        }
        drop(out_tx);
        let _ = writer.await;
    }

    /// One forwarded connection: tunnel to the node and copy both ways.
    fn forward(
        &self,
        stream_id: u32,
        error_stream: Option<u32>,
        port: Option<u16>,
        from_client: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
        out: mpsc::UnboundedSender<Frame>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let tunnel = self.tunnel.clone();
        let (namespace, pod, node) = (self.namespace.clone(), self.pod.clone(), self.node.clone());
        async move {
            let fail = |msg: String| {
                if let Some(err) = error_stream {
                    let _ = out.send(Frame::Data {
                        stream_id: err,
                        fin: true,
                        data: msg.into_bytes(),
                    });
                }
                let _ = out.send(Frame::Data {
                    stream_id,
                    fin: true,
                    data: Vec::new(),
                });
            };
            let Some(port) = port else {
                fail("port-forward data stream without a valid port header".into());
                return;
            };
            let req = StreamRequest::PortForward {
                namespace,
                pod: pod.clone(),
                port,
            };
            let (send, recv) = match super::open(Some(&tunnel), &node, &req).await {
                Ok(s) => s,
                Err(e) => {
                    fail(format!(
                        "error forwarding port {port} to pod {pod}: {}",
                        e.message
                    ));
                    return;
                }
            };
            let up = super::splice(send, recv, from_client, |data| {
                out.send(Frame::Data {
                    stream_id,
                    fin: false,
                    data: data.to_vec(),
                })
                .is_ok()
            })
            .await;
            let _ = out.send(Frame::Data {
                stream_id,
                fin: true,
                data: Vec::new(),
            });
            if let Some(err) = error_stream {
                let _ = out.send(Frame::Data {
                    stream_id: err,
                    fin: true,
                    data: Vec::new(),
                });
            }
            let _ = up.await;
        }
    }
}
