//! The cluster registry on a real replicated control plane: three members
//! (`kcnode init`, `kcnode join --control-plane` twice) and a worker, each a
//! host in its own network namespace.
//!
//! An image built on member A and pushed to A only (`kcnode image push`
//! through A's API server) reaches B's and C's blob directories without
//! anyone asking (eager replication: the manifest record is committed
//! through Raft, each member copies the blobs it lacks). A is then
//! power-cut (every process of its host killed): a pod on the worker whose
//! image was only ever pushed to A runs — the worker pulled it from a live
//! member, verified, the same manifest digest and image id. A restarted
//! from its data still serves the image, and after a full restart of the
//! three members every member holds every blob and serves the tag.

use std::path::Path;
use std::time::Duration;

use kc_tests::chaos;
use kc_tests::cluster::{Host, eventually};
use kc_tests::container::{stderr, stdout};
use kc_tests::ha::{Plane, kubectl, restart_args, wait_ready};
use serde_json::Value;

const IMAGE: &str = "ha/replicated:1";

/// `kcnode image inspect` of `image` in `data_dir` (on `host`): its
/// manifest digest and image id.
fn inspect(host: &Host, data_dir: &Path, image: &str) -> (String, String) {
    let out = host
        .kcnode()
        .env("KC_DATA_DIR", data_dir)
        .args(["image", "inspect", image])
        .output()
        .expect("kcnode image inspect");
    assert!(out.status.success(), "inspect {image}: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    (
        v[0]["Manifest"].as_str().unwrap_or_default().to_string(),
        v[0]["Id"].as_str().unwrap_or_default().to_string(),
    )
}

