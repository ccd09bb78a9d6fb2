//! The cluster image registry: the OCI Distribution API (`/v2/`) served on
//! the API server's HTTPS port, with the API server's authentication.
//!
//! Map: `route` (the URL grammar), `http` (the handlers, auth), `blobs`
//! (content-addressed blobs and upload sessions on this member's disk),
//! `meta` (manifests and tags in the Raft store, so every member agrees),
//! `error` (the spec's error JSON).
//!
//! Replication: tags and manifest records go through Raft, so they are on
//! every member; blob bytes land on the disk of the member that received the
//! upload, and every other member copies them as soon as the manifest is
//! committed (`replicate`, from the peers set with `Registry::set_peers` as
//! members are known); a member asked for a blob it still lacks fetches it
//! from its peers first (`peers`).

pub mod blobs;
pub mod error;
pub mod http;
pub mod meta;
pub mod peers;
pub mod replicate;
pub mod route;

use std::path::Path;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use kc_store_api::kv::Kv;

pub use error::RegistryError;

/// One member's registry: its blob directory and the shared metadata.
pub struct Registry {
    pub blobs: blobs::BlobStore,
    pub meta: meta::Meta,
    peers: RwLock<Option<peers::Peers>>,
    /// Woken when the peer list changes (replication retries at once).
    peers_changed: Arc<Notify>,
}

impl Registry {
    /// Opens the registry under `dir` (`<data-dir>/registry`).
    pub fn open(dir: &Path, kv: Arc<dyn Kv>) -> std::io::Result<Self> {
        Ok(Self {
            blobs: blobs::BlobStore::open(dir)?,
            meta: meta::Meta::new(kv),
            peers: RwLock::new(None),
            peers_changed: Arc::new(Notify::new()),
        })
    }

    /// Starts copying the blobs of every committed manifest to this member
    /// (`replicate::run`); must be called inside a tokio runtime.
    pub fn start_replication(self: &Arc<Self>) {
        tokio::spawn(replicate::run(Arc::downgrade(self)));
    }

    /// Whether blob `digest` is on this member or on a peer's disk.
    pub async fn blob_in_cluster(&self, digest: &str) -> Result<bool, RegistryError> {
        if self.blobs.size(digest).await?.is_some() {
            return Ok(true);
        }
        let peers = self.peers.read().ok().and_then(|p| p.clone());
        Ok(match peers {
            Some(peers) => peers.has(digest).await,
            None => false,
        })
    }

    /// The other members to fetch missing blobs from (replaces any before).
    pub fn set_peers(&self, peers: peers::Peers) {
        if let Ok(mut p) = self.peers.write() {
            *p = Some(peers);
        }
        self.peers_changed.notify_one();
    }

    /// Makes sure blob `digest` is on this member's disk, fetching it from
    /// a peer if `from_peers`; returns its size.
    pub async fn fetch_blob(&self, digest: &str, from_peers: bool) -> Result<u64, RegistryError> {
        if let Some(size) = self.blobs.size(digest).await? {
            return Ok(size);
        }
        let peers = self.peers.read().ok().and_then(|p| p.clone());
        if from_peers
            && let Some(peers) = peers
            && let Some(size) = peers.fetch(&self.blobs, digest).await
        {
            return Ok(size);
        }
        Err(RegistryError::blob_unknown(digest))
    }
}
