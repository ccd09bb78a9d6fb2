//! `kcnode pull`: an image from an OCI registry into the local store.
//!
//! The manifest is fetched (an index picks this host's platform), each blob
//! the store lacks is streamed to `<images>/pulls/<hex>.partial` while its
//! sha256 is computed, and renamed to `<hex>` only when digest and size
//! match. An interrupted pull leaves the partial file: the next pull asks
//! for the rest with a Range request (or starts over if the registry
//! ignores ranges); a resumed blob that does not verify is deleted and
//! fetched whole, and a blob that fails verification is never kept. The
//! verified blobs are then laid out as an OCI layout and handed to
//! `import`, which checks everything again (diff ids), unpacks the layers
//! and commits in one store transaction.
//!
//! Concurrent pulls on a host share work through `PullLock`s: one per
//! image (a second pull of it waits, then finds it imported) and one per
//! blob (a partial belongs to exactly one download).

use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ResolvedImage;
use super::digest::Digest;
use super::distribution::{self, RegistryClient, RegistryConfig, RemoteRef};
use super::error::{ImageError, IoContext, Result};
use super::import::{self, ImportOptions};
use super::oci::{self, Descriptor, Index, Manifest};
use super::progress;
use super::pull_lock::PullLock;
use super::reference::TaggedName;
use super::store::ImageStore;

/// What a registry may answer a manifest request with.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest read.
const MANIFEST_LIMIT: usize = 4 << 20;

/// Pulls `reference` (`host:port/name:tag`, or a short name meaning the
/// registry of `default`) into `store`; returns the image ready to run.
pub async fn pull(
    store: &ImageStore,
    reference: &str,
    default: &RegistryConfig,
) -> Result<ResolvedImage> {
    let remote = RemoteRef::parse(reference)?;
    let config = distribution::config_for(&remote, default)?;
    let client = RegistryClient::new(config)?;
    let local = remote.local_name();
    let (manifest_desc, manifest_bytes) = fetch_manifest(&client, &remote).await?;
    let manifest_digest = Digest::parse(&manifest_desc.digest)?;
    if store.lookup(&local).ok().as_ref() == Some(&manifest_digest) {
        return store.resolve(&local);
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        ImageError::invalid(format!(
            "manifest {manifest_digest} of {reference} is not valid: {e}"
        ))
    })?;
    let downloads = store.root().join("pulls");
    std::fs::create_dir_all(&downloads).ctx_path("create", &downloads)?;
    // Pulls of this image on this host take turns; a later one finds the
    // image the first imported and downloads nothing.
    let _image_lock = PullLock::acquire(&downloads, &manifest_digest).await?;
    if store.lookup(&local).ok().as_ref() == Some(&manifest_digest) {
        return store.resolve(&local);
    }
    let blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .collect();
    let total = blobs.iter().map(|d| d.size).sum();
    let bar = progress::bytes_bar(total, &format!("pulling {local}"));
    // Every blob is linked into the layout as soon as it is verified, so a
    // concurrent pull of another image that shares it may remove the
    // download once its own import holds it.
    let layout = tempfile::Builder::new()
        .prefix("layout-")
        .tempdir_in(&downloads)
        .ctx(|| "cannot create a staging directory".to_string())?;
    let staged = layout.path().join("blobs/sha256");
    std::fs::create_dir_all(&staged).ctx_path("create", &staged)?;
    let mut downloaded = Vec::new();
    for desc in blobs {
        let d = Digest::parse(&desc.digest)?;
        let _blob_lock = PullLock::acquire(&downloads, &d).await?;
        let source = if store.has_blob(&d) {
            bar.inc(desc.size);
            store.blob_path(&d)
        } else {
            let path =
                download(&client, &remote.repository, &d, desc.size, &downloads, &bar).await?;
            downloaded.push(d.clone());
            path
        };
        link_or_copy(&source, &staged.join(d.hex()))?;
    }
    bar.finish_and_clear();
    write_layout(layout.path(), &manifest_desc, &manifest_bytes)?;
    let tag = TaggedName::parse(&local)?;
    let store_copy = store.clone();
    let layout_path = layout.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        import::import(&store_copy, &layout_path, &ImportOptions { tag: Some(tag) })
    })
    .await
    .map_err(|e| ImageError::invalid(format!("the import task failed: {e}")))??;
    for d in &downloaded {
        let _blob_lock = PullLock::acquire(&downloads, d).await?;
        let _ = std::fs::remove_file(downloads.join(d.hex()));
    }
    store.resolve(&local)
}

