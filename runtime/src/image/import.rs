//! `kcnode image import`: OCI image layouts (a directory or a tar, as
//! umoci, skopeo, podman and `docker save` write them) and docker-archive
//! tarballs (`docker save`'s `manifest.json` format) into the store.
//!
//! Everything is checked before anything is kept: every blob against its
//! descriptor's digest and size, every layer's uncompressed content against
//! the config's diff id, all inside one store transaction; any error drops
//! the transaction and the store is as it was.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::digest::{Digest, verify};
use super::error::{ImageError, IoContext, Result, root_cause};
use super::oci::{self, Descriptor, Index, Manifest, OciConfig};
use super::progress;
use super::reference::TaggedName;
use super::store::{ImageStore, Transaction};

/// What the user adds to an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag the imported image (the archive must hold exactly one).
    pub tag: Option<TaggedName>,
}

/// One imported image: its manifest digest, image id and tags.
#[derive(Debug, Clone)]
pub struct Imported {
    pub manifest: Digest,
    pub id: Digest,
    pub tags: Vec<TaggedName>,
}

/// Imports an OCI layout or docker-archive (directory or tar, plain or
/// gzip) at `path`; `-` is a tar on standard input.
pub fn import(store: &ImageStore, path: &Path, opts: &ImportOptions) -> Result<Vec<Imported>> {
    let label = path.display().to_string();
    if path.is_dir() {
        let mut tx = store.begin()?;
        return import_layout(&mut tx, path, &label, &default_name(path), opts)
            .and_then(|i| commit(tx, i));
    }
    if path == Path::new("-") {
        let stdin = std::io::stdin().lock();
        return import_stream_as(store, stdin, "standard input", "imported", 0, opts);
    }
    let file = File::open(path).ctx_path("open", path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    import_stream(store, file, &label, size, opts)
}

/// Imports an image archive (tar or tar.gz of an OCI layout or a
/// docker-archive) read from `reader`; `label` names it in errors and is
/// the default repository for bare tags, `size` (0 if unknown) sizes the
/// progress bar. For the node agent receiving images over the network.
pub fn import_stream(
    store: &ImageStore,
    reader: impl Read,
    label: &str,
    size: u64,
    opts: &ImportOptions,
) -> Result<Vec<Imported>> {
    let name = default_name(Path::new(label));
    import_stream_as(store, reader, label, &name, size, opts)
}

fn import_stream_as(
    store: &ImageStore,
    reader: impl Read,
    label: &str,
    default_name: &str,
    size: u64,
    opts: &ImportOptions,
) -> Result<Vec<Imported>> {
    let mut tx = store.begin()?;
    let src = extract_archive(&tx, reader, label, size)?;
    let images = import_layout(&mut tx, &src, label, default_name, opts)?;
    commit(tx, images)
}

/// Stages the images of an extracted archive or layout dir `src`.
fn import_layout(
    tx: &mut Transaction<'_>,
    src: &Path,
    label: &str,
    default_name: &str,
    opts: &ImportOptions,
) -> Result<Vec<Imported>> {
    let mut images = if src.join("oci-layout").is_file() || src.join("index.json").is_file() {
        import_oci_layout(tx, src, default_name)?
    } else if src.join("manifest.json").is_file() {
        import_docker_archive(tx, src)?
    } else {
        return Err(ImageError::invalid(format!(
            "{label} is neither an OCI image layout (no oci-layout/index.json) nor a docker-archive (no manifest.json)"
        )));
    };
    if let Some(tag) = &opts.tag {
        match images.as_mut_slice() {
            [only] => only.tags = vec![tag.clone()],
            _ => {
                return Err(ImageError::invalid(format!(
                    "{label} holds {} images: --tag needs exactly one",
                    images.len()
                )));
            }
        }
    }
    for img in &images {
        for t in &img.tags {
            tx.tag(t.clone(), img.manifest.clone());
        }
    }
    Ok(images)
}

fn commit(tx: Transaction<'_>, images: Vec<Imported>) -> Result<Vec<Imported>> {
    tx.commit()?;
    for img in &images {
        tracing::info!(id = %img.id, tags = ?img.tags.iter().map(ToString::to_string).collect::<Vec<_>>(), "imported image");
    }
    Ok(images)
}

/// The repository name for tag-only refs: the archive's file name.
fn default_name(path: &Path) -> String {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem
        .trim_end_matches(".gz")
        .trim_end_matches(".tgz")
        .trim_end_matches(".tar");
    let clean: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if clean.is_empty() {
        "imported".to_string()
    } else {
        clean.to_string()
    }
}

/// Extracts a tar (or tar.gz) into the transaction's staging area.
fn extract_archive(
    tx: &Transaction<'_>,
    input: impl Read,
    label: &str,
    size: u64,
) -> Result<PathBuf> {
    let bar = progress::bytes_bar(size, "reading archive");
    let mut reader = BufReader::new(bar.wrap_read(input));
    let gzip = reader
        .fill_buf()
        .ctx(|| format!("cannot read {label}"))?
        .starts_with(&[0x1f, 0x8b]);
    let plain: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let dest = tx.scratch_dir("archive-")?;
    let corrupt = |e: std::io::Error, at: &str| {
        ImageError::invalid(format!(
            "{label} is not a valid image archive (corrupt or truncated tar){at}: {}",
            root_cause(&e)
        ))
    };
    let mut archive = tar::Archive::new(plain);
    let mut entries = 0;
    for entry in archive.entries().map_err(|e| corrupt(e, ""))? {
        let mut entry = entry.map_err(|e| corrupt(e, ""))?;
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        entry
            .unpack_in(&dest)
            .map_err(|e| corrupt(e, &format!(" at {name}")))?;
        entries += 1;
    }
    bar.finish_and_clear();
    if entries == 0 {
        return Err(ImageError::invalid(format!(
            "{label} is empty or not a tar archive"
        )));
    }
    Ok(dest)
}

fn read_json_doc<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T> {
    let data = fs::read(path).ctx(|| format!("{what} is missing ({})", path.display()))?;
    serde_json::from_slice(&data)
        .map_err(|e| ImageError::invalid(format!("{what} ({}) is not valid: {e}", path.display())))
}

fn import_oci_layout(
    tx: &mut Transaction<'_>,
    src: &Path,
    default_name: &str,
) -> Result<Vec<Imported>> {
    let index: Index = read_json_doc(&src.join("index.json"), "the OCI layout's index.json")?;
    let layout = Layout { root: src };
    let mut out = Vec::new();
    for desc in &index.manifests {
        let manifest_desc = layout.pick_manifest(desc)?;
        let (manifest, id) = layout.import_manifest(tx, &manifest_desc)?;
        let tags = tag_from_annotations(&desc.annotations, default_name)?
            .into_iter()
            .collect();
        out.push(Imported { manifest, id, tags });
    }
    if out.is_empty() {
        return Err(ImageError::invalid(format!(
            "{}: index.json lists no images",
            src.display()
        )));
    }
    Ok(out)
}

/// The tag an index entry's annotations give: containerd's full name, or
/// `org.opencontainers.image.ref.name` (a full reference, or a bare tag
/// put on `default_name`).
fn tag_from_annotations(
    ann: &BTreeMap<String, String>,
    default_name: &str,
) -> Result<Option<TaggedName>> {
    if let Some(full) = ann.get(oci::ANNOTATION_CONTAINERD_NAME) {
        return TaggedName::parse(full).map(Some);
    }
    match ann.get(oci::ANNOTATION_REF_NAME) {
        Some(r) if r.contains(':') || r.contains('/') => TaggedName::parse(r).map(Some),
        Some(tag) => TaggedName::parse(&format!("{default_name}:{tag}")).map(Some),
        None => Ok(None),
    }
}

/// An OCI layout directory: `blobs/<alg>/<hex>`.
struct Layout<'a> {
    root: &'a Path,
}

