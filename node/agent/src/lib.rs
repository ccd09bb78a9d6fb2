//! kc's node agent: what runs on every host of a cluster (Kubernetes'
//! kubelet, kube-proxy and node-local DNS in one).
//!
//! - `agent`: the agent's life (join, session, pods, status, leave);
//!   `session`: the node API session; `node_client`: its client side
//!   (CA discovery, joining with a token, requests over QUIC);
//! - `kubelet`: pods on the container runtime (`kc-runtime`), probes,
//!   volumes, restarts; `mirror`, `self_log`, `stats`: the control plane's
//!   mirror pods, its own log and usage;
//! - `network`, `cluster_network`: the pod network; `proxy`: Services;
//!   `dns`: cluster DNS;
//! - `streams`: logs, exec and port-forward from the API server's tunnel;
//! - `image_gc`, `memory`, `host`, `duration`: the rest of the host.
//!
//! It never depends on the control plane's crates: the agent knows the
//! cluster through the node API's wire (`kc-protocol`, `kc-store-api`'s
//! QUIC) alone, and the `kcnode` binary (`node/`) wires it to its CLI.

pub mod agent;
pub mod cluster_network;
pub mod dns;
pub mod duration;
pub mod host;
pub mod image_gc;
pub mod kubelet;
pub mod memory;
pub mod mirror;
pub mod network;
pub mod node_client;
pub mod proxy;
pub mod self_log;
pub mod session;
pub mod stats;
pub mod streams;
