//! The kubelet's image source on cluster nodes: an image missing from the
//! node's store is pulled from the cluster registry (the API server's `/v2/`,
//! reached with the node's own certificate) or, for a reference naming a
//! registry (`host:port/name:tag`), from that registry.
//!
//! Pulls are verified blob by blob and committed to the node's image store
//! in one transaction (runtime/src/image/pull.rs), so a failed or
//! interrupted pull leaves nothing half-imported.

use futures::future::BoxFuture;
use kc_runtime::image::distribution::RegistryConfig;
use kc_runtime::image::pull;
use kc_runtime::image::store::ImageStore;

use super::ImageSource;

/// Pulls from the cluster registry described by `config`.
pub struct RegistryImages {
    store: ImageStore,
    config: RegistryConfig,
}

impl RegistryImages {
    pub fn new(store: ImageStore, config: RegistryConfig) -> Self {
        RegistryImages { store, config }
    }
}

impl ImageSource for RegistryImages {
    fn pull<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            pull::pull(&self.store, reference, &self.config)
                .await
                .map(|_| ())
                .map_err(|e| format!("pulling {reference:?}: {e}"))
        })
    }
}