impl Layout<'_> {
    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn open(&self, d: &Digest, what: &str) -> Result<File> {
        open_regular(&self.blob_path(d), &format!("{what} {d}"))
    }

    fn read_small(&self, desc: &Descriptor, what: &str) -> Result<(Digest, Vec<u8>)> {
        let d = Digest::parse(&desc.digest)?;
        let mut data = Vec::new();
        self.open(&d, what)?
            .take(64 << 20)
            .read_to_end(&mut data)
            .ctx(|| format!("cannot read {what} {d}"))?;
        verify(
            &format!("{what} in the archive"),
            &d,
            &Digest::of_bytes(&data),
        )?;
        Ok((d, data))
    }

    /// An index entry may be a manifest or a nested index (multi-platform):
    /// then this host's platform is chosen, or the only entry.
    fn pick_manifest(&self, desc: &Descriptor) -> Result<Descriptor> {
        if !oci::is_index(&desc.media_type) {
            return Ok(desc.clone());
        }
        let (d, data) = self.read_small(desc, "nested index")?;
        let index: Index = serde_json::from_slice(&data)
            .map_err(|e| ImageError::invalid(format!("nested index {d} is not valid JSON: {e}")))?;
        let arch = oci::host_architecture();
        index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == arch && p.os == "linux")
            })
            .or_else(|| (index.manifests.len() == 1).then(|| &index.manifests[0]))
            .cloned()
            .ok_or_else(|| ImageError::invalid(format!("index {d} has no image for linux/{arch}")))
    }

    /// Stages a manifest, its config and layers (verified, layers
    /// unpacked); returns the manifest digest and image id.
    fn import_manifest(
        &self,
        tx: &mut Transaction<'_>,
        desc: &Descriptor,
    ) -> Result<(Digest, Digest)> {
        if !oci::is_manifest(&desc.media_type) {
            return Err(ImageError::invalid(format!(
                "unsupported manifest media type {:?} for {}",
                desc.media_type, desc.digest
            )));
        }
        let (manifest_digest, data) = self.read_small(desc, "manifest")?;
        let manifest: Manifest = serde_json::from_slice(&data).map_err(|e| {
            ImageError::invalid(format!("manifest {manifest_digest} is not valid JSON: {e}"))
        })?;
        let (config_digest, config_data) = self.read_small(&manifest.config, "image config")?;
        let config: OciConfig = serde_json::from_slice(&config_data).map_err(|e| {
            ImageError::invalid(format!("image config {config_digest} is not valid: {e}"))
        })?;
        check_layer_count(&config, manifest.layers.len(), &config_digest)?;
        let total: u64 = manifest.layers.iter().map(|l| l.size).sum();
        let bar = progress::bytes_bar(total, "importing layers");
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            if !oci::is_layer(&layer.media_type) {
                return Err(ImageError::invalid(format!(
                    "layer {} has unsupported media type {:?} (kc reads tar and tar+gzip layers)",
                    layer.digest, layer.media_type
                )));
            }
            let d = Digest::parse(&layer.digest)?;
            let what = format!("layer {d}");
            tx.adopt_blob(
                &self.blob_path(&d),
                bar.wrap_read(self.open(&d, "layer")?),
                Some((&d, layer.size)),
                &what,
            )?;
            tx.unpack_layer(&d, &Digest::parse(diff_id)?)?;
        }
        bar.finish_and_clear();
        tx.add_blob(
            &config_data[..],
            Some((&config_digest, manifest.config.size)),
            "image config",
        )?;
        tx.add_blob(&data[..], Some((&manifest_digest, desc.size)), "manifest")?;
        Ok((manifest_digest, config_digest))
    }
}

