//! QUIC between store members (and from store clients), mutual TLS from the
//! cluster CA. Knows nothing of Raft's logic nor of the state machine: it
//! moves raft-rs messages between members and hands client requests to a
//! `StoreHandle`.
//!
//! Outgoing: one `Link` task per peer owns a connection and one
//! unidirectional stream, so messages to a peer stay in order; it coalesces
//! whatever queued into one frame, and reconnects after a failure. Sending
//! never blocks the store: a full queue drops messages (Raft retries).
//! Incoming: every connection must present a certificate of the cluster CA
//! that names a node or an admin, checked before any stream is served. A
//! garbage or oversized frame drops that connection with a log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;

use super::api::StoreError;
use super::handle::StoreHandle;
use super::raft_node::Outbox;
pub use kc_store_api::quic::{
    DEFAULT_PORT, MemberTls, TransportError, certificate_ips, quic_client_config,
    quic_server_config, resolve, server_name, transport_config,
};

use super::wire::{
    ClientRequest, ClientResponse, RaftFrame, StreamKind, WireError, read_frame, read_opening,
    write_frame, write_opening,
};
use kc_protocol::frame::Blob;

/// Raft messages above this size (snapshots) travel in chunks of it.
const CHUNK: usize = 4 * 1024 * 1024;
/// The largest chunked message accepted (a snapshot of the whole state).
const MAX_CHUNKED: usize = 4 * 1024 * 1024 * 1024;

