//! The image side's error type: every failure names the object (image,
//! file, blob, Dockerfile line) and says what went wrong and what to do.
//!
//! Kept in one place so that the store, import, save and build speak the
//! same language and the CLI can print them as they are.

use std::path::Path;

/// Everything that can go wrong with images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference names no image in the local store.
    #[error(
        "image {reference:?} not found in the local store: build it (`kcnode build`), import it (`kcnode image import`) or make the base (`kcnode image base busybox`)"
    )]
    NotFound { reference: String },
    /// A reference that is not `name[:tag]` or an image id.
    #[error("invalid image reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    /// A blob whose sha256 is not the one it is referenced by.
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual} (the content is corrupt or was changed; nothing was imported)"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Input (an archive, a manifest, a Dockerfile) that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A registry that refused or failed a push or pull.
    #[error("{0}")]
    Registry(String),
    /// A build step that failed.
    #[error("{0}")]
    Build(String),
    /// An I/O failure, with what was being done.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        // Not named `source` (thiserror would chain it): the message includes it, and anyhow's
        // `{:#}` would print it twice.
        cause: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ImageError>;

impl ImageError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ImageError::Invalid(msg.into())
    }
}

/// The innermost cause of an error (tar's errors wrap the useful one).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Adds "what was being done" to I/O errors.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
    fn ctx_path(self, verb: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| ImageError::Io {
            context: what(),
            cause,
        })
    }

    fn ctx_path(self, verb: &str, path: &Path) -> Result<T> {
        self.ctx(|| format!("cannot {verb} {}", path.display()))
    }
}
