//! The store actor's inbox: the messages `raft_node`'s `Store` reads and
//! `handle`'s `StoreHandle` (and the transport) send. Apart from both so
//! that neither depends on the other's internals.

use raft::eraftpb::Message;
use tokio::sync::{mpsc, oneshot};

use super::api::{
    MemberStatus, MembershipChange, RangeRequest, RangeResponse, StoreError, WatchRequest,
    WatchResponse,
};
use super::command::{Command, CommandResponse};

/// Where the actor sends one answer.
pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// The actor's inbox messages.
pub(super) enum Request {
    Propose {
        command: Command,
        reply: Reply<CommandResponse>,
    },
    Read {
        req: RangeRequest,
        reply: Reply<RangeResponse>,
    },
    Watch {
        req: WatchRequest,
        reply: oneshot::Sender<mpsc::Receiver<WatchResponse>>,
    },
    Raft(Box<Message>),
    /// Stop the actor (other handles may still exist).
    Shutdown,
    /// Transport feedback: peer `to` could not be reached.
    Unreachable {
        to: u64,
        snapshot_failed: bool,
    },
    Membership {
        change: MembershipChange,
        reply: Reply<MemberStatus>,
    },
    TransferLeader {
        to: u64,
        reply: Reply<()>,
    },
    Status {
        reply: Reply<MemberStatus>,
    },
}
