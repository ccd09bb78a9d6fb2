//! The node's side of the node API: discovering the CA, joining with a
//! token, and a session connection carrying requests (one stream each).
//!
//! CA discovery is the only connection that does not verify the server:
//! what it returns is trusted only after its hash matched the one given on
//! the command line (`pki::discovery_hash_of_pem`); every later connection
//! verifies the server against that CA.

use std::net::SocketAddr;
use std::sync::Arc;

use kc_protocol::frame::Hello;
use kc_protocol::node_api::{
    ALPN_JOIN, ALPN_NODE, JoinMessage, JoinRequest, JoinResponse, NodeRequest, NodeResponse,
    PodEvent,
};
use tokio::sync::mpsc;

use kc_pki::tls;
use kc_pki::{IssuedCert, PkiError};
use kc_store_api::quic::{resolve, server_name, transport_config};
use kc_store_api::wire::{WireError, read_frame, write_frame};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS setup: {0}")]
    Tls(#[from] PkiError),
    #[error("cannot reach the control plane at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("talking to the control plane: {0}")]
    Wire(#[from] WireError),
    #[error("the control plane closed the stream without an answer")]
    NoAnswer,
    #[error("{0}")]
    Refused(String),
}

fn quic_client(rustls: rustls::ClientConfig) -> Result<quinn::ClientConfig, ClientError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(rustls)
        .map_err(|e| PkiError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

async fn dial(addr: &str, config: quinn::ClientConfig) -> Result<quinn::Connection, ClientError> {
    let err = |reason: String| ClientError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let remote = resolve(addr).await.map_err(err)?;
    let bind: SocketAddr = if remote.is_ipv6() {
        "[::]:0".parse().expect("valid literal")
    } else {
        "0.0.0.0:0".parse().expect("valid literal")
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| err(e.to_string()))?;
    endpoint.set_default_client_config(config);
    let connecting = endpoint
        .connect(remote, &server_name(addr))
        .map_err(|e| err(e.to_string()))?;
    match tokio::time::timeout(std::time::Duration::from_secs(5), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(err(e.to_string())),
        Err(_) => Err(err(
            "no answer within 5 s (is kcnode running there, UDP port open?)".into(),
        )),
    }
}

/// Opens a stream, sends `Hello` and `msg`.
async fn open<T: serde::Serialize>(
    conn: &quinn::Connection,
    msg: &T,
) -> Result<quinn::RecvStream, ClientError> {
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| WireError::Protocol(format!("cannot open a stream: {e}")))?;
    write_frame(&mut send, &Hello::current()).await?;
    write_frame(&mut send, msg).await?;
    let _ = send.finish();
    Ok(recv)
}

async fn exchange<T: serde::Serialize, R: serde::de::DeserializeOwned>(
    conn: &quinn::Connection,
    msg: &T,
) -> Result<R, ClientError> {
    let mut recv = open(conn, msg).await?;
    read_frame(&mut recv).await?.ok_or(ClientError::NoAnswer)
}

/// The CA certificate (PEM) the control plane at `master` presents. Not
/// verified: check its discovery hash before trusting it.
pub async fn fetch_ca(master: &str) -> Result<String, ClientError> {
    let conn = connect_unverified(master).await?;
    match exchange(&conn, &JoinMessage::GetCa).await? {
        JoinResponse::Ca { ca_pem } => Ok(ca_pem),
        JoinResponse::Refused(why) => Err(ClientError::Refused(why)),
        other => Err(WireError::Protocol(format!("unexpected answer {other:?}")).into()),
    }
}

/// A join-protocol (`kc-join/1`) connection to `master` whose certificate
/// is not verified: for discovery (check the CA's hash before trusting
/// anything it says) and for tests that speak the wire by hand.
pub async fn connect_unverified(master: &str) -> Result<quinn::Connection, ClientError> {
    let mut rustls = tls::unverified_client_config();
    rustls.alpn_protocols = vec![ALPN_JOIN.to_vec()];
    dial(master, quic_client(rustls)?).await
}

/// Presents the join request to `master`, verified against `ca_pem`.
pub async fn join(
    master: &str,
    ca_pem: &str,
    request: JoinRequest,
) -> Result<JoinResponse, ClientError> {
    let rustls = tls::client_config(ca_pem, None, &[ALPN_JOIN])?;
    let conn = dial(master, quic_client(rustls)?).await?;
    exchange(&conn, &JoinMessage::Join(request)).await
}

/// A session connection to one control-plane member.
#[derive(Clone)]
pub struct NodeClient {
    conn: quinn::Connection,
    pub address: String,
}

impl NodeClient {
    pub async fn connect(
        address: &str,
        ca_pem: &str,
        cert: &IssuedCert,
    ) -> Result<Self, ClientError> {
        let rustls = tls::client_config(ca_pem, Some(cert), &[ALPN_NODE])?;
        let conn = dial(address, quic_client(rustls)?).await?;
        Ok(Self {
            conn,
            address: address.to_string(),
        })
    }

    /// One request, one answer; `NodeResponse::Error` becomes `Refused`.
    pub async fn call(&self, request: &NodeRequest) -> Result<NodeResponse, ClientError> {
        match exchange(&self.conn, request).await? {
            NodeResponse::Error(why) => Err(ClientError::Refused(why)),
            ok => Ok(ok),
        }
    }

    /// The pods bound to this node; the channel closes when the stream ends
    /// (the connection broke: reconnect and watch again).
    pub async fn watch_pods(&self) -> Result<mpsc::Receiver<PodEvent>, ClientError> {
        self.watch(&NodeRequest::WatchPods).await
    }

    /// A watch request (`WatchPods`, `Watch`): its events, in order; the
    /// channel closes when the stream ends (watch again on a new connection).
    pub async fn watch(
        &self,
        request: &NodeRequest,
    ) -> Result<mpsc::Receiver<PodEvent>, ClientError> {
        let mut recv = open(&self.conn, request).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                match read_frame::<NodeResponse>(&mut recv).await {
                    Ok(Some(NodeResponse::Pod(ev))) => {
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(NodeResponse::Error(e))) => {
                        tracing::warn!("watch refused: {e}");
                        return;
                    }
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!("watch ended: {e}");
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Resolves when the connection is lost.
    /// The QUIC connection, on which the control plane opens streams for
    /// logs, exec and port-forward (served by the node's stream server).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    pub async fn closed(&self) -> String {
        self.conn.closed().await.to_string()
    }
}
