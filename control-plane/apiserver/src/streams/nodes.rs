//! [`NodeConnections`]: the node agents' QUIC connections by node name, as
//! a [`NodeTunnel`]. Whoever accepts node sessions registers each
//! connection here (and sets it as the API server's tunnel); a stream
//! request then opens a bidirectional stream on the node's connection, and
//! the node serves it (`node/src/streams.rs`) from its `accept_bi` loop.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use futures::future::BoxFuture;

use super::super::status::ApiError;
use super::relay::{LocalNodes, Relay};
use super::{NodeTunnel, TunnelRecv, TunnelSend, node_not_connected};

/// The connected node agents, and on a replicated control plane the other
/// members to relay through for nodes connected elsewhere.
#[derive(Default)]
pub struct NodeConnections {
    conns: RwLock<HashMap<String, quinn::Connection>>,
    relay: OnceLock<Relay>,
}

impl NodeConnections {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `conn` as node `node`'s session (replacing an older one).
    pub fn insert(&self, node: &str, conn: quinn::Connection) {
        if let Ok(mut m) = self.conns.write() {
            m.insert(node.to_string(), conn);
        }
    }

    /// Forgets `conn` when it ends (unless a newer session replaced it).
    pub fn remove(&self, node: &str, conn: &quinn::Connection) {
        if let Ok(mut m) = self.conns.write()
            && m.get(node)
                .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            m.remove(node);
        }
    }

    /// Relays streams for nodes connected to another member through
    /// `relay` (set once, on a replicated member).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// The relay, to refresh its peers.
    pub fn relay(&self) -> Option<&Relay> {
        self.relay.get()
    }

    /// A stream to `node` over its session with this member only.
    pub async fn open_here(&self, node_name: &str) -> Result<(TunnelSend, TunnelRecv), ApiError> {
        let conn = self
            .get(node_name)
            .ok_or_else(|| node_not_connected(node_name))?;
        let (send, recv) = conn.open_bi().await.map_err(|e| {
            ApiError::unavailable(format!("cannot open a stream to node \"{node_name}\": {e}"))
        })?;
        Ok((Box::pin(send) as TunnelSend, Box::pin(recv) as TunnelRecv))
    }

    fn get(&self, node: &str) -> Option<quinn::Connection> {
        let m = self.conns.read().ok()?;
        m.get(node).filter(|c| c.close_reason().is_none()).cloned()
    }
}

impl LocalNodes for NodeConnections {
    fn open_local<'a>(
        &'a self,
        node_name: &'a str,
    ) -> BoxFuture<'a, Result<(TunnelSend, TunnelRecv), ApiError>> {
        Box::pin(self.open_here(node_name))
    }
}

impl NodeTunnel for NodeConnections {
    fn open<'a>(
        &'a self,
        node_name: &'a str,
    ) -> BoxFuture<'a, Result<(TunnelSend, TunnelRecv), ApiError>> {
        Box::pin(async move {
            let local = self.open_here(node_name).await;
            if local.is_ok() {
                return local;
            }
            match self.relay.get() {
                Some(relay) => match relay.open(node_name).await {
                    Some(streams) => Ok(streams),
                    None => local,
                },
                None => local,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kc_protocol::frame::Hello;
    use kc_protocol::streams::{StreamAccept, StreamRequest};
    use tokio::io::AsyncReadExt;

    use super::*;
    use kc_pki::tls::{self, ClientAuth};
    use kc_pki::{CertRequest, CertUsage, ClusterCa};
    use kc_protocol::frame_io::{read_frame, write_frame};

    const ALPN: &[u8] = b"kc-streams-test";

    #[tokio::test]
    async fn a_stream_request_reaches_the_node_over_its_quic_connection() {
        let ca = ClusterCa::generate("t").unwrap();
        let server_cert = ca
            .issue(&CertRequest {
                common_name: "cp".into(),
                organizations: vec![],
                dns_names: vec![],
                ip_addresses: vec!["127.0.0.1".parse().unwrap()],
                usage: CertUsage::Server,
                validity: std::time::Duration::from_secs(3600),
            })
            .unwrap();
        let node_cert = ca.issue(&CertRequest::node("n1", &[], &[])).unwrap();
        let server_tls =
            tls::server_config(ca.cert_pem(), &server_cert, ClientAuth::Required, &[ALPN]).unwrap();
        let server_crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server_tls).unwrap();
        let server = quinn::Endpoint::server(
            quinn::ServerConfig::with_crypto(Arc::new(server_crypto)),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
        let client_tls = tls::client_config(ca.cert_pem(), Some(&node_cert), &[ALPN]).unwrap();
        let client_crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap();
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(quinn::ClientConfig::new(Arc::new(client_crypto)));

        // The node dials the control plane, then serves what it is sent.
        let addr = server.local_addr().unwrap();
        let node = tokio::spawn(async move {
            let conn = client.connect(addr, "127.0.0.1").unwrap().await.unwrap();
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let hello: Hello = read_frame(&mut recv).await.unwrap().unwrap();
            hello.check().unwrap();
            let req: StreamRequest = read_frame(&mut recv).await.unwrap().unwrap();
            write_frame(&mut send, &StreamAccept::Ok).await.unwrap();
            send.write_all(format!("served {}", req.pod()).as_bytes())
                .await
                .unwrap();
            send.finish().unwrap();
            conn.closed().await;
        });
        let conn = server.accept().await.unwrap().await.unwrap();

        let nodes: Arc<dyn NodeTunnel> = Arc::new(NodeConnections::new());
        let registry = NodeConnections::new();
        registry.insert("n1", conn.clone());
        let tunnel: Arc<dyn NodeTunnel> = Arc::new(registry);
        let req = StreamRequest::PortForward {
            namespace: "default".into(),
            pod: "web".into(),
            port: 80,
        };
        let (_send, mut recv) = super::super::open(Some(&tunnel), "n1", &req).await.unwrap();
        let mut got = String::new();
        recv.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "served default/web");

        // Unknown node: 503 with the node's name.
        let Err(e) = super::super::open(Some(&nodes), "n2", &req).await else {
            panic!("a node that is not connected must fail");
        };
        assert_eq!(e.code, 503);
        assert!(e.message.contains("\"n2\""), "{}", e.message);
        conn.close(0u32.into(), b"done");
        let _ = node.await;
    }
}
