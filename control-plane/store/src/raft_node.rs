//! The `Store` actor: one Raft peer of the control plane.
//!
//! It owns the raft-rs `RawNode`, the durable log, the MVCC state machine,
//! the watchers and the lease clock, and nothing else touches them: it is a
//! tokio task on its own thread (with its own single-threaded runtime) that
//! reads `Request`s from an mpsc inbox. A task with an inbox rather than an
//! actix actor, because the Raft loop wants to drain its whole inbox, then
//! handle one `Ready` (one write + one fsync for everything proposed
//! meanwhile): that batching is what makes the store fast, and it is plain
//! in a loop. The fsync blocks only this thread, by design: the next batch
//! queues while it runs.
//!
//! Request flow: any member accepts writes. A proposal carries this member's
//! id and a request id; raft-rs forwards a follower's proposal to the
//! leader; every member applies every entry, and the member that proposed it
//! answers its client when it applies it. Linearizable reads use ReadIndex:
//! the read waits until this member has applied the index the leader
//! confirmed with a quorum, so it sees every write acknowledged before it
//! began; reads that arrive together share one ReadIndex round.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, EntryType, Message};
use raft::{RawNode, StateRole};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::api::{
    MemberStatus, MembershipChange, RangeRequest, RangeResponse, StoreError, WatchCancelReason,
};
use super::command::{Command, CommandResponse, CommandResult, Proposal};
use super::handle::StoreHandle;
use super::lease::LeaseClock;
use super::log::{DiskLog, LogError, RaftStorage};
use super::mvcc::Mvcc;
use super::watch::WatchHub;

/// A proposal larger than this is refused (etcd's default request limit).
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// How a member runs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    /// The members this one knows at start (id -> QUIC address), itself included.
    pub peers: BTreeMap<u64, String>,
    /// Join an existing cluster (wait to be added) instead of founding one
    /// with `peers` as the voters.
    pub join: bool,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Take a snapshot (and compact the log) every this many applied entries.
    pub snapshot_every: u64,
    /// Keep this many revisions of history for watches and old reads.
    pub revision_window: i64,
    /// How long a client waits for a commit.
    pub request_timeout: Duration,
}

