//! The durable Raft log: entries, hard state and the latest snapshot on disk.
//!
//! Layout of a member's data dir:
//! - `wal`: an append-only file of records `[len u32][crc32 u32][payload]`,
//!   each payload a bincode `Record` (a batch of entries, a hard state, or
//!   the initial configuration). One `append` call writes all the entries
//!   and the hard state of one Raft `Ready` and fsyncs once, so many
//!   proposals share one fsync.
//! - `snapshot`: the latest snapshot (`[magic][crc32][len][protobuf]`),
//!   replaced atomically (write, fsync, rename).
//!
//! Recovery: a record cut short at the end of the wal (a crash during a
//! write) is truncated away with a warning: it was never acknowledged,
//! because acknowledgement waits for the fsync. A checksum failure anywhere
//! else, or a bad snapshot, is corruption: opening fails with the file and
//! offset, and the member refuses to start rather than serve bad data.
//!
//! In memory, raft-rs reads the log through `RaftStorage` (its `MemStorage`
//! plus the snapshot with its data); this module keeps it in step with disk.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use serde::{Deserialize, Serialize};

const SNAPSHOT_MAGIC: &[u8; 8] = b"KCSNAP1\n";
/// The index (and term) of the initial snapshot a new cluster starts from.
pub const BOOTSTRAP_INDEX: u64 = 1;
/// No single record may claim more than this (a torn header reads as garbage).
const MAX_RECORD: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: corrupt record at byte {offset} ({why}); the store refuses to start on damaged \
         data: restore this member from a peer (remove its data dir and re-add it)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Record {
    /// Protobuf-encoded entries, ascending index (later ones overwrite
    /// earlier ones with the same index).
    Entries(Vec<Vec<u8>>),
    HardState {
        term: u64,
        vote: u64,
        commit: u64,
    },
    /// Protobuf-encoded `ConfState`: the configuration a new cluster starts with.
    ConfState(Vec<u8>),
}

/// The log as raft-rs sees it: cheap to clone, shared with the `DiskLog`.
#[derive(Clone, Default)]
pub struct RaftStorage {
    mem: MemStorage,
    snapshot: Arc<RwLock<Snapshot>>,
}

impl RaftStorage {
    pub fn latest_snapshot(&self) -> Snapshot {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.latest_snapshot();
        if snap.get_metadata().index < request_index || snap.get_metadata().index == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}

/// The on-disk log of one member.
pub struct DiskLog {
    dir: PathBuf,
    wal: File,
    storage: RaftStorage,
}

impl DiskLog {
    /// Open (or create) the log in `dir` and load it into memory.
    pub fn open(dir: &Path) -> Result<DiskLog, LogError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let storage = RaftStorage::default();
        let snap_path = dir.join("snapshot");
        if snap_path.exists() {
            let snap = read_snapshot(&snap_path)?;
            let mut core = storage.mem.wl();
            core.apply_snapshot(snap.clone())
                .map_err(|e| corrupt(&snap_path, 0, format!("unusable snapshot: {e}")))?;
            drop(core);
            *storage.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snap;
        }
        let wal_path = dir.join("wal");
        let records = read_wal(&wal_path)?;
        {
            let mem = &storage.mem;
            let snap_index = mem.first_index().unwrap_or(1) - 1;
            for record in records {
                match record {
                    Record::Entries(raw) => {
                        let mut entries = Vec::with_capacity(raw.len());
                        for bytes in raw {
                            let e = Entry::parse_from_bytes(&bytes).map_err(|e| {
                                corrupt(&wal_path, 0, format!("undecodable entry: {e}"))
                            })?;
                            if e.index > snap_index {
                                entries.push(e);
                            }
                        }
                        if let Some(first) = entries.first() {
                            let last = mem.last_index().unwrap_or(0);
                            if first.index > last + 1 {
                                return Err(corrupt(
                                    &wal_path,
                                    0,
                                    format!(
                                        "gap in the log: entry {} follows {}",
                                        first.index, last
                                    ),
                                ));
                            }
                            mem.wl().append(&entries).map_err(|e| {
                                corrupt(&wal_path, 0, format!("entries out of order: {e}"))
                            })?;
                        }
                    }
                    Record::HardState { term, vote, commit } => {
                        let hs = HardState {
                            term,
                            vote,
                            commit: commit.max(snap_index),
                            ..Default::default()
                        };
                        mem.wl().set_hardstate(hs);
                    }
                    Record::ConfState(bytes) => {
                        let cs = ConfState::parse_from_bytes(&bytes).map_err(|e| {
                            corrupt(&wal_path, 0, format!("undecodable configuration: {e}"))
                        })?;
                        if snap_index == 0 {
                            mem.wl().set_conf_state(cs);
                        }
                    }
                }
            }
        }
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(io(&wal_path))?;
        sync_dir(dir)?;
        Ok(DiskLog {
            dir: dir.to_path_buf(),
            wal,
            storage,
        })
    }

