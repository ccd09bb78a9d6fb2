//! Blobs on the registry's disk, content addressed:
//! `<dir>/blobs/sha256/<hex>`, and upload sessions `<dir>/uploads/<uuid>`.
//!
//! An upload is appended to (chunk by chunk or in one go) and only becomes
//! a blob when its sha256 is the digest the client claims: the session file
//! is hashed, fsynced and renamed into place, so a blob path always holds
//! exactly its content. A mismatch deletes the session.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::error::{RegistryError, io_error};

/// How long an upload session may sit untouched before it is dropped.
pub const UPLOAD_EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Parses `sha256:<64 lowercase hex>`; other algorithms are refused.
pub fn parse_digest(s: &str) -> Result<&str, RegistryError> {
    let hex = s.strip_prefix("sha256:").ok_or_else(|| {
        RegistryError::digest_invalid(format!(
            "digest {s:?} is not supported: only sha256:<hex> digests are"
        ))
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(RegistryError::digest_invalid(format!(
            "digest {s:?} is malformed: sha256: must be followed by 64 lowercase hex digits"
        )));
    }
    Ok(hex)
}

/// sha256 of `data` as `sha256:<hex>`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The blob directory of one registry (one control-plane member).
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl BlobStore {
    /// Opens (creating) `<dir>/blobs/sha256` and `<dir>/uploads`, and
    /// drops upload sessions abandoned for longer than `UPLOAD_EXPIRY`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let blobs = dir.join("blobs/sha256");
        let uploads = dir.join("uploads");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&uploads)?;
        let store = Self { blobs, uploads };
        store.expire_uploads(UPLOAD_EXPIRY);
        Ok(store)
    }

    /// Removes upload sessions untouched for `age`; returns how many.
    pub fn expire_uploads(&self, age: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.uploads) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if stale && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "dropped abandoned registry upload sessions");
        }
        removed
    }

    /// Where blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        Ok(self.blobs.join(parse_digest(digest)?))
    }

    /// The size of blob `digest`, None if the registry lacks it.
    pub async fn size(&self, digest: &str) -> Result<Option<u64>, RegistryError> {
        match tokio::fs::metadata(self.path(digest)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&format!("cannot read blob {digest}"), e)),
        }
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, RegistryError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(RegistryError::upload_unknown(id));
        }
        Ok(self.uploads.join(id))
    }

    /// Starts an upload session; returns its id.
    pub async fn start_upload(&self) -> Result<String, RegistryError> {
        let id = uuid::Uuid::new_v4().to_string();
        tokio::fs::File::create(self.uploads.join(&id))
            .await
            .map_err(|e| io_error("cannot create an upload session", e))?;
        Ok(id)
    }

    /// Bytes received so far by upload `id`.
    pub async fn upload_size(&self, id: &str) -> Result<u64, RegistryError> {
        match tokio::fs::metadata(self.upload_path(id)?).await {
            Ok(m) => Ok(m.len()),
            Err(_) => Err(RegistryError::upload_unknown(id)),
        }
    }

    /// Appends a body to upload `id`; with `start`, the chunk must begin
    /// where the upload ends (else 416). Returns the new size.
    pub async fn append<S, E>(
        &self,
        id: &str,
        start: Option<u64>,
        mut body: S,
    ) -> Result<u64, RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let size = self.upload_size(id).await?;
        if let Some(start) = start
            && start != size
        {
            return Err(RegistryError::new(
                416,
                "BLOB_UPLOAD_INVALID",
                format!("chunk starts at byte {start} but upload {id} has {size} bytes"),
            ));
        }
        let path = self.upload_path(id)?;
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(|_| RegistryError::upload_unknown(id))?;
        let mut total = size;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                RegistryError::new(
                    400,
                    "BLOB_UPLOAD_INVALID",
                    format!("upload {id} was cut: {e}"),
                )
            })?;
            total += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(&format!("cannot write upload {id}"), e))?;
        }
        file.flush()
            .await
            .map_err(|e| io_error(&format!("cannot write upload {id}"), e))?;
        Ok(total)
    }

    /// Completes upload `id` as blob `digest`: verified, fsynced, renamed.
    /// A mismatch removes the session and answers DIGEST_INVALID.
    pub async fn finish(&self, id: &str, digest: &str) -> Result<u64, RegistryError> {
        parse_digest(digest)?;
        let src = self.upload_path(id)?;
        let dest = self.path(digest)?;
        let digest = digest.to_string();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || commit_file(&src, &dest, &digest, &id))
            .await
            .map_err(|e| RegistryError::internal(format!("upload task failed: {e}")))?
    }

    /// Stores small content (a manifest) as a blob; returns its digest.
    pub async fn put_bytes(&self, data: Bytes) -> Result<String, RegistryError> {
        let id = self.start_upload().await?;
        let digest = digest_of(&data);
        self.append(
            &id,
            None,
            futures::stream::iter([Ok::<_, std::io::Error>(data)]),
        )
        .await?;
        self.finish(&id, &digest).await?;
        Ok(digest)
    }

    /// Drops upload `id`.
    pub async fn cancel(&self, id: &str) -> Result<(), RegistryError> {
        tokio::fs::remove_file(self.upload_path(id)?)
            .await
            .map_err(|_| RegistryError::upload_unknown(id))
    }
}