/// Why a connection is dropped, as its QUIC close reason (the peer sees it:
/// e.g. a member of another wire version is told which), kept short.
fn close_reason(e: &WireError) -> String {
    let mut text = format!("bad frame: {e}");
    if text.len() > 512 {
        let mut end = 512;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

struct Link {
    address: String,
    tx: mpsc::Sender<Vec<Message>>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    id: u64,
    endpoint: quinn::Endpoint,
    links: Mutex<HashMap<u64, Link>>,
    isolated: AtomicBool,
    runtime: tokio::runtime::Handle,
    /// The local member, told when a peer is unreachable (set by `serve`).
    store: std::sync::OnceLock<StoreHandle>,
}

impl Inner {
    /// Whether `ip` is the address of one of this member's store peers.
    fn is_peer_host(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_string();
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links.values().any(|l| server_name(&l.address) == ip)
    }

    /// Tell Raft a peer could not be reached (and a snapshot to it failed),
    /// so it probes again instead of waiting on a lost message.
    fn report(&self, to: u64, snapshot_failed: bool) {
        if let Some(store) = self.store.get() {
            store.report_unreachable(to, snapshot_failed);
        }
    }
}

/// A member's QUIC endpoint; also the store's `Outbox`.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl Transport {
    /// Listen on `listen` (UDP). Must be called inside a tokio runtime,
    /// which then runs the transport's tasks.
    pub fn bind(id: u64, listen: SocketAddr, tls: &MemberTls) -> Result<Self, TransportError> {
        let socket = std::net::UdpSocket::bind(listen).map_err(|source| TransportError::Bind {
            addr: listen,
            source,
        })?;
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(quic_server_config(tls)?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| TransportError::Quic(e.to_string()))?;
        endpoint.set_default_client_config(quic_client_config(tls)?);
        Ok(Self::on_endpoint(id, endpoint))
    }

    /// The transport of member `id` on an endpoint someone else accepts
    /// connections on (the control plane's one UDP port, shared with the
    /// node API by ALPN): it dials peers from `endpoint` (whose default
    /// client config must speak `kc-store/1` with the member's certificate)
    /// and serves the connections handed to `serve_connection`. Call
    /// inside a tokio runtime.
    pub fn on_endpoint(id: u64, endpoint: quinn::Endpoint) -> Self {
        Transport {
            inner: Arc::new(Inner {
                id,
                endpoint,
                links: Mutex::new(HashMap::new()),
                isolated: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
                store: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets the local member that serves incoming store connections (what
    /// `serve` does, without accepting on the endpoint).
    pub fn attach(&self, handle: StoreHandle) {
        let _ = self.inner.store.set(handle);
    }

    /// Serves one established `kc-store/1` connection (accepted by the
    /// endpoint's owner) until it closes. Needs `attach` first.
    pub async fn serve_connection(&self, conn: quinn::Connection) -> Result<(), String> {
        let handle = self
            .inner
            .store
            .get()
            .cloned()
            .ok_or("the store of this member is not started yet")?;
        serve_established(self.inner.clone(), handle, conn).await
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.endpoint.local_addr().ok()
    }

    /// Serve incoming connections with `handle` until the endpoint closes.
    pub fn serve(&self, handle: StoreHandle) {
        let _ = self.inner.store.set(handle.clone());
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            while let Some(incoming) = inner.endpoint.accept().await {
                let (inner, handle) = (inner.clone(), handle.clone());
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    if let Err(e) = serve_connection(inner, handle, incoming).await {
                        tracing::warn!(%remote, "dropped a store connection: {e}");
                    }
                });
            }
        });
    }

    pub fn close(&self) {
        self.inner.endpoint.close(0u32.into(), b"shutdown");
    }
}

impl Outbox for Transport {
    fn send(&self, messages: Vec<Message>) {
        if messages.is_empty() || self.inner.isolated.load(Ordering::Relaxed) {
            return;
        }
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in messages {
            by_peer.entry(m.to).or_default().push(m);
        }
        let links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
        for (to, batch) in by_peer {
            match links.get(&to) {
                Some(link) => {
                    if link.tx.try_send(batch).is_err() {
                        tracing::debug!(to, "peer queue full; dropping raft messages");
                    }
                }
                None => tracing::debug!(to, "no address for peer; dropping raft messages"),
            }
        }
    }

    fn set_peer(&self, id: u64, address: &str) {
        if id == self.inner.id {
            return;
        }
        let mut links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
        if links.get(&id).is_some_and(|l| l.address == address) {
            return;
        }
        if let Some(old) = links.remove(&id) {
            old.task.abort();
        }
        let (tx, rx) = mpsc::channel(1024);
        let task =
            self.inner
                .runtime
                .spawn(run_link(self.inner.clone(), id, address.to_string(), rx));
        links.insert(
            id,
            Link {
                address: address.to_string(),
                tx,
                task,
            },
        );
    }

    fn remove_peer(&self, id: u64) {
        let mut links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = links.remove(&id) {
            old.task.abort();
        }
    }
}

/// Keep a stream to peer `to` and write every batch queued for it.
async fn run_link(
    inner: Arc<Inner>,
    to: u64,
    address: String,
    mut rx: mpsc::Receiver<Vec<Message>>,
) {
    while let Some(first) = rx.recv().await {
        let mut send = match open_raft_stream(&inner, &address).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(to, %address, "cannot reach peer: {e}");
                inner.report(to, has_snapshot(&first));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue; // the batch is lost; Raft resends
            }
        };
        let mut batch = first;
        loop {
            while let Ok(more) = rx.try_recv() {
                batch.extend(more);
            }
            if let Err(e) = write_batch(&mut send, &batch).await {
                tracing::debug!(to, %address, "link to peer broke: {e}");
                inner.report(to, has_snapshot(&batch));
                break;
            }
            batch = match rx.recv().await {
                Some(b) => b,
                None => return,
            };
        }
    }
}

fn has_snapshot(batch: &[Message]) -> bool {
    batch
        .iter()
        .any(|m| m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot)
}

/// Small messages go together in one frame; a message too big for a frame
/// (a snapshot of a large state) goes in chunks.
async fn write_batch(send: &mut quinn::SendStream, batch: &[Message]) -> Result<(), WireError> {
    let mut small = Vec::with_capacity(batch.len());
    for m in batch {
        let bytes = m
            .write_to_bytes()
            .map_err(|e| WireError::Protocol(format!("cannot encode a raft message: {e}")))?;
        if bytes.len() <= CHUNK {
            small.push(Blob(bytes));
            continue;
        }
        let n = bytes.len().div_ceil(CHUNK);
        for (i, piece) in bytes.chunks(CHUNK).enumerate() {
            write_frame(
                send,
                &RaftFrame::Chunk {
                    last: i + 1 == n,
                    bytes: Blob(piece.to_vec()),
                },
            )
            .await?;
        }
    }
    if !small.is_empty() {
        write_frame(send, &RaftFrame::Batch(small)).await?;
    }
    Ok(())
}

