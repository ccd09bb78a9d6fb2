//! `StoreHandle`: the in-process way into a store member, used by the API
//! server, leader election and the network front. Cheap to clone; every call
//! is a message to the `Store` actor and an awaited answer, bounded by the
//! request timeout (a write that times out may still commit later: the
//! caller must treat `Timeout` as "unknown").

use std::time::Duration;

use futures::future::BoxFuture;
use raft::eraftpb::Message;
use tokio::sync::{mpsc, oneshot};

use super::api::{
    DeleteRequest, DeleteResponse, LeaseGrantResponse, LeaseId, MemberStatus, MembershipChange,
    PutRequest, PutResponse, RangeRequest, RangeResponse, Revision, StoreError, TxnRequest,
    TxnResponse, WatchRequest, WatchResponse,
};
use super::command::{Command, CommandResponse};
use super::inbox::Request;
use super::kv::Kv;

/// How long a request waits for a leader to be elected (an election takes
/// 300-600 ms) before it is answered `NoLeader`.
pub const LEADER_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct StoreHandle {
    inbox: mpsc::Sender<Request>,
    timeout: Duration,
}

impl StoreHandle {
    pub(super) fn new(inbox: mpsc::Sender<Request>, timeout: Duration) -> Self {
        StoreHandle { inbox, timeout }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Shutdown)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(_)) => Err(StoreError::Shutdown),
            Ok(Ok(result)) => result,
        }
    }

    /// `call`, tried again while the member knows no leader (an election
    /// in progress), for up to `LEADER_WAIT`: a client of a follower sees a
    /// failover as a slower answer, not an error. A member cut off from the
    /// quorum still answers `NoLeader` after that.
    async fn call_with_leader<T>(
        &self,
        make: impl Fn(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let give_up = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.call(&make).await {
                Err(StoreError::NoLeader) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                other => return other,
            }
        }
    }

    async fn write(&self, command: Command) -> Result<CommandResponse, StoreError> {
        self.call_with_leader(|reply| Request::Propose {
            command: command.clone(),
            reply,
        })
        .await
    }

    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.call_with_leader(|reply| Request::Read {
            req: req.clone(),
            reply,
        })
        .await
    }

    pub async fn put(&self, req: PutRequest) -> Result<PutResponse, StoreError> {
        match self.write(Command::Put(req)).await? {
            CommandResponse::Put(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, StoreError> {
        match self.write(Command::Delete(req)).await? {
            CommandResponse::Delete(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, StoreError> {
        match self.write(Command::Txn(req)).await? {
            CommandResponse::Txn(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Forget history older than `revision`.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.write(Command::Compact(revision)).await.map(|_| ())
    }

    /// Watch a key or range; the receiver yields responses until a
    /// `Cancelled` (or until the store stops).
    pub async fn watch(
        &self,
        req: WatchRequest,
    ) -> Result<mpsc::Receiver<WatchResponse>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(Request::Watch { req, reply: tx })
            .await
            .map_err(|_| StoreError::Shutdown)?;
        rx.await.map_err(|_| StoreError::Shutdown)
    }

    pub async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseGrantResponse, StoreError> {
        let id = loop {
            let id = rand::random::<i64>() & i64::MAX;
            if id != 0 {
                break id;
            }
        };
        match self.write(Command::LeaseGrant { id, ttl_seconds }).await? {
            CommandResponse::LeaseGranted(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Renew a lease for another TTL; returns the TTL.
    pub async fn lease_keep_alive(&self, id: LeaseId) -> Result<i64, StoreError> {
        match self.write(Command::LeaseKeepAlive(id)).await? {
            CommandResponse::LeaseKeptAlive { ttl_seconds } => Ok(ttl_seconds),
            other => Err(unexpected(other)),
        }
    }

    /// End a lease now, deleting its keys.
    pub async fn lease_revoke(&self, id: LeaseId) -> Result<(), StoreError> {
        self.write(Command::LeaseRevoke(id)).await.map(|_| ())
    }

    pub async fn status(&self) -> Result<MemberStatus, StoreError> {
        self.call(|reply| Request::Status { reply }).await
    }

    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<MemberStatus, StoreError> {
        self.call(|reply| Request::Membership { change, reply })
            .await
    }

    pub async fn transfer_leader(&self, to: u64) -> Result<(), StoreError> {
        self.call(|reply| Request::TransferLeader { to, reply })
            .await
    }

    /// Hand a Raft message from a peer to this member (the transport's way
    /// in). Never waits: if the inbox is full the message is dropped, which
    /// Raft tolerates.
    pub fn deliver(&self, message: Message) {
        let _ = self.inbox.try_send(Request::Raft(Box::new(message)));
    }
}

impl StoreHandle {
    /// Stop the store actor (every handle then gets `Shutdown`).
    pub async fn shutdown(&self) {
        let _ = self.inbox.send(Request::Shutdown).await;
    }

    /// The transport could not reach peer `to` (transport feedback).
    pub fn report_unreachable(&self, to: u64, snapshot_failed: bool) {
        let _ = self.inbox.try_send(Request::Unreachable {
            to,
            snapshot_failed,
        });
    }
}

fn unexpected(r: CommandResponse) -> StoreError {
    StoreError::Internal(format!("mismatched response from the state machine: {r:?}"))
}

impl Kv for StoreHandle {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StoreError>> {
        Box::pin(StoreHandle::range(self, req))
    }

    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StoreError>> {
        Box::pin(StoreHandle::txn(self, req))
    }

    fn watch(
        &self,
        req: WatchRequest,
    ) -> BoxFuture<'_, Result<mpsc::Receiver<WatchResponse>, StoreError>> {
        Box::pin(StoreHandle::watch(self, req))
    }
}
