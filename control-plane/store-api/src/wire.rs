//! What store members and store clients say to each other over QUIC, and
//! how frames are read and written on QUIC streams.
//!
//! Every stream opens with an `Opening` (the protocol version and what the
//! stream is for). A Raft stream is one-way, member to member, carrying
//! batches of raft-rs messages (protobuf bytes: raft-rs types have no serde).
//! A client stream is a request and its response, or a watch and its
//! stream of responses. Frames are `kc_protocol::frame`s: length-prefixed
//! bincode with a hard size limit.

use kc_protocol::frame::{self, Blob, FrameError, Hello};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::{
    DeleteRequest, DeleteResponse, LeaseGrantResponse, LeaseId, MemberStatus, MembershipChange,
    PutRequest, PutResponse, RangeRequest, RangeResponse, Revision, StoreError, TxnRequest,
    TxnResponse, WatchRequest, WatchResponse,
};

/// ALPN of the store's QUIC connections.
pub const ALPN: &[u8] = b"kc-store/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// Raft messages from member `from`.
    Raft {
        from: u64,
    },
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub hello: Hello,
    pub kind: StreamKind,
}

/// What a Raft stream carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftFrame {
    /// Protobuf-encoded `raft::eraftpb::Message`s.
    Batch(Vec<Blob>),
    /// A piece of one message too large for a frame (a big snapshot);
    /// the pieces follow each other, the last one has `last`.
    Chunk { last: bool, bytes: Blob },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    Range(RangeRequest),
    Put(PutRequest),
    Delete(DeleteRequest),
    Txn(TxnRequest),
    Compact(Revision),
    Watch(WatchRequest),
    LeaseGrant {
        ttl_seconds: i64,
    },
    LeaseKeepAlive(LeaseId),
    LeaseRevoke(LeaseId),
    Status,
    Membership(MembershipChange),
    TransferLeader(u64),
    /// Test hook: drop every Raft message to and from this member (a
    /// partition), or stop doing so.
    SetIsolated(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    Range(RangeResponse),
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
    LeaseGranted(LeaseGrantResponse),
    Ttl(i64),
    Status(MemberStatus),
    Watch(WatchResponse),
    Done,
    Error(StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// Read the next frame; `None` at a clean end of stream.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<Option<T>, WireError> {
    let mut header = [0u8; frame::HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame::body_len(header)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(Some(frame::decode(&body)?))
}

pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
) -> Result<(), WireError> {
    let bytes = frame::encode(msg)?;
    send.write_all(&bytes).await?;
    Ok(())
}

/// Read and check a stream's opening.
pub async fn read_opening(recv: &mut quinn::RecvStream) -> Result<StreamKind, WireError> {
    let opening: Opening = read_frame(recv)
        .await?
        .ok_or_else(|| WireError::Protocol("stream ended before its opening".into()))?;
    opening.hello.check()?;
    Ok(opening.kind)
}

pub async fn write_opening(
    send: &mut quinn::SendStream,
    kind: StreamKind,
) -> Result<(), WireError> {
    write_frame(
        send,
        &Opening {
            hello: Hello::current(),
            kind,
        },
    )
    .await
}
