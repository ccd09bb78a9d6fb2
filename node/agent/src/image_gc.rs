//! The node agent's image garbage collection and disk pressure, like the
//! kubelet's.
//!
//! Image GC: every `--image-gc-period` (30 s) and before every pull, the
//! filesystem of the image store is measured; above
//! `--image-gc-high-threshold` percent used, images no container of this
//! node uses (running or stopped; kc's pod sandboxes use no image) are
//! removed, least recently used first, down to `--image-gc-low-threshold`
//! (`runtime/src/image/disk_pressure.rs` decides and removes). Images used
//! within `--image-minimum-gc-age` stay (a pull that just landed is not
//! taken away before its container starts). When a collection cannot get
//! under the low mark, the Node gets a Warning Event `FreeDiskSpaceFailed`
//! (and `ImageGCFailed` if the collection itself failed).
//!
//! Disk pressure: the Node condition `DiskPressure` is computed from the
//! node's real free space each time the Node status is posted, against
//! the kubelet's eviction signals `nodefs.available` (the data dir's
//! filesystem) and `imagefs.available` (the image store's), set with
//! `--eviction-hard` in the kubelet's syntax (default
//! `nodefs.available<10%,imagefs.available<15%`).
//!
//! Parsing and the decisions are pure (`Eviction`, `pressure`,
//! `set_disk_pressure`, `shortfall_message`); `ImageGc` does the I/O.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kc_runtime::image::digest::Digest;
use kc_runtime::image::disk_pressure::{self, Collected, Thresholds};
use kc_runtime::image::store::ImageStore;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::session::Report;

/// The kubelet's default hard eviction thresholds for disk.
pub const DEFAULT_EVICTION_HARD: &str = "nodefs.available<10%,imagefs.available<15%";

/// Image GC and disk-pressure flags of `kcnode init` and `kcnode join`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageGcArgs {
    /// Remove unused images when the image filesystem is more than this full (percent)
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,
    /// ... down to this much used (percent)
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
    /// How often the image filesystem is checked (e.g. 30s)
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse_duration)]
    pub image_gc_period: Duration,
    /// Images used more recently than this are never collected (e.g. 2m, 0s)
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse_duration)]
    pub image_minimum_gc_age: Duration,
    /// When the node reports DiskPressure, in the kubelet's syntax: SIGNAL<AMOUNT[,...]
    /// with nodefs.available / imagefs.available and a percentage or a size (500Mi)
    #[arg(long, default_value = DEFAULT_EVICTION_HARD, value_parser = Eviction::parse)]
    pub eviction_hard: Eviction,
}

impl ImageGcArgs {
    /// The GC marks, checked (low must not exceed high).
    pub fn thresholds(&self) -> anyhow::Result<Thresholds> {
        anyhow::ensure!(
            self.image_gc_low_threshold <= self.image_gc_high_threshold,
            "--image-gc-low-threshold ({}) must not exceed --image-gc-high-threshold ({})",
            self.image_gc_low_threshold,
            self.image_gc_high_threshold
        );
        Ok(Thresholds {
            high_percent: self.image_gc_high_threshold,
            low_percent: self.image_gc_low_threshold,
        })
    }
}

/// An eviction threshold's amount: a share of the filesystem or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Percent(u8),
    Bytes(u64),
}

impl Amount {
    /// Whether `available` of `total` bytes is below this amount.
    pub fn breached(&self, available: u64, total: u64) -> bool {
        match *self {
            Amount::Percent(p) => (available as u128) * 100 < (total as u128) * p as u128,
            Amount::Bytes(b) => available < b,
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Percent(p) => write!(f, "{p}%"),
            Amount::Bytes(b) => write!(f, "{b} bytes"),
        }
    }
}

/// The disk signals of `--eviction-hard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eviction {
    pub nodefs_available: Option<Amount>,
    pub imagefs_available: Option<Amount>,
}

