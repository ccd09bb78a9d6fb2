//! The objects the proxy and DNS render from, kept up to date from watch
//! events (Service and EndpointSlice objects as the API server sends them).
//!
//! The node agent feeds every event here and calls `Proxy::sync_if_changed`
//! with `snapshot()`: rendering is cheap next to an nft transaction, so the
//! proxy re-renders everything and skips the kernel when the text is the
//! same (kube-proxy's full-sync shape, without its partial syncs).

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{Snapshot, SnapshotError};

/// Which collection an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Service,
    EndpointSlice,
}

/// Services and EndpointSlices by (namespace, name).
#[derive(Debug, Default, Clone)]
pub struct ObjectCache {
    objects: BTreeMap<(Kind, String, String), Value>,
}

fn key(kind: Kind, obj: &Value) -> (Kind, String, String) {
    let m = &obj["metadata"];
    (
        kind,
        m["namespace"].as_str().unwrap_or("default").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

impl ObjectCache {
    /// An ADDED or MODIFIED event (the node agent's watch).
    pub fn upsert(&mut self, kind: Kind, obj: Value) {
        self.objects.insert(key(kind, &obj), obj);
    }

    /// A DELETED event.
    pub fn remove(&mut self, kind: Kind, obj: &Value) {
        self.objects.remove(&key(kind, obj));
    }

    /// Replaces one collection wholesale (after a relist).
    pub fn replace_all(&mut self, kind: Kind, items: Vec<Value>) {
        self.objects.retain(|(k, _, _), _| *k != kind);
        for obj in items {
            self.upsert(kind, obj);
        }
    }

    fn of(&self, kind: Kind) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_objects(&self.of(Kind::Service), &self.of(Kind::EndpointSlice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_update_the_snapshot() {
        let mut c = ObjectCache::default();
        let svc = json!({"metadata": {"name": "web", "namespace": "a"},
            "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}});
        c.upsert(Kind::Service, svc.clone());
        c.upsert(
            Kind::EndpointSlice,
            json!({"metadata": {"name": "web-1", "namespace": "a",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "ports": [{"port": 8080}], "endpoints": [{"addresses": ["10.244.0.9"]}]}),
        );
        let snap = c.snapshot().unwrap();
        assert_eq!(snap.services[0].ports[0].endpoints.len(), 1);
        c.remove(Kind::Service, &svc);
        assert!(c.snapshot().unwrap().services.is_empty());
    }
}