    /// The storage handle to give raft-rs.
    pub fn storage(&self) -> RaftStorage {
        self.storage.clone()
    }

    /// Has this member ever been part of a cluster (or is its dir fresh)?
    pub fn is_initialized(&self) -> bool {
        self.storage
            .mem
            .initial_state()
            .map(|s| s.initialized())
            .unwrap_or(false)
    }

    /// The index the last snapshot covers (0 = none).
    pub fn snapshot_index(&self) -> u64 {
        self.storage.latest_snapshot().get_metadata().index
    }

    /// Start a new cluster with these voters, from an initial snapshot at
    /// index `BOOTSTRAP_INDEX` holding `data` (the empty state): every
    /// founder starts from the same state, and the log proper after it.
    /// (A member added later gets a newer snapshot that names it: the
    /// leader compacts when it applies the addition.)
    pub fn bootstrap(&mut self, voters: Vec<u64>, data: Vec<u8>) -> Result<(), LogError> {
        let mut snap = Snapshot::default();
        snap.set_data(data.into());
        let meta = snap.mut_metadata();
        meta.index = BOOTSTRAP_INDEX;
        meta.term = BOOTSTRAP_INDEX;
        meta.set_conf_state(ConfState::from((voters, Vec::<u64>::new())));
        self.install_snapshot(&snap)
    }

    /// Durably append one Ready's entries and hard state: one write, one
    /// fsync. When only the commit index changed (`sync` false, raft-rs's
    /// `must_sync`), the record is written without an fsync, as etcd does: a
    /// commit index lost in a crash is learned again, while entries, term
    /// and vote are always durable before anything is acknowledged.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hs: Option<&HardState>,
        sync: bool,
    ) -> Result<(), LogError> {
        let mut records = Vec::with_capacity(2);
        if !entries.is_empty() {
            records.push(Record::Entries(entries.iter().map(encode).collect()));
        }
        if let Some(hs) = hs {
            records.push(Record::HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            });
        }
        if records.is_empty() {
            return Ok(());
        }
        self.write_records(&records, sync || !entries.is_empty())?;
        let mut core = self.storage.mem.wl();
        if !entries.is_empty() {
            core.append(entries).map_err(|e| LogError::Corrupt {
                path: self.dir.join("wal"),
                offset: 0,
                why: format!("raft handed entries that do not fit the log: {e}"),
            })?;
        }
        if let Some(hs) = hs {
            core.set_hardstate(hs.clone());
        }
        Ok(())
    }

    /// Note a newer commit index in memory. It needs no fsync: a commit
    /// index lost in a crash is learned again from the leader (or re-won by
    /// a new leader), because the entries themselves are durable.
    pub fn set_commit(&mut self, commit: u64) {
        let mut core = self.storage.mem.wl();
        if core.hard_state().commit < commit {
            core.mut_hard_state().commit = commit;
        }
    }

    /// Install a snapshot received from the leader: it replaces the log.
    pub fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), LogError> {
        write_snapshot(&self.dir.join("snapshot"), snap)?;
        self.storage
            .mem
            .wl()
            .apply_snapshot(snap.clone())
            .map_err(|e| LogError::Corrupt {
                path: self.dir.join("snapshot"),
                offset: 0,
                why: format!("snapshot out of date: {e}"),
            })?;
        *self
            .storage
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = snap.clone();
        self.rewrite_wal()
    }

    /// Take a snapshot of the applied state at `index` (with the state
    /// machine's serialized `data`), and drop log entries older than it.
    pub fn compact(&mut self, index: u64, conf: ConfState, data: Vec<u8>) -> Result<(), LogError> {
        let mut snap = self.snapshot_meta(index, conf)?;
        snap.set_data(data.into());
        write_snapshot(&self.dir.join("snapshot"), &snap)?;
        *self
            .storage
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = snap;
        // Keep the entry at `index` so the in-memory log is never empty.
        let _ = self.storage.mem.wl().compact(index);
        self.rewrite_wal()
    }

    /// A snapshot's metadata at applied `index` (data still to be filled):
    /// for taking a snapshot off the store thread.
    pub fn snapshot_meta(&self, index: u64, conf: ConfState) -> Result<Snapshot, LogError> {
        let term = self
            .storage
            .mem
            .term(index)
            .map_err(|e| LogError::Corrupt {
                path: self.dir.join("wal"),
                offset: 0,
                why: format!("cannot snapshot at index {index}: {e}"),
            })?;
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(conf);
        Ok(snap)
    }

    /// Where a snapshot being written off the store thread goes, until
    /// `adopt_pending` makes it the snapshot.
    pub fn pending_path(&self) -> PathBuf {
        self.dir.join("snapshot.pending")
    }

    /// Write a finished snapshot to `path` (with checksum, fsynced): safe to
    /// call from any thread.
    pub fn write_pending(path: &Path, snap: &Snapshot) -> Result<(), LogError> {
        write_synced(path, &snapshot_file_bytes(snap))
    }

    /// Make the snapshot written to `pending_path` the current one and drop
    /// the log entries it covers, unless a newer snapshot arrived meanwhile.
    pub fn adopt_pending(&mut self, snap: Snapshot) -> Result<(), LogError> {
        let pending = self.pending_path();
        if snap.get_metadata().index <= self.snapshot_index() {
            let _ = fs::remove_file(&pending);
            return Ok(());
        }
        let path = self.dir.join("snapshot");
        fs::rename(&pending, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        let index = snap.get_metadata().index;
        *self
            .storage
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = snap;
        let _ = self.storage.mem.wl().compact(index);
        self.rewrite_wal()
    }

    /// Rewrite the wal with what the in-memory log still holds (after a
    /// snapshot), atomically.
    fn rewrite_wal(&mut self) -> Result<(), LogError> {
        let (hs, cs, entries) = {
            let mem = &self.storage.mem;
            let first = mem.first_index().unwrap_or(1);
            let last = mem.last_index().unwrap_or(0);
            let entries = if last >= first {
                self.storage
                    .mem
                    .entries(first, last + 1, None, GetEntriesContext::empty(false))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            (mem.rl().hard_state().clone(), mem.initial_state(), entries)
        };
        let mut buf = Vec::new();
        if let Ok(cs) = cs {
            frame_record(&mut buf, &Record::ConfState(encode(&cs.conf_state)));
        }
        if !entries.is_empty() {
            frame_record(
                &mut buf,
                &Record::Entries(entries.iter().map(encode).collect()),
            );
        }
        frame_record(
            &mut buf,
            &Record::HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            },
        );
        let tmp = self.dir.join("wal.tmp");
        let path = self.dir.join("wal");
        write_synced(&tmp, &buf)?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.wal = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(())
    }

    fn write_records(&mut self, records: &[Record], sync: bool) -> Result<(), LogError> {
        let mut buf = Vec::new();
        for r in records {
            frame_record(&mut buf, r);
        }
        let path = self.dir.join("wal");
        self.wal.write_all(&buf).map_err(io(&path))?;
        if sync {
            self.wal.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    // Encoding an in-memory protobuf message into a Vec cannot fail.
    m.write_to_bytes().expect("protobuf encoding into memory")
}

fn corrupt(path: &Path, offset: u64, why: String) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        why,
    }
}

