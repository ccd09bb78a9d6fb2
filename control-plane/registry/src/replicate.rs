//! Eager blob replication: every member keeps a copy of every blob that a
//! committed manifest needs, so losing one member loses no image.
//!
//! Each member runs one `run` task. It lists every manifest record in the
//! store (on start, so a restarted member catches up on what it missed),
//! then watches the store's registry records: a committed manifest (metadata
//! goes through Raft, so every member sees it) is queued, and the task makes
//! sure the manifest and every blob it references (config, layers, and for
//! an index its child manifests, recursively) are on this member's disk,
//! fetching missing ones from a peer (`peers.rs`, verified like an upload).
//! A manifest that cannot be completed yet (peer down, blob not found) stays
//! queued and is retried with exponential back-off (`Backoff`); a change of
//! the peer list retries everything at once.
//!
//! Acknowledgement: a push is acknowledged once its blobs are verified and
//! fsynced on the receiving member and its manifest record is committed by
//! a Raft majority; blob bytes reach the other members asynchronously (as
//! etcd-backed Kubernetes acknowledges on the API server that took the
//! write). Waiting for copies would tie every push to the slowest member and
//! block pushes while a member is down; the window in which an image lives
//! on one disk only is the copy time (seconds for hundreds of MB on a LAN),
//! and a member that crashes in it still has the blobs when it restarts.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use kc_store_api::api::{EventKind, WatchResponse};

use super::Registry;
use super::meta::manifest_record;

/// Retry delays: 1 s, doubling, capped at a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts in a row (`failures` >= 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Manifests still to complete on this member, each with its next attempt.
#[derive(Debug, Default)]
pub struct Queue {
    due: BTreeMap<String, (Instant, u32)>,
    backoff: Backoff,
}

impl Queue {
    /// Queues manifest `digest` for an attempt now (keeps an earlier one).
    pub fn add(&mut self, digest: String, now: Instant) {
        self.due.entry(digest).or_insert((now, 0));
    }

    /// Makes every queued manifest due now (the peers changed).
    pub fn retry_all(&mut self, now: Instant) {
        for (at, _) in self.due.values_mut() {
            *at = now;
        }
    }

    /// The earliest next attempt, if anything is queued.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.values().map(|(at, _)| *at).min()
    }

    /// The manifests due at `now`.
    pub fn take_due(&self, now: Instant) -> Vec<String> {
        self.due
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Records an attempt's outcome: done, or retried after the back-off.
    pub fn finish(&mut self, digest: &str, ok: bool, now: Instant) {
        if ok {
            self.due.remove(digest);
        } else if let Some((at, failures)) = self.due.get_mut(digest) {
            *failures += 1;
            *at = now + self.backoff.delay(*failures);
        }
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// Makes sure manifest `digest` and everything it references are on this
/// member's disk; how many blobs had to be fetched.
async fn complete(reg: &Registry, digest: &str) -> Result<usize, String> {
    let mut fetched = 0;
    let mut manifests = vec![digest.to_string()];
    while let Some(m) = manifests.pop() {
        fetched += ensure(reg, &m).await?;
        let path = reg.blobs.path(&m).map_err(|e| e.to_string())?;
        let data = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("cannot read manifest {m}: {e}"))?;
        let doc: Value =
            serde_json::from_slice(&data).map_err(|e| format!("manifest {m} is not JSON: {e}"))?;
        let children = super::http::child_manifests(&doc);
        for blob in super::http::referenced_digests(&doc).map_err(|e| e.to_string())? {
            if children.contains(&blob) {
                manifests.push(blob);
            } else {
                fetched += ensure(reg, &blob).await?;
            }
        }
    }
    Ok(fetched)
}

/// Fetches blob `digest` from a peer unless it is here: 1 if fetched.
async fn ensure(reg: &Registry, digest: &str) -> Result<usize, String> {
    if reg
        .blobs
        .size(digest)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(0);
    }
    match reg.fetch_blob(digest, true).await {
        Ok(_) => Ok(1),
        Err(_) => Err(format!("no reachable peer has blob {digest}")),
    }
}

/// The replication task of one member; ends when the registry is dropped.
pub async fn run(registry: Weak<Registry>) {
    let mut queue = Queue::default();
    'resync: loop {
        let Some(reg) = registry.upgrade() else {
            return;
        };
        let meta = reg.meta.clone();
        let peers_changed = reg.peers_changed.clone();
        drop(reg);
        let events = match meta.all_manifests().await {
            Ok((revision, all)) => {
                let now = Instant::now();
                for m in all {
                    queue.add(m.digest, now);
                }
                meta.watch(revision + 1).await
            }
            Err(e) => Err(e),
        };
        let mut events = match events {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!("registry replication cannot read the store: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue 'resync;
            }
        };
        loop {
            let wake = queue
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                msg = events.recv() => match msg {
                    Some(WatchResponse::Events(evs)) => {
                        let now = Instant::now();
                        for ev in evs.iter().filter(|e| e.kind == EventKind::Put) {
                            if let Some(m) = manifest_record(&ev.kv) {
                                queue.add(m.digest, now);
                            }
                        }
                    }
                    Some(WatchResponse::Progress { .. }) => {}
                    Some(WatchResponse::Cancelled(_)) | None => continue 'resync,
                },
                _ = peers_changed.notified() => queue.retry_all(Instant::now()),
                _ = tokio::time::sleep_until(wake) => {
                    let Some(reg) = registry.upgrade() else { return };
                    for digest in queue.take_due(Instant::now()) {
                        let outcome = complete(&reg, &digest).await;
                        match &outcome {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(manifest = %digest, blobs = n, "replicated an image's blobs to this member"),
                            Err(e) => tracing::debug!(manifest = %digest, "image not replicated yet: {e}"),
                        }
                        queue.finish(&digest, outcome.is_ok(), Instant::now());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_a_second_up_to_a_minute() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=9).map(|f| b.delay(f).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn failed_manifests_wait_their_back_off_and_peer_changes_retry_them() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a".into(), t0);
        q.add("b".into(), t0);
        assert_eq!(q.take_due(t0), ["a", "b"]);
        q.finish("a", true, t0);
        q.finish("b", false, t0);
        assert_eq!(q.len(), 1);
        assert!(q.take_due(t0).is_empty());
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        q.finish("b", false, t0);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(2)));
        // Queuing it again (a new event) does not reset its back-off.
        q.add("b".into(), t0);
        assert!(q.take_due(t0).is_empty());
        q.retry_all(t0);
        assert_eq!(q.take_due(t0), ["b"]);
        q.finish("b", true, t0);
        assert!(q.is_empty() && q.next_due().is_none());
    }

    #[test]
    fn only_manifest_records_are_picked_from_the_store() {
        let kv = |key: &str| kc_store_api::api::KeyValue {
            key: key.as_bytes().to_vec(),
            value: br#"{"digest":"sha256:ab","mediaType":"m","size":3}"#.to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: 0,
        };
        let m = manifest_record(&kv("/registry/kc.images/a/b/_manifests/sha256:ab")).unwrap();
        assert_eq!(m.digest, "sha256:ab");
        assert!(manifest_record(&kv("/registry/kc.images/a/b/_tags/1")).is_none());
        assert!(manifest_record(&kv("/registry/core/pods/x/_manifests/y")).is_none());
    }
}
