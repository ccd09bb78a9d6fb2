//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`):
//! the node runs the command and sends [`ExecFrame`]s; this end turns them
//! into channel messages and the client's messages into frames, and ends
//! with the exit status on channel 3 and a normal close (code 1000), which
//! is what makes kubectl exit with the command's code.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use kc_protocol::streams::{ExecFrame, StreamRequest};

use super::super::status::ApiError;
use super::channel::{self, Incoming};
use super::{NodeTunnel, PodPlace, TunnelRecv, TunnelSend, wire};

/// Query parameters of an exec (`command` repeats).
pub fn request(
    namespace: &str,
    pod: &str,
    place: &PodPlace,
    pairs: &[(String, String)],
) -> Result<StreamRequest, ApiError> {
    let flag = |k: &str| {
        pairs
            .iter()
            .any(|(key, v)| key == k && (v == "true" || v == "1"))
    };
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least 1 command (the command query parameter)",
        ));
    }
    Ok(StreamRequest::Exec {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: place.container.clone(),
        command,
        stdin: flag("stdin"),
        tty: flag("tty"),
    })
}

/// Opens the exec on the node, then upgrades the connection and pumps.
pub async fn serve(
    tunnel: Option<&Arc<dyn NodeTunnel>>,
    ws: WebSocketUpgrade,
    req: StreamRequest,
    node: &str,
) -> Result<Response, ApiError> {
    let ws = ws.protocols(channel::PROTOCOLS);
    if ws.selected_protocol().is_none() {
        return Err(ApiError::bad_request(format!(
            "exec needs one of the WebSocket subprotocols {:?}",
            channel::PROTOCOLS
        )));
    }
    let (send, recv) = super::open(tunnel, node, &req).await?;
    let command = match &req {
        StreamRequest::Exec { command, .. } => command.clone(),
        _ => Vec::new(),
    };
    Ok(ws.on_upgrade(move |socket| pump(socket, send, recv, command)))
}

async fn pump(socket: WebSocket, mut send: TunnelSend, mut recv: TunnelRecv, command: Vec<String>) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    // Client -> node.
    let upstream = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            // Kubernetes reads TEXT frames as it reads BINARY ones (the
            // Python client sends a `str` written to stdin as text).
            let data: bytes::Bytes = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => bytes::Bytes::copy_from_slice(t.as_str().as_bytes()),
                Message::Close(_) => break,
                _ => continue,
            };
            let frame = match channel::decode(&data) {
                Incoming::Stdin(d) => ExecFrame::Stdin(d),
                Incoming::StdinClosed => ExecFrame::StdinClosed,
                Incoming::Resize { width, height } => ExecFrame::Resize { width, height },
                Incoming::Ignored => continue,
                Incoming::Invalid(why) => {
                    tracing::debug!("exec: {why}");
                    continue;
                }
            };
            if wire::write_frame(&mut send, &frame).await.is_err() {
                break;
            }
        }
        // The client is gone or closed: tell the node stdin ended.
        let _ = wire::write_frame(&mut send, &ExecFrame::StdinClosed).await;
        send
    });
    // Node -> client.
    let status = loop {
        match wire::read_frame::<_, ExecFrame>(&mut recv).await {
            Ok(Some(ExecFrame::Stdout(d))) => {
                if ws_tx
                    .send(Message::Binary(channel::encode(channel::STDOUT, &d).into()))
                    .await
                    .is_err()
                {
                    break None;
                }
            }
            Ok(Some(ExecFrame::Stderr(d))) => {
                if ws_tx
                    .send(Message::Binary(channel::encode(channel::STDERR, &d).into()))
                    .await
                    .is_err()
                {
                    break None;
                }
            }
            Ok(Some(ExecFrame::Exit { code })) => break Some(channel::exit_status(code, &command)),
            Ok(Some(ExecFrame::Error(msg))) => break Some(channel::error_status(&msg)),
            Ok(Some(_)) => continue,
            Ok(None) => {
                break Some(channel::error_status(
                    "the node agent ended the exec stream without an exit status",
                ));
            }
            Err(e) => {
                break Some(channel::error_status(&format!(
                    "exec stream to the node failed: {e}"
                )));
            }
        }
    };
    if let Some(status) = status {
        let _ = ws_tx.send(Message::Binary(status.into())).await;
        let _ = ws_tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    }
    upstream.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_command_parameters_make_the_argv() {
        let pairs: Vec<(String, String)> = [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("stdin", "true"),
            ("stdout", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let place = PodPlace {
            node: "n".into(),
            container: "c".into(),
        };
        match request("ns", "p", &place, &pairs).unwrap() {
            StreamRequest::Exec {
                command,
                stdin,
                tty,
                ..
            } => {
                assert_eq!(command, ["sh", "-c", "echo hi"]);
                assert!(stdin);
                assert!(!tty);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(request("ns", "p", &place, &[]).unwrap_err().code, 400);
    }
}
