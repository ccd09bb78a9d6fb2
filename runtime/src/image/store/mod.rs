//! The local image store under `<data-dir>/images/`.
//!
//! Layout (OCI-layout style, content addressed):
//! - `blobs/sha256/<hex>`: manifests, configs, layer tars, by digest;
//! - `repositories.json`: tags, `name:tag` -> manifest digest;
//! - `build-cache.json`: build step cache key -> manifest digest;
//! - `layers/<diff-id hex>/`: each layer unpacked once, an overlayfs lower dir;
//! - `tmp/`: staging for transactions (same filesystem, so renames are atomic);
//! - `lock`: flock'ed by every mutation, so concurrent `kcnode`s are safe.
//!
//! Mutations go through a [`Transaction`]: blobs and layers are written and
//! verified under `tmp/`, and only `commit` renames them into place and
//! rewrites the tag file (itself via temp + rename). A failed import drops
//! the transaction and leaves the store as it was (`transaction.rs`).
//! `gc.rs` removes images and collects what nothing uses any more.

mod gc;
mod transaction;

pub use transaction::Transaction;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ResolvedImage;
use super::digest::{Digest, verify};
use super::error::{ImageError, IoContext, Result};
use super::oci::{Manifest, OciConfig};
use super::reference::{Reference, TaggedName};

/// Handle on the image store of one node.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// A held exclusive lock on the store.
pub struct StoreLock {
    _flock: Flock<File>,
}

/// One line of `kcnode images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub name: TaggedName,
    pub manifest: Digest,
    pub id: Digest,
    pub created: Option<String>,
    pub size: u64,
}

/// A loaded image: its manifest, config and their digests.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub id: Digest,
    pub config: OciConfig,
}

const TAGS_FILE: &str = "repositories.json";
const CACHE_FILE: &str = "build-cache.json";

