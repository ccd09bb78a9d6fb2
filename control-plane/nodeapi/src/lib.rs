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
//! exchange. On a control-plane member (`kc_member`) the same endpoint
//! also carries the store's member transport (`kc-store/1`, mutual TLS
//! checked by the transport), so a member needs one UDP port (7000).

pub mod cidr;
pub mod join;
pub mod session;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use kc_protocol::frame::Hello;
use kc_protocol::node_api::{ALPN_JOIN, ALPN_NODE, NodeRequest, NodeResponse};
use rustls::pki_types::CertificateDer;

use kc_apiserver::rest::Rest;
use kc_apiserver::streams::relay::{self, ALPN as RELAY_ALPN};
use kc_pki::tls::{self, ClientAuth};
use kc_pki::{ClusterCa, Identity, IssuedCert, PkiError};
use kc_store_api::quic::{MemberTls, ServeConnection, quic_client_config, transport_config};
use kc_store_api::wire::ALPN as STORE_ALPN;
use kc_store_api::wire::{WireError, read_frame, write_frame};

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
    /// The store's members (Raft id -> address), on a replicated member.
    store_members: RwLock<std::collections::BTreeMap<u64, String>>,
    /// The connected node agents' sessions: the API server opens log, exec
    /// and port-forward streams on them (set as its `NodeTunnel`).
    pub nodes: Arc<kc_apiserver::streams::nodes::NodeConnections>,
}

impl Shared {
    /// The node API addresses of the control-plane members.
    pub fn members(&self) -> Vec<String> {
        self.members.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Replaces the member list from the store's membership (Raft id ->
    /// address; a member's store and node API share that address).
    pub fn set_store_members(&self, members: std::collections::BTreeMap<u64, String>) {
        if let Ok(mut m) = self.members.write() {
            *m = members.values().cloned().collect();
        }
        if let Ok(mut m) = self.store_members.write() {
            *m = members;
        }
    }

    /// The store's members (empty on a control plane without a replicated store).
    pub fn store_members(&self) -> std::collections::BTreeMap<u64, String> {
        self.store_members
            .read()
            .map(|m| m.clone())
            .unwrap_or_default()
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
        let endpoint = bind(listen, &ca, server_cert, None)?;
        PortListener::start(endpoint, None).open(ca, rest, members)
    }

    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutdown");
    }
}

/// The accept loop of a member's UDP port, started before its API server
/// exists: store connections (`kc-store/1`, given `store`) are served at
/// once (a joining member must catch up before its API server can start),
/// node API connections once `open` hands it the REST layer; until then
/// they are closed with "starting".
pub struct PortListener {
    endpoint: quinn::Endpoint,
    slot: Arc<OnceLock<Arc<Shared>>>,
}

impl PortListener {
    /// Accepts on `endpoint` (from `bind`). Call inside tokio.
    pub fn start(endpoint: quinn::Endpoint, store: Option<Arc<dyn ServeConnection>>) -> Self {
        let slot: Arc<OnceLock<Arc<Shared>>> = Arc::default();
        let (ep, sl) = (endpoint.clone(), slot.clone());
        tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let (sl, store) = (sl.clone(), store.clone());
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    if let Err(e) = serve_connection(sl, store, incoming).await {
                        tracing::warn!(%remote, "dropped a connection on the node API port: {e}");
                    }
                });
            }
        });
        PortListener { endpoint, slot }
    }

    /// Starts serving the node API with `rest`; `members` are the node API
    /// addresses handed to joining nodes.
    pub fn open(
        self,
        ca: Arc<ClusterCa>,
        rest: Rest,
        members: Vec<String>,
    ) -> Result<NodeApi, NodeApiError> {
        let local_addr = self
            .endpoint
            .local_addr()
            .map_err(|e| NodeApiError::Quic(e.to_string()))?;
        let shared = Arc::new(Shared {
            rest,
            discovery_hash: ca.discovery_hash()?,
            ca,
            members: RwLock::new(members),
            store_members: RwLock::default(),
            nodes: Arc::default(),
        });
        let _ = self.slot.set(shared.clone());
        tracing::info!(%local_addr, "node API listening");
        Ok(NodeApi {
            local_addr,
            shared,
            endpoint: self.endpoint,
        })
    }
}

