//! What travels through the Raft log: a `Proposal` wraps one state-machine
//! `Command` with the member and request id that proposed it, so that the
//! proposing member (and only it) answers its waiting client when it applies
//! the entry. Every member applies every entry and gets the same result,
//! because the state machine is deterministic.

use serde::{Deserialize, Serialize};

use super::api::{
    DeleteRequest, DeleteResponse, LeaseGrantResponse, LeaseId, PutRequest, PutResponse, Revision,
    StoreError, TxnRequest, TxnResponse,
};

/// A write to the replicated state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put(PutRequest),
    Delete(DeleteRequest),
    Txn(TxnRequest),
    /// Forget revisions older than this one.
    Compact(Revision),
    LeaseGrant {
        id: LeaseId,
        ttl_seconds: i64,
    },
    LeaseRevoke(LeaseId),
    LeaseKeepAlive(LeaseId),
}

/// The state machine's answer to one `Command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
    Compacted,
    LeaseGranted(LeaseGrantResponse),
    LeaseRevoked,
    LeaseKeptAlive { ttl_seconds: i64 },
}

pub type CommandResult = Result<CommandResponse, StoreError>;

/// One Raft entry's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The member that proposed it (0: nobody waits for the result).
    pub origin: u64,
    pub request_id: u64,
    pub command: Command,
}

impl Proposal {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a proposal always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map(|(p, _)| p)
            .map_err(|e| StoreError::Internal(format!("undecodable log entry: {e}")))
    }
}