/// The image `reference` from the local store, pulled first if the store
/// lacks it (what the kubelet does for `imagePullPolicy: IfNotPresent`).
pub async fn resolve_or_pull(
    store: &ImageStore,
    reference: &str,
    default: &RegistryConfig,
) -> Result<ResolvedImage> {
    let local = RemoteRef::parse(reference)?.local_name();
    match store.resolve(&local) {
        Ok(image) => Ok(image),
        Err(ImageError::NotFound { .. }) => pull(store, reference, default).await,
        Err(e) => Err(e),
    }
}

/// GETs a manifest (the platform's, through an index) and checks its digest.
async fn fetch_manifest(
    client: &RegistryClient,
    remote: &RemoteRef,
) -> Result<(Descriptor, Vec<u8>)> {
    let (desc, data) = get_manifest(client, &remote.repository, &remote.reference).await?;
    if !oci::is_index(&desc.media_type) {
        return Ok((desc, data));
    }
    let index: Index = serde_json::from_slice(&data)
        .map_err(|e| ImageError::invalid(format!("index {} is not valid: {e}", desc.digest)))?;
    let arch = oci::host_architecture();
    let chosen = index
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.architecture == arch && p.os == "linux")
        })
        .or_else(|| (index.manifests.len() == 1).then(|| &index.manifests[0]))
        .ok_or_else(|| {
            ImageError::invalid(format!(
                "{}/{}:{} has no image for linux/{arch}",
                client.host(),
                remote.repository,
                remote.reference
            ))
        })?;
    get_manifest(client, &remote.repository, &chosen.digest).await
}

async fn get_manifest(
    client: &RegistryClient,
    repo: &str,
    reference: &str,
) -> Result<(Descriptor, Vec<u8>)> {
    let what = format!("pulling manifest {repo}:{reference}");
    let req = client
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header(hyper::header::ACCEPT, ACCEPT)
        .body(distribution::empty())
        .map_err(|e| ImageError::invalid(format!("{what}: {e}")))?;
    let resp = client.expect(req, &[StatusCode::OK], &what).await?;
    let media_type = distribution::header(&resp, "content-type")
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_string());
    let claimed = distribution::header(&resp, "docker-content-digest").map(str::to_string);
    let body = http_body_util::Limited::new(resp.into_body(), MANIFEST_LIMIT)
        .collect()
        .await
        .map_err(|e| ImageError::Registry(format!("{what}: {e}")))?
        .to_bytes()
        .to_vec();
    let actual = Digest::of_bytes(&body);
    let expected = if reference.starts_with("sha256:") {
        Some(reference.to_string())
    } else {
        claimed
    };
    if let Some(expected) = expected {
        super::digest::verify(
            &format!("manifest {repo}:{reference}"),
            &Digest::parse(&expected)?,
            &actual,
        )?;
    }
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ImageError::invalid(format!("{what}: not JSON: {e}")))?;
    let media_type = doc["mediaType"]
        .as_str()
        .map(str::to_string)
        .or(media_type)
        .unwrap_or_else(|| oci::MEDIA_MANIFEST.to_string());
    let desc = Descriptor {
        media_type,
        digest: actual.to_string(),
        size: body.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    Ok((desc, body))
}

