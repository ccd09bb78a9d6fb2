//! The replicated key-value store: Raft (raft-rs) for agreement, an MVCC
//! state machine with a global revision, watches and leases.

pub mod api;
