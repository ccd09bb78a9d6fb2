//! Leases: keys with a time to live (node heartbeats, leader election of the
//! scheduler and controllers).
//!
//! Two halves, because time is not replicated:
//! - `LeaseTable` is part of the replicated state machine: which leases exist,
//!   their TTL and the keys attached to them. It changes only by applying
//!   log entries (grant, keep-alive, revoke), so every member agrees on it.
//! - `LeaseClock` is local to a member: when each lease expires by this
//!   member's clock. Every member keeps it up to date as it applies grants
//!   and keep-alives, but only the leader acts on it, by proposing a revoke
//!   for each expired lease. A new leader restarts every deadline at a full
//!   TTL (as etcd does), so a leader change never expires a lease early.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::api::LeaseId;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ttl_seconds: i64,
    pub keys: BTreeSet<Vec<u8>>,
}

/// The replicated table of leases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTable {
    leases: BTreeMap<LeaseId, Lease>,
}

impl LeaseTable {
    pub fn grant(&mut self, id: LeaseId, ttl_seconds: i64) -> bool {
        if self.leases.contains_key(&id) {
            return false;
        }
        self.leases.insert(
            id,
            Lease {
                ttl_seconds,
                keys: BTreeSet::new(),
            },
        );
        true
    }

    pub fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        self.leases.remove(&id)
    }

    pub fn attach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.remove(key);
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = (LeaseId, i64)> + '_ {
        self.leases.iter().map(|(id, l)| (*id, l.ttl_seconds))
    }
}

/// This member's view of when each lease expires.
#[derive(Debug, Default)]
pub struct LeaseClock {
    deadlines: HashMap<LeaseId, Instant>,
}

impl LeaseClock {
    /// A grant or keep-alive was applied: the lease lives `ttl` from `now`.
    pub fn refresh(&mut self, id: LeaseId, ttl_seconds: i64, now: Instant) {
        let ttl = Duration::from_secs(ttl_seconds.max(1) as u64);
        self.deadlines.insert(id, now + ttl);
    }

    pub fn forget(&mut self, id: LeaseId) {
        self.deadlines.remove(&id);
    }

    /// This member became leader: every lease gets a full TTL from now.
    pub fn restart_all(&mut self, table: &LeaseTable, now: Instant) {
        self.deadlines.clear();
        for (id, ttl) in table.ids() {
            self.refresh(id, ttl, now);
        }
    }

    /// Leases whose deadline has passed.
    pub fn expired(&self, now: Instant) -> Vec<LeaseId> {
        let mut ids: Vec<_> = self
            .deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_ttl_unless_refreshed() {
        let mut table = LeaseTable::default();
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        assert!(table.grant(7, 2));
        assert!(!table.grant(7, 2), "a lease id is granted once");
        clock.refresh(7, 2, t0);
        assert!(clock.expired(t0 + Duration::from_secs(1)).is_empty());
        clock.refresh(7, 2, t0 + Duration::from_secs(1));
        assert!(clock.expired(t0 + Duration::from_millis(2500)).is_empty());
        assert_eq!(clock.expired(t0 + Duration::from_secs(3)), vec![7]);
    }

    #[test]
    fn a_new_leader_restarts_every_deadline() {
        let mut table = LeaseTable::default();
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        table.grant(1, 1);
        clock.refresh(1, 1, t0);
        clock.restart_all(&table, t0 + Duration::from_secs(5));
        assert!(clock.expired(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(clock.expired(t0 + Duration::from_secs(6)), vec![1]);
    }
}
