//! One download at a time per blob (and per image) on a host.
//!
//! Two pods of one image started at once on a node used to pull the same
//! blob into the same `<hex>.partial`, interleave their writes and leave a
//! corrupt partial that every later pull resumed from. A `PullLock` is an
//! exclusive `flock(2)` on `<pulls>/<hex>.lock`: the second pull waits for
//! the first and then finds its result (the blob in the store), so the
//! download is shared. `flock` serialises tasks of one process (each lock
//! opens its own file description) as well as separate processes
//! (`kcnode pull` beside the agent).
//!
//! The lock file is removed when the lock is released, so `pulls/` does not
//! collect them; a waiter that then wins the lock of the removed file
//! notices (the path names another inode, or none) and locks again.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::digest::Digest;
use super::error::{ImageError, IoContext, Result};

/// Held while one pull owns `<dir>/<hex>.partial` and `<dir>/<hex>`.
pub struct PullLock {
    path: PathBuf,
    lock: Option<Flock<File>>,
}

impl PullLock {
    /// Waits for the lock of `d` in `dir` (the store's `pulls/`).
    pub async fn acquire(dir: &Path, d: &Digest) -> Result<PullLock> {
        let path = dir.join(format!("{}.lock", d.hex()));
        tokio::task::spawn_blocking(move || Self::acquire_blocking(path))
            .await
            .map_err(|e| ImageError::invalid(format!("the pull lock task failed: {e}")))?
    }

    fn acquire_blocking(path: PathBuf) -> Result<PullLock> {
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .ctx_path("open the pull lock", &path)?;
            let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
                ImageError::Io {
                    context: format!("cannot lock {}", path.display()),
                    cause: std::io::Error::from(errno),
                }
            })?;
            let held = lock.metadata().ctx_path("stat", &path)?.ino();
            // The previous holder removed the file as it let go: lock the new one.
            if std::fs::metadata(&path).is_ok_and(|m| m.ino() == held) {
                return Ok(PullLock {
                    path,
                    lock: Some(lock),
                });
            }
        }
    }
}

impl Drop for PullLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody locks a file that is going away.
        let _ = std::fs::remove_file(&self.path);
        drop(self.lock.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn holders_of_one_digest_never_overlap_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::of_bytes(b"blob");
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (dir, d, inside) = (dir.path().to_path_buf(), d.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _lock = PullLock::acquire(&dir, &d).await.unwrap();
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn other_digests_do_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let _a = PullLock::acquire(dir.path(), &Digest::of_bytes(b"a"))
            .await
            .unwrap();
        let b = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            PullLock::acquire(dir.path(), &Digest::of_bytes(b"b")),
        )
        .await;
        assert!(b.is_ok(), "a lock of another blob waited");
    }
}
