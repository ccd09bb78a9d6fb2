//! The store's request and response types: the contract between the store
//! and its users (the API server, leader election, the registry).
//!
//! The semantics are etcd v3's (KV, Watch, Lease), which is what the
//! Kubernetes API machinery was built on: one global revision bumped by every
//! committed write, per-key create/mod revision and version, ranges over
//! `[key, range_end)`, transactions of compares then operations, watches
//! from a revision, leases with a TTL. Keys and values are plain bytes; the
//! store knows nothing of Kubernetes.

use serde::{Deserialize, Serialize};

/// The global revision: bumped by one for every committed write transaction.
pub type Revision = i64;
/// A lease id; 0 means "no lease".
pub type LeaseId = i64;

/// One key with its value and MVCC bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since its last delete).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after create).
    pub version: i64,
    pub lease: LeaseId,
}

/// Which keys an operation covers: one key (`range_end` empty), every key in
/// `[key, range_end)`, or every key `>= key` when `range_end == [0]`.
/// `KeyRange::prefix` builds the range of every key starting with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// At most this many keys (0 = no limit); `RangeResponse::more` tells if
    /// there were more.
    pub limit: i64,
    /// Read as of this revision (0 = latest). A compacted revision fails with
    /// `StoreError::Compacted`.
    pub revision: Revision,
    /// Serve from this member's state without confirming leadership
    /// (may be stale); the default is linearizable.
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The store's revision when the read was served.
    pub revision: Revision,
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    /// How many keys the range holds in all (ignoring `limit`).
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub lease: LeaseId,
    pub prev_kv: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub revision: Revision,
    pub prev_kv: Option<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub range: KeyRange,
    pub prev_kv: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    pub revision: Revision,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

/// What a compare looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    CreateRevision(Revision),
    ModRevision(Revision),
    Value(Vec<u8>),
    Lease(LeaseId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

/// `key`'s target compared with `op`. A missing key has version, create and
/// mod revision 0 and an empty value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: Vec<u8>,
    pub op: CompareOp,
    pub target: CompareTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Range(RangeRequest),
    Put(PutRequest),
    Delete(DeleteRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResponse {
    Range(RangeResponse),
    Put(PutResponse),
    Delete(DeleteResponse),
}

/// If every compare holds, run `success`, else `failure`; atomically, as one
/// revision (a transaction that writes bumps the revision once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub revision: Revision,
    pub succeeded: bool,
    pub responses: Vec<OpResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    pub range: KeyRange,
    /// Deliver every change with revision >= this (0 = from now on).
    pub start_revision: Revision,
    pub prev_kv: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For a delete, `kv` holds the key and the delete's
/// `mod_revision`, with an empty value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// What a watcher receives, in revision order, each change exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchResponse {
    /// Changes of one or more revisions, ascending.
    Events(Vec<Event>),
    /// Nothing changed in range up to `revision` (bookmark / progress).
    Progress { revision: Revision },
    /// The watch ended; nothing more follows.
    Cancelled(WatchCancelReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchCancelReason {
    /// `start_revision` is older than the compaction window; the API server
    /// answers 410 Gone.
    Compacted { compact_revision: Revision },
    /// The watcher fell too far behind and was dropped; re-list and re-watch.
    TooSlow,
    /// This member stopped serving (shutdown, lost membership).
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    pub id: LeaseId,
    pub ttl_seconds: i64,
}

/// Errors a store user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    #[error("revision {requested} has been compacted (oldest kept: {compact_revision})")]
    Compacted {
        requested: Revision,
        compact_revision: Revision,
    },
    #[error("revision {requested} is in the future (current: {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(LeaseId),
    #[error(
        "no leader: this member cannot reach a quorum of the control plane; retry on another member"
    )]
    NoLeader,
    #[error("request timed out before it was committed; it may or may not have been applied")]
    Timeout,
    #[error("store request too large: {size} bytes (limit {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("store is shutting down")]
    Shutdown,
    #[error("store internal error: {0}")]
    Internal(String),
}

impl KeyRange {
    /// Exactly one key.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            key: key.into(),
            range_end: Vec::new(),
        }
    }

    /// Every key that starts with `prefix` (every key at all for an empty prefix).
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let mut end = key.clone();
        // The range end is the prefix with its last byte below 0xff bumped by one.
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                return KeyRange {
                    key,
                    range_end: end,
                };
            }
        }
        KeyRange {
            key,
            range_end: vec![0],
        }
    }

    /// Does this range cover `key`?
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.range_end.is_empty() {
            key == self.key.as_slice()
        } else if self.range_end == [0] {
            key >= self.key.as_slice()
        } else {
            key >= self.key.as_slice() && key < self.range_end.as_slice()
        }
    }
}

impl RangeRequest {
    /// A linearizable read of the latest state of `range`, no limit.
    pub fn new(range: KeyRange) -> Self {
        RangeRequest {
            range,
            limit: 0,
            revision: 0,
            serializable: false,
            keys_only: false,
            count_only: false,
        }
    }
}

impl PutRequest {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        PutRequest {
            key: key.into(),
            value: value.into(),
            lease: 0,
            prev_kv: false,
        }
    }
}

impl DeleteRequest {
    pub fn new(range: KeyRange) -> Self {
        DeleteRequest {
            range,
            prev_kv: false,
        }
    }
}

/// Where a member stands, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: u64,
    /// The leader this member knows of (0 = none).
    pub leader: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub revision: Revision,
    pub compact_revision: Revision,
    /// Voting members and learners of the current configuration.
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Every member's address (id -> `host:port`), as this member knows it.
    pub members: std::collections::BTreeMap<u64, String>,
}

/// A change to the control plane's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add `id` (reachable at `address`) as a learner: it receives the log
    /// but does not vote, so it can catch up without hurting availability.
    AddLearner {
        id: u64,
        address: String,
    },
    /// Promote a learner (or add directly) as a voter.
    AddVoter {
        id: u64,
        address: String,
    },
    Remove {
        id: u64,
    },
}
