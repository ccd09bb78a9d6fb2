//! The node agent's own image garbage collection and its DiskPressure
//! condition, on a real worker (`kcnode join`) whose image store is a
//! small tmpfs the test fills (so the machine's real disk decides nothing):
//!
//! - below `--image-gc-high-threshold` nothing is removed and the Node's
//!   DiskPressure is False;
//! - above it, the agent removes unused images on its own, least recently
//!   used first and only as many as bring usage under
//!   `--image-gc-low-threshold`; the image a running pod uses stays;
//! - when even removing every unused image cannot get there, a Warning
//!   Event `FreeDiskSpaceFailed` names the Node, and with the image
//!   filesystem's free space under `--eviction-hard imagefs.available<20%`
//!   DiskPressure turns True (`KubeletHasDiskPressure`); freeing the space
//!   turns it False again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kc_runtime::image::disk_pressure::usage;
use kc_tests::cluster::{Host, Lan, eventually};
use kc_tests::container::stderr;
use kc_tests::ha::{self, kubectl};
use serde_json::Value;

/// A tmpfs mounted at a path for the test; lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "kc-test-images",
            ])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount tmpfs at {}: {}",
            at.display(),
            stderr(&out)
        );
        Tmpfs(at.to_path_buf())
    }

    /// Percent of the tmpfs used.
    fn percent(&self) -> f64 {
        let (used, total) = usage(&self.0).expect("statvfs of the tmpfs");
        used as f64 * 100.0 / total as f64
    }

    /// Writes `name` so that usage becomes about `target` percent.
    fn fill_to(&self, name: &str, target: f64) {
        let (used, total) = usage(&self.0).expect("statvfs of the tmpfs");
        let want = (total as f64 * target / 100.0) as u64;
        let size = want.saturating_sub(used) as usize;
        std::fs::write(self.0.join(name), vec![1u8; size]).expect("write the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A build context of `kib` KiB of data unique to this image.
fn build(host: &Host, tag: &str, kib: usize) {
    let ctx = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..kib << 10).map(|_| rand::random::<u8>()).collect();
    std::fs::write(ctx.path().join("data.bin"), data).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    let out = host.run(&["build", "-t", tag, ctx.path().to_str().unwrap()]);
    assert!(out.status.success(), "build {tag}: {}", stderr(&out));
}

fn tags(host: &Host) -> Vec<String> {
    let out = host.run(&["images"]);
    let mut t: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(format!("{}:{}", f.first()?, f.get(1)?))
        })
        .collect();
    t.sort();
    t
}

/// The worker's DiskPressure condition as the API shows it.
fn disk_pressure(cp: &Host, node: &str) -> Value {
    let out = kubectl(cp, &["get", "node", node, "-o", "json"]);
    let node: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DiskPressure").cloned())
        .unwrap_or_default()
}

const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: user
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: [\"sleep\", \"3600\"]
";

#[test]
fn the_agent_collects_unused_images_and_reports_disk_pressure() {
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    let fs = Tmpfs::mount(&w.data().join("images"), "100m");
    let img = w.run(&["image", "base", "busybox"]);
    assert!(img.status.success(), "busybox: {}", stderr(&img));
    build(&w, "old:1", 12 << 10);
    std::thread::sleep(Duration::from_millis(1100));
    build(&w, "new:1", 2 << 10);
    // Nodes get images by pulls: no build cache holding their layers.
    let out = w.run(&["image", "prune"]);
    assert!(out.status.success(), "prune: {}", stderr(&out));
    let start = fs.percent();
    assert!(start < 50.0, "images take {start:.0}% of the tmpfs");

    let (init, joins) = ha::init(&cp, &["--no-workloads"]);
    let flags = [
        "--image-gc-high-threshold",
        "60",
        "--image-gc-low-threshold",
        "55",
        "--image-gc-period",
        "1s",
        "--image-minimum-gc-age",
        "0s",
        "--eviction-hard",
        "imagefs.available<20%",
    ];
    let worker = ha::join(&w, "join", &joins.worker, &flags);
    let _procs = (init, worker);
    ha::wait_ready(&cp, &w.name);
    cp.apply(POD);
    eventually(Duration::from_secs(60), "the pod Running", || {
        let out = kubectl(
            &cp,
            &["get", "pod", "user", "-o", "jsonpath={.status.phase}"],
        );
        (String::from_utf8_lossy(&out.stdout) == "Running").then_some(())
    });

    // Below the high mark: nothing goes, no pressure.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tags(&w), ["busybox:latest", "new:1", "old:1"]);
    assert_eq!(disk_pressure(&cp, &w.name)["status"], "False");

    // Over 60 %: the least recently used unused image goes (old:1, 12 MiB
    // of blobs, more than the ~8 % to free), the newer one stays.
    fs.fill_to("filler-1", 63.0);
    eventually(Duration::from_secs(30), "old:1 collected", || {
        (tags(&w) == ["busybox:latest", "new:1"]).then_some(())
    });
    let after = fs.percent();
    assert!(after < 55.0, "usage after the collection: {after:.0}%");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tags(&w), ["busybox:latest", "new:1"], "no more than needed");

    // Full beyond what GC can free: every unused image goes, the used one
    // stays, the Node gets FreeDiskSpaceFailed and DiskPressure.
    fs.fill_to("filler-2", 88.0);
    eventually(Duration::from_secs(30), "new:1 collected", || {
        (tags(&w) == ["busybox:latest"]).then_some(())
    });
    let c = eventually(Duration::from_secs(30), "DiskPressure True", || {
        let c = disk_pressure(&cp, &w.name);
        (c["status"] == "True").then_some(c)
    });
    assert_eq!(c["reason"], "KubeletHasDiskPressure");
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("imagefs.available"),
        "{c}"
    );
    let event = eventually(
        Duration::from_secs(30),
        "a FreeDiskSpaceFailed event",
        || {
            let out = kubectl(&cp, &["get", "events", "-A", "-o", "json"]);
            let list: Value = serde_json::from_slice(&out.stdout).ok()?;
            list["items"]
                .as_array()?
                .iter()
                .find(|e| {
                    e["reason"] == "FreeDiskSpaceFailed"
                        && e["involvedObject"]["name"] == w.name.as_str()
                })
                .cloned()
        },
    );
    assert_eq!(event["involvedObject"]["kind"], "Node");
    assert!(
        event["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Failed to garbage collect required amount of images"),
        "{event}"
    );
    let out = kubectl(&cp, &["describe", "node", &w.name]);
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(described.contains("FreeDiskSpaceFailed"), "{described}");
    let out = kubectl(
        &cp,
        &["get", "pod", "user", "-o", "jsonpath={.status.phase}"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Running");

    // Space freed: the pressure ends.
    for f in ["filler-1", "filler-2"] {
        std::fs::remove_file(w.data().join("images").join(f)).unwrap();
    }
    eventually(Duration::from_secs(30), "DiskPressure False again", || {
        (disk_pressure(&cp, &w.name)["reason"] == "KubeletHasNoDiskPressure").then_some(())
    });
}
