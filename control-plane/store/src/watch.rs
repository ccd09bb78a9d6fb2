//! Watchers and the fan-out of changes to them.
//!
//! The `WatchHub` is owned by the store actor, next to the state machine, so
//! registering a watcher (with its replay from history) and delivering the
//! next applied revision can never interleave wrongly: a watcher sees every
//! change with revision >= its start exactly once, in order.
//!
//! Each watcher has a bounded channel. Delivery never waits: if a watcher's
//! channel is nearly full it is cancelled with `TooSlow` (the last slot is
//! kept for that message) and removed, so a slow reader cannot stall the store.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::api::{Event, KeyRange, Revision, WatchCancelReason, WatchRequest, WatchResponse};
use super::mvcc::Mvcc;

/// How many responses a watcher may have queued before it is too slow.
pub const DEFAULT_WATCH_BUFFER: usize = 1024;
/// Replayed history is sent in batches of at most this many events.
const REPLAY_BATCH: usize = 512;

struct Watcher {
    range: KeyRange,
    /// Events below this revision were already delivered (or not wanted).
    from: Revision,
    prev_kv: bool,
    tx: mpsc::Sender<WatchResponse>,
}

pub struct WatchHub {
    watchers: HashMap<u64, Watcher>,
    next_id: u64,
    buffer: usize,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new(DEFAULT_WATCH_BUFFER)
    }
}

impl WatchHub {
    pub fn new(buffer: usize) -> Self {
        WatchHub {
            watchers: HashMap::new(),
            next_id: 1,
            buffer: buffer.max(2),
        }
    }

    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Start a watch: replay history from `start_revision` if asked, then
    /// follow live changes. A start below the compaction window ends at once
    /// with `Compacted`.
    pub fn watch(&mut self, req: &WatchRequest, mvcc: &Mvcc) -> mpsc::Receiver<WatchResponse> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let from = if req.start_revision > 0 {
            req.start_revision
        } else {
            mvcc.revision() + 1
        };
        if req.start_revision > 0 {
            match mvcc.events_since(req.start_revision, &req.range) {
                Err(_) => {
                    let reason = WatchCancelReason::Compacted {
                        compact_revision: mvcc.compact_revision(),
                    };
                    let _ = tx.try_send(WatchResponse::Cancelled(reason));
                    return rx;
                }
                Ok(history) => {
                    let batches: Vec<_> = history.chunks(REPLAY_BATCH).collect();
                    if batches.len() + 1 >= self.buffer {
                        let _ = tx.try_send(WatchResponse::Cancelled(WatchCancelReason::TooSlow));
                        return rx;
                    }
                    for batch in batches {
                        let events = batch.iter().map(|e| strip(e, req.prev_kv)).collect();
                        let _ = tx.try_send(WatchResponse::Events(events));
                    }
                }
            }
        }
        let watcher = Watcher {
            range: req.range.clone(),
            from: from.max(mvcc.revision() + 1),
            prev_kv: req.prev_kv,
            tx,
        };
        self.watchers.insert(self.next_id, watcher);
        self.next_id += 1;
        rx
    }

    /// Deliver the events of one applied revision.
    pub fn notify(&mut self, events: &[Event]) {
        if events.is_empty() || self.watchers.is_empty() {
            return;
        }
        self.watchers.retain(|_, w| {
            if w.tx.is_closed() {
                return false;
            }
            let mine: Vec<Event> = events
                .iter()
                .filter(|e| e.kv.mod_revision >= w.from && w.range.contains(&e.kv.key))
                .map(|e| strip(e, w.prev_kv))
                .collect();
            if mine.is_empty() {
                return true;
            }
            if w.tx.capacity() <= 1 {
                tracing::warn!(range = ?w.range, "watcher too slow; cancelling it");
                let _ =
                    w.tx.try_send(WatchResponse::Cancelled(WatchCancelReason::TooSlow));
                return false;
            }
            w.tx.try_send(WatchResponse::Events(mine)).is_ok()
        });
    }

    /// Tell every watcher that nothing changed in its range up to `revision`.
    pub fn progress(&mut self, revision: Revision) {
        self.watchers.retain(|_, w| {
            !w.tx.is_closed()
                && (w.tx.capacity() <= 1
                    || w.tx.try_send(WatchResponse::Progress { revision }).is_ok())
        });
    }

    /// End every watch (shutdown, or the state was replaced by a snapshot
    /// and watchers must re-list).
    pub fn cancel_all(&mut self, reason: WatchCancelReason) {
        for (_, w) in self.watchers.drain() {
            let _ = w.tx.try_send(WatchResponse::Cancelled(reason.clone()));
        }
    }
}

