//! The cluster image registry: the OCI Distribution API (`/v2/`) served on
//! the API server's HTTPS port, with the API server's authentication.
//!
//! Map: `route` (the URL grammar), `http` (the handlers, auth), `blobs`
//! (content-addressed blobs and upload sessions on this member's disk),
//! `meta` (manifests and tags in the Raft store, so every member agrees),
//! `error` (the spec's error JSON).
//!
//! Replication: tags and manifest records go through Raft, so they are on
//! every member; blob bytes are on the disk of the member that received the
//! upload. A member asked for a blob it lacks answers BLOB_UNKNOWN today
//! (`Registry::fetch_blob` is the one place where pulling it from a peer
//! belongs); single-member clusters are complete.

pub mod blobs;
pub mod error;
pub mod http;
pub mod meta;
pub mod route;

use std::path::Path;
use std::sync::Arc;

use crate::apiserver::Kv;

pub use error::RegistryError;

/// One member's registry: its blob directory and the shared metadata.
pub struct Registry {
    pub blobs: blobs::BlobStore,
    pub meta: meta::Meta,
}

impl Registry {
    /// Opens the registry under `dir` (`<data-dir>/registry`).
    pub fn open(dir: &Path, kv: Arc<dyn Kv>) -> std::io::Result<Self> {
        Ok(Self {
            blobs: blobs::BlobStore::open(dir)?,
            meta: meta::Meta::new(kv),
        })
    }

    /// Makes sure blob `digest` is on this member's disk; returns its size.
    pub async fn fetch_blob(&self, digest: &str) -> Result<u64, RegistryError> {
        self.blobs
            .size(digest)
            .await?
            .ok_or_else(|| RegistryError::blob_unknown(digest))
    }
}
