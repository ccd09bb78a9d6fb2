//! The store's state machine: a multi-version key-value map in memory.
//!
//! It knows nothing of Raft: it applies `Command`s in log order,
//! deterministically, and returns each command's result plus the watch
//! events it produced. Every write (put, delete that deletes something,
//! transaction that writes, lease revoke that deletes keys) bumps the one
//! global revision by one; each key keeps its create/mod revision and
//! version, as in etcd v3.
//!
//! Shape: `keys` maps each key to its history (ascending revisions; `None`
//! marks a delete), so reads at an old revision are a binary search; `events`
//! keeps every revision's changes for watchers that resume from the past.
//! `compact(rev)` drops history and events older than `rev` (the window),
//! after which reads and watches below `rev` fail with `Compacted`.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, DeleteResponse, Event, EventKind, KeyRange,
    KeyValue, LeaseGrantResponse, Op, OpResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, Revision, StoreError, TxnRequest, TxnResponse,
};
use super::command::{Command, CommandResponse, CommandResult};
use super::lease::LeaseTable;

/// One entry of a key's history: the value written at `revision`, or `None`
/// for a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    revision: Revision,
    kv: Option<KeyValue>,
}

/// The MVCC key-value state and its lease table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mvcc {
    revision: Revision,
    compact_revision: Revision,
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
    events: BTreeMap<Revision, Vec<Event>>,
    leases: LeaseTable,
}

/// What applying one command did: its result for the client, and the
/// events of the revision it wrote (empty if it wrote nothing).
#[derive(Debug)]
pub struct Applied {
    pub result: CommandResult,
    pub events: Vec<Event>,
}

impl Mvcc {
    pub fn new() -> Self {
        Self::default()
    }

    /// The revision of the last write.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Revisions below this one are gone.
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Apply one committed command.
    pub fn apply(&mut self, command: &Command) -> Applied {
        let rev = self.revision + 1;
        let mut events = Vec::new();
        let result = match command {
            Command::Put(req) => self
                .check_leases_of_put(req)
                .map(|()| CommandResponse::Put(self.put_at(rev, req, &mut events))),
            Command::Delete(req) => Ok(CommandResponse::Delete(self.delete_at(
                rev,
                req,
                &mut events,
            ))),
            Command::Txn(req) => self.txn_at(rev, req, &mut events).map(CommandResponse::Txn),
            Command::Compact(c) => self.compact(*c).map(|()| CommandResponse::Compacted),
            Command::LeaseGrant { id, ttl_seconds } => {
                if *id <= 0 || *ttl_seconds <= 0 {
                    Err(StoreError::Internal(format!(
                        "lease grant needs a positive id and TTL (got id {id}, ttl {ttl_seconds})"
                    )))
                } else if self.leases.grant(*id, *ttl_seconds) {
                    Ok(CommandResponse::LeaseGranted(LeaseGrantResponse {
                        id: *id,
                        ttl_seconds: *ttl_seconds,
                    }))
                } else {
                    Err(StoreError::Internal(format!("lease {id} already exists")))
                }
            }
            Command::LeaseKeepAlive(id) => match self.leases.get(*id) {
                Some(l) => Ok(CommandResponse::LeaseKeptAlive {
                    ttl_seconds: l.ttl_seconds,
                }),
                None => Err(StoreError::LeaseNotFound(*id)),
            },
            Command::LeaseRevoke(id) => match self.leases.remove(*id) {
                Some(lease) => {
                    for key in lease.keys {
                        let req = DeleteRequest::new(KeyRange::key(key));
                        self.delete_at(rev, &req, &mut events);
                    }
                    Ok(CommandResponse::LeaseRevoked)
                }
                None => Err(StoreError::LeaseNotFound(*id)),
            },
        };
        if !events.is_empty() {
            self.revision = rev;
            self.events.insert(rev, events.clone());
        }
        Applied { result, events }
    }

