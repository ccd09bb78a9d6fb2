//! `StoreClient`: a store client over the network (QUIC, mutual TLS), for
//! the `kcnode store` commands, tests and the benchmark. One connection,
//! one stream per request, so many requests run concurrently on it.

use std::net::SocketAddr;
use std::sync::Arc;

use super::api::{
    DeleteRequest, DeleteResponse, MemberStatus, MembershipChange, PutRequest, PutResponse,
    RangeRequest, RangeResponse, StoreError, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
};
use super::transport::{MemberTls, quic_client_config, resolve, server_name};
use super::wire::{
    ClientRequest, ClientResponse, StreamKind, read_frame, write_frame, write_opening,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to store member {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("store member {address}: {reason}")]
    Stream { address: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ClientError {
    /// Did the store itself answer with this error?
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            ClientError::Store(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct StoreClient {
    address: String,
    // Kept so the connection's endpoint lives as long as the client.
    _endpoint: Arc<quinn::Endpoint>,
    conn: quinn::Connection,
}

impl StoreClient {
    pub async fn connect(address: &str, tls: &MemberTls) -> Result<Self, ClientError> {
        let err = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let addr: SocketAddr = resolve(address).await.map_err(err)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse()
        } else {
            "0.0.0.0:0".parse()
        }
        .map_err(|e| err(format!("{e}")))?;
        let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| err(e.to_string()))?;
        endpoint
            .set_default_client_config(quic_client_config(tls).map_err(|e| err(e.to_string()))?);
        let conn = endpoint
            .connect(addr, &server_name(address))
            .map_err(|e| err(e.to_string()))?
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok(StoreClient {
            address: address.to_string(),
            _endpoint: Arc::new(endpoint),
            conn,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn stream_err(&self, reason: impl ToString) -> ClientError {
        ClientError::Stream {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    async fn open(
        &self,
        request: &ClientRequest,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(|e| self.stream_err(e))?;
        write_opening(&mut send, StreamKind::Client)
            .await
            .map_err(|e| self.stream_err(e))?;
        write_frame(&mut send, request)
            .await
            .map_err(|e| self.stream_err(e))?;
        Ok((send, recv))
    }

    /// Send one request and wait for its answer.
    pub async fn call(&self, request: ClientRequest) -> Result<ClientResponse, ClientError> {
        let (mut send, mut recv) = self.open(&request).await?;
        let _ = send.finish();
        match read_frame::<ClientResponse>(&mut recv)
            .await
            .map_err(|e| self.stream_err(e))?
        {
            Some(ClientResponse::Error(e)) => Err(ClientError::Store(e)),
            Some(r) => Ok(r),
            None => Err(self.stream_err("the member closed the stream without answering")),
        }
    }

    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, ClientError> {
        match self.call(ClientRequest::Range(req)).await? {
            ClientResponse::Range(r) => Ok(r),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn put(&self, req: PutRequest) -> Result<PutResponse, ClientError> {
        match self.call(ClientRequest::Put(req)).await? {
            ClientResponse::Put(r) => Ok(r),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, ClientError> {
        match self.call(ClientRequest::Delete(req)).await? {
            ClientResponse::Delete(r) => Ok(r),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, ClientError> {
        match self.call(ClientRequest::Txn(req)).await? {
            ClientResponse::Txn(r) => Ok(r),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn status(&self) -> Result<MemberStatus, ClientError> {
        match self.call(ClientRequest::Status).await? {
            ClientResponse::Status(s) => Ok(s),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<MemberStatus, ClientError> {
        match self.call(ClientRequest::Membership(change)).await? {
            ClientResponse::Status(s) => Ok(s),
            other => Err(self.unexpected(other)),
        }
    }

    /// Start a watch; call `WatchStream::next` for its responses.
    pub async fn watch(&self, req: WatchRequest) -> Result<WatchStream, ClientError> {
        let (send, recv) = self.open(&ClientRequest::Watch(req)).await?;
        Ok(WatchStream {
            _send: send,
            recv,
            address: self.address.clone(),
        })
    }

    fn unexpected(&self, r: ClientResponse) -> ClientError {
        self.stream_err(format!("unexpected answer {r:?}"))
    }
}

pub struct WatchStream {
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
    address: String,
}

impl WatchStream {
    /// The next response; `None` when the member ended the watch stream.
    pub async fn next(&mut self) -> Result<Option<WatchResponse>, ClientError> {
        let err = |reason: String| ClientError::Stream {
            address: self.address.clone(),
            reason,
        };
        match read_frame::<ClientResponse>(&mut self.recv)
            .await
            .map_err(|e| err(e.to_string()))?
        {
            None => Ok(None),
            Some(ClientResponse::Watch(w)) => Ok(Some(w)),
            Some(ClientResponse::Error(e)) => Err(ClientError::Store(e)),
            Some(other) => Err(err(format!("unexpected answer {other:?}"))),
        }
    }
}
