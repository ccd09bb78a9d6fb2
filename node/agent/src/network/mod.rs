//! The pod network of a node: every pod sandbox gets an address from the
//! node's pod CIDR (`ipam`, persisted, never given to two pods at once) on
//! a veth routed by the node (`bridge`); the pods' default gateway is the
//! first address of the CIDR, held by `kc0` (a bridge without ports). Pods reach each other and
//! the node through the node's routing, so `status.podIP` is a real address.
//!
//! Between nodes, `routes` keeps a route to every other node's pod CIDR
//! (direct, or over a VXLAN overlay).
//!
//! All changes happen in the network namespace kcnode runs in; the dev
//! command refuses to run there if that is the host's initial namespace
//! (tests run kcnode inside namespaces they created).

pub mod bridge;
pub mod ipam;
pub mod netlink;
pub mod routes;
pub mod rtmsg;
pub mod sysctl;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use ipam::Cidr;

/// What went wrong setting up a pod's network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error("{0}")]
    Command(String),
}

/// The node's pod network.
pub struct PodNetwork {
    pub cidr: Cidr,
    state: PathBuf,
    lock: Mutex<()>,
}

impl PodNetwork {
    pub fn new(cidr: Cidr, data_dir: &Path) -> PodNetwork {
        PodNetwork {
            cidr,
            state: data_dir.join("network").join("ipam.json"),
            lock: Mutex::new(()),
        }
    }

    /// Gives the sandbox (holder `pid`) of pod `uid` its address, veth and
    /// default route; answers the address. Idempotent per uid.
    /// The lock covers only the address file and the gateway: a pod's own
    /// veth is named after its uid, so pods starting at once plug in
    /// concurrently.
    pub fn attach(&self, uid: &str, pid: i32) -> Result<String, NetworkError> {
        let ip = {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let ip = ipam::allocate(&self.state, &self.cidr, uid)?;
            bridge::ensure_gateway(&self.cidr)?;
            ip
        };
        bridge::attach(uid, pid, &ip, &self.cidr)?;
        Ok(ip.to_string())
    }

    /// Frees the pod's address and removes its veth (if still there).
    pub fn detach(&self, uid: &str) {
        bridge::detach(uid);
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = ipam::release(&self.state, uid) {
            tracing::warn!("cannot release the address of pod {uid}: {e}");
        }
    }
}

/// Is this process in the host's initial network namespace?
pub fn in_initial_netns() -> bool {
    let a = std::fs::read_link("/proc/self/ns/net").ok();
    let b = std::fs::read_link("/proc/1/ns/net").ok();
    a.is_some() && a == b
}