fn frame_record(buf: &mut Vec<u8>, r: &Record) {
    let payload = bincode::serde::encode_to_vec(r, bincode::config::standard())
        .expect("a record always serializes");
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
}

/// Read every record of the wal; cut off a torn tail, fail on corruption.
fn read_wal(path: &Path) -> Result<Vec<Record>, LogError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    }
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn = |why: &str| {
            tracing::warn!(
                path = %path.display(), offset = at, why,
                "the wal ends in a partly written record (a crash during a write); truncating it"
            );
        };
        if rest.len() < 8 {
            torn("short header");
            truncate(path, at as u64)?;
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_RECORD || 8 + len > rest.len() {
            torn("record runs past the end of the file");
            truncate(path, at as u64)?;
            break;
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            if 8 + len == rest.len() {
                torn("checksum mismatch in the last record");
                truncate(path, at as u64)?;
                break;
            }
            return Err(corrupt(path, at as u64, "checksum mismatch".into()));
        }
        let (record, _) =
            bincode::serde::decode_from_slice::<Record, _>(payload, bincode::config::standard())
                .map_err(|e| corrupt(path, at as u64, format!("undecodable record: {e}")))?;
        records.push(record);
        at += 8 + len;
    }
    Ok(records)
}

fn truncate(path: &Path, len: u64) -> Result<(), LogError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.set_len(len).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn snapshot_file_bytes(snap: &Snapshot) -> Vec<u8> {
    let body = encode(snap);
    let mut buf = Vec::with_capacity(body.len() + 20);
    buf.extend_from_slice(SNAPSHOT_MAGIC);
    buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    buf.extend_from_slice(&(body.len() as u64).to_le_bytes());
    buf.extend_from_slice(&body);
    buf
}

fn write_snapshot(path: &Path, snap: &Snapshot) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, &snapshot_file_bytes(snap))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn read_snapshot(path: &Path) -> Result<Snapshot, LogError> {
    let bytes = fs::read(path).map_err(io(path))?;
    if bytes.len() < 20 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(
            path,
            0,
            "not a kc snapshot file (bad header)".into(),
        ));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default()) as usize;
    let body = &bytes[20..];
    if body.len() != len {
        return Err(corrupt(
            path,
            20,
            format!("truncated: {} of {len} bytes", body.len()),
        ));
    }
    if crc32fast::hash(body) != crc {
        return Err(corrupt(path, 20, "checksum mismatch".into()));
    }
    Snapshot::parse_from_bytes(body).map_err(|e| corrupt(path, 20, format!("undecodable: {e}")))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests;