fn check_layer_count(config: &OciConfig, layers: usize, config_digest: &Digest) -> Result<()> {
    if config.rootfs.diff_ids.len() != layers {
        return Err(ImageError::invalid(format!(
            "image config {config_digest} lists {} diff ids but the image has {layers} layers",
            config.rootfs.diff_ids.len()
        )));
    }
    Ok(())
}

/// One entry of a docker-archive's manifest.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker_archive(tx: &mut Transaction<'_>, src: &Path) -> Result<Vec<Imported>> {
    let entries: Vec<DockerEntry> = read_json_doc(
        &src.join("manifest.json"),
        "the docker-archive's manifest.json",
    )?;
    if entries.is_empty() {
        return Err(ImageError::invalid(format!(
            "{}: manifest.json lists no images",
            src.display()
        )));
    }
    let mut out = Vec::new();
    for entry in entries {
        let config_path = inside(src, &entry.config)?;
        let mut config_data = Vec::new();
        open_regular(&config_path, &format!("image config {}", entry.config))?
            .take(64 << 20)
            .read_to_end(&mut config_data)
            .ctx(|| format!("cannot read image config {}", entry.config))?;
        let config_digest = Digest::of_bytes(&config_data);
        if let Some(named) = digest_in_name(&entry.config) {
            verify(
                &format!("image config {}", entry.config),
                &named,
                &config_digest,
            )?;
        }
        let config: OciConfig = serde_json::from_slice(&config_data).map_err(|e| {
            ImageError::invalid(format!("image config {} is not valid: {e}", entry.config))
        })?;
        check_layer_count(&config, entry.layers.len(), &config_digest)?;
        let mut layers = Vec::new();
        for (name, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = inside(src, name)?;
            let file = open_regular(&path, &format!("layer {name}"))?;
            let mut reader = BufReader::new(file);
            let gzip = reader
                .fill_buf()
                .ctx(|| format!("cannot read layer {name}"))?
                .starts_with(&[0x1f, 0x8b]);
            let (d, size) = tx.adopt_blob(&path, reader, None, &format!("layer {name}"))?;
            tx.unpack_layer(&d, &Digest::parse(diff_id)?)
                .map_err(|e| ImageError::invalid(format!("layer {name}: {e}")))?;
            layers.push(Descriptor {
                media_type: if gzip {
                    oci::MEDIA_LAYER_GZIP
                } else {
                    oci::MEDIA_LAYER
                }
                .to_string(),
                digest: d.to_string(),
                size,
                annotations: BTreeMap::new(),
                platform: None,
            });
        }
        let (_, config_size) = tx.add_blob(&config_data[..], None, "image config")?;
        let manifest = tx.add_manifest(&config_digest, config_size, layers)?;
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| TaggedName::parse(t))
            .collect::<Result<_>>()?;
        out.push(Imported {
            manifest,
            id: config_digest,
            tags,
        });
    }
    Ok(out)
}

