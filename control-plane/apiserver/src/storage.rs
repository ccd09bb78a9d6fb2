//! Objects in the store: keys, revisions and the compare-and-swap writes the
//! REST verbs are built from.
//!
//! Keys are `/registry/<group-or-core>/<plural>/<namespace>/<name>`
//! (cluster-scoped objects have no namespace segment); values are the
//! object's JSON without `resourceVersion`, which is the key's
//! `mod_revision` and is set on every read. Creates compare the key's
//! create revision with 0, updates and deletes compare its mod revision with
//! the one read, so concurrent writers get a 409 instead of lost updates.
//! The store itself is reached through `Kv`, implemented by the store's
//! handle; nothing here knows about Raft.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use kc_store_api::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, KeyRange, KeyValue, Op, OpResponse,
    PutRequest, RangeRequest, RangeResponse, Revision, StoreError, TxnRequest, TxnResponse,
    WatchRequest, WatchResponse,
};

use super::registry::Resource;
use super::status::ApiError;

/// What the API server needs of the store: the store's client API.
pub use kc_store_api::kv::{Kv, prefix_end};

/// Maps a store failure to the API error a client can act on.
pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Compacted {
            requested,
            compact_revision,
        } => ApiError::gone(format!(
            "too old resource version: {requested} ({compact_revision})"
        )),
        StoreError::FutureRevision { requested, current } => ApiError::too_many_requests(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        StoreError::NoLeader | StoreError::Timeout | StoreError::Shutdown => {
            ApiError::unavailable(format!("storage is unavailable: {err}"))
        }
        StoreError::TooLarge { size, limit } => ApiError::too_large_to_store(size, limit),
        other => ApiError::internal(format!("storage error: {other}")),
    }
}

/// An object read from the store, with its resourceVersion set.
#[derive(Debug, Clone)]
pub struct Stored {
    pub object: Value,
    pub mod_revision: Revision,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    /// The revision the page was read at (the list's resourceVersion).
    pub revision: Revision,
    /// The key after which the next page starts, if there is more.
    pub next_key: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct Storage {
    kv: Arc<dyn Kv>,
}

impl Storage {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub fn key(resource: &Resource, namespace: &str, name: &str) -> Vec<u8> {
        let mut key = Self::prefix(resource, Some(namespace));
        key.extend_from_slice(name.as_bytes());
        key
    }

    /// The prefix of a collection: one namespace's, or every namespace's.
    pub fn prefix(resource: &Resource, namespace: Option<&str>) -> Vec<u8> {
        let base = format!(
            "/registry/{}/{}/",
            resource.storage_group(),
            resource.plural
        );
        match namespace {
            Some(ns) if resource.namespaced => format!("{base}{ns}/").into_bytes(),
            _ => base.into_bytes(),
        }
    }