impl ImageStore {
    /// Opens (creating if needed) the store under `<data_dir>/images`.
    pub fn open(data_dir: &Path) -> Result<ImageStore> {
        let root = data_dir.join("images");
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).ctx(|| {
                format!(
                    "cannot create the image store directory {} (is the data dir writable? run as root or pass --data-dir)",
                    dir.display()
                )
            })?;
        }
        Ok(ImageStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's exclusive lock (blocks until it is free).
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx_path("open", &path)?;
        let flock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))
            .ctx_path("lock", &path)?;
        Ok(StoreLock { _flock: flock })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Where the layer with this diff id is (or would be) unpacked.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// Reads a small blob whole, checking its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let data = fs::read(&path).map_err(|e| ImageError::Io {
            context: format!(
                "blob {d} is missing from the image store ({})",
                path.display()
            ),
            cause: e,
        })?;
        verify(
            &format!("stored blob {}", path.display()),
            d,
            &Digest::of_bytes(&data),
        )?;
        Ok(data)
    }

    fn read_json<T: DeserializeOwned>(&self, d: &Digest, what: &str) -> Result<T> {
        let data = self.read_blob(d)?;
        serde_json::from_slice(&data)
            .map_err(|e| ImageError::invalid(format!("{what} {d} is not valid JSON: {e}")))
    }

    /// Loads the image whose manifest has this digest.
    pub fn image(&self, manifest_digest: &Digest) -> Result<StoredImage> {
        let manifest: Manifest = self.read_json(manifest_digest, "manifest")?;
        let id = Digest::parse(&manifest.config.digest)?;
        let config: OciConfig = self.read_json(&id, "image config")?;
        Ok(StoredImage {
            manifest_digest: manifest_digest.clone(),
            manifest,
            id,
            config,
        })
    }

    /// The tags: `name:tag` -> manifest digest.
    pub fn tags(&self) -> Result<BTreeMap<String, Digest>> {
        let raw: BTreeMap<String, String> = read_json_file(&self.root.join(TAGS_FILE))?;
        raw.into_iter()
            .map(|(k, v)| Ok((k, Digest::parse(&v)?)))
            .collect()
    }

    /// Finds the manifest a reference names: a tag, or an image id (prefix).
    pub fn lookup(&self, reference: &str) -> Result<Digest> {
        let not_found = || ImageError::NotFound {
            reference: reference.to_string(),
        };
        let tags = self.tags()?;
        match Reference::parse(reference)? {
            Reference::Tag(t) => tags.get(&t.to_string()).cloned().ok_or_else(not_found),
            Reference::Id(prefix) => {
                let mut found = BTreeSet::new();
                for m in tags.values() {
                    let by_id = || {
                        self.image(m)
                            .is_ok_and(|img| img.id.hex().starts_with(&prefix))
                    };
                    if m.hex().starts_with(&prefix) || by_id() {
                        found.insert(m.clone());
                    }
                }
                let mut it = found.into_iter();
                match (it.next(), it.next()) {
                    (Some(m), None) => Ok(m),
                    (None, _) => Err(not_found()),
                    (Some(_), Some(_)) => Err(ImageError::BadReference {
                        reference: reference.to_string(),
                        reason: "this id prefix matches more than one image: give more digits"
                            .to_string(),
                    }),
                }
            }
        }
    }

    /// Resolves a reference to a runnable image: config and unpacked
    /// layer dirs, bottom first (layers are unpacked now if they are not yet).
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        let manifest = self.lookup(reference)?;
        self.resolve_manifest(&manifest, reference)
    }

    /// Like `resolve`, for a manifest digest.
    pub fn resolve_manifest(&self, manifest: &Digest, reference: &str) -> Result<ResolvedImage> {
        let img = self.image(manifest)?;
        let mut layers = self.layer_dirs(&img)?;
        if layers.is_empty() {
            // An image of no layers (`FROM scratch` + metadata) still needs
            // a root for overlayfs: an empty one.
            let empty = self.root.join("layers").join("empty");
            fs::create_dir_all(&empty).ctx_path("create", &empty)?;
            layers.push(empty);
        }
        Ok(ResolvedImage {
            id: img.id.to_string(),
            reference: reference.to_string(),
            config: img.config.image_config(),
            layers,
        })
    }

    /// The unpacked layer dirs of an image, bottom first, unpacking any
    /// that are missing.
    pub fn layer_dirs(&self, img: &StoredImage) -> Result<Vec<PathBuf>> {
        let diff_ids = &img.config.rootfs.diff_ids;
        if diff_ids.len() != img.manifest.layers.len() {
            return Err(ImageError::invalid(format!(
                "image {}: its manifest has {} layers but its config lists {} diff ids",
                img.id,
                img.manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let mut dirs = Vec::with_capacity(diff_ids.len());
        for (desc, diff_id) in img.manifest.layers.iter().zip(diff_ids) {
            let diff_id = Digest::parse(diff_id)?;
            let dir = self.layer_dir(&diff_id);
            if !dir.is_dir() {
                let mut tx = self.begin()?;
                tx.unpack_layer(&Digest::parse(&desc.digest)?, &diff_id)?;
                tx.commit()?;
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Starts a transaction (takes the lock until commit or drop).
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let lock = self.lock()?;
        let tmp = tempfile::Builder::new()
            .prefix("tx-")
            .tempdir_in(self.root.join("tmp"))
            .ctx(|| {
                format!(
                    "cannot create a staging dir under {}",
                    self.root.join("tmp").display()
                )
            })?;
        Ok(Transaction {
            store: self,
            _lock: lock,
            tmp,
            blobs: BTreeMap::new(),
            layers: BTreeMap::new(),
            tags: Vec::new(),
            cache: Vec::new(),
        })
    }

    /// The manifest a build step's cache key maps to, if its blobs are
    /// still all there.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>> {
        let cache: BTreeMap<String, String> = read_json_file(&self.root.join(CACHE_FILE))?;
        let Some(m) = cache.get(key) else {
            return Ok(None);
        };
        let m = Digest::parse(m)?;
        let Ok(img) = self.image(&m) else {
            return Ok(None);
        };
        let complete = img.manifest.layers.iter().all(|l| {
            Digest::parse(&l.digest)
                .map(|d| self.has_blob(&d))
                .unwrap_or(false)
        });
        Ok(complete.then_some(m))
    }

    /// The tagged images, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for (name, manifest) in self.tags()? {
            let img = self.image(&manifest)?;
            out.push(ImageSummary {
                name: TaggedName::parse(&name)?,
                size: img.manifest.layers.iter().map(|l| l.size).sum(),
                created: img.config.created.clone(),
                id: img.id,
                manifest,
            });
        }
        Ok(out)
    }

    /// Tags the image `source` names as `target` too (like `docker tag`).
    pub fn tag(&self, source: &str, target: &TaggedName) -> Result<Digest> {
        let manifest = self.lookup(source)?;
        let mut tx = self.begin()?;
        tx.tag(target.clone(), manifest.clone());
        tx.commit()?;
        Ok(manifest)
    }

    /// Where an image's layers are (or would be) unpacked, bottom first;
    /// unlike `layer_dirs` this unpacks nothing.
    pub fn layer_paths(&self, img: &StoredImage) -> Vec<PathBuf> {
        img.config
            .rootfs
            .diff_ids
            .iter()
            .filter_map(|d| Digest::parse(d).ok())
            .map(|d| self.layer_dir(&d))
            .collect()
    }

    /// The tags pointing at a manifest.
    pub fn tags_of(&self, manifest: &Digest) -> Result<Vec<String>> {
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, m)| m == manifest)
            .map(|(t, _)| t)
            .collect())
    }
}

/// Reads a JSON map file; a missing file is empty.
fn read_json_file<T: DeserializeOwned + Default>(path: &Path) -> Result<T> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| {
            ImageError::invalid(format!(
                "{} is corrupt ({e}); fix or remove it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).ctx_path("read", path),
    }
}

/// Writes a JSON file atomically (temp file + fsync + rename).
fn write_json_file<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).ctx_path("write", path)?;
    let data = serde_json::to_vec_pretty(value)
        .map_err(|e| ImageError::invalid(format!("cannot encode {}: {e}", path.display())))?;
    tmp.write_all(&data).ctx_path("write", path)?;
    tmp.as_file().sync_all().ctx_path("write", path)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .ctx_path("write", path)?;
    Ok(())
}