async fn open_raft_stream(inner: &Inner, address: &str) -> Result<quinn::SendStream, String> {
    let addr = resolve(address).await?;
    let conn = inner
        .endpoint
        .connect(addr, &server_name(address))
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
    write_opening(&mut send, StreamKind::Raft { from: inner.id })
        .await
        .map_err(|e| e.to_string())?;
    Ok(send)
}

/// Who is on the other end, from its verified certificate: only members
/// (node certificates) and admins may talk to the store.
fn check_peer(conn: &quinn::Connection, inner: &Inner) -> Result<String, String> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("the peer presented no client certificate")?;
    let leaf = certs
        .first()
        .ok_or("the peer presented an empty certificate chain")?;
    let identity = kc_pki::Identity::from_cert_der(leaf).map_err(|e| e.to_string())?;
    // A worker's node certificate is signed by the same CA: it must not
    // reach the store (it would bypass the API's NodeRestriction).
    if identity.is_admin() || identity.is_member() {
        Ok(identity.user)
    } else if identity.node_name().is_some() && inner.is_peer_host(conn.remote_address().ip()) {
        // A member whose certificate an older kcnode issued (before the
        // group existed), during a rolling upgrade: it comes from a
        // member's address. It gets a member certificate when upgraded.
        Ok(identity.user)
    } else {
        Err(format!(
            "{} is neither a control-plane member nor an admin",
            identity.user
        ))
    }
}

async fn serve_connection(
    inner: Arc<Inner>,
    handle: StoreHandle,
    incoming: quinn::Incoming,
) -> Result<(), String> {
    let conn = incoming
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    serve_established(inner, handle, conn).await
}

async fn serve_established(
    inner: Arc<Inner>,
    handle: StoreHandle,
    conn: quinn::Connection,
) -> Result<(), String> {
    let who = match check_peer(&conn, &inner) {
        Ok(w) => w,
        Err(e) => {
            conn.close(1u32.into(), b"unauthorized");
            return Err(e);
        }
    };
    tracing::debug!(remote = %conn.remote_address(), %who, "store connection");
    loop {
        tokio::select! {
            uni = conn.accept_uni() => {
                let Ok(recv) = uni else { return Ok(()) };
                let (inner, handle, conn) = (inner.clone(), handle.clone(), conn.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_raft_stream(&inner, &handle, recv).await {
                        tracing::warn!(remote = %conn.remote_address(), "dropping connection: {e}");
                        conn.close(2u32.into(), close_reason(&e).as_bytes());
                    }
                });
            }
            bi = conn.accept_bi() => {
                let Ok((send, recv)) = bi else { return Ok(()) };
                let (inner, handle, conn) = (inner.clone(), handle.clone(), conn.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_client_stream(&inner, &handle, send, recv).await {
                        tracing::warn!(remote = %conn.remote_address(), "dropping connection: {e}");
                        conn.close(2u32.into(), close_reason(&e).as_bytes());
                    }
                });
            }
        }
    }
}