    /// Read `req.range` as of `req.revision` (0 = latest).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError> {
        let at = if req.revision <= 0 {
            self.revision
        } else {
            req.revision
        };
        if at > self.revision {
            return Err(StoreError::FutureRevision {
                requested: at,
                current: self.revision,
            });
        }
        if at < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: at,
                compact_revision: self.compact_revision,
            });
        }
        Ok(self.range_at(req, at))
    }

    /// Read `req.range` as of revision `at` (already checked to be in the window).
    fn range_at(&self, req: &RangeRequest, at: Revision) -> RangeResponse {
        let mut kvs = Vec::new();
        let mut count = 0i64;
        let mut more = false;
        for (_, history) in self.keys_in(&req.range) {
            let Some(kv) = value_at(history, at) else {
                continue;
            };
            count += 1;
            if req.count_only {
                continue;
            }
            if req.limit > 0 && kvs.len() as i64 >= req.limit {
                more = true;
                continue;
            }
            let mut kv = kv.clone();
            if req.keys_only {
                kv.value.clear();
            }
            kvs.push(kv);
        }
        RangeResponse {
            revision: self.revision,
            kvs,
            more,
            count,
        }
    }

    /// Every event with revision `>= from` on keys in `range`, ascending.
    pub fn events_since(&self, from: Revision, range: &KeyRange) -> Result<Vec<Event>, StoreError> {
        if from < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: self.compact_revision,
            });
        }
        Ok(self
            .events
            .range(from..)
            .flat_map(|(_, evs)| evs.iter())
            .filter(|e| range.contains(&e.kv.key))
            .cloned()
            .collect())
    }

    /// The latest value of `key`, if it exists.
    fn current(&self, key: &[u8]) -> Option<&KeyValue> {
        self.keys
            .get(key)
            .and_then(|h| h.last())
            .and_then(|v| v.kv.as_ref())
    }

    /// The keys (with their history) that `range` covers, ascending.
    fn keys_in<'a>(
        &'a self,
        range: &KeyRange,
    ) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Vec<Version>)> + 'a> {
        if range.range_end.is_empty() {
            return Box::new(self.keys.get_key_value(&range.key).into_iter());
        }
        let start = Bound::Included(range.key.clone());
        if range.range_end == [0] {
            return Box::new(self.keys.range((start, Bound::Unbounded)));
        }
        if range.range_end <= range.key {
            return Box::new(std::iter::empty());
        }
        Box::new(
            self.keys
                .range((start, Bound::Excluded(range.range_end.clone()))),
        )
    }

    fn check_leases_of_put(&self, req: &PutRequest) -> Result<(), StoreError> {
        if req.lease != 0 && !self.leases.contains(req.lease) {
            return Err(StoreError::LeaseNotFound(req.lease));
        }
        Ok(())
    }

    fn put_at(&mut self, rev: Revision, req: &PutRequest, events: &mut Vec<Event>) -> PutResponse {
        let prev = self.current(&req.key).cloned();
        let kv = KeyValue {
            key: req.key.clone(),
            value: req.value.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease: req.lease,
        };
        if let Some(p) = &prev
            && p.lease != 0
            && p.lease != req.lease
        {
            self.leases.detach(p.lease, &req.key);
        }
        if req.lease != 0 {
            self.leases.attach(req.lease, &req.key);
        }
        self.record(rev, &req.key, Some(kv.clone()));
        events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        PutResponse {
            revision: rev,
            prev_kv: if req.prev_kv { prev } else { None },
        }
    }

    fn delete_at(
        &mut self,
        rev: Revision,
        req: &DeleteRequest,
        events: &mut Vec<Event>,
    ) -> DeleteResponse {
        let doomed: Vec<KeyValue> = self
            .keys_in(&req.range)
            .filter_map(|(_, h)| h.last().and_then(|v| v.kv.clone()))
            .collect();
        for prev in &doomed {
            if prev.lease != 0 {
                self.leases.detach(prev.lease, &prev.key);
            }
            self.record(rev, &prev.key, None);
            let tombstone = KeyValue {
                key: prev.key.clone(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: rev,
                version: 0,
                lease: 0,
            };
            events.push(Event {
                kind: EventKind::Delete,
                kv: tombstone,
                prev_kv: Some(prev.clone()),
            });
        }
        let deleted = doomed.len() as i64;
        DeleteResponse {
            revision: if deleted > 0 { rev } else { self.revision },
            deleted,
            prev_kvs: if req.prev_kv { doomed } else { Vec::new() },
        }
    }

    fn txn_at(
        &mut self,
        rev: Revision,
        req: &TxnRequest,
        events: &mut Vec<Event>,
    ) -> Result<TxnResponse, StoreError> {
        let succeeded = req.compare.iter().all(|c| self.holds(c));
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        // Check everything that can fail before writing anything: a
        // transaction applies whole or not at all.
        for op in ops {
            match op {
                Op::Put(p) => self.check_leases_of_put(p)?,
                Op::Range(r) if r.revision > self.revision => {
                    return Err(StoreError::FutureRevision {
                        requested: r.revision,
                        current: self.revision,
                    });
                }
                Op::Range(r) if r.revision > 0 && r.revision < self.compact_revision => {
                    return Err(StoreError::Compacted {
                        requested: r.revision,
                        compact_revision: self.compact_revision,
                    });
                }
                _ => {}
            }
        }
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                // Reads inside a transaction see its earlier writes.
                Op::Range(r) => OpResponse::Range(
                    self.range_at(r, if r.revision > 0 { r.revision } else { rev }),
                ),
                Op::Put(p) => OpResponse::Put(self.put_at(rev, p, events)),
                Op::Delete(d) => OpResponse::Delete(self.delete_at(rev, d, events)),
            });
        }
        let revision = if events.is_empty() {
            self.revision
        } else {
            rev
        };
        for r in &mut responses {
            match r {
                OpResponse::Put(p) => p.revision = revision,
                OpResponse::Delete(d) => d.revision = revision,
                OpResponse::Range(r) => r.revision = revision,
            }
        }
        Ok(TxnResponse {
            revision,
            succeeded,
            responses,
        })
    }

    fn holds(&self, c: &Compare) -> bool {
        let kv = self.current(&c.key);
        let ord = match &c.target {
            CompareTarget::Version(v) => kv.map_or(0, |k| k.version).cmp(v),
            CompareTarget::CreateRevision(r) => kv.map_or(0, |k| k.create_revision).cmp(r),
            CompareTarget::ModRevision(r) => kv.map_or(0, |k| k.mod_revision).cmp(r),
            CompareTarget::Lease(l) => kv.map_or(0, |k| k.lease).cmp(l),
            CompareTarget::Value(v) => kv.map_or(&[][..], |k| k.value.as_slice()).cmp(v.as_slice()),
        };
        match c.op {
            CompareOp::Equal => ord.is_eq(),
            CompareOp::NotEqual => ord.is_ne(),
            CompareOp::Greater => ord.is_gt(),
            CompareOp::Less => ord.is_lt(),
        }
    }

    /// Append to a key's history; a second write in the same revision (in
    /// one transaction) replaces the first.
    fn record(&mut self, rev: Revision, key: &[u8], kv: Option<KeyValue>) {
        let history = self.keys.entry(key.to_vec()).or_default();
        match history.last_mut() {
            Some(last) if last.revision == rev => last.kv = kv,
            _ => history.push(Version { revision: rev, kv }),
        }
    }

    /// Forget every revision older than `rev`: the state as of `rev` stays
    /// readable, older states and events are gone.
    pub fn compact(&mut self, rev: Revision) -> Result<(), StoreError> {
        if rev <= self.compact_revision {
            return Err(StoreError::Compacted {
                requested: rev,
                compact_revision: self.compact_revision,
            });
        }
        if rev > self.revision {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current: self.revision,
            });
        }
        self.keys.retain(|_, history| {
            // Keep the version visible at `rev` (unless it is a delete) and
            // everything newer.
            let visible = history.partition_point(|v| v.revision <= rev);
            let keep_from = match visible.checked_sub(1) {
                Some(i) if history[i].kv.is_some() => i,
                _ => visible,
            };
            history.drain(..keep_from);
            !history.is_empty()
        });
        self.events = self.events.split_off(&rev);
        self.compact_revision = rev;
        Ok(())
    }
}

/// The value visible at revision `at` in one key's history.
fn value_at(history: &[Version], at: Revision) -> Option<&KeyValue> {
    let n = history.partition_point(|v| v.revision <= at);
    n.checked_sub(1).and_then(|i| history[i].kv.as_ref())
}

#[cfg(test)]
mod tests;
