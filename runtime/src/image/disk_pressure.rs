//! Image garbage collection under disk pressure, like the kubelet's: when
//! the filesystem holding the image store is fuller than `high_percent`,
//! images no container uses are removed, the least recently used first
//! (`last_used`: when their manifest arrived — pulled, built or imported —
//! or, if later, when a caller last saw a container use them), until usage
//! is back under `low_percent` or nothing unused is left. Images in use
//! (their layers are a container's rootfs, running or stopped) are kept,
//! and so are images used more recently than a minimum age.
//!
//! `choose` is the pure decision; `collect_with` measures the disk
//! (statvfs) and removes through the store, which also deletes the blobs
//! and layers no remaining image needs.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::store::ImageStore;

/// When to collect and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Start collecting above this much of the disk used (percent).
    pub high_percent: u8,
    /// Collect until usage is below this (percent).
    pub low_percent: u8,
}

impl Default for Thresholds {
    /// The kubelet's defaults.
    fn default() -> Self {
        Self {
            high_percent: 85,
            low_percent: 80,
        }
    }
}

/// One image of the store, as the collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub manifest: Digest,
    pub tags: Vec<String>,
    /// Bytes its blobs take (what removing it frees at most).
    pub size: u64,
    /// When it was last used (or arrived, if never seen in use since).
    pub last_used: SystemTime,
    pub in_use: bool,
}

/// The images to remove to free `need` bytes: unused ones not used since
/// `keep_after`, least recently used first, until their sizes add up to
/// `need` (all eligible ones if they never do).
pub fn choose(candidates: &[Candidate], need: u64, keep_after: SystemTime) -> Vec<&Candidate> {
    let mut unused: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !c.in_use && c.last_used <= keep_after)
        .collect();
    unused.sort_by_key(|c| c.last_used);
    let mut freed = 0;
    unused
        .into_iter()
        .take_while(|c| {
            let more = freed < need;
            freed += c.size;
            more
        })
        .collect()
}

/// `(used, total)` bytes of the filesystem holding `path`, as `df`
/// counts them: total is used plus available to us, so blocks reserved
/// for root (or otherwise unavailable) count as neither. (The kubelet
/// divides by every block; on a filesystem with a large reserve that
/// reads as nearly full while most of the usable space is free.)
pub fn usage(path: &Path) -> Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| ImageError::Io {
        context: format!("cannot measure the filesystem of {}", path.display()),
        cause: e.into(),
    })?;
    let frag = st.fragment_size() as u64;
    let used = (st.blocks() as u64).saturating_sub(st.blocks_free() as u64) * frag;
    let available = st.blocks_available() as u64 * frag;
    Ok((used, used + available))
}

/// Bytes to free to get from `used` of `total` under `t.low_percent`; 0
/// while usage is at or below `t.high_percent`.
pub fn bytes_to_free(used: u64, total: u64, t: Thresholds) -> u64 {
    let pct = |p: u8| (total as u128 * p as u128 / 100) as u64;
    if total == 0 || used <= pct(t.high_percent) {
        return 0;
    }
    used.saturating_sub(pct(t.low_percent))
}

/// What a collection did.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The tags removed.
    pub removed: Vec<String>,
    pub used_before: u64,
    pub used_after: u64,
    pub total: u64,
    /// Bytes that had to be freed (0: no pressure).
    pub need: u64,
    /// Bytes the removable images took (what could be freed at most).
    pub eligible: u64,
}

impl Collected {
    /// Whether a collection was needed and could not get usage down to
    /// `t.low_percent` (the kubelet's `FreeDiskSpaceFailed`).
    pub fn fell_short(&self, t: Thresholds) -> bool {
        self.need > 0
            && bytes_to_free(
                self.used_after,
                self.total,
                Thresholds {
                    high_percent: t.low_percent,
                    ..t
                },
            ) > 0
    }
}

/// Collects images if the store's disk is under pressure. `in_use` is
/// every container's rootfs layers (bottom first), as in its spec.
pub fn collect(store: &ImageStore, t: Thresholds, in_use: &[Vec<PathBuf>]) -> Result<Collected> {
    collect_with(store, t, in_use, SystemTime::now(), |_| {})
}