impl Eviction {
    /// Parses `nodefs.available<10%,imagefs.available<500Mi`; other
    /// signals (memory.available, ...) are not measured by kc: refused.
    pub fn parse(text: &str) -> Result<Eviction, String> {
        let mut out = Eviction::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (signal, amount) = part.split_once('<').ok_or_else(|| {
                format!(
                    "eviction threshold {part:?} is not SIGNAL<AMOUNT (e.g. nodefs.available<10%)"
                )
            })?;
            let amount = parse_amount(amount.trim())
                .ok_or_else(|| format!("eviction threshold {part:?}: {amount:?} is not a percentage (10%) or a size (500Mi)"))?;
            match signal.trim() {
                "nodefs.available" => out.nodefs_available = Some(amount),
                "imagefs.available" => out.imagefs_available = Some(amount),
                other => {
                    return Err(format!(
                        "eviction signal {other:?} is not supported: kc measures nodefs.available and imagefs.available"
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn parse_amount(text: &str) -> Option<Amount> {
    if let Some(p) = text.strip_suffix('%') {
        return p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .map(Amount::Percent);
    }
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return n
                .trim()
                .parse::<u64>()
                .ok()?
                .checked_mul(factor)
                .map(Amount::Bytes);
        }
    }
    text.parse().ok().map(Amount::Bytes)
}

/// One filesystem as an eviction signal sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub available: u64,
    pub total: u64,
}

/// Why the node is under disk pressure (None: it is not), from the data
/// dir's filesystem and the image store's.
pub fn pressure(eviction: &Eviction, nodefs: FsUsage, imagefs: FsUsage) -> Option<String> {
    let check = |name: &str, amount: Option<Amount>, fs: FsUsage| {
        let amount = amount?;
        amount.breached(fs.available, fs.total).then(|| {
            format!(
                "{name} is {} of {} (threshold {name}<{amount})",
                human(fs.available),
                human(fs.total)
            )
        })
    };
    let found: Vec<String> = [
        check("nodefs.available", eviction.nodefs_available, nodefs),
        check("imagefs.available", eviction.imagefs_available, imagefs),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!found.is_empty()).then(|| found.join("; "))
}

/// Sets the `DiskPressure` condition of a Node object (status built by
/// `host::node_object`) to what `pressure` found.
pub fn set_disk_pressure(node: &mut Value, pressure: Option<&str>) {
    let Some(conditions) = node["status"]["conditions"].as_array_mut() else {
        return;
    };
    let Some(c) = conditions.iter_mut().find(|c| c["type"] == "DiskPressure") else {
        return;
    };
    match pressure {
        Some(why) => {
            c["status"] = json!("True");
            c["reason"] = json!("KubeletHasDiskPressure");
            c["message"] = json!(format!("kubelet has disk pressure: {why}"));
        }
        None => {
            c["status"] = json!("False");
            c["reason"] = json!("KubeletHasNoDiskPressure");
            c["message"] = json!("kubelet has no disk pressure");
        }
    }
}

/// The kubelet's message when a collection could not free enough.
pub fn shortfall_message(done: &Collected, t: Thresholds) -> String {
    let low = (done.total as u128 * t.low_percent as u128 / 100) as u64;
    format!(
        "Failed to garbage collect required amount of images. Attempted to free {} bytes, but only found {} bytes eligible to free. Image filesystem {} of {} used, {}% wanted",
        done.used_before.saturating_sub(low),
        done.eligible,
        human(done.used_after),
        human(done.total),
        t.low_percent
    )
}

fn human(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes >= 1 << 30 {
        format!("{:.1}Gi", bytes as f64 / MIB / 1024.0)
    } else {
        format!("{:.1}Mi", bytes as f64 / MIB)
    }
}

/// Available and total bytes of the filesystem holding `path` (total as
/// `disk_pressure::usage` counts it: used plus available).
fn fs_usage(path: &Path) -> Option<FsUsage> {
    let (used, total) = disk_pressure::usage(path).ok()?;
    Some(FsUsage {
        available: total - used,
        total,
    })
}

/// The node's image collector and disk-pressure reader.
pub struct ImageGc {
    node_name: String,
    data_dir: PathBuf,
    thresholds: Thresholds,
    period: Duration,
    minimum_age: Duration,
    eviction: Eviction,
    /// When each image was last seen in use by a container.
    last_used: Mutex<HashMap<Digest, SystemTime>>,
    /// One collection at a time (the periodic one and those before pulls).
    running: tokio::sync::Mutex<()>,
    events: mpsc::Sender<Report>,
}

impl ImageGc {
    pub fn new(
        node_name: &str,
        data_dir: &Path,
        args: &ImageGcArgs,
        events: mpsc::Sender<Report>,
    ) -> anyhow::Result<ImageGc> {
        Ok(ImageGc {
            node_name: node_name.to_string(),
            data_dir: data_dir.to_path_buf(),
            thresholds: args.thresholds()?,
            period: args.image_gc_period.max(Duration::from_millis(100)),
            minimum_age: args.image_minimum_gc_age,
            eviction: args.eviction_hard,
            last_used: Mutex::default(),
            running: tokio::sync::Mutex::new(()),
            events,
        })
    }

    /// Why the node is under disk pressure now (None: it is not).
    pub fn disk_pressure(&self) -> Option<String> {
        let nodefs = fs_usage(&self.data_dir)?;
        let images = self.data_dir.join("images");
        let imagefs = fs_usage(&images).unwrap_or(nodefs);
        pressure(&self.eviction, nodefs, imagefs)
    }

    /// Collects every period, until the process ends.
    pub fn start(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.collect().await;
            }
        });
    }

