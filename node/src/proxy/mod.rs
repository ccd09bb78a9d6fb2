//! The service proxy (kube-proxy's job, nftables mode): turns Services and
//! EndpointSlices into one nftables table `ip kc` in the node's network
//! namespace.
//!
//! Shaped as three parts so the logic stays testable without a kernel:
//! `model` reads Kubernetes objects into a compact snapshot, `rules` renders
//! that snapshot into the full text of the table (pure, unit-tested by
//! comparing text), and `nft` applies it atomically with the `nft` binary.
//! `Proxy::sync` is the entry point a watcher (the node agent) calls with a
//! fresh snapshot each time Services or EndpointSlices change.

pub mod model;
pub mod nft;
pub mod rules;

pub use model::Snapshot;
pub use rules::ProxyConfig;

/// Applies snapshots to the current network namespace.
#[derive(Debug, Clone)]
pub struct Proxy {
    config: ProxyConfig,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        Self { config }
    }

    /// Replaces the kc table with the rules for `snapshot`, atomically.
    pub fn sync(&self, snapshot: &Snapshot) -> Result<(), nft::NftError> {
        let table = rules::render(&self.config, snapshot);
        nft::replace_table(&table)
    }

    /// Removes the kc table (used by `kcnode leave`).
    pub fn remove(&self) -> Result<(), nft::NftError> {
        nft::delete_table()
    }
}
