//! The service proxy (kube-proxy's job, nftables mode): turns Services and
//! EndpointSlices into one nftables table `ip kc` in the node's network
//! namespace.
//!
//! Shaped as three parts so the logic stays testable without a kernel:
//! `model` reads Kubernetes objects into a compact snapshot, `rules` renders
//! that snapshot into the full text of the table (pure, unit-tested by
//! comparing text), and `nft` applies it atomically with the `nft` binary.
//! `Proxy::sync_if_changed` is the entry point a watcher (the node agent) calls with a
//! fresh snapshot each time Services or EndpointSlices change; `cache` keeps
//! those objects from watch events. The node agent runs it
//! (`cluster_network`): it feeds `cache::ObjectCache` from its watches and
//! calls `Proxy::sync_if_changed`; `kcnode proxy sync` does one sync by hand.

pub mod cache;
pub mod model;
pub mod nft;
pub mod rules;

pub use model::Snapshot;
pub use rules::ProxyConfig;

/// Applies snapshots to the current network namespace.
#[derive(Debug, Clone)]
pub struct Proxy {
    config: ProxyConfig,
    /// The table text last applied, to skip syncs that change nothing.
    applied: Option<String>,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        Self {
            config,
            applied: None,
        }
    }

    /// Replaces the kc table with the rules for `snapshot`, atomically;
    /// does nothing when the rules would not change. Returns whether the
    /// kernel was updated.
    pub fn sync_if_changed(&mut self, snapshot: &Snapshot) -> Result<bool, nft::NftError> {
        let table = rules::render(&self.config, snapshot);
        if self.applied.as_deref() == Some(table.as_str()) {
            return Ok(false);
        }
        nft::replace_table(&table)?;
        self.applied = Some(table);
        Ok(true)
    }

    /// Removes the kc table (used by `kcnode leave`).
    pub fn remove(&self) -> Result<(), nft::NftError> {
        nft::delete_table()
    }
}
