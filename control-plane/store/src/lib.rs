//! The replicated key-value store, the etcd of kc.
//!
//! Layered like etcd's raftexample, each piece with one job:
//! - `api`, `kv`, `wire` (the crate kc-store-api): the contract with the
//!   store's users;
//! - `command`: what a Raft log entry carries;
//! - `mvcc`: the deterministic state machine (knows nothing of Raft);
//! - `watch`: watchers and the fan-out of applied changes;
//! - `lease`: TTL keys (replicated table + leader-local clock);
//! - `log`: the durable Raft log, hard state and snapshots on disk;
//! - `raft_node`: the `Store` actor driving raft-rs; `inbox`: its messages;
//! - `handle`: `StoreHandle`, the in-process client of the actor;
//! - `transport`: Raft messages and client requests over QUIC;
//! - `client`: `StoreClient`, the network client;
//! - `member`: a member wired up (transport + actor), what `kcnode` starts;
//! - `membership`: adding (learner, then voter) and removing members.

pub mod client;
pub mod command;
pub mod handle;
mod inbox;
pub mod lease;
pub mod log;
pub mod member;
pub mod membership;
pub mod mvcc;
pub mod raft_log_bridge;
pub mod raft_node;
pub mod transport;
pub mod watch;

// The store's contract is the kc-store-api crate, re-exported here.
pub use kc_store_api::{api, kv, quic, wire};

pub use api::*;
pub use handle::StoreHandle;
