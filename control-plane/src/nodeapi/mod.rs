//! The node API: the control plane's QUIC listener for hosts joining the
//! cluster (`kc-join/1`) and for node sessions (`kc-node/1`).
//!
//! - `join`: the join exchange (CA discovery, token check, node certificate);
//! - `tokens`: bootstrap tokens as kube-system Secrets;
//! - `session`: node requests carried out through the REST layer;
//! - `cidr`: pod CIDR allocation;
//! - `client`: the node's side (dialing, failover is the caller's loop).
//!
//! The listener takes connections without a client certificate (a joining
//! host has none yet), and serves such a connection nothing but the join
//! exchange. This is a second QUIC endpoint beside the store's: a
//! single-member control plane runs no store transport, so the node API
//! owns UDP 7000 by default; a multi-member store would listen elsewhere
//! (see DESIGN.md).

pub mod cidr;
pub mod client;
pub mod join;
pub mod session;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use kc_protocol::frame::Hello;
use kc_protocol::node_api::{ALPN_JOIN, ALPN_NODE, NodeRequest, NodeResponse};
use rustls::pki_types::CertificateDer;

use crate::apiserver::rest::Rest;
use crate::pki::{ClusterCa, Identity, IssuedCert, PkiError};
use crate::store::transport::transport_config;
use crate::store::wire::{WireError, read_frame, write_frame};
use crate::tls::{self, ClientAuth};

#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    #[error("TLS setup of the node API: {0}")]
    Tls(#[from] PkiError),
    #[error("QUIC setup of the node API: {0}")]
    Quic(String),
    #[error("cannot listen on UDP {addr} for the node API: {source} (is another kcnode running?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every connection handler shares.
pub struct Shared {
    pub rest: Rest,
    pub ca: Arc<ClusterCa>,
    discovery_hash: String,
    members: RwLock<Vec<String>>,
    /// The connected node agents' sessions: the API server opens log, exec
    /// and port-forward streams on them (set as its `NodeTunnel`).
    pub nodes: Arc<crate::apiserver::streams::nodes::NodeConnections>,
}

impl Shared {
    /// The node API addresses of the control-plane members.
    pub fn members(&self) -> Vec<String> {
        self.members.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// The command line a new worker runs to join with `token`.
    pub fn join_command(&self, token: &str) -> String {
        let master = self.members().first().cloned().unwrap_or_default();
        format!(
            "kcnode join --master {master} --token {token} --discovery-token-ca-cert-hash {}",
            self.discovery_hash
        )
    }
}

/// A running node API listener.
pub struct NodeApi {
    pub local_addr: SocketAddr,
    pub shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
}

impl NodeApi {
    /// Listens on `listen` (UDP), presenting `server_cert`; `members` are
    /// the node API addresses handed to joining nodes. Call inside tokio.
    pub fn start(
        listen: SocketAddr,
        ca: Arc<ClusterCa>,
        server_cert: &IssuedCert,
        rest: Rest,
        members: Vec<String>,
    ) -> Result<Self, NodeApiError> {
        let rustls = tls::server_config(
            ca.cert_pem(),
            server_cert,
            ClientAuth::Optional,
            &[ALPN_JOIN, ALPN_NODE],
        )?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(rustls)
            .map_err(|e| NodeApiError::Quic(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(transport_config()));
        let socket = std::net::UdpSocket::bind(listen).map_err(|source| NodeApiError::Bind {
            addr: listen,
            source,
        })?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| NodeApiError::Quic(e.to_string()))?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| NodeApiError::Quic(e.to_string()))?;
        let shared = Arc::new(Shared {
            rest,
            discovery_hash: ca.discovery_hash()?,
            ca,
            members: RwLock::new(members),
            nodes: Arc::default(),
        });
        let (ep, sh) = (endpoint.clone(), shared.clone());
        tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let sh = sh.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    if let Err(e) = serve_connection(sh, incoming).await {
                        tracing::warn!(%remote, "dropped a node API connection: {e}");
                    }
                });
            }
        });
        tracing::info!(%local_addr, "node API listening");
        Ok(Self {
            local_addr,
            shared,
            endpoint,
        })
    }

    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutdown");
    }
}

fn alpn_of(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

fn identity_of(conn: &quinn::Connection) -> Result<Identity, String> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("a node session needs a client certificate: join the cluster first")?;
    let leaf = certs.first().ok_or("empty certificate chain")?;
    Identity::from_cert_der(leaf).map_err(|e| e.to_string())
}

async fn serve_connection(shared: Arc<Shared>, incoming: quinn::Incoming) -> Result<(), String> {
    let conn = incoming
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    match alpn_of(&conn).as_deref() {
        Some(ALPN_JOIN) => {
            while let Ok((send, recv)) = conn.accept_bi().await {
                let sh = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = join::serve(&sh, send, recv).await {
                        tracing::warn!("join exchange failed: {e}");
                    }
                });
            }
            Ok(())
        }
        Some(ALPN_NODE) => {
            let id = match identity_of(&conn) {
                Ok(id) => id,
                Err(e) => {
                    conn.close(1u32.into(), b"unauthorized");
                    return Err(e);
                }
            };
            tracing::debug!(user = %id.user, remote = %conn.remote_address(), "node session");
            let node = id.node_name().map(str::to_string);
            if let Some(node) = &node {
                shared.nodes.insert(node, conn.clone());
            }
            while let Ok((send, recv)) = conn.accept_bi().await {
                let (sh, id) = (shared.clone(), id.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_request(&sh, &id, send, recv).await {
                        tracing::debug!(user = %id.user, "node request stream ended: {e}");
                    }
                });
            }
            if let Some(node) = &node {
                shared.nodes.remove(node, &conn);
            }
            Ok(())
        }
        other => {
            conn.close(1u32.into(), b"unknown protocol");
            Err(format!("unknown ALPN {other:?}"))
        }
    }
}

/// Reads the `Hello` of a stream and checks its version.
pub(crate) async fn read_hello(recv: &mut quinn::RecvStream) -> Result<(), WireError> {
    let hello: Hello = read_frame(recv)
        .await?
        .ok_or_else(|| WireError::Protocol("stream ended before its hello".into()))?;
    hello.check()?;
    Ok(())
}

async fn serve_request(
    shared: &Shared,
    id: &Identity,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), WireError> {
    read_hello(&mut recv).await?;
    let Some(request) = read_frame::<NodeRequest>(&mut recv).await? else {
        return Ok(());
    };
    let watch = match &request {
        NodeRequest::WatchPods => Some(session::watch_pods(shared, id).await),
        NodeRequest::Watch { resource } => Some(session::watch_objects(shared, id, resource).await),
        _ => None,
    };
    if let Some(watch) = watch {
        match watch {
            Err(e) => write_frame(&mut send, &NodeResponse::Error(e)).await?,
            Ok(mut rx) => {
                while let Some(ev) = rx.recv().await {
                    write_frame(&mut send, &NodeResponse::Pod(ev)).await?;
                }
            }
        }
    } else {
        let response = session::handle(shared, id, request).await;
        write_frame(&mut send, &response).await?;
    }
    let _ = send.finish();
    Ok(())
}