/// Opens a file of the archive, which must be a plain file: a symlink
/// could point anywhere on the host.
fn open_regular(path: &Path, what: &str) -> Result<File> {
    let missing = |e| ImageError::Io {
        context: format!("{what} is missing from the image archive"),
        cause: e,
    };
    if !fs::symlink_metadata(path).map_err(missing)?.is_file() {
        return Err(ImageError::invalid(format!(
            "{what} in the image archive is not a regular file"
        )));
    }
    File::open(path).map_err(missing)
}

/// `root/name`, refusing names that leave `root`.
fn inside(root: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ImageError::invalid(format!(
            "archive path {name:?} leaves the archive"
        )));
    }
    Ok(root.join(rel))
}

/// The digest a docker-archive file name carries (`<hex>.json`,
/// `blobs/sha256/<hex>`), if any.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?.trim_end_matches(".json");
    Digest::parse(&format!("sha256:{base}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_annotations_or_the_file_name() {
        let mut ann = BTreeMap::new();
        assert_eq!(tag_from_annotations(&ann, "x").unwrap(), None);
        ann.insert(oci::ANNOTATION_REF_NAME.to_string(), "v1".to_string());
        assert_eq!(
            tag_from_annotations(&ann, "app")
                .unwrap()
                .unwrap()
                .to_string(),
            "app:v1"
        );
        ann.insert(oci::ANNOTATION_REF_NAME.to_string(), "web:2".to_string());
        assert_eq!(
            tag_from_annotations(&ann, "app")
                .unwrap()
                .unwrap()
                .to_string(),
            "web:2"
        );
        ann.insert(
            oci::ANNOTATION_CONTAINERD_NAME.to_string(),
            "docker.io/library/busybox:1".to_string(),
        );
        assert_eq!(
            tag_from_annotations(&ann, "app")
                .unwrap()
                .unwrap()
                .to_string(),
            "busybox:1"
        );
        assert_eq!(default_name(Path::new("/tmp/My Image.tar.gz")), "my-image");
        assert_eq!(default_name(Path::new("/tmp/busybox")), "busybox");
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert!(inside(Path::new("/a"), "../etc/passwd").is_err());
        assert!(inside(Path::new("/a"), "/etc/passwd").is_err());
        assert_eq!(
            inside(Path::new("/a"), "blobs/sha256/x").unwrap(),
            Path::new("/a/blobs/sha256/x")
        );
        assert!(digest_in_name("0123.json").is_none());
    }
}
