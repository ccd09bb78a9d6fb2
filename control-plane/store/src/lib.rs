//! The replicated key-value store, the etcd of kc.
//!
//! Layered like etcd's raftexample, each piece with one job:
//! - `api`: the request/response contract with the store's users;
//! - `command`: what a Raft log entry carries;
//! - `mvcc`: the deterministic state machine (knows nothing of Raft);
//! - `watch`: watchers and the fan-out of applied changes;
//! - `lease`: TTL keys (replicated table + leader-local clock);
//! - `log`: the durable Raft log, hard state and snapshots on disk;
//! - `raft_node`: the `Store` actor driving raft-rs; `inbox`: its messages;
//! - `handle`: `StoreHandle`, the in-process client of the actor;
//! - `kv`: `Kv`, the interface the store's users program against;
//! - `wire`, `transport`: QUIC with mutual TLS between members and clients;
//! - `client`: `StoreClient`, the network client;
//! - `member`: a member wired up (transport + actor), what `kcnode` starts;
//! - `membership`: adding (learner, then voter) and removing members.

pub mod api;
pub mod client;
pub mod command;
pub mod handle;
mod inbox;
pub mod kv;
pub mod lease;
pub mod log;
pub mod member;
pub mod membership;
pub mod mvcc;
pub mod raft_log_bridge;
pub mod raft_node;
pub mod transport;
pub mod watch;
pub mod wire;

pub use api::*;
pub use handle::StoreHandle;
