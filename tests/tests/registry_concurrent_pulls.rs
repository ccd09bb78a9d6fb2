//! What a newcomer does first: a Deployment of many replicas of an image no
//! node has pulled yet, all landing on one worker at once. Every pod's
//! worker asks for the same image in the same instant; the pulls are
//! shared (one download per blob on the node), so every pod runs and no
//! pull ever fails. (Before, two pulls of one blob wrote into one partial
//! file, the corrupt partial was resumed for ever and some pods stayed
//! ImagePullBackOff: 2 of 3 tries on a 1+2 testnet.) A second image, with a
//! corrupt partial download of its largest layer planted on the worker,
//! proves a partial that does not verify is discarded, not resumed.

use std::time::Duration;

use kc_tests::cluster::{Lan, eventually};
use kc_tests::container::stdout;

const REPLICAS: usize = 12;

#[test]
fn many_pods_of_an_unpulled_image_start_at_once_on_one_node_and_all_run() {
    kc_tests::require_root();
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    // The worker has no image at all: everything comes from the registry.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("data.bin"), noise(4 << 20)).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM fresh:1\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    for args in [
        vec!["image", "base", "busybox", "--tag", "fresh:1"],
        vec!["build", "-t", "second:1", ctx.path().to_str().unwrap()],
    ] {
        let out = cp.run(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            kc_tests::container::stderr(&out)
        );
    }
    let mut _init = cp.spawn("init", &["init", "--heartbeat", "1s", "--no-workloads"]);
    let line = _init.wait_line("kcnode join", Duration::from_secs(60));
    let mut join: Vec<&str> = line.split_whitespace().skip(1).collect();
    join.extend(["--heartbeat", "1s"]);
    let _worker = w.spawn("join", &join);
    let kc = cp.kubeconfig();
    eventually(Duration::from_secs(60), "worker Ready", || {
        cp.node_ready(&w.name)
    });
    cp.push_image("fresh:1");
    cp.push_image("second:1");

    cp.apply(&deployment("fresh", "fresh:1"));
    wait_all_running(&cp, &kc, "fresh");
    let pulls = w.data().join("images/pulls");
    assert_no_pull_failures(&cp, &kc);

    // The second image's data layer, half written as garbage: the pull
    // resumes it, the digest does not match, the partial is deleted and the
    // layer is fetched whole; the pods run and no pull fails.
    let layer = largest_blob(&cp.data().join("images"));
    std::fs::create_dir_all(&pulls).unwrap();
    let planted = pulls.join(format!("{}.partial", layer.0));
    std::fs::write(&planted, vec![b'x'; layer.1 as usize / 2]).unwrap();
    cp.apply(&deployment("second", "second:1"));
    wait_all_running(&cp, &kc, "second");
    assert!(!planted.exists(), "the corrupt partial is still on disk");
    assert_no_pull_failures(&cp, &kc);
    let left: Vec<String> = std::fs::read_dir(&pulls)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "pulls/ keeps {left:?}");
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {REPLICAS}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: {image}\n        command: [\"sleep\", \"3600\"]\n"
    )
}

fn wait_all_running(cp: &kc_tests::cluster::Host, kc: &std::path::Path, app: &str) {
    let selector = format!("app={app}");
    eventually(
        Duration::from_secs(120),
        &format!("{REPLICAS} {app} pods Running"),
        || {
            let out = cp.kubectl(kc, &["get", "pods", "-l", &selector, "--no-headers"]);
            let text = stdout(&out);
            let running = text.lines().filter(|l| l.contains(" Running ")).count();
            (running == REPLICAS).then_some(())
        },
    );
}

/// No pod ever reported a failed pull (events of reason Failed/ErrImagePull/BackOff on images).
fn assert_no_pull_failures(cp: &kc_tests::cluster::Host, kc: &std::path::Path) {
    let out = cp.kubectl(kc, &["get", "events", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).expect("events JSON");
    let failures: Vec<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let msg = e["message"].as_str().unwrap_or_default();
            let reason = e["reason"].as_str().unwrap_or_default();
            reason == "ErrImagePull"
                || reason == "ImagePullBackOff"
                || (reason == "Failed" && msg.contains("pull"))
        })
        .map(|e| format!("{}: {}", e["reason"], e["message"]))
        .collect();
    assert!(failures.is_empty(), "pull failures: {failures:#?}");
}

/// `len` bytes that gzip cannot shrink, so the layer holding them is the
/// largest blob of the store.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// (hex, size) of the largest blob in the image store at `images`.
fn largest_blob(images: &std::path::Path) -> (String, u64) {
    std::fs::read_dir(images.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let size = e.metadata().unwrap().len();
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .max_by_key(|(_, size)| *size)
        .expect("a blob")
}