fn commit_file(src: &Path, dest: &Path, digest: &str, id: &str) -> Result<u64, RegistryError> {
    let mut file = std::fs::File::open(src).map_err(|_| RegistryError::upload_unknown(id))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| io_error(&format!("cannot read upload {id}"), e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != digest {
        let _ = std::fs::remove_file(src);
        return Err(RegistryError::digest_invalid(format!(
            "the uploaded content ({size} bytes) has digest {actual}, not {digest}: it was corrupted or truncated; nothing was stored"
        )));
    }
    file.sync_all()
        .map_err(|e| io_error(&format!("cannot sync upload {id}"), e))?;
    std::fs::rename(src, dest).map_err(|e| io_error(&format!("cannot store blob {digest}"), e))?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn chunked_upload_becomes_a_verified_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let id = store.start_upload().await.unwrap();
        assert_eq!(
            store.append(&id, Some(0), chunks(&[b"hel"])).await.unwrap(),
            3
        );
        let err = store
            .append(&id, Some(0), chunks(&[b"x"]))
            .await
            .unwrap_err();
        assert_eq!(err.status, 416);
        assert_eq!(
            store.append(&id, Some(3), chunks(&[b"lo"])).await.unwrap(),
            5
        );
        let d = digest_of(b"hello");
        assert_eq!(store.finish(&id, &d).await.unwrap(), 5);
        assert_eq!(store.size(&d).await.unwrap(), Some(5));
        assert_eq!(std::fs::read(store.path(&d).unwrap()).unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_wrong_digest_is_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let id = store.start_upload().await.unwrap();
        store
            .append(&id, None, chunks(&[b"corrupt"]))
            .await
            .unwrap();
        let claimed = digest_of(b"original");
        let err = store.finish(&id, &claimed).await.unwrap_err();
        assert_eq!(err.code, "DIGEST_INVALID");
        assert_eq!(store.size(&claimed).await.unwrap(), None);
        assert!(store.upload_size(&id).await.is_err());
    }

    #[tokio::test]
    async fn abandoned_uploads_expire_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let id = store.start_upload().await.unwrap();
        assert_eq!(
            store.expire_uploads(std::time::Duration::from_secs(3600)),
            0
        );
        assert!(store.upload_size(&id).await.is_ok());
        assert_eq!(store.expire_uploads(std::time::Duration::ZERO), 1);
        assert!(store.upload_size(&id).await.is_err());
    }

    #[test]
    fn digests_are_checked() {
        assert!(parse_digest("sha512:00").is_err());
        assert!(parse_digest("sha256:zz").is_err());
        assert!(parse_digest(&digest_of(b"")).is_ok());
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
    }
}