impl StoreConfig {
    pub fn new(id: u64, data_dir: PathBuf, peers: BTreeMap<u64, String>) -> Self {
        StoreConfig {
            id,
            data_dir,
            peers,
            join: false,
            tick: Duration::from_millis(50),
            election_ticks: 6,
            heartbeat_ticks: 1,
            snapshot_every: 100_000,
            revision_window: 100_000,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Where outgoing Raft messages go (the QUIC transport, or nowhere for a
/// single member). It must not block.
pub trait Outbox: Send + Sync + 'static {
    fn send(&self, messages: Vec<Message>);
    fn set_peer(&self, id: u64, address: &str);
    fn remove_peer(&self, id: u64);
}

/// An outbox for a member with no peers.
pub struct NoPeers;
impl Outbox for NoPeers {
    fn send(&self, messages: Vec<Message>) {
        if !messages.is_empty() {
            tracing::debug!(n = messages.len(), "no peers: dropping raft messages");
        }
    }
    fn set_peer(&self, _: u64, _: &str) {}
    fn remove_peer(&self, _: u64) {}
}

use super::inbox::{Reply, Request};

/// What a snapshot's data holds: the whole state machine and the address book.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    mvcc: Mvcc,
    members: BTreeMap<u64, String>,
}

/// Who waits for a configuration change, carried in the entry's context.
#[derive(Serialize, Deserialize)]
struct ConfChangeOrigin {
    origin: u64,
    request_id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store's log: {0}")]
    Log(#[from] LogError),
    #[error("cannot start raft for member {id}: {source}")]
    Raft { id: u64, source: raft::Error },
    #[error("cannot start the store thread: {0}")]
    Thread(std::io::Error),
    #[error("member id must be non-zero and listed in --peers (got {0})")]
    BadId(u64),
}

/// Start a member: open its log, recover its state, and run the actor on
/// its own thread. The handle is the way in.
pub fn start(
    config: StoreConfig,
    outbox: Arc<dyn Outbox>,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>), StartError> {
    if config.id == 0 || (!config.join && !config.peers.contains_key(&config.id)) {
        return Err(StartError::BadId(config.id));
    }
    let mut log = DiskLog::open(&config.data_dir)?;
    if !log.is_initialized() && !config.join {
        let empty = SnapshotData {
            mvcc: Mvcc::new(),
            members: config.peers.clone(),
        };
        let data =
            bincode::serde::encode_to_vec(&empty, bincode::config::standard()).map_err(|e| {
                LogError::Corrupt {
                    path: config.data_dir.join("snapshot"),
                    offset: 0,
                    why: format!("cannot encode the initial state: {e}"),
                }
            })?;
        log.bootstrap(config.peers.keys().copied().collect(), data)?;
    }
    let storage = log.storage();
    let snapshot = storage.latest_snapshot();
    let mut members = config.peers.clone();
    let mut mvcc = Mvcc::new();
    if !snapshot.get_data().is_empty() {
        let data = decode_snapshot(snapshot.get_data()).map_err(|why| LogError::Corrupt {
            path: config.data_dir.join("snapshot"),
            offset: 0,
            why,
        })?;
        mvcc = data.mvcc;
        members.extend(data.members);
    }
    for (id, addr) in &members {
        if *id != config.id {
            outbox.set_peer(*id, addr);
        }
    }
    let raft_config = raft::Config {
        id: config.id,
        election_tick: config.election_ticks,
        heartbeat_tick: config.heartbeat_ticks,
        applied: snapshot.get_metadata().index,
        check_quorum: true,
        pre_vote: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        ..Default::default()
    };
    let logger = super::raft_log_bridge::logger(config.id);
    let node = RawNode::new(&raft_config, storage, &logger).map_err(|source| StartError::Raft {
        id: config.id,
        source,
    })?;
    let (tx, rx) = mpsc::channel(16 * 1024);
    let (snapshot_done, snapshot_written) = mpsc::unbounded_channel();
    let handle = StoreHandle::new(tx, config.request_timeout);
    let store = Store {
        applied: snapshot.get_metadata().index,
        config,
        node,
        log,
        mvcc,
        hub: WatchHub::default(),
        leases: LeaseClock::default(),
        outbox,
        members,
        next_request: 1,
        pending: HashMap::new(),
        pending_conf: HashMap::new(),
        reads_waiting: Vec::new(),
        reads_inflight: HashMap::new(),
        reads_ready: Vec::new(),
        revoking: HashMap::new(),
        last_compaction_check: Instant::now(),
        was_leader: false,
        known_leader: 0,
        snapshot_now: false,
        snapshot_job: None,
        snapshot_done,
    };
    let thread = std::thread::Builder::new()
        .name(format!("kc-store-{}", store.config.id))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot build the store runtime: {e}");
                    return;
                }
            };
            rt.block_on(store.run(rx, snapshot_written));
        })
        .map_err(StartError::Thread)?;
    Ok((handle, thread))
}

fn encode_state(state: &SnapshotData) -> Result<Vec<u8>, LogError> {
    bincode::serde::encode_to_vec(state, bincode::config::standard()).map_err(|e| {
        LogError::Corrupt {
            path: std::path::PathBuf::from("snapshot"),
            offset: 0,
            why: format!("cannot encode the state: {e}"),
        }
    })
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotData, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(d, _)| d)
        .map_err(|e| format!("undecodable snapshot data: {e}"))
}

type ReadBatch = Vec<(RangeRequest, Reply<RangeResponse>)>;

struct Store {
    config: StoreConfig,
    node: RawNode<RaftStorage>,
    log: DiskLog,
    mvcc: Mvcc,
    hub: WatchHub,
    leases: LeaseClock,
    outbox: Arc<dyn Outbox>,
    members: BTreeMap<u64, String>,
    applied: u64,
    next_request: u64,
    pending: HashMap<u64, Reply<CommandResponse>>,
    pending_conf: HashMap<u64, Reply<MemberStatus>>,
    /// Linearizable reads not yet sent for a read index.
    reads_waiting: ReadBatch,
    /// Reads waiting for the leader to confirm a read index, by context.
    reads_inflight: HashMap<u64, (Instant, ReadBatch)>,
    /// Reads with a confirmed index, waiting for apply to reach it.
    reads_ready: Vec<(u64, ReadBatch)>,
    /// Leases whose revoke this leader proposed, and when.
    revoking: HashMap<i64, Instant>,
    last_compaction_check: Instant,
    was_leader: bool,
    /// The leader this member last knew (0 = none), to notice a change.
    known_leader: u64,
    /// Snapshot at the end of this Ready whatever the interval: a member was
    /// added (see `apply_conf_change`).
    snapshot_now: bool,
    /// A periodic snapshot being encoded and written on its own thread
    /// (a large state takes longer than an election timeout).
    snapshot_job: Option<std::thread::JoinHandle<()>>,
    snapshot_done: mpsc::UnboundedSender<Result<raft::eraftpb::Snapshot, String>>,
}

