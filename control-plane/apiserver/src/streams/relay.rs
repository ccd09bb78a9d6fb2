//! Streams relayed between control-plane members (`kc-relay/1`): a node
//! agent holds its QUIC session with one member, but kubectl may ask any
//! member for logs, exec or port-forward. The member asked opens a stream
//! to a peer member on its UDP port (mutual TLS, member certificates only),
//! names the node, and the peer that holds that node's session answers
//! "here" and splices the stream onto one it opens to the node. The bytes
//! are the node stream protocol's, untouched.
//!
//! Wire, per bidirectional stream: the asker sends the node name (u16
//! big-endian length, then UTF-8); the peer answers one byte, 0 = spliced
//! to the node from now on, 1 = not connected here (stream finished).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::status::ApiError;
use super::{TunnelRecv, TunnelSend};

/// The ALPN of member-to-member stream relays.
pub const ALPN: &[u8] = b"kc-relay/1";

const HERE: u8 = 0;
const NOT_HERE: u8 = 1;
/// Node names are DNS subdomains (at most 253 bytes).
const MAX_NAME: usize = 253;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The asking side: the other members and the connections to them.
pub struct Relay {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    peers: RwLock<Vec<String>>,
    conns: Mutex<HashMap<String, quinn::Connection>>,
}

impl Relay {
    /// Relays through `endpoint` (the member's UDP port) with `config` (its
    /// member certificate, ALPN [`ALPN`]).
    pub fn new(endpoint: quinn::Endpoint, config: quinn::ClientConfig) -> Self {
        Self {
            endpoint,
            config,
            peers: RwLock::default(),
            conns: Mutex::default(),
        }
    }

    /// The other members' UDP addresses (`host:port`), refreshed as the
    /// store's membership changes.
    pub fn set_peers(&self, peers: Vec<String>) {
        if let Ok(mut p) = self.peers.write() {
            *p = peers;
        }
    }

    /// A stream to `node` through the first peer member that holds its
    /// session; None when none does.
    pub async fn open(&self, node: &str) -> Option<(TunnelSend, TunnelRecv)> {
        let peers = self.peers.read().map(|p| p.clone()).unwrap_or_default();
        for peer in peers {
            match self.open_via(&peer, node).await {
                Ok(Some(streams)) => return Some(streams),
                Ok(None) => {}
                Err(e) => tracing::debug!(%peer, node, "relay: {e}"),
            }
        }
        None
    }

    async fn open_via(
        &self,
        peer: &str,
        node: &str,
    ) -> Result<Option<(TunnelSend, TunnelRecv)>, String> {
        let conn = self.connection(peer).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        let name = node.as_bytes();
        send.write_all(&(name.len() as u16).to_be_bytes())
            .await
            .map_err(|e| e.to_string())?;
        send.write_all(name).await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, recv.read_u8())
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|e| e.to_string())?;
        Ok((answer == HERE).then(|| (Box::pin(send) as TunnelSend, Box::pin(recv) as TunnelRecv)))
    }

    async fn connection(&self, peer: &str) -> Result<quinn::Connection, String> {
        let cached = self.conns.lock().ok().and_then(|c| c.get(peer).cloned());
        if let Some(c) = cached.filter(|c| c.close_reason().is_none()) {
            return Ok(c);
        }
        let addr = kc_store_api::quic::resolve(peer).await?;
        let server = kc_store_api::quic::server_name(peer);
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), addr, &server)
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("{peer} did not answer"))?
            .map_err(|e| e.to_string())?;
        if let Ok(mut c) = self.conns.lock() {
            c.insert(peer.to_string(), conn.clone());
        }
        Ok(conn)
    }
}

/// The QUIC client configuration of relays: the member's certificate,
/// ALPN [`ALPN`].
pub fn client_config(tls: &kc_store_api::quic::MemberTls) -> Result<quinn::ClientConfig, String> {
    let rustls = kc_pki::tls::client_config(&tls.ca_pem, Some(&tls.cert), &[ALPN])
        .map_err(|e| e.to_string())?;
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(rustls).map_err(|e| e.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(kc_store_api::quic::transport_config()));
    Ok(config)
}

/// What the answering side needs of this member: a stream to a node over
/// the node's session with this member (never relayed again). Implemented
/// by `nodes::NodeConnections`.
pub trait LocalNodes: Send + Sync {
    fn open_local<'a>(
        &'a self,
        node_name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(TunnelSend, TunnelRecv), ApiError>>;
}

/// The answering side: serves one peer member's relay connection (its
/// certificate already checked to be a member's) from the node sessions
/// held here.
pub async fn serve(conn: quinn::Connection, nodes: Arc<dyn LocalNodes>) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let nodes = nodes.clone();
        tokio::spawn(async move {
            if let Err(e) = splice(send, recv, &nodes).await {
                tracing::debug!("relayed stream ended: {e}");
            }
        });
    }
}

async fn splice(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    nodes: &Arc<dyn LocalNodes>,
) -> Result<(), String> {
    let len = recv.read_u16().await.map_err(|e| e.to_string())? as usize;
    if len == 0 || len > MAX_NAME {
        return Err(format!("bad node name length {len}"));
    }
    let mut name = vec![0; len];
    recv.read_exact(&mut name)
        .await
        .map_err(|e| e.to_string())?;
    let name = String::from_utf8(name).map_err(|_| "node name is not UTF-8".to_string())?;
    let Ok((mut node_send, mut node_recv)) = nodes.open_local(&name).await else {
        send.write_all(&[NOT_HERE])
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        return Ok(());
    };
    send.write_all(&[HERE]).await.map_err(|e| e.to_string())?;
    let up = async {
        let _ = tokio::io::copy(&mut recv, &mut node_send).await;
        let _ = node_send.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut node_recv, &mut send).await;
        let _ = send.finish();
    };
    tokio::join!(up, down);
    Ok(())
}
