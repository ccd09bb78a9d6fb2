//! Repository metadata in the Raft store, so every control-plane member
//! sees the same tags: `/registry/kc.images/<repo>/_tags/<tag>` and
//! `/registry/kc.images/<repo>/_manifests/<digest>`, each a small JSON
//! `{"digest","mediaType","size"}`. `_` cannot start a repository name
//! component, so the words never clash with a repository called `tags`.
//! The manifest bytes themselves are a blob (`blobs.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kc_store_api::api::{
    DeleteRequest, KeyRange, KeyValue, Op, PutRequest, RangeRequest, RangeResponse, Revision,
    StoreError, TxnRequest, WatchRequest, WatchResponse,
};
use kc_store_api::kv::Kv;
use kc_store_api::kv::prefix_end;

use super::error::RegistryError;

const ROOT: &str = "/registry/kc.images/";

/// What a tag or a manifest key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRef {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

fn tag_key(repo: &str, tag: &str) -> Vec<u8> {
    format!("{ROOT}{repo}/_tags/{tag}").into_bytes()
}

fn manifest_key(repo: &str, digest: &str) -> Vec<u8> {
    format!("{ROOT}{repo}/_manifests/{digest}").into_bytes()
}

fn store_error(e: StoreError) -> RegistryError {
    match e {
        StoreError::NoLeader | StoreError::Timeout | StoreError::Shutdown => {
            RegistryError::unavailable(format!("the cluster store is unavailable: {e}; retry"))
        }
        other => RegistryError::internal(format!("cluster store error: {other}")),
    }
}

/// The manifest a store record describes, if it is a manifest record
/// (`<repo>/_manifests/<digest>`, not a tag).
pub fn manifest_record(kv: &KeyValue) -> Option<ManifestRef> {
    let key = std::str::from_utf8(&kv.key).ok()?;
    key.strip_prefix(ROOT)?.find("/_manifests/")?;
    serde_json::from_slice(&kv.value).ok()
}

/// Manifests and tags of every repository, over the store.
#[derive(Clone)]
pub struct Meta {
    kv: Arc<dyn Kv>,
}

impl Meta {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// Every manifest record of every repository, and the store revision
    /// they were read at (to watch for more from the next one).
    pub async fn all_manifests(&self) -> Result<(Revision, Vec<ManifestRef>), RegistryError> {
        let prefix = ROOT.as_bytes().to_vec();
        let resp = self
            .range_at(prefix.clone(), prefix_end(&prefix), false)
            .await?;
        let found = resp.kvs.iter().filter_map(manifest_record).collect();
        Ok((resp.revision, found))
    }

    /// Watches every registry record from revision `from` on; manifest
    /// records among the changes are picked out with `manifest_record`.
    pub async fn watch(
        &self,
        from: Revision,
    ) -> Result<tokio::sync::mpsc::Receiver<WatchResponse>, RegistryError> {
        let prefix = ROOT.as_bytes().to_vec();
        self.kv
            .watch(WatchRequest {
                range: KeyRange {
                    range_end: prefix_end(&prefix),
                    key: prefix,
                },
                start_revision: from,
                prev_kv: false,
            })
            .await
            .map_err(store_error)
    }

    async fn range_at(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        keys_only: bool,
    ) -> Result<RangeResponse, RegistryError> {
        self.kv
            .range(RangeRequest {
                range: KeyRange { key, range_end },
                limit: 0,
                revision: 0,
                serializable: false,
                keys_only,
                count_only: false,
            })
            .await
            .map_err(store_error)
    }

    async fn range(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        keys_only: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, RegistryError> {
        let resp = self.range_at(key, range_end, keys_only).await?;
        Ok(resp.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<ManifestRef>, RegistryError> {
        let found = self.range(key, Vec::new(), false).await?;
        match found.into_iter().next() {
            Some((k, v)) => serde_json::from_slice(&v).map(Some).map_err(|e| {
                RegistryError::internal(format!(
                    "corrupt registry record {}: {e}",
                    String::from_utf8_lossy(&k)
                ))
            }),
            None => Ok(None),
        }
    }

    /// The manifest a tag points to.
    pub async fn tag(&self, repo: &str, tag: &str) -> Result<Option<ManifestRef>, RegistryError> {
        self.get(tag_key(repo, tag)).await
    }

    /// The manifest `digest` of `repo`, if pushed there.
    pub async fn manifest(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<ManifestRef>, RegistryError> {
        self.get(manifest_key(repo, digest)).await
    }

    /// Records a manifest, and the tag if any, in one transaction.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        m: &ManifestRef,
    ) -> Result<(), RegistryError> {
        let value = serde_json::to_vec(m).expect("a ManifestRef always serializes");
        let mut ops = vec![Op::Put(PutRequest {
            key: manifest_key(repo, &m.digest),
            value: value.clone(),
            lease: 0,
            prev_kv: false,
        })];
        if let Some(tag) = tag {
            ops.push(Op::Put(PutRequest {
                key: tag_key(repo, tag),
                value,
                lease: 0,
                prev_kv: false,
            }));
        }
        self.txn(ops).await
    }

    async fn txn(&self, ops: Vec<Op>) -> Result<(), RegistryError> {
        self.kv
            .txn(TxnRequest {
                compare: vec![],
                success: ops,
                failure: vec![],
            })
            .await
            .map_err(store_error)?;
        Ok(())
    }

    fn delete_op(key: Vec<u8>) -> Op {
        Op::Delete(DeleteRequest {
            range: KeyRange {
                key,
                range_end: Vec::new(),
            },
            prev_kv: false,
        })
    }

    /// Deletes a tag.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<(), RegistryError> {
        self.txn(vec![Self::delete_op(tag_key(repo, tag))]).await
    }

    /// Deletes a manifest and every tag of `repo` pointing at it.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), RegistryError> {
        let prefix = format!("{ROOT}{repo}/_tags/").into_bytes();
        let mut ops = vec![Self::delete_op(manifest_key(repo, digest))];
        for (k, v) in self
            .range(prefix.clone(), prefix_end(&prefix), false)
            .await?
        {
            if serde_json::from_slice::<ManifestRef>(&v).is_ok_and(|m| m.digest == digest) {
                ops.push(Self::delete_op(k));
            }
        }
        self.txn(ops).await
    }

    /// The tags of `repo`, sorted.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let prefix = format!("{ROOT}{repo}/_tags/").into_bytes();
        let keys = self
            .range(prefix.clone(), prefix_end(&prefix), true)
            .await?;
        Ok(keys
            .into_iter()
            .filter_map(|(k, _)| String::from_utf8(k[prefix.len()..].to_vec()).ok())
            .collect())
    }

    /// Whether anything was ever pushed to `repo`.
    pub async fn repo_exists(&self, repo: &str) -> Result<bool, RegistryError> {
        let prefix = format!("{ROOT}{repo}/_manifests/").into_bytes();
        Ok(!self
            .range(prefix.clone(), prefix_end(&prefix), true)
            .await?
            .is_empty())
    }

    /// Every repository, sorted.
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let prefix = ROOT.as_bytes().to_vec();
        let keys = self
            .range(prefix.clone(), prefix_end(&prefix), true)
            .await?;
        let repos: BTreeSet<String> = keys
            .into_iter()
            .filter_map(|(k, _)| {
                let k = String::from_utf8(k).ok()?;
                let rest = k.strip_prefix(ROOT)?;
                let end = rest.find("/_manifests/").or_else(|| rest.find("/_tags/"))?;
                Some(rest[..end].to_string())
            })
            .collect();
        Ok(repos.into_iter().collect())
    }
}
