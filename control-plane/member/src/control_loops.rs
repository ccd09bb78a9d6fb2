//! The scheduler and controller-manager candidates a control-plane member
//! runs (each active only while this member holds its lease).

use std::sync::Arc;

use crate::apiserver::Kv;

/// The scheduler and controller-manager candidates of one control-plane
/// member; dropping it stops both.
pub struct ControlLoops {
    scheduler: tokio::task::JoinHandle<()>,
    controller_manager: tokio::task::JoinHandle<()>,
}

impl Drop for ControlLoops {
    fn drop(&mut self) {
        self.scheduler.abort();
        self.controller_manager.abort();
    }
}

/// Starts the scheduler and the controller manager on a control-plane
/// member (each runs only while this member holds its lease). `identity`
/// must be unique per member; `root_ca` is the cluster CA (PEM) published
/// as `kube-root-ca.crt` in every namespace.
pub fn start(kv: Arc<dyn Kv>, identity: &str, root_ca: Option<String>) -> ControlLoops {
    let client = kc_apiserver::local::client(kv, "kc-control-plane");
    ControlLoops {
        scheduler: kc_scheduler::start(client.clone(), identity),
        controller_manager: kc_controllers::start(client, identity, root_ca),
    }
}

/// A member identity for leases: host name and a random suffix.
pub fn member_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "member".into());
    format!("{host}_{}", uuid::Uuid::new_v4().simple())
}