    /// Before a pull: a collection only if the image filesystem is over
    /// the high mark already (a statvfs; pulls stay cheap otherwise).
    pub async fn before_pull(self: &Arc<Self>) {
        let images = self.data_dir.join("images");
        let over = disk_pressure::usage(&images)
            .map(|(used, total)| disk_pressure::bytes_to_free(used, total, self.thresholds) > 0)
            .unwrap_or(false);
        if over {
            self.collect().await;
        }
    }

    /// One collection (if the image filesystem is over the high mark);
    /// failures become Node Events.
    pub async fn collect(self: &Arc<Self>) {
        let _one = self.running.lock().await;
        let me = self.clone();
        let outcome = tokio::task::spawn_blocking(move || me.collect_now())
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the collection task failed: {e}")));
        match outcome {
            Ok(done) => {
                for tag in &done.removed {
                    tracing::info!(image = %tag, "image garbage collection removed an unused image");
                }
                if done.fell_short(self.thresholds) {
                    let msg = shortfall_message(&done, self.thresholds);
                    tracing::warn!("{msg}");
                    self.event("FreeDiskSpaceFailed", msg).await;
                }
            }
            Err(e) => {
                let msg = format!("Image garbage collection failed: {e}");
                tracing::warn!("{msg}");
                self.event("ImageGCFailed", msg).await;
            }
        }
    }

    fn collect_now(&self) -> anyhow::Result<Collected> {
        let store = ImageStore::open(&self.data_dir)?;
        let in_use: Vec<Vec<PathBuf>> =
            kc_runtime::container::Containers::new(&self.data_dir, &self.node_name)
                .list()
                .into_iter()
                .map(|c| c.spec.layers)
                .collect();
        let now = SystemTime::now();
        let keep_after = now.checked_sub(self.minimum_age).unwrap_or(now);
        let mut last_used = self.last_used.lock().map_err(|_| {
            anyhow::anyhow!("the image GC's bookkeeping is unusable (a collection panicked)")
        })?;
        let done =
            disk_pressure::collect_with(&store, self.thresholds, &in_use, keep_after, |c| {
                if c.in_use {
                    last_used.insert(c.manifest.clone(), now);
                }
                if let Some(t) = last_used.get(&c.manifest) {
                    c.last_used = c.last_used.max(*t);
                }
            })?;
        last_used.retain(|d, _| store.blob_path(d).exists());
        Ok(done)
    }

    async fn event(&self, reason: &str, message: String) {
        let event = node_event(&self.node_name, reason, &message);
        let _ = self.events.send(Report::Event(event)).await;
    }
}

