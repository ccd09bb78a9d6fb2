//! One control-plane member's store, wired up: the QUIC transport on its
//! address and the `Store` actor, serving peers and clients. What
//! `kcnode init` / `join --control-plane` and `kcnode store member` start.

use std::net::SocketAddr;
use std::sync::Arc;

use super::handle::StoreHandle;
use super::raft_node::{self, StartError, StoreConfig};
use super::transport::{MemberTls, Transport, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A running member. Dropping it does not stop it: call `shutdown`.
pub struct Member {
    pub handle: StoreHandle,
    pub transport: Transport,
    thread: std::thread::JoinHandle<()>,
}

impl Member {
    /// Listen on `listen` and start the store. Call inside a tokio
    /// runtime: the transport's tasks run on it.
    pub fn start(
        config: StoreConfig,
        listen: SocketAddr,
        tls: &MemberTls,
    ) -> Result<Self, MemberError> {
        let transport = Transport::bind(config.id, listen, tls)?;
        let (handle, thread) = raft_node::start(config, Arc::new(transport.clone()))?;
        transport.serve(handle.clone());
        Ok(Member {
            handle,
            transport,
            thread,
        })
    }

    /// Stop serving and wait for the store to stop (its log is durable at
    /// every acknowledged write, so this is only tidiness).
    pub async fn shutdown(self) {
        self.transport.close();
        let Member { handle, thread, .. } = self;
        handle.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
