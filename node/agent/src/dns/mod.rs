//! Cluster DNS: answers `<svc>.<ns>.svc.cluster.local` (A, SRV, PTR) from
//! the same Services + endpoints snapshot the proxy uses.
//!
//! Where it runs: one server per node, inside the node's network namespace,
//! on the cluster DNS ClusterIP (default 10.96.0.10:53, the address pods'
//! resolv.conf names); each node answers from its own watch, so DNS keeps
//! working on a node cut off from the others. The address is made local to
//! the node's namespace (e.g. on `lo`), so pods reach it through their
//! default route via the node and no DNAT is involved. `records` is the pure lookup,
//! `server` the UDP loop (messages parsed and built with hickory-proto),
//! `resolv` renders the resolv.conf the kubelet gives pods (ClusterFirst).

pub mod records;
pub mod resolv;
pub mod server;

/// The cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