/// Downloads blob `d` into `dir` (the caller holds its `PullLock`),
/// resuming a partial download; the result is `<dir>/<hex>`, verified. A
/// resumed download that does not verify is deleted and fetched again from
/// the start, once: a partial is never trusted twice.
async fn download(
    client: &RegistryClient,
    repo: &str,
    d: &Digest,
    size: u64,
    dir: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<PathBuf> {
    let done = dir.join(d.hex());
    if done.is_file() {
        bar.inc(size);
        return Ok(done);
    }
    let partial = dir.join(format!("{}.partial", d.hex()));
    let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let start = bar.position();
    let result = if have > 0 && have < size {
        match fetch(client, repo, d, size, &partial, have, bar).await {
            Err(e @ ImageError::DigestMismatch { .. }) => {
                tracing::warn!(blob = %d, have, "a resumed download did not verify ({e}); downloading it again from the start");
                bar.set_position(start);
                fetch(client, repo, d, size, &partial, 0, bar).await
            }
            other => other,
        }
    } else {
        fetch(client, repo, d, size, &partial, 0, bar).await
    };
    result?;
    std::fs::rename(&partial, &done).ctx_path("rename", &done)?;
    Ok(done)
}

/// GETs blob `d` into `partial` (from byte `have` if the registry honours
/// the range) and verifies size and digest; a blob that does not verify is
/// deleted. A cut transfer keeps what arrived, to be resumed.
async fn fetch(
    client: &RegistryClient,
    repo: &str,
    d: &Digest,
    size: u64,
    partial: &Path,
    have: u64,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let what = format!("pulling blob {d} of {repo}");
    let mut req = client.request(Method::GET, &format!("/v2/{repo}/blobs/{d}"));
    if have > 0 {
        req = req.header(hyper::header::RANGE, format!("bytes={have}-"));
    }
    let req = req
        .body(distribution::empty())
        .map_err(|e| ImageError::invalid(format!("{what}: {e}")))?;
    let resp = client
        .expect(req, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT], &what)
        .await?;
    let mut hasher = Sha256::new();
    let mut file;
    let mut received;
    if have > 0 && resp.status() == StatusCode::PARTIAL_CONTENT {
        tracing::info!(blob = %d, have, "resuming a partial download");
        file = tokio::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(partial)
            .await
            .ctx_path("open", partial)?;
        let mut buf = vec![0u8; 1 << 20];
        received = 0u64;
        loop {
            let n = file.read(&mut buf).await.ctx_path("read", partial)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            received += n as u64;
        }
        bar.inc(received);
    } else {
        file = tokio::fs::File::create(partial)
            .await
            .ctx_path("create", partial)?;
        received = 0;
    }
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ImageError::Registry(format!(
                "{what}: the transfer was cut after {received} bytes ({e}); pull again to resume"
            ))
        })?;
        if let Ok(chunk) = frame.into_data() {
            hasher.update(&chunk);
            received += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
            if received > size {
                break;
            }
            file.write_all(&chunk).await.ctx_path("write", partial)?;
        }
    }
    file.flush().await.ctx_path("write", partial)?;
    drop(file);
    let actual = Digest::from_hasher(hasher);
    if actual == *d && received == size {
        return Ok(());
    }
    let _ = std::fs::remove_file(partial);
    if received != size && have == 0 {
        return Err(ImageError::Registry(format!(
            "{what}: got {received} bytes, the manifest says {size}; the partial download was dropped, pull again"
        )));
    }
    super::digest::verify(&format!("blob {d} from {}", client.host()), d, &actual)?;
    // Right digest, wrong length: the manifest lies about the size.
    Err(ImageError::Registry(format!(
        "{what}: the blob has {received} bytes, the manifest says {size}; the partial download was dropped"
    )))
}

/// Hard-links `from` to `to` (a copy across filesystems).
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if to.exists() || std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).ctx_path("copy", from)?;
    Ok(())
}

/// Completes the OCI layout of one image whose blobs are already staged
/// under `blobs/sha256` (hard links or copies).
fn write_layout(root: &Path, manifest: &Descriptor, manifest_bytes: &[u8]) -> Result<()> {
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).ctx_path("create", &dir)?;
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .ctx_path("write", root)?;
    let index = Index {
        schema_version: 2,
        media_type: Some(oci::MEDIA_INDEX.to_string()),
        manifests: vec![manifest.clone()],
        annotations: Default::default(),
    };
    let index = serde_json::to_vec(&index)
        .map_err(|e| ImageError::invalid(format!("cannot encode index.json: {e}")))?;
    std::fs::write(root.join("index.json"), index).ctx_path("write", root)?;
    let m = Digest::parse(&manifest.digest)?;
    std::fs::write(dir.join(m.hex()), manifest_bytes).ctx_path("write", &dir)?;
    Ok(())
}
