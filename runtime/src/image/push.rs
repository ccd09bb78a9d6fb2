//! `kcnode image push`: a local image to an OCI registry.
//!
//! Each blob (config, then layers) is first asked for with HEAD and skipped
//! if the registry has it; otherwise it is uploaded (POST for a session,
//! then one streamed PUT with `?digest=`, which the registry verifies).
//! The manifest goes last, so a registry never holds a manifest whose
//! blobs are missing.

use hyper::{Method, StatusCode};

use super::digest::Digest;
use super::distribution::{self, RegistryClient, RegistryConfig, RemoteRef};
use super::error::{ImageError, Result};
use super::oci;
use super::progress;
use super::store::ImageStore;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Where the image went: `host/repository:tag`.
    pub remote: String,
    pub digest: Digest,
    /// Blobs uploaded and blobs the registry already had.
    pub uploaded: usize,
    pub skipped: usize,
}

/// Pushes local image `local` to `target` (default: the same name) on the
/// registry `target` names, or `default` for short names.
pub async fn push(
    store: &ImageStore,
    local: &str,
    target: Option<&str>,
    default: &RegistryConfig,
) -> Result<Pushed> {
    let manifest_digest = store.lookup(local)?;
    let image = store.image(&manifest_digest)?;
    let remote = RemoteRef::parse(target.unwrap_or(local))?;
    if remote.reference.starts_with("sha256:") {
        return Err(ImageError::BadReference {
            reference: target.unwrap_or(local).to_string(),
            reason: "push to a tag (name:tag), not a digest".into(),
        });
    }
    let config = distribution::config_for(&remote, default)?;
    let client = RegistryClient::new(config)?;
    let repo = &remote.repository;
    let blobs: Vec<&oci::Descriptor> = std::iter::once(&image.manifest.config)
        .chain(&image.manifest.layers)
        .collect();
    let total = blobs.iter().map(|d| d.size).sum();
    let bar = progress::bytes_bar(total, &format!("pushing {}", remote.local_name()));
    let (mut uploaded, mut skipped) = (0, 0);
    for desc in blobs {
        let d = Digest::parse(&desc.digest)?;
        if blob_exists(&client, repo, &d).await? {
            bar.inc(desc.size);
            skipped += 1;
            continue;
        }
        upload_blob(&client, repo, &d, store, &bar).await?;
        uploaded += 1;
    }
    bar.finish_and_clear();
    let bytes = store.read_blob(&manifest_digest)?;
    let media_type = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| oci::MEDIA_MANIFEST.to_string());
    let what = format!("pushing manifest {repo}:{}", remote.reference);
    let req = client
        .request(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{}", remote.reference),
        )
        .header(hyper::header::CONTENT_TYPE, media_type)
        .body(distribution::full(bytes))
        .map_err(|e| ImageError::invalid(format!("{what}: {e}")))?;
    let resp = client
        .expect(req, &[StatusCode::CREATED, StatusCode::OK], &what)
        .await?;
    if let Some(d) = distribution::header(&resp, "docker-content-digest")
        && d != manifest_digest.as_str()
    {
        return Err(ImageError::Registry(format!(
            "{what}: the registry stored digest {d}, not {manifest_digest}"
        )));
    }
    Ok(Pushed {
        remote: format!("{}/{}", client.host(), remote.local_name()),
        digest: manifest_digest,
        uploaded,
        skipped,
    })
}

async fn blob_exists(client: &RegistryClient, repo: &str, d: &Digest) -> Result<bool> {
    let req = client
        .request(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
        .body(distribution::empty())
        .map_err(|e| ImageError::invalid(e.to_string()))?;
    let resp = client
        .expect(
            req,
            &[StatusCode::OK, StatusCode::NOT_FOUND],
            &format!("checking blob {d}"),
        )
        .await?;
    Ok(resp.status() == StatusCode::OK)
}

async fn upload_blob(
    client: &RegistryClient,
    repo: &str,
    d: &Digest,
    store: &ImageStore,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let what = format!("uploading blob {d} to {repo}");
    let req = client
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .header(hyper::header::CONTENT_LENGTH, "0")
        .body(distribution::empty())
        .map_err(|e| ImageError::invalid(format!("{what}: {e}")))?;
    let resp = client.expect(req, &[StatusCode::ACCEPTED], &what).await?;
    let location = distribution::header(&resp, "location")
        .ok_or_else(|| {
            ImageError::Registry(format!("{what}: the registry gave no upload location"))
        })?
        .to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let (body, size) = distribution::file_body(&store.blob_path(d), bar.clone()).await?;
    let req = client
        .request(Method::PUT, &format!("{location}{sep}digest={d}"))
        .header(hyper::header::CONTENT_LENGTH, size)
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .map_err(|e| ImageError::invalid(format!("{what}: {e}")))?;
    client.expect(req, &[StatusCode::CREATED], &what).await?;
    Ok(())
}
