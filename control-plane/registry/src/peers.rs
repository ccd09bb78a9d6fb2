//! The other control-plane members' registries, as this member reaches
//! them: `/v2/` over HTTPS with mutual TLS (a cluster certificate).
//!
//! Tags and manifest records are in the Raft store (on every member), but a
//! blob's bytes land on the member that received the upload. Members copy
//! blobs from each other through this module: eagerly (`replicate.rs`, as
//! soon as a manifest is committed) and on demand (a member asked for a
//! blob it lacks fetches it before answering). Every fetched blob is
//! verified against its digest like any upload.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::blobs::BlobStore;
use super::error::RegistryError;

/// The other members' registries and how to reach them.
#[derive(Clone)]
pub struct Peers {
    /// `host:port` of each peer's API server.
    pub addresses: Vec<String>,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Peers {
    /// Fetches blob `digest` from the first peer that has it into `blobs`
    /// (verified); its size, or None if no peer has it.
    pub async fn fetch(&self, blobs: &BlobStore, digest: &str) -> Option<u64> {
        for peer in &self.addresses {
            match self.fetch_from(peer, blobs, digest).await {
                Ok(Some(size)) => {
                    tracing::info!(%peer, %digest, size, "fetched a blob from a peer");
                    return Some(size);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%peer, %digest, "cannot fetch the blob from a peer: {e}"),
            }
        }
        None
    }

    /// Whether some peer holds blob `digest` on its own disk (HEAD).
    pub async fn has(&self, digest: &str) -> bool {
        for peer in &self.addresses {
            match self.request(peer, hyper::Method::HEAD, digest).await {
                Ok(resp) if resp.status().as_u16() == 200 => return true,
                Ok(_) => {}
                Err(e) => tracing::warn!(%peer, %digest, "cannot ask a peer for a blob: {e}"),
            }
        }
        false
    }

    /// Sends `method` for blob `digest` to `peer`, asking it to answer from
    /// its own disk only.
    async fn request(
        &self,
        peer: &str,
        method: hyper::Method,
        digest: &str,
    ) -> Result<hyper::Response<Incoming>, String> {
        let tcp = tokio::net::TcpStream::connect(peer)
            .await
            .map_err(|e| e.to_string())?;
        let host = peer.rsplit_once(':').map_or(peer, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("/v2/kc/blobs/{digest}"))
            .header(hyper::header::HOST, peer)
            // Peers never fetch from their peers on our behalf: no chains.
            .header(NO_PULL_THROUGH, "1")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender.send_request(req).await.map_err(|e| e.to_string())
    }

    async fn fetch_from(
        &self,
        peer: &str,
        blobs: &BlobStore,
        digest: &str,
    ) -> Result<Option<u64>, String> {
        let resp = self.request(peer, hyper::Method::GET, digest).await?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            other => return Err(format!("answered {other}")),
        }
        let id = blobs.start_upload().await.map_err(|e| e.to_string())?;
        let stream = resp.into_body().into_data_stream();
        if let Err(e) = blobs.append(&id, None, stream).await {
            let _ = blobs.cancel(&id).await;
            return Err(e.to_string());
        }
        blobs
            .finish(&id, digest)
            .await
            .map(Some)
            .map_err(|e: RegistryError| e.to_string())
    }
}

/// The header a member sets when fetching from a peer.
pub const NO_PULL_THROUGH: &str = "kc-no-pull-through";