async fn serve_raft_stream(
    inner: &Inner,
    handle: &StoreHandle,
    mut recv: quinn::RecvStream,
) -> Result<(), WireError> {
    let StreamKind::Raft { from } = read_opening(&mut recv).await? else {
        return Err(WireError::Protocol(
            "a one-way stream must carry raft messages".into(),
        ));
    };
    let mut chunks: Vec<u8> = Vec::new();
    while let Some(frame) = read_frame::<RaftFrame>(&mut recv).await? {
        let batch = match frame {
            RaftFrame::Batch(batch) => batch,
            RaftFrame::Chunk {
                last,
                bytes: Blob(bytes),
            } => {
                if chunks.len() + bytes.len() > MAX_CHUNKED {
                    return Err(WireError::Protocol(format!(
                        "chunked raft message from {from} exceeds {MAX_CHUNKED} bytes"
                    )));
                }
                chunks.extend_from_slice(&bytes);
                if !last {
                    continue;
                }
                vec![Blob(std::mem::take(&mut chunks))]
            }
        };
        if inner.isolated.load(Ordering::Relaxed) {
            continue;
        }
        for Blob(bytes) in batch {
            let m = Message::parse_from_bytes(&bytes).map_err(|e| {
                WireError::Protocol(format!("undecodable raft message from {from}: {e}"))
            })?;
            handle.deliver(m);
        }
    }
    Ok(())
}

async fn serve_client_stream(
    inner: &Inner,
    handle: &StoreHandle,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), WireError> {
    if read_opening(&mut recv).await? != StreamKind::Client {
        return Err(WireError::Protocol(
            "a two-way stream must carry a client request".into(),
        ));
    }
    let Some(request) = read_frame::<ClientRequest>(&mut recv).await? else {
        return Ok(());
    };
    if let ClientRequest::Watch(req) = request {
        let mut rx = match handle.watch(req).await {
            Ok(rx) => rx,
            Err(e) => {
                write_frame(&mut send, &ClientResponse::Error(e)).await?;
                let _ = send.finish();
                return Ok(());
            }
        };
        while let Some(resp) = rx.recv().await {
            let last = matches!(resp, super::api::WatchResponse::Cancelled(_));
            if write_frame(&mut send, &ClientResponse::Watch(resp))
                .await
                .is_err()
            {
                return Ok(()); // the watcher went away
            }
            if last {
                break;
            }
        }
        let _ = send.finish();
        return Ok(());
    }
    let response = dispatch(inner, handle, request).await;
    write_frame(&mut send, &response).await?;
    let _ = send.finish();
    Ok(())
}

async fn dispatch(inner: &Inner, h: &StoreHandle, request: ClientRequest) -> ClientResponse {
    let r: Result<ClientResponse, StoreError> = match request {
        ClientRequest::Range(r) => h.range(r).await.map(ClientResponse::Range),
        ClientRequest::Put(r) => h.put(r).await.map(ClientResponse::Put),
        ClientRequest::Delete(r) => h.delete(r).await.map(ClientResponse::Delete),
        ClientRequest::Txn(r) => h.txn(r).await.map(ClientResponse::Txn),
        ClientRequest::Compact(rev) => h.compact(rev).await.map(|()| ClientResponse::Done),
        ClientRequest::LeaseGrant { ttl_seconds } => h
            .lease_grant(ttl_seconds)
            .await
            .map(ClientResponse::LeaseGranted),
        ClientRequest::LeaseKeepAlive(id) => h.lease_keep_alive(id).await.map(ClientResponse::Ttl),
        ClientRequest::LeaseRevoke(id) => h.lease_revoke(id).await.map(|()| ClientResponse::Done),
        ClientRequest::Status => h.status().await.map(ClientResponse::Status),
        ClientRequest::Membership(c) => h.change_membership(c).await.map(ClientResponse::Status),
        ClientRequest::TransferLeader(to) => {
            h.transfer_leader(to).await.map(|()| ClientResponse::Done)
        }
        ClientRequest::SetIsolated(on) => {
            tracing::warn!(isolated = on, "test hook: raft traffic of this member cut");
            inner.isolated.store(on, Ordering::Relaxed);
            Ok(ClientResponse::Done)
        }
        ClientRequest::Watch(_) => Err(StoreError::Internal("watch on a request stream".into())),
    };
    r.unwrap_or_else(ClientResponse::Error)
}

impl kc_store_api::quic::ServeConnection for Transport {
    fn serve_connection(
        &self,
        conn: quinn::Connection,
    ) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(Transport::serve_connection(self, conn))
    }
}