/// `collect`, keeping images used after `keep_after`; `seen` is shown
/// every candidate first (to record or correct when it was last used).
pub fn collect_with(
    store: &ImageStore,
    t: Thresholds,
    in_use: &[Vec<PathBuf>],
    keep_after: SystemTime,
    mut seen: impl FnMut(&mut Candidate),
) -> Result<Collected> {
    let (used_before, total) = usage(store.root())?;
    let need = bytes_to_free(used_before, total, t);
    let mut candidates = candidates(store, in_use)?;
    candidates.iter_mut().for_each(&mut seen);
    let mut out = Collected {
        used_before,
        used_after: used_before,
        total,
        need,
        ..Default::default()
    };
    if need == 0 {
        return Ok(out);
    }
    let all_layers: Vec<PathBuf> = in_use.iter().flatten().cloned().collect();
    let chosen = choose(&candidates, u64::MAX, keep_after);
    out.eligible = chosen.iter().map(|c| c.size).sum();
    for c in choose(&candidates, need, keep_after) {
        for tag in &c.tags {
            tracing::info!(image = %tag, "removing an unused image: disk pressure");
            store.remove(tag, &all_layers)?;
            out.removed.push(tag.clone());
        }
    }
    out.used_after = usage(store.root())?.0;
    Ok(out)
}

/// Every tagged image of the store, grouped by manifest.
pub fn candidates(store: &ImageStore, in_use: &[Vec<PathBuf>]) -> Result<Vec<Candidate>> {
    let mut by_manifest: std::collections::BTreeMap<Digest, Vec<String>> = Default::default();
    for (tag, m) in store.tags()? {
        by_manifest.entry(m).or_default().push(tag);
    }
    let mut out = Vec::new();
    for (manifest, tags) in by_manifest {
        let img = store.image(&manifest)?;
        let layers = store.layer_paths(&img);
        let size =
            img.manifest.layers.iter().map(|l| l.size).sum::<u64>() + img.manifest.config.size;
        let last_used = std::fs::metadata(store.blob_path(&manifest))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(Candidate {
            in_use: in_use.contains(&layers),
            manifest,
            tags,
            size,
            last_used,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cand(n: u8, size: u64, age_s: u64, in_use: bool) -> Candidate {
        Candidate {
            manifest: Digest::of_bytes(&[n]),
            tags: vec![format!("img{n}:1")],
            size,
            last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - age_s),
            in_use,
        }
    }

    #[test]
    fn oldest_unused_images_go_first_and_only_as_many_as_needed() {
        let c = [
            cand(1, 100, 10, false),
            cand(2, 100, 30, true), // oldest, but in use
            cand(3, 100, 20, false),
            cand(4, 100, 5, false),
        ];
        let names = |v: Vec<&Candidate>| v.iter().map(|c| c.tags[0].clone()).collect::<Vec<_>>();
        let any = SystemTime::now();
        assert_eq!(names(choose(&c, 150, any)), ["img3:1", "img1:1"]);
        assert_eq!(names(choose(&c, 1, any)), ["img3:1"]);
        assert!(choose(&c, 0, any).is_empty());
        assert_eq!(
            names(choose(&c, 10_000, any)),
            ["img3:1", "img1:1", "img4:1"]
        );
        // Images used within the minimum age are kept.
        let cutoff = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - 8);
        assert_eq!(names(choose(&c, 10_000, cutoff)), ["img3:1", "img1:1"]);
    }

    #[test]
    fn a_collection_falls_short_when_usage_stays_above_low() {
        let t = Thresholds::default();
        let done = |need, used_after| Collected {
            need,
            used_after,
            total: 1000,
            ..Default::default()
        };
        assert!(!done(0, 900).fell_short(t), "no pressure, nothing needed");
        assert!(!done(100, 800).fell_short(t));
        assert!(done(100, 801).fell_short(t));
    }

    #[test]
    fn pressure_starts_above_high_and_frees_down_to_low() {
        let t = Thresholds::default();
        assert_eq!(bytes_to_free(850, 1000, t), 0);
        assert_eq!(bytes_to_free(900, 1000, t), 100);
        assert_eq!(bytes_to_free(5, 0, t), 0);
    }
}