    /// Decodes a stored value, setting its resourceVersion.
    pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
        let mut object: Value = serde_json::from_slice(&kv.value).map_err(|e| {
            ApiError::internal(format!(
                "stored object {} is not JSON: {e}",
                String::from_utf8_lossy(&kv.key)
            ))
        })?;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "resourceVersion".into(),
                Value::String(kv.mod_revision.to_string()),
            );
        }
        Ok(object)
    }

    /// The stored JSON of `kv` with its resourceVersion spliced in, without
    /// parsing it. `encode` writes keys sorted, so a stored object starts
    /// `{"apiVersion":"…","kind":"…","metadata":{`; anything else is None
    /// (the caller parses instead).
    pub fn splice_resource_version(kv: &KeyValue) -> Option<Vec<u8>> {
        fn string_end(v: &[u8], from: usize) -> Option<usize> {
            let rel = v
                .get(from..)?
                .iter()
                .position(|b| *b == b'"' || *b == b'\\')?;
            (v[from + rel] == b'"').then_some(from + rel)
        }
        let v = &kv.value;
        let mut at = b"{\"apiVersion\":\"".len();
        if !v.starts_with(b"{\"apiVersion\":\"") {
            return None;
        }
        at = string_end(v, at)? + 1;
        let kind = b",\"kind\":\"";
        if !v.get(at..)?.starts_with(kind) {
            return None;
        }
        at = string_end(v, at + kind.len())? + 1;
        let meta = b",\"metadata\":{";
        if !v.get(at..)?.starts_with(meta) {
            return None;
        }
        at += meta.len();
        let rv = format!("\"resourceVersion\":\"{}\"", kv.mod_revision);
        let mut out = Vec::with_capacity(v.len() + rv.len() + 1);
        out.extend_from_slice(&v[..at]);
        out.extend_from_slice(rv.as_bytes());
        if v.get(at) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&v[at..]);
        Some(out)
    }

    /// Every key under `prefix` at `revision` (0 = latest), unparsed.
    pub async fn list_raw(
        &self,
        prefix: &[u8],
        revision: Revision,
    ) -> Result<RangeResponse, ApiError> {
        self.range(prefix.to_vec(), prefix_end(prefix), 0, revision)
            .await
    }

    fn encode(object: &Value) -> Vec<u8> {
        let mut object = object.clone();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        serde_json::to_vec(&object).expect("a serde_json::Value always serializes")
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Stored>, ApiError> {
        self.get_with(key, false).await
    }

    /// A read of this member's copy, without a ReadIndex round: possibly
    /// stale, so only for reads followed by a compare-and-swap on the
    /// revision read (a stale read then fails the swap, never corrupts).
    pub async fn get_local(&self, key: &[u8]) -> Result<Option<Stored>, ApiError> {
        self.get_with(key, true).await
    }

    async fn get_with(&self, key: &[u8], serializable: bool) -> Result<Option<Stored>, ApiError> {
        let resp = self
            .read(key.to_vec(), Vec::new(), 0, 0, serializable)
            .await?;
        match resp.kvs.first() {
            Some(kv) => Ok(Some(Stored {
                object: Self::decode(kv)?,
                mod_revision: kv.mod_revision,
            })),
            None => Ok(None),
        }
    }

    /// One range read; `serializable` reads this member's copy (no ReadIndex).
    async fn read(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: i64,
        revision: Revision,
        serializable: bool,
    ) -> Result<RangeResponse, ApiError> {
        self.kv
            .range(RangeRequest {
                range: KeyRange {
                    key: start,
                    range_end: end,
                },
                limit,
                revision,
                serializable,
                keys_only: false,
                count_only: false,
            })
            .await
            .map_err(store_error)
    }

    /// Up to `limit` keys (0 = all) of `[start, end)` at `revision` (0 = latest).
    pub async fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: i64,
        revision: Revision,
    ) -> Result<RangeResponse, ApiError> {
        self.read(start, end, limit, revision, false).await
    }

    /// Every object under `prefix` in this member's copy, without a
    /// ReadIndex round: possibly a moment stale, as an informer's cache is
    /// (for admission's lookups of small collections).
    pub async fn list_local(&self, prefix: &[u8]) -> Result<Vec<Value>, ApiError> {
        let resp = self
            .read(prefix.to_vec(), prefix_end(prefix), 0, 0, true)
            .await?;
        resp.kvs.iter().map(Self::decode).collect()
    }

    /// Lists the collection under `prefix`, starting after `after` (a continue
    /// key), keeping objects `keep` accepts, at most `limit` (0 = all).
    pub async fn list(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        revision: Revision,
        limit: usize,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Page, ApiError> {
        const BATCH: i64 = 1000;
        let end = prefix_end(prefix);
        let mut start = match after {
            Some(k) => {
                let mut k = k.to_vec();
                k.push(0);
                k
            }
            None => prefix.to_vec(),
        };
        let mut revision = revision;
        let mut items = Vec::new();
        let mut last_key = Vec::new();
        loop {
            let batch = if limit == 0 { 0 } else { BATCH };
            let resp = self
                .range(start.clone(), end.clone(), batch, revision)
                .await?;
            // Every batch reads at the revision of the first (the response
            // names the store's current revision, not the one read at).
            if revision == 0 {
                revision = resp.revision;
            }
            for kv in &resp.kvs {
                let object = Self::decode(kv)?;
                if keep(&object) {
                    if limit > 0 && items.len() == limit {
                        // A further match exists: the next page starts after
                        // the last item of this one.
                        return Ok(Page {
                            items,
                            revision,
                            next_key: Some(last_key),
                        });
                    }
                    last_key = kv.key.clone();
                    items.push(object);
                }
            }
            match resp.kvs.last() {
                Some(last) if resp.more => {
                    start = last.key.clone();
                    start.push(0);
                }
                _ => {
                    return Ok(Page {
                        items,
                        revision,
                        next_key: None,
                    });
                }
            }
        }
    }

    async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, ApiError> {
        self.kv.txn(req).await.map_err(store_error)
    }

    /// Writes `object` at `key` whatever is there (a record with no
    /// history worth guarding, like a node's latest usage sample).
    pub async fn put(&self, key: &[u8], object: &Value) -> Result<Revision, ApiError> {
        let resp = self
            .txn(TxnRequest {
                compare: vec![],
                success: vec![put_op(key, Self::encode(object))],
                failure: vec![],
            })
            .await?;
        Ok(resp.revision)
    }

    /// Writes a new object if `key` is free and `parent` (the namespace, if
    /// any) exists, in one transaction; None if either compare fails.
    pub async fn create(
        &self,
        key: &[u8],
        object: &Value,
        parent: Option<&[u8]>,
    ) -> Result<Option<Revision>, ApiError> {
        self.create_claiming(key, object, parent, &[]).await
    }

    /// Like `create`, also writing each of `claims` (allocation keys: a
    /// Service's ClusterIP, NodePorts) in the same transaction, each only if
    /// it does not exist yet.
    pub async fn create_claiming(
        &self,
        key: &[u8],
        object: &Value,
        parent: Option<&[u8]>,
        claims: &[Vec<u8>],
    ) -> Result<Option<Revision>, ApiError> {
        self.create_guarded(key, object, parent, claims, &[]).await
    }

    /// Like `create_claiming`, also only if none of `absent` exists (the
    /// marker of a Terminating namespace).
    pub async fn create_guarded(
        &self,
        key: &[u8],
        object: &Value,
        parent: Option<&[u8]>,
        claims: &[Vec<u8>],
        absent: &[Vec<u8>],
    ) -> Result<Option<Revision>, ApiError> {
        let free = |k: &[u8]| Compare {
            key: k.to_vec(),
            op: CompareOp::Equal,
            target: CompareTarget::CreateRevision(0),
        };
        let mut compare = vec![free(key)];
        compare.extend(claims.iter().map(|c| free(c)));
        compare.extend(absent.iter().map(|c| free(c)));
        if let Some(parent) = parent {
            compare.push(Compare {
                key: parent.to_vec(),
                op: CompareOp::Greater,
                target: CompareTarget::CreateRevision(0),
            });
        }
        let mut success = vec![put_op(key, Self::encode(object))];
        success.extend(claims.iter().map(|c| put_op(c, key.to_vec())));
        let resp = self
            .txn(TxnRequest {
                compare,
                success,
                failure: vec![],
            })
            .await?;
        Ok(resp.succeeded.then_some(resp.revision))
    }

    /// Replaces the object if its mod revision is still `expected`.
    pub async fn replace(
        &self,
        key: &[u8],
        object: &Value,
        expected: Revision,
    ) -> Result<Option<Revision>, ApiError> {
        self.replace_marking(key, object, expected, &[]).await
    }

    /// Like `replace`, also writing each of `markers` (value `{}`) in the
    /// same transaction.
    pub async fn replace_marking(
        &self,
        key: &[u8],
        object: &Value,
        expected: Revision,
        markers: &[Vec<u8>],
    ) -> Result<Option<Revision>, ApiError> {
        let mut success = vec![put_op(key, Self::encode(object))];
        success.extend(markers.iter().map(|m| put_op(m, b"{}".to_vec())));
        let resp = self
            .txn(TxnRequest {
                compare: vec![Compare {
                    key: key.to_vec(),
                    op: CompareOp::Equal,
                    target: CompareTarget::ModRevision(expected),
                }],
                success,
                failure: vec![],
            })
            .await?;
        Ok(resp.succeeded.then_some(resp.revision))
    }

    /// Every swap in ONE transaction (one Raft proposal, one revision), if
    /// every key's mod revision is still the expected one: `Ok(revision)`;
    /// otherwise nothing is written and `Err` lists the indices of the swaps
    /// whose key changed (or went) meanwhile — the others still hold.
    pub async fn replace_all(
        &self,
        swaps: &[Swap],
    ) -> Result<Result<Revision, Vec<usize>>, ApiError> {
        let resp = self
            .txn(TxnRequest {
                compare: swaps.iter().map(Swap::compare).collect(),
                success: swaps
                    .iter()
                    .map(|s| put_op(&s.key, s.value.clone()))
                    .collect(),
                failure: swaps.iter().map(Swap::revision_read).collect(),
            })
            .await?;
        if resp.succeeded {
            return Ok(Ok(resp.revision));
        }
        let stale = swaps
            .iter()
            .zip(&resp.responses)
            .enumerate()
            .filter(|(_, (swap, read))| {
                let now = match read {
                    OpResponse::Range(r) => r.kvs.first().map(|kv| kv.mod_revision),
                    _ => None,
                };
                now != Some(swap.expected)
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Err(stale))
    }

    /// Deletes the object if its mod revision is still `expected`.
    pub async fn delete(
        &self,
        key: &[u8],
        expected: Revision,
    ) -> Result<Option<Revision>, ApiError> {
        self.delete_releasing(key, expected, &[]).await
    }

    /// Like `delete`, also deleting `release` (the object's allocation keys)
    /// in the same transaction.
    pub async fn delete_releasing(
        &self,
        key: &[u8],
        expected: Revision,
        release: &[Vec<u8>],
    ) -> Result<Option<Revision>, ApiError> {
        let delete = |k: &[u8]| {
            Op::Delete(DeleteRequest {
                range: KeyRange {
                    key: k.to_vec(),
                    range_end: Vec::new(),
                },
                prev_kv: false,
            })
        };
        let mut success = vec![delete(key)];
        success.extend(release.iter().map(|k| delete(k)));
        let resp = self
            .txn(TxnRequest {
                compare: vec![Compare {
                    key: key.to_vec(),
                    op: CompareOp::Equal,
                    target: CompareTarget::ModRevision(expected),
                }],
                success,
                failure: vec![],
            })
            .await?;
        Ok(resp.succeeded.then_some(resp.revision))
    }

    /// Changes under `prefix` from `start_revision` on, with previous values.
    pub async fn watch(
        &self,
        prefix: &[u8],
        start_revision: Revision,
    ) -> Result<mpsc::Receiver<WatchResponse>, ApiError> {
        self.kv
            .watch(WatchRequest {
                range: KeyRange {
                    key: prefix.to_vec(),
                    range_end: prefix_end(prefix),
                },
                start_revision,
                prev_kv: true,
            })
            .await
            .map_err(store_error)
    }
}

/// One compare-and-swap of a batch (`Storage::replace_all`): `object`
/// encoded as stored, to be written at `key` if its mod revision is still
/// `expected`.
#[derive(Debug, Clone)]
pub struct Swap {
    pub key: Vec<u8>,
    value: Vec<u8>,
    pub expected: Revision,
}

impl Swap {
    pub fn new(key: Vec<u8>, object: &Value, expected: Revision) -> Self {
        Self {
            key,
            value: Storage::encode(object),
            expected,
        }
    }

    /// Bytes this swap adds to a proposal.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }

    fn compare(&self) -> Compare {
        Compare {
            key: self.key.clone(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(self.expected),
        }
    }

    /// Reads the key's revisions (not its value), to tell which compare failed.
    fn revision_read(&self) -> Op {
        Op::Range(RangeRequest {
            range: KeyRange {
                key: self.key.clone(),
                range_end: Vec::new(),
            },
            limit: 0,
            revision: 0,
            serializable: false,
            keys_only: true,
            count_only: false,
        })
    }
}

/// A plain put of `value` at `key` (no lease) inside a transaction.
fn put_op(key: &[u8], value: Vec<u8>) -> Op {
    Op::Put(PutRequest {
        key: key.to_vec(),
        value,
        lease: 0,
        prev_kv: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    #[test]
    fn keys_follow_the_layout() {
        let pods = lookup("", "v1", "pods").unwrap();
        assert_eq!(
            Storage::key(pods, "default", "web"),
            b"/registry/core/pods/default/web"
        );
        assert_eq!(Storage::prefix(pods, None), b"/registry/core/pods/");
        let nodes = lookup("", "v1", "nodes").unwrap();
        assert_eq!(Storage::key(nodes, "", "n1"), b"/registry/core/nodes/n1");
        let deploys = lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(
            Storage::prefix(deploys, Some("x")),
            b"/registry/apps/deployments/x/"
        );
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }

    #[test]
    fn splicing_the_resource_version_matches_decoding() {
        let obj = serde_json::json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "kind": "Pod", "apiVersion": "v1", "spec": {}});
        for object in [
            obj.clone(),
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {}}),
        ] {
            let kv = KeyValue {
                key: b"k".to_vec(),
                value: Storage::encode(&object),
                create_revision: 1,
                mod_revision: 9,
                version: 1,
                lease: 0,
            };
            let spliced: Value =
                serde_json::from_slice(&Storage::splice_resource_version(&kv).unwrap()).unwrap();
            assert_eq!(spliced, Storage::decode(&kv).unwrap());
        }
        let odd = KeyValue {
            key: b"k".to_vec(),
            value: br#"{"aaa":{"metadata":{}},"apiVersion":"v1"}"#.to_vec(),
            create_revision: 1,
            mod_revision: 9,
            version: 1,
            lease: 0,
        };
        assert!(Storage::splice_resource_version(&odd).is_none());
        let escaped = KeyValue {
            value: br#"{"apiVersion":"v\"1","kind":"Pod","metadata":{}}"#.to_vec(),
            ..odd
        };
        assert!(Storage::splice_resource_version(&escaped).is_none());
    }

    #[test]
    fn decode_sets_resource_version_and_encode_drops_it() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: br#"{"metadata":{"name":"x"}}"#.to_vec(),
            create_revision: 3,
            mod_revision: 7,
            version: 2,
            lease: 0,
        };
        let obj = Storage::decode(&kv).unwrap();
        assert_eq!(obj["metadata"]["resourceVersion"], "7");
        assert!(
            !String::from_utf8(Storage::encode(&obj))
                .unwrap()
                .contains("resourceVersion")
        );
    }
}