/// The QUIC endpoint of the node API on `listen` (UDP): `kc-join/1` and
/// `kc-node/1`, and with `store` (the member's TLS) also `kc-store/1`, with
/// that member's store client config as the default for dialing peers.
pub fn bind(
    listen: SocketAddr,
    ca: &ClusterCa,
    server_cert: &IssuedCert,
    store: Option<&MemberTls>,
) -> Result<quinn::Endpoint, NodeApiError> {
    let mut alpns = vec![ALPN_JOIN, ALPN_NODE];
    if store.is_some() {
        alpns.push(STORE_ALPN);
        alpns.push(RELAY_ALPN);
    }
    let rustls = tls::server_config(ca.cert_pem(), server_cert, ClientAuth::Optional, &alpns)?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(rustls)
        .map_err(|e| NodeApiError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    let socket = std::net::UdpSocket::bind(listen).map_err(|source| NodeApiError::Bind {
        addr: listen,
        source,
    })?;
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| NodeApiError::Quic(e.to_string()))?;
    if let Some(member) = store {
        endpoint.set_default_client_config(
            quic_client_config(member).map_err(|e| NodeApiError::Quic(e.to_string()))?,
        );
    }
    Ok(endpoint)
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

async fn serve_connection(
    slot: Arc<OnceLock<Arc<Shared>>>,
    store: Option<Arc<dyn ServeConnection>>,
    incoming: quinn::Incoming,
) -> Result<(), String> {
    let conn = incoming
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    let alpn = alpn_of(&conn);
    if alpn.as_deref() == Some(STORE_ALPN) {
        return match store {
            Some(transport) => transport.serve_connection(conn).await,
            None => {
                conn.close(1u32.into(), b"no store here");
                Err("a store connection to a member without a store transport".into())
            }
        };
    }
    let Some(shared) = slot.get().cloned() else {
        conn.close(3u32.into(), b"starting");
        return Err("the node API of this member is still starting".into());
    };
    match alpn.as_deref() {
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
        Some(RELAY_ALPN) => {
            match identity_of(&conn) {
                Ok(id) if id.is_member() => {}
                Ok(id) => {
                    conn.close(1u32.into(), b"unauthorized");
                    return Err(format!("{} may not relay streams: members only", id.user));
                }
                Err(e) => {
                    conn.close(1u32.into(), b"unauthorized");
                    return Err(e);
                }
            }
            relay::serve(conn, shared.nodes.clone()).await;
            Ok(())
        }
        other => {
            conn.close(1u32.into(), b"unknown protocol");
            Err(format!("unknown ALPN {other:?}"))
        }
    }
}

/// Reads the `Hello` of a stream and checks its version. A peer of
/// another major version gets `refusal(reason)` as the answer before the
/// stream is dropped, so it can say why instead of "no answer".
pub(crate) async fn read_hello<T: serde::Serialize>(
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    refusal: impl FnOnce(String) -> T,
) -> Result<(), WireError> {
    let hello: Hello = read_frame(recv)
        .await?
        .ok_or_else(|| WireError::Protocol("stream ended before its hello".into()))?;
    if let Err(e) = hello.check() {
        let _ = write_frame(send, &refusal(e.to_string())).await;
        let _ = send.finish();
        let _ = send.stopped().await;
        return Err(e.into());
    }
    Ok(())
}

async fn serve_request(
    shared: &Shared,
    id: &Identity,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), WireError> {
    read_hello(&mut send, &mut recv, NodeResponse::Error).await?;
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
