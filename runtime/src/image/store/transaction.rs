//! A store transaction: blobs and layers are staged and verified under
//! `images/tmp/`, with the store's lock held; `commit` renames them into
//! place and then updates tags and the build cache; dropping it without
//! commit removes everything staged, leaving the store as it was.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CACHE_FILE, ImageStore, StoreLock, TAGS_FILE, read_json_file, write_json_file};
use crate::image::digest::{Digest, HashingReader, HashingWriter, verify};
use crate::image::error::{ImageError, IoContext, Result};
use crate::image::layer;
use crate::image::oci::{self, Descriptor, Manifest, OciConfig};
use crate::image::reference::TaggedName;

/// Staged changes to the store; see the module comment.
pub struct Transaction<'s> {
    pub(super) store: &'s ImageStore,
    pub(super) _lock: StoreLock,
    pub(super) tmp: tempfile::TempDir,
    pub(super) blobs: BTreeMap<Digest, PathBuf>,
    pub(super) layers: BTreeMap<Digest, PathBuf>,
    pub(super) tags: Vec<(TaggedName, Digest)>,
    pub(super) cache: Vec<(String, Digest)>,
}

impl<'s> Transaction<'s> {
    pub fn store(&self) -> &'s ImageStore {
        self.store
    }

    /// A fresh empty directory inside the staging area.
    pub fn scratch_dir(&self, prefix: &str) -> Result<PathBuf> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.tmp.path())
            .ctx(|| "cannot create a staging directory".to_string())?;
        Ok(dir.keep())
    }

    /// Streams a blob into staging, hashing it; with `expected`, a
    /// different digest (or size) is refused. `what` names it in errors.
    pub fn add_blob(
        &mut self,
        mut reader: impl Read,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let tmp = tempfile::NamedTempFile::new_in(self.tmp.path())
            .ctx(|| "cannot create a staging file".to_string())?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        io::copy(&mut reader, &mut w).ctx(|| format!("cannot read {what}"))?;
        let (digest, size, buf) = w.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| format!("cannot stage {what}"))?;
        check_expected(expected, &digest, size, what)?;
        let path = self.tmp.path().join(format!("blob-{}", digest.hex()));
        file.persist(&path)
            .map_err(|e| e.error)
            .ctx(|| format!("cannot stage {what}"))?;
        self.blobs.insert(digest.clone(), path);
        Ok((digest, size))
    }

    /// Like `add_blob` for a file that is already in this transaction's
    /// staging area (an extracted archive): hashed where it is and
    /// hard-linked, not copied. Other files are copied by `add_blob`.
    pub fn adopt_blob(
        &mut self,
        path: &Path,
        reader: impl Read,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        if !path.starts_with(self.tmp.path()) {
            return self.add_blob(reader, expected, what);
        }
        let (digest, size) = HashingReader::new(reader)
            .finish()
            .ctx(|| format!("cannot read {what}"))?;
        check_expected(expected, &digest, size, what)?;
        let staged = self.tmp.path().join(format!("blob-{}", digest.hex()));
        if !staged.exists() {
            fs::hard_link(path, &staged).ctx(|| format!("cannot stage {what}"))?;
        }
        self.blobs.insert(digest.clone(), staged);
        Ok((digest, size))
    }

    /// Stages a JSON document as a blob.
    pub fn add_json<T: Serialize>(&mut self, value: &T, what: &str) -> Result<(Digest, u64)> {
        let data = serde_json::to_vec(value)
            .map_err(|e| ImageError::invalid(format!("cannot encode {what}: {e}")))?;
        self.add_blob(&data[..], None, what)
    }

    /// Packs a directory tree as a layer (uncompressed tar, so its blob
    /// digest is its diff id), stages the blob and its unpacked form, and
    /// returns the layer's descriptor.
    pub fn add_layer_dir(&mut self, dir: &Path, opts: layer::PackOptions) -> Result<Descriptor> {
        let tmp = tempfile::NamedTempFile::new_in(self.tmp.path())
            .ctx(|| "cannot create a staging file".to_string())?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        layer::pack(dir, &mut w, opts)?;
        let (digest, size, buf) = w.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| "cannot stage a layer".to_string())?;
        let path = self.tmp.path().join(format!("blob-{}", digest.hex()));
        file.persist(&path)
            .map_err(|e| e.error)
            .ctx(|| "cannot stage a layer".to_string())?;
        self.blobs.insert(digest.clone(), path);
        self.unpack_layer(&digest, &digest)?;
        Ok(Descriptor {
            media_type: oci::MEDIA_LAYER.to_string(),
            digest: digest.to_string(),
            size,
            annotations: BTreeMap::new(),
            platform: None,
        })
    }

    /// Opens a blob, staged or already in the store.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self
            .blobs
            .get(d)
            .cloned()
            .unwrap_or_else(|| self.store.blob_path(d));
        File::open(&path).map_err(|e| ImageError::Io {
            context: format!("blob {d} is missing"),
            cause: e,
        })
    }

    /// Unpacks a layer blob into staging, checking that its uncompressed
    /// content has the digest `diff_id`.
    pub fn unpack_layer(&mut self, blob: &Digest, diff_id: &Digest) -> Result<PathBuf> {
        let final_dir = self.store.layer_dir(diff_id);
        if let Some(dir) = self.layers.get(diff_id) {
            return Ok(dir.clone());
        }
        let dir = self.scratch_dir("layer-")?;
        let what = format!("layer {blob}");
        let actual = layer::unpack(self.open_blob(blob)?, &dir, &what)?;
        verify(
            &format!("the uncompressed content of {what} (its diff id)"),
            diff_id,
            &actual,
        )?;
        if final_dir.is_dir() {
            // Already unpacked by an earlier import; the check above was the point.
            fs::remove_dir_all(&dir).ctx_path("remove", &dir)?;
            return Ok(final_dir);
        }
        self.layers.insert(diff_id.clone(), dir.clone());
        Ok(dir)
    }

    /// Stages an image (config + layers, already staged or stored) and
    /// returns its manifest digest.
    pub fn add_image(&mut self, config: &OciConfig, layers: Vec<Descriptor>) -> Result<Digest> {
        let (config_digest, config_size) = self.add_json(config, "image config")?;
        self.add_manifest(&config_digest, config_size, layers)
    }

    /// Stages a manifest for a config blob (already staged) and layers.
    pub fn add_manifest(
        &mut self,
        config_digest: &Digest,
        config_size: u64,
        layers: Vec<Descriptor>,
    ) -> Result<Digest> {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_MANIFEST.to_string()),
            config: Descriptor {
                media_type: oci::MEDIA_CONFIG.to_string(),
                digest: config_digest.to_string(),
                size: config_size,
                annotations: BTreeMap::new(),
                platform: None,
            },
            layers,
            annotations: BTreeMap::new(),
        };
        Ok(self.add_json(&manifest, "image manifest")?.0)
    }

    /// Tags `name` to the manifest on commit.
    pub fn tag(&mut self, name: TaggedName, manifest: Digest) {
        self.tags.push((name, manifest));
    }

    /// Records a build cache entry on commit.
    pub fn cache_put(&mut self, key: String, manifest: Digest) {
        self.cache.push((key, manifest));
    }

    /// Moves everything staged into place, then updates tags and cache.
    pub fn commit(self) -> Result<()> {
        tracing::debug!(
            blobs = self.blobs.len(),
            layers = self.layers.len(),
            tags = self.tags.len(),
            "committing image store transaction"
        );
        for (d, path) in &self.blobs {
            let dest = self.store.blob_path(d);
            if !dest.exists() {
                fs::rename(path, &dest).ctx_path("store blob", &dest)?;
            }
        }
        for (d, path) in &self.layers {
            let dest = self.store.layer_dir(d);
            if !dest.exists() {
                fs::rename(path, &dest).ctx_path("store layer", &dest)?;
            }
        }
        if !self.tags.is_empty() {
            let path = self.store.root.join(TAGS_FILE);
            let mut tags: BTreeMap<String, String> = read_json_file(&path)?;
            for (name, m) in &self.tags {
                tags.insert(name.to_string(), m.to_string());
            }
            write_json_file(&path, &tags)?;
        }
        if !self.cache.is_empty() {
            let path = self.store.root.join(CACHE_FILE);
            let mut cache: BTreeMap<String, String> = read_json_file(&path)?;
            for (k, m) in &self.cache {
                cache.insert(k.clone(), m.to_string());
            }
            write_json_file(&path, &cache)?;
        }
        Ok(())
    }
}

/// Refuses a blob whose digest or size is not the expected one.
fn check_expected(
    expected: Option<(&Digest, u64)>,
    digest: &Digest,
    size: u64,
    what: &str,
) -> Result<()> {
    if let Some((want, want_size)) = expected {
        verify(what, want, digest)?;
        if want_size != size {
            return Err(ImageError::invalid(format!(
                "{what}: size is {size} bytes but its descriptor says {want_size} (truncated?)"
            )));
        }
    }
    Ok(())
}
