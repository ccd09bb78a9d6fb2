//! Removing images and collecting garbage: untag, then delete the blobs
//! and unpacked layers that no tag, build-cache entry or container needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use super::{CACHE_FILE, ImageStore, TAGS_FILE, read_json_file, write_json_file};
use crate::image::digest::Digest;
use crate::image::error::{IoContext, Result};
use crate::image::reference::Reference;

impl ImageStore {
    /// Removes a tag (or every tag of an image id), then deletes the blobs
    /// and unpacked layers no tag needs any more, except the layer dirs in
    /// `in_use` (containers' lower dirs). Returns `Untagged:` / `Deleted:`
    /// lines like `docker rmi`.
    pub fn remove(&self, reference: &str, in_use: &[PathBuf]) -> Result<Vec<String>> {
        let manifest = self.lookup(reference)?;
        let _lock = self.lock()?;
        let mut tags = self.tags()?;
        let mut report = Vec::new();
        let tag_name = match Reference::parse(reference)? {
            Reference::Tag(t) => Some(t.to_string()),
            Reference::Id(_) => None,
        };
        tags.retain(|name, m| {
            let drop = if let Some(t) = &tag_name {
                t == name
            } else {
                *m == manifest
            };
            if drop {
                report.push(format!("Untagged: {name}"));
            }
            !drop
        });
        let raw: BTreeMap<&String, &str> = tags.iter().map(|(k, v)| (k, v.as_str())).collect();
        write_json_file(&self.root.join(TAGS_FILE), &raw)?;
        let id = self.image(&manifest)?.id;
        self.collect_garbage(&tags, in_use)?;
        if !self.has_blob(&id) {
            report.push(format!("Deleted: {id}"));
        }
        Ok(report)
    }

    /// Drops the build cache, then deletes every blob and layer no tag
    /// needs (except layer dirs in `in_use`). Returns the bytes of blobs freed.
    pub fn prune(&self, in_use: &[PathBuf]) -> Result<u64> {
        let _lock = self.lock()?;
        write_json_file(
            &self.root.join(CACHE_FILE),
            &BTreeMap::<String, String>::new(),
        )?;
        let before = self.blob_bytes()?;
        self.collect_garbage(&self.tags()?, in_use)?;
        self.remove_stale_staging()?;
        Ok(before.saturating_sub(self.blob_bytes()?))
    }

    /// Removes staging dirs left in `tmp/` by `kcnode`s that were killed
    /// mid-import or mid-build: those not touched for a day (a live one
    /// may be a long build's).
    fn remove_stale_staging(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        let day = std::time::Duration::from_secs(24 * 3600);
        for entry in fs::read_dir(&tmp).ctx_path("read", &tmp)? {
            let entry = entry.ctx_path("read", &tmp)?;
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a > day) {
                let path = entry.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.ctx_path("remove stale staging", &path)?;
            }
        }
        Ok(())
    }

    fn blob_bytes(&self) -> Result<u64> {
        let blobs = self.root.join("blobs/sha256");
        let mut total = 0;
        for entry in fs::read_dir(&blobs).ctx_path("read", &blobs)? {
            total += entry
                .and_then(|e| e.metadata())
                .map(|m| m.len())
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// Deletes blobs and layer dirs unreachable from `tags` and from the
    /// build cache (whose images a running build may be using: `prune`
    /// drops the cache first); drops cache entries whose image is gone.
    /// Caller holds the lock.
    fn collect_garbage(&self, tags: &BTreeMap<String, Digest>, in_use: &[PathBuf]) -> Result<()> {
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        let cache: BTreeMap<String, String> = read_json_file(&self.root.join(CACHE_FILE))?;
        let cached = cache.values().filter_map(|m| Digest::parse(m).ok());
        let roots: BTreeSet<Digest> = tags.values().cloned().chain(cached).collect();
        for m in &roots {
            // A tagged image that cannot be read stops the collection (its
            // blobs must not go); a broken cache entry is just skipped.
            let img = match self.image(m) {
                Ok(img) => img,
                Err(_) if !tags.values().any(|t| t == m) => continue,
                Err(e) => return Err(e),
            };
            keep_blobs.insert(m.hex().to_string());
            keep_blobs.insert(img.id.hex().to_string());
            keep_blobs.extend(
                img.manifest
                    .layers
                    .iter()
                    .filter_map(|l| Digest::parse(&l.digest).ok())
                    .map(|d| d.hex().to_string()),
            );
            keep_layers.extend(
                img.config
                    .rootfs
                    .diff_ids
                    .iter()
                    .filter_map(|d| Digest::parse(d).ok())
                    .map(|d| d.hex().to_string()),
            );
        }
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).ctx_path("read", &blobs)? {
            let entry = entry.ctx_path("read", &blobs)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains(&name) {
                tracing::debug!(blob = %name, "removing unreferenced blob");
                fs::remove_file(entry.path()).ctx_path("remove", &entry.path())?;
            }
        }
        let layers = self.root.join("layers");
        for entry in fs::read_dir(&layers).ctx_path("read", &layers)? {
            let entry = entry.ctx_path("read", &layers)?;
            let used = in_use.iter().any(|p| *p == entry.path());
            if !used && !keep_layers.contains(&*entry.file_name().to_string_lossy()) {
                fs::remove_dir_all(entry.path()).ctx_path("remove", &entry.path())?;
            }
        }
        let cache_path = self.root.join(CACHE_FILE);
        let mut cache: BTreeMap<String, String> = read_json_file(&cache_path)?;
        cache.retain(|_, m| Digest::parse(m).map(|d| self.has_blob(&d)).unwrap_or(false));
        write_json_file(&cache_path, &cache)?;
        Ok(())
    }
}
