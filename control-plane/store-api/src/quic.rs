//! QUIC with mutual TLS from the cluster CA, as store members, store
//! clients and node sessions use it: the TLS material of a member, QUIC
//! transport settings, and how peers are named and resolved.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kc_pki::tls::{self, ClientAuth};
use kc_pki::{IssuedCert, PkiError};

use crate::wire::ALPN;

/// The default UDP port of the store (and the node sessions).
pub const DEFAULT_PORT: u16 = 7000;
/// A member's TLS material: the cluster CA and its own certificate.
#[derive(Debug, Clone)]
pub struct MemberTls {
    pub ca_pem: String,
    pub cert: IssuedCert,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS setup: {0}")]
    Tls(#[from] PkiError),
    #[error("QUIC setup: {0}")]
    Quic(String),
    #[error("cannot listen on {addr}: {source} (is another member using this port?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_millis(500)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(10)) {
        t.max_idle_timeout(Some(idle));
    }
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(4096));
    // Members are close (a LAN or loopback): ask peers to acknowledge
    // promptly, so a one-way Raft stream is never held up waiting for a
    // delayed ACK (the default allows 25 ms).
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.max_ack_delay(Some(Duration::from_millis(1)));
    t.ack_frequency_config(Some(ack));
    t.initial_rtt(Duration::from_millis(10));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(64));
    t
}

pub fn quic_server_config(tls: &MemberTls) -> Result<quinn::ServerConfig, TransportError> {
    let rustls = tls::server_config(&tls.ca_pem, &tls.cert, ClientAuth::Required, &[ALPN])?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(rustls)
        .map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

pub fn quic_client_config(tls: &MemberTls) -> Result<quinn::ClientConfig, TransportError> {
    let rustls = tls::client_config(&tls.ca_pem, Some(&tls.cert), &[ALPN])?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(rustls)
        .map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The TLS server name to expect from a peer at `addr`: its IP (member
/// certificates carry their IPs), or the host name.
pub fn server_name(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string(),
    }
}

/// Resolve "host:port" to a socket address.
pub async fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = addr.parse() {
        return Ok(sa);
    }
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))
}

/// The IPs a member's certificate should name for an address it listens on.
pub fn certificate_ips(listen: &SocketAddr) -> Vec<IpAddr> {
    let mut ips = vec![IpAddr::from([127, 0, 0, 1])];
    if !listen.ip().is_unspecified() && !ips.contains(&listen.ip()) {
        ips.push(listen.ip());
    }
    ips
}

/// What serves a connection another endpoint accepted: a member's node API
/// endpoint hands `kc-store/1` connections to the store's transport.
pub trait ServeConnection: Send + Sync + 'static {
    fn serve_connection(
        &self,
        conn: quinn::Connection,
    ) -> futures::future::BoxFuture<'_, Result<(), String>>;
}