/// A Warning Event about this Node, as the kubelet records them (the
/// involvedObject's uid is the node's name, which `kubectl describe node`
/// looks for).
fn node_event(node: &str, reason: &str, message: &str) -> Value {
    let now = chrono::Utc::now();
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{node}.{:x}", now.timestamp_nanos_opt().unwrap_or_default()),
            "namespace": "default",
        },
        "involvedObject": { "kind": "Node", "name": node, "uid": node, "apiVersion": "v1" },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": { "component": "kubelet", "host": node },
        "reportingComponent": "kubelet",
        "reportingInstance": node,
        "firstTimestamp": time,
        "lastTimestamp": time,
        "eventTime": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "count": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_thresholds_parse_like_the_kubelets() {
        let e = Eviction::parse(DEFAULT_EVICTION_HARD).unwrap();
        assert_eq!(e.nodefs_available, Some(Amount::Percent(10)));
        assert_eq!(e.imagefs_available, Some(Amount::Percent(15)));
        let e = Eviction::parse("imagefs.available<500Mi").unwrap();
        assert_eq!(e.imagefs_available, Some(Amount::Bytes(500 << 20)));
        assert_eq!(e.nodefs_available, None);
        assert_eq!(
            Eviction::parse("nodefs.available<2G")
                .unwrap()
                .nodefs_available,
            Some(Amount::Bytes(2_000_000_000))
        );
        assert!(
            Eviction::parse("memory.available<100Mi")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            Eviction::parse("nodefs.available=10%")
                .unwrap_err()
                .contains("SIGNAL<AMOUNT")
        );
        assert!(Eviction::parse("nodefs.available<101%").is_err());
        assert!(Eviction::parse("nodefs.available<lots").is_err());
    }

    #[test]
    fn pressure_is_available_space_below_a_threshold() {
        let e = Eviction::parse(DEFAULT_EVICTION_HARD).unwrap();
        let fs = |available, total| FsUsage { available, total };
        assert_eq!(pressure(&e, fs(500, 1000), fs(500, 1000)), None);
        assert_eq!(
            pressure(&e, fs(100, 1000), fs(150, 1000)),
            None,
            "at the threshold is fine"
        );
        let why = pressure(&e, fs(500, 1000), fs(149, 1000)).unwrap();
        assert!(why.starts_with("imagefs.available is"), "{why}");
        assert!(why.contains("imagefs.available<15%"), "{why}");
        let why = pressure(&e, fs(99, 1000), fs(149, 1000)).unwrap();
        assert!(why.contains("nodefs") && why.contains("imagefs"), "{why}");
        assert_eq!(
            pressure(&Eviction::default(), fs(0, 1000), fs(0, 1000)),
            None
        );
    }

    #[test]
    fn the_disk_pressure_condition_follows_the_measure() {
        let facts = crate::host::HostFacts {
            cpus: 1,
            memory_kib: 1,
            ephemeral_kib: 1,
            addresses: vec![],
            kernel: String::new(),
            os_image: String::new(),
            architecture: "amd64".into(),
        };
        let role = crate::host::NodeRole {
            control_plane: false,
            no_workloads: false,
        };
        let mut node = crate::host::node_object("w", &facts, &role, "t");
        let disk = |n: &Value| {
            n["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "DiskPressure")
                .cloned()
                .unwrap()
        };
        set_disk_pressure(&mut node, Some("imagefs.available is 1Mi"));
        assert_eq!(disk(&node)["status"], "True");
        assert_eq!(disk(&node)["reason"], "KubeletHasDiskPressure");
        assert!(
            disk(&node)["message"]
                .as_str()
                .unwrap()
                .contains("imagefs.available is 1Mi")
        );
        set_disk_pressure(&mut node, None);
        assert_eq!(disk(&node)["status"], "False");
        assert_eq!(disk(&node)["reason"], "KubeletHasNoDiskPressure");
    }

    #[test]
    fn the_shortfall_message_says_what_was_needed_and_found() {
        let done = Collected {
            used_before: 900,
            used_after: 850,
            total: 1000,
            need: 100,
            eligible: 50,
            ..Default::default()
        };
        let msg = shortfall_message(&done, Thresholds::default());
        assert!(
            msg.starts_with("Failed to garbage collect required amount of images. Attempted to free 100 bytes, but only found 50 bytes eligible to free."),
            "{msg}"
        );
    }

    #[test]
    fn node_events_name_the_node_as_kubectl_describe_looks_for_it() {
        let e = node_event("w1", "FreeDiskSpaceFailed", "m");
        assert_eq!(e["involvedObject"]["kind"], "Node");
        assert_eq!(e["involvedObject"]["uid"], "w1");
        assert_eq!(e["type"], "Warning");
        assert!(e["metadata"]["name"].as_str().unwrap().starts_with("w1."));
    }
}