impl Store {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Request>,
        mut snapshot_written: mpsc::UnboundedReceiver<Result<raft::eraftpb::Snapshot, String>>,
    ) {
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.config.peers.len() == 1 && !self.config.join {
            // A lone voter need not wait an election timeout.
            let _ = self.node.campaign();
        }
        tracing::info!(id = self.config.id, "store member started");
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.node.tick();
                    self.on_tick();
                }
                Some(done) = snapshot_written.recv() => {
                    if let Err(e) = self.on_snapshot_written(done) {
                        tracing::error!(id = self.config.id, "store stopped: {e}");
                        break;
                    }
                }
                request = inbox.recv() => {
                    let Some(request) = request else { break };
                    if matches!(request, Request::Shutdown) {
                        break;
                    }
                    self.handle(request);
                    // Drain what queued meanwhile: it all shares one Ready.
                    for _ in 0..8192 {
                        match inbox.try_recv() {
                            Ok(r) => self.handle(r),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.issue_read_index();
            if let Err(e) = self.on_ready() {
                tracing::error!(id = self.config.id, "store stopped: {e}");
                break;
            }
        }
        // Finish a snapshot in progress, so a clean stop leaves it adopted.
        if self.snapshot_job.is_some()
            && let Some(done) = snapshot_written.recv().await
            && let Err(e) = self.on_snapshot_written(done)
        {
            tracing::error!(id = self.config.id, "snapshot at shutdown failed: {e}");
        }
        self.hub.cancel_all(WatchCancelReason::Shutdown);
        tracing::info!(id = self.config.id, "store member stopped");
    }

    fn leader(&self) -> u64 {
        self.node.raft.leader_id
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Propose { command, reply } => self.propose(command, reply),
            Request::Read { req, reply } => {
                if req.serializable {
                    let _ = reply.send(self.mvcc.range(&req));
                } else {
                    self.reads_waiting.push((req, reply));
                }
            }
            Request::Watch { req, reply } => {
                let _ = reply.send(self.hub.watch(&req, &self.mvcc));
            }
            Request::Raft(m) => {
                if let Err(e) = self.node.step(*m) {
                    tracing::debug!(id = self.config.id, "raft message ignored: {e}");
                }
            }
            Request::Membership { change, reply } => self.propose_membership(change, reply),
            Request::TransferLeader { to, reply } => {
                self.node.transfer_leader(to);
                let _ = reply.send(Ok(()));
            }
            Request::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            Request::Shutdown => {}
            Request::Unreachable {
                to,
                snapshot_failed,
            } => {
                self.node.report_unreachable(to);
                if snapshot_failed {
                    self.node.report_snapshot(to, raft::SnapshotStatus::Failure);
                }
            }
        }
    }

    fn status(&self) -> MemberStatus {
        let conf = self.node.raft.prs().conf().to_conf_state();
        MemberStatus {
            id: self.config.id,
            leader: self.leader(),
            term: self.node.raft.term,
            commit_index: self.node.raft.raft_log.committed,
            applied_index: self.applied,
            revision: self.mvcc.revision(),
            compact_revision: self.mvcc.compact_revision(),
            voters: sorted(&conf.voters),
            learners: sorted(&conf.learners),
            members: self.members.clone(),
        }
    }

    fn propose(&mut self, command: Command, reply: Reply<CommandResponse>) {
        if self.leader() == 0 {
            let _ = reply.send(Err(StoreError::NoLeader));
            return;
        }
        let request_id = self.next_request;
        self.next_request += 1;
        let data = Proposal {
            origin: self.config.id,
            request_id,
            command,
        }
        .encode();
        if data.len() > MAX_REQUEST_BYTES {
            let _ = reply.send(Err(StoreError::TooLarge {
                size: data.len(),
                limit: MAX_REQUEST_BYTES,
            }));
            return;
        }
        match self.node.propose(vec![], data) {
            Ok(()) => {
                self.pending.insert(request_id, reply);
            }
            Err(e) => {
                tracing::debug!(id = self.config.id, "proposal dropped: {e}");
                let _ = reply.send(Err(StoreError::NoLeader));
            }
        }
    }

    fn propose_membership(&mut self, change: MembershipChange, reply: Reply<MemberStatus>) {
        let mut cc = ConfChange::default();
        match &change {
            MembershipChange::AddLearner { id, address } => {
                cc.set_change_type(ConfChangeType::AddLearnerNode);
                cc.node_id = *id;
                cc.context = address.clone().into_bytes().into();
            }
            MembershipChange::AddVoter { id, address } => {
                cc.set_change_type(ConfChangeType::AddNode);
                cc.node_id = *id;
                cc.context = address.clone().into_bytes().into();
            }
            MembershipChange::Remove { id } => {
                cc.set_change_type(ConfChangeType::RemoveNode);
                cc.node_id = *id;
            }
        }
        let request_id = self.next_request;
        self.next_request += 1;
        let ctx = bincode::serde::encode_to_vec(
            ConfChangeOrigin {
                origin: self.config.id,
                request_id,
            },
            bincode::config::standard(),
        )
        .unwrap_or_default();
        match self.node.propose_conf_change(ctx, cc) {
            Ok(()) => {
                self.pending_conf.insert(request_id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(StoreError::Internal(format!(
                    "membership change {change:?} refused: {e} (is another change in progress?)"
                ))));
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        // Forget callers that gave up.
        self.pending.retain(|_, r| !r.is_closed());
        self.pending_conf.retain(|_, r| !r.is_closed());
        // Retry read indexes the leader dropped (no leader yet, or a new
        // leader that has not committed in its term).
        let stale: Vec<u64> = self
            .reads_inflight
            .iter()
            .filter(|(_, (at, _))| now.duration_since(*at) > Duration::from_millis(300))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some((_, batch)) = self.reads_inflight.remove(&k) {
                self.reads_waiting
                    .extend(batch.into_iter().filter(|(_, r)| !r.is_closed()));
            }
        }
        if self.node.raft.state == StateRole::Leader {
            self.expire_leases(now);
            self.auto_compact(now);
        }
    }

    fn expire_leases(&mut self, now: Instant) {
        for id in self.leases.expired(now) {
            let recently = self
                .revoking
                .get(&id)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1));
            if recently {
                continue;
            }
            tracing::info!(lease = id, "lease expired; revoking it");
            self.revoking.insert(id, now);
            let data = Proposal {
                origin: 0,
                request_id: 0,
                command: Command::LeaseRevoke(id),
            }
            .encode();
            let _ = self.node.propose(vec![], data);
        }
    }

    /// The leader keeps the revision window: once history grows past
    /// twice the window, compact to the window.
    fn auto_compact(&mut self, now: Instant) {
        if now.duration_since(self.last_compaction_check) < Duration::from_secs(5) {
            return;
        }
        self.last_compaction_check = now;
        let window = self.config.revision_window.max(1);
        let (rev, compacted) = (self.mvcc.revision(), self.mvcc.compact_revision());
        if rev - compacted > 2 * window {
            let data = Proposal {
                origin: 0,
                request_id: 0,
                command: Command::Compact(rev - window),
            }
            .encode();
            let _ = self.node.propose(vec![], data);
        }
    }

    fn issue_read_index(&mut self) {
        if self.reads_waiting.is_empty() {
            return;
        }
        if self.leader() == 0 {
            for (_, reply) in self.reads_waiting.drain(..) {
                let _ = reply.send(Err(StoreError::NoLeader));
            }
            return;
        }
        let ctx = self.next_request;
        self.next_request += 1;
        let batch = std::mem::take(&mut self.reads_waiting);
        self.reads_inflight.insert(ctx, (Instant::now(), batch));
        self.node.read_index(ctx.to_le_bytes().to_vec());
    }

    fn on_ready(&mut self) -> Result<(), LogError> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut rd = self.node.ready();
        // A leader may send its appends while it writes them itself.
        self.outbox.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone())?;
        }
        self.apply(rd.take_committed_entries());
        self.log.append(rd.entries(), rd.hs(), rd.must_sync())?;
        if let Some(ss) = rd.ss() {
            self.on_role(ss.raft_state);
            self.on_leader(ss.leader_id);
        }
        for rs in rd.take_read_states() {
            let ctx = u64::from_le_bytes(rs.request_ctx.as_slice().try_into().unwrap_or_default());
            if let Some((_, batch)) = self.reads_inflight.remove(&ctx) {
                self.reads_ready.push((rs.index, batch));
            }
        }
        // Votes and append responses only after the write is durable.
        self.outbox.send(rd.take_persisted_messages());
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit);
        }
        self.outbox.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        self.serve_ready_reads();
        self.maybe_snapshot()
    }

    fn on_role(&mut self, role: StateRole) {
        let leader = role == StateRole::Leader;
        if leader && !self.was_leader {
            tracing::info!(
                id = self.config.id,
                term = self.node.raft.term,
                "became leader"
            );
            self.leases.restart_all(self.mvcc.leases(), Instant::now());
            self.revoking.clear();
        }
        self.was_leader = leader;
    }

    /// The leader changed: writes this member proposed under the old one
    /// may be lost with it (a proposal forwarded to a dead leader never
    /// comes back), so their callers get `Timeout` ("may or may not have
    /// been applied") now rather than after the whole request timeout.
    fn on_leader(&mut self, leader: u64) {
        let old = std::mem::replace(&mut self.known_leader, leader);
        if old == leader || old == 0 || self.pending.is_empty() {
            return;
        }
        tracing::info!(
            id = self.config.id,
            old,
            new = leader,
            writes = self.pending.len(),
            "leader changed: in-flight writes answered as unknown"
        );
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(StoreError::Timeout));
        }
    }

    fn serve_ready_reads(&mut self) {
        let applied = self.applied;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_ready)
            .into_iter()
            .partition(|(i, _)| *i <= applied);
        self.reads_ready = later;
        for (_, batch) in now {
            for (req, reply) in batch {
                let _ = reply.send(self.mvcc.range(&req));
            }
        }
    }

    fn install_snapshot(&mut self, snap: raft::eraftpb::Snapshot) -> Result<(), LogError> {
        let index = snap.get_metadata().index;
        let data = decode_snapshot(snap.get_data()).map_err(|why| LogError::Corrupt {
            path: self.config.data_dir.join("snapshot"),
            offset: 0,
            why: format!("snapshot from the leader: {why}"),
        })?;
        self.log.install_snapshot(&snap)?;
        tracing::info!(
            id = self.config.id,
            index,
            "installed a snapshot from the leader"
        );
        self.mvcc = data.mvcc;
        for (id, addr) in &data.members {
            if *id != self.config.id {
                self.outbox.set_peer(*id, addr);
            }
        }
        self.members = data.members;
        self.applied = index;
        // Watchers cannot follow across a replaced state: they re-list.
        self.hub.cancel_all(WatchCancelReason::TooSlow);
        Ok(())
    }

    /// Take a snapshot when due: periodic ones on their own thread, the
    /// one after a membership change right here (the newcomer must find it).
    fn maybe_snapshot(&mut self) -> Result<(), LogError> {
        let due = self.applied >= self.log.snapshot_index() + self.config.snapshot_every.max(1);
        if !(due || self.snapshot_now) || self.applied <= self.log.snapshot_index() {
            return Ok(());
        }
        let forced = std::mem::take(&mut self.snapshot_now);
        if !forced && self.snapshot_job.is_some() {
            return Ok(());
        }
        let conf = self.node.raft.prs().conf().to_conf_state();
        if forced {
            let state = SnapshotData {
                mvcc: self.mvcc.clone(),
                members: self.members.clone(),
            };
            // Written beside (not over) a periodic snapshot in progress,
            // which will then be found older and dropped.
            self.log
                .compact(self.applied, conf, encode_state(&state)?)?;
            tracing::info!(
                id = self.config.id,
                index = self.applied,
                "took a snapshot and compacted the log"
            );
            return Ok(());
        }
        let mut snap = self.log.snapshot_meta(self.applied, conf)?;
        let state = SnapshotData {
            mvcc: self.mvcc.clone(),
            members: self.members.clone(),
        };
        let (path, done) = (self.log.pending_path(), self.snapshot_done.clone());
        let job = std::thread::Builder::new()
            .name(format!("kc-snapshot-{}", self.config.id))
            .spawn(move || {
                let result = encode_state(&state)
                    .and_then(|data| {
                        snap.set_data(data.into());
                        DiskLog::write_pending(&path, &snap)
                    })
                    .map(|()| snap)
                    .map_err(|e| e.to_string());
                let _ = done.send(result);
            })
            .map_err(|e| LogError::Io {
                path: self.log.pending_path(),
                source: e,
            })?;
        self.snapshot_job = Some(job);
        Ok(())
    }

    fn on_snapshot_written(
        &mut self,
        done: Result<raft::eraftpb::Snapshot, String>,
    ) -> Result<(), LogError> {
        if let Some(job) = self.snapshot_job.take() {
            let _ = job.join();
        }
        match done {
            Ok(snap) => {
                let index = snap.get_metadata().index;
                self.log.adopt_pending(snap)?;
                tracing::info!(
                    id = self.config.id,
                    index,
                    "took a snapshot and compacted the log"
                );
            }
            // The log is intact without it; the next interval tries again.
            Err(e) => tracing::error!(id = self.config.id, "snapshot failed: {e}"),
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<raft::eraftpb::Entry>) {
        for entry in entries {
            self.applied = entry.index;
            if entry.data.is_empty() {
                continue; // a new leader's empty entry
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal => self.apply_normal(&entry.data),
                EntryType::EntryConfChange => self.apply_conf_change(&entry),
                EntryType::EntryConfChangeV2 => {
                    tracing::warn!(
                        "ignoring a joint configuration change (kc never proposes them)"
                    );
                }
            }
        }
    }

    fn apply_normal(&mut self, data: &[u8]) {
        let proposal = match Proposal::decode(data) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(id = self.config.id, "skipping a log entry: {e}");
                return;
            }
        };
        let applied = self.mvcc.apply(&proposal.command);
        self.hub.notify(&applied.events);
        self.track_lease(&proposal.command, &applied.result);
        if proposal.origin == self.config.id
            && let Some(reply) = self.pending.remove(&proposal.request_id)
        {
            let _ = reply.send(applied.result);
        }
    }

    fn track_lease(&mut self, command: &Command, result: &CommandResult) {
        let now = Instant::now();
        match (command, result) {
            (Command::LeaseGrant { id, ttl_seconds }, Ok(_)) => {
                self.leases.refresh(*id, *ttl_seconds, now)
            }
            (Command::LeaseKeepAlive(id), Ok(CommandResponse::LeaseKeptAlive { ttl_seconds })) => {
                self.leases.refresh(*id, *ttl_seconds, now)
            }
            (Command::LeaseRevoke(id), _) => {
                self.leases.forget(*id);
                self.revoking.remove(id);
            }
            _ => {}
        }
    }

    fn apply_conf_change(&mut self, entry: &raft::eraftpb::Entry) {
        let cc = match ConfChange::parse_from_bytes(&entry.data) {
            Ok(cc) => cc,
            Err(e) => {
                tracing::error!("skipping an undecodable configuration change: {e}");
                return;
            }
        };
        let result = self.node.apply_conf_change(&cc);
        let id = cc.node_id;
        match cc.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                // A new member's log is empty, and raft-rs only accepts a
                // snapshot whose configuration includes the receiver: compact
                // now, so the newcomer starts from a snapshot that names it
                // (and the founders, whom no log entry names).
                self.snapshot_now = true;
                let addr = String::from_utf8_lossy(&cc.context).to_string();
                if !addr.is_empty() {
                    if id != self.config.id {
                        self.outbox.set_peer(id, &addr);
                    }
                    self.members.insert(id, addr);
                }
            }
            ConfChangeType::RemoveNode => {
                self.members.remove(&id);
                if id != self.config.id {
                    self.outbox.remove_peer(id);
                } else {
                    tracing::warn!(id, "this member was removed from the cluster");
                }
            }
        }
        let outcome: Result<ConfState, StoreError> =
            result.map_err(|e| StoreError::Internal(format!("configuration change failed: {e}")));
        tracing::info!(member = id, change = ?cc.get_change_type(), ok = outcome.is_ok(), "membership changed");
        if let Ok((origin, _)) = bincode::serde::decode_from_slice::<ConfChangeOrigin, _>(
            &entry.context,
            bincode::config::standard(),
        ) && origin.origin == self.config.id
            && let Some(reply) = self.pending_conf.remove(&origin.request_id)
        {
            let _ = reply.send(outcome.map(|_| self.status()));
        }
    }
}