/// Pulls `IMAGE` through `member`'s own API server into a fresh store
/// (nothing local to reuse); its manifest digest and image id.
fn pull_via(member: &Host) -> (String, String) {
    let fresh = tempfile::tempdir().expect("a fresh data dir");
    let kubeconfig = member.kubeconfig();
    let mut last = String::new();
    // A member that just started may still be electing a leader (503).
    for _ in 0..30 {
        let out = member
            .kcnode()
            .env("KC_DATA_DIR", fresh.path())
            .args(["pull", IMAGE, "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .expect("kcnode pull");
        if out.status.success() {
            return inspect(member, fresh.path(), IMAGE);
        }
        last = stderr(&out);
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("pull {IMAGE} through {}: {last}", member.name)
}

/// The digests (`sha256:…`) of the manifest `manifest` and of every blob
/// it references, read from `host`'s image store.
fn image_blobs(host: &Host, manifest: &str) -> Vec<String> {
    let hex = manifest.trim_start_matches("sha256:");
    let path = host.data().join("images/blobs/sha256").join(hex);
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the manifest blob")).expect("JSON");
    let mut out = vec![
        manifest.to_string(),
        doc["config"]["digest"].as_str().unwrap().to_string(),
    ];
    out.extend(
        doc["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str().map(str::to_string)),
    );
    out
}

/// The blobs of `blobs` missing from member `host`'s registry directory.
fn missing_on(host: &Host, blobs: &[String]) -> Vec<String> {
    blobs
        .iter()
        .filter(|d| {
            !host
                .data()
                .join("registry/blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
                .exists()
        })
        .cloned()
        .collect()
}

/// A build context whose one file is unique to this run (so no host has
/// the layer by chance).
fn unique_context() -> tempfile::TempDir {
    let ctx = tempfile::tempdir().expect("a build context");
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..(256 << 10))
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    std::fs::write(ctx.path().join("data.bin"), data).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    ctx
}

const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: from-a-replica
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: ha/replicated:1
    command: [\"sh\", \"-c\", \"md5sum /data.bin; sleep 3600\"]
";

#[test]
fn an_image_pushed_to_one_member_survives_its_power_cut_and_a_full_restart() {
    let mut plane = Plane::start(3);
    let (w, mut worker) = plane.join_worker();
    // Dropped before `plane`: every kcnode is killed before its namespace goes.
    let mut procs = std::mem::take(&mut plane.procs);
    let hosts = plane.refs();
    wait_ready(hosts[1], &w.name);

    // Built on A and pushed to A only.
    let a = hosts[0];
    let ctx = unique_context();
    for args in [
        vec!["image", "base", "busybox"],
        vec!["build", "-t", IMAGE, ctx.path().to_str().unwrap()],
    ] {
        let out = a.run(&args);
        assert!(out.status.success(), "{args:?} on A: {}", stderr(&out));
    }
    a.push_image(IMAGE);
    let (manifest, image_id) = inspect(a, a.data(), IMAGE);
    let blobs = image_blobs(a, &manifest);
    assert_eq!(
        blobs.len(),
        4,
        "manifest, config, busybox layer, data layer"
    );
    assert!(
        missing_on(a, &blobs).is_empty(),
        "A holds what it was pushed"
    );

    // B and C copy every blob without being asked.
    let replicated = chaos::measure(
        Duration::from_secs(60),
        "blobs of a push to A replicated to B and C",
        || hosts[1..].iter().all(|h| missing_on(h, &blobs).is_empty()),
    );
    assert!(replicated < Duration::from_secs(60));

    // Power cut of A: its kcnode and every process of its host.
    procs[0].take().expect("A running").kill();
    chaos::kill_host(a);
    eventually(Duration::from_secs(60), "the pod created through B", || {
        let out = kc_tests::chaos::kubectl_stdin(
            hosts[1],
            &hosts[1].kubeconfig(),
            &["--request-timeout=5s", "apply", "-f", "-"],
            POD,
        );
        out.status.success().then_some(())
    });
    let pod = eventually(
        Duration::from_secs(120),
        "the pod whose image only A was pushed Running on the worker",
        || {
            let out = kubectl(hosts[1], &["get", "pod", "from-a-replica", "-o", "json"]);
            let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
            (pod["status"]["phase"] == "Running").then_some(pod)
        },
    );
    assert_eq!(pod["spec"]["nodeName"], w.name.as_str());
    let reported = pod["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap_or_default();
    let id_hex = image_id.trim_start_matches("sha256:");
    assert!(
        reported.contains(id_hex),
        "the pod runs image {image_id}, reported {reported:?}"
    );
    assert_eq!(
        inspect(&w, w.data(), IMAGE),
        (manifest.clone(), image_id.clone()),
        "the worker pulled the pushed image (same manifest digest and id)"
    );
    // Logs through each survivor: the worker's session is with one of
    // them, so the other relays the stream to it (`kc-relay/1`).
    for h in &hosts[1..] {
        let log = eventually(Duration::from_secs(30), "the pod's logs", || {
            let out = kubectl(h, &["logs", "from-a-replica"]);
            out.status.success().then_some(out)
        });
        assert!(
            stdout(&log).contains("/data.bin"),
            "via {}: {}",
            h.name,
            stderr(&log)
        );
    }

    // A, restarted from its data, still serves the image.
    let mut back = a.spawn("restart", &restart_args(0));
    back.wait_line("control plane of", Duration::from_secs(60));
    procs[0] = Some(back);
    assert_eq!(pull_via(a), (manifest.clone(), image_id.clone()));

    // A full restart of the three members keeps every tag and blob.
    for p in procs.iter_mut().flatten() {
        p.kill();
    }
    for (i, h) in hosts.iter().enumerate() {
        chaos::kill_host(h);
        procs[i] = Some(h.spawn("full-restart", &restart_args(i)));
    }
    for p in procs.iter_mut().flatten() {
        p.wait_line("control plane of", Duration::from_secs(120));
    }
    for h in &hosts {
        assert!(
            missing_on(h, &blobs).is_empty(),
            "{} lost blobs in the restart",
            h.name
        );
        assert_eq!(
            pull_via(h),
            (manifest.clone(), image_id.clone()),
            "{} serves the image after a full restart",
            h.name
        );
    }
    worker.kill();
}