fn strip(e: &Event, prev_kv: bool) -> Event {
    if prev_kv {
        e.clone()
    } else {
        Event {
            prev_kv: None,
            ..e.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EventKind, PutRequest};
    use crate::command::Command;

    fn put(m: &mut Mvcc, hub: &mut WatchHub, k: &str) {
        let applied = m.apply(&Command::Put(PutRequest::new(k, "v")));
        hub.notify(&applied.events);
    }

    fn revisions(rx: &mut mpsc::Receiver<WatchResponse>) -> Vec<Revision> {
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            match r {
                WatchResponse::Events(evs) => out.extend(evs.iter().map(|e| e.kv.mod_revision)),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_watch_from_the_past_replays_then_follows_exactly_once() {
        let (mut m, mut hub) = (Mvcc::new(), WatchHub::new(16));
        put(&mut m, &mut hub, "/a/1");
        put(&mut m, &mut hub, "/b/1");
        put(&mut m, &mut hub, "/a/2");
        let req = WatchRequest {
            range: KeyRange::prefix("/a/"),
            start_revision: 2,
            prev_kv: false,
        };
        let mut rx = hub.watch(&req, &m);
        put(&mut m, &mut hub, "/a/3");
        put(&mut m, &mut hub, "/b/2");
        assert_eq!(revisions(&mut rx), vec![3, 4]);
    }

    #[test]
    fn a_watch_from_now_sees_only_new_changes_with_kinds() {
        let (mut m, mut hub) = (Mvcc::new(), WatchHub::new(16));
        put(&mut m, &mut hub, "k");
        let req = WatchRequest {
            range: KeyRange::key("k"),
            start_revision: 0,
            prev_kv: true,
        };
        let mut rx = hub.watch(&req, &m);
        let del = m.apply(&Command::Delete(crate::api::DeleteRequest::new(
            KeyRange::key("k"),
        )));
        hub.notify(&del.events);
        let Ok(WatchResponse::Events(evs)) = rx.try_recv() else {
            panic!()
        };
        assert_eq!(evs[0].kind, EventKind::Delete);
        assert_eq!(evs[0].prev_kv.as_ref().unwrap().value, b"v");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_watch_from_a_compacted_revision_is_cancelled_with_compacted() {
        let (mut m, mut hub) = (Mvcc::new(), WatchHub::new(16));
        for _ in 0..5 {
            put(&mut m, &mut hub, "k");
        }
        m.apply(&Command::Compact(4)).result.unwrap();
        let req = WatchRequest {
            range: KeyRange::key("k"),
            start_revision: 2,
            prev_kv: false,
        };
        let mut rx = hub.watch(&req, &m);
        assert_eq!(
            rx.try_recv().unwrap(),
            WatchResponse::Cancelled(WatchCancelReason::Compacted {
                compact_revision: 4
            })
        );
        assert_eq!(hub.len(), 0);
    }

    #[test]
    fn a_slow_watcher_is_cancelled_and_told_without_stalling_others() {
        let (mut m, mut hub) = (Mvcc::new(), WatchHub::new(4));
        let req = WatchRequest {
            range: KeyRange::prefix(""),
            start_revision: 0,
            prev_kv: false,
        };
        let mut slow = hub.watch(&req, &m);
        let mut fast = hub.watch(&req, &m);
        for i in 0..10 {
            put(&mut m, &mut hub, &format!("k{i}"));
            while let Ok(WatchResponse::Events(_)) = fast.try_recv() {}
        }
        let mut got = Vec::new();
        while let Ok(r) = slow.try_recv() {
            got.push(r);
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], WatchResponse::Cancelled(WatchCancelReason::TooSlow));
        assert_eq!(hub.len(), 1, "the fast watcher stays");
    }

    #[test]
    fn a_dropped_receiver_unregisters_its_watcher() {
        let (mut m, mut hub) = (Mvcc::new(), WatchHub::new(4));
        let req = WatchRequest {
            range: KeyRange::prefix(""),
            start_revision: 0,
            prev_kv: false,
        };
        drop(hub.watch(&req, &m));
        put(&mut m, &mut hub, "k");
        assert!(hub.is_empty());
    }
}
