//! The contract of kc's store, the etcd API of kc: what its users program
//! against, apart from how the store is built (`kc-store`).
//!
//! - `api`: the request/response types (etcd v3's KV, Watch, Lease);
//! - `kv`: `Kv`, the interface the API server and the registry use;
//! - `wire`: what members and clients say to each other over QUIC;
//! - `quic`: QUIC with mutual TLS from the cluster CA (also the node
//!   sessions' transport).
//!
//! Depending on this crate and not on `kc-store` keeps a change inside the
//! store from rebuilding the API server.

pub mod api;
pub mod kv;
pub mod quic;
pub mod wire;

pub use api::*;
