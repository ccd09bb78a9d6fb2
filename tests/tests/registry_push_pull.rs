//! `kcnode image push` and `kcnode pull` through the cluster registry: an
//! image made on one node (data dir) is pushed, pulled on another and run
//! there; pulls resume a partial download and discard a corrupt one.

mod api_common;
mod image_support;

use api_common::ApiServer;
use image_support::Node;
use kc_tests::require_root;

fn with_kubeconfig<'a>(server: &'a ApiServer, args: &[&'a str]) -> Vec<&'a str> {
    let mut out = args.to_vec();
    out.push("--kubeconfig");
    out.push(server.kubeconfig.to_str().expect("utf-8 path"));
    out
}

/// The largest blob (the busybox layer) of image `name` in `node`'s store.
fn largest_blob(node: &Node) -> (String, Vec<u8>) {
    std::fs::read_dir(node.data_dir().join("images/blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .max_by_key(|(_, d)| d.len())
        .expect("the store has blobs")
}

#[test]
fn an_image_pushed_from_one_node_is_pulled_and_run_on_another() {
    require_root();
    let server = ApiServer::start();
    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "basicserver:0.42"]);
    let out = builder.ok(&with_kubeconfig(
        &server,
        &["image", "push", "basicserver:0.42"],
    ));
    assert!(out.contains("2 blobs uploaded, 0 already there"), "{out}");
    let again = builder.ok(&with_kubeconfig(
        &server,
        &["image", "push", "basicserver:0.42"],
    ));
    assert!(
        again.contains("0 blobs uploaded, 2 already there"),
        "{again}"
    );

    let worker = Node::new();
    let pulled = worker.ok(&with_kubeconfig(&server, &["pull", "basicserver:0.42"]));
    assert!(pulled.starts_with("Pulled basicserver:0.42"), "{pulled}");
    assert_eq!(
        builder.images(),
        worker.images(),
        "same name, same image id"
    );
    assert_eq!(
        worker.ok(&["run", "--rm", "basicserver:0.42", "echo", "ok"]),
        "ok\n"
    );

    // By full reference (host:port/name:tag), the name it is stored under.
    let host = server.url.trim_start_matches("https://").to_string();
    let full = format!("{host}/basicserver:0.42");
    worker.ok(&with_kubeconfig(&server, &["pull", &full]));
    assert!(
        worker.images().iter().any(|(n, _)| *n == full),
        "{:?}",
        worker.images()
    );

    // A missing image names the registry's answer.
    let err = worker.fails(&with_kubeconfig(&server, &["pull", "nosuch:1"]));
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn an_interrupted_pull_resumes_and_a_corrupt_partial_download_is_discarded_and_fetched_whole() {
    let server = ApiServer::start();
    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "resume:1"]);
    builder.ok(&with_kubeconfig(&server, &["image", "push", "resume:1"]));
    let (hex, layer) = largest_blob(&builder);

    // Half of the layer already downloaded: the pull asks for the rest.
    let worker = Node::new();
    let pulls = worker.data_dir().join("images/pulls");
    std::fs::create_dir_all(&pulls).unwrap();
    std::fs::write(
        pulls.join(format!("{hex}.partial")),
        &layer[..layer.len() / 2],
    )
    .unwrap();
    worker.ok(&with_kubeconfig(&server, &["pull", "resume:1"]));
    assert_eq!(builder.images(), worker.images());
    assert!(!pulls.join(format!("{hex}.partial")).exists());

    // A partial download that is garbage: the resumed blob does not verify
    // (which also proves the pull above resumed: starting over would have
    // overwritten the garbage), so the garbage is deleted and the layer is
    // fetched whole in the same pull, which succeeds. A partial is never
    // trusted twice; nothing is left in pulls/.
    let other = Node::new();
    let pulls = other.data_dir().join("images/pulls");
    std::fs::create_dir_all(&pulls).unwrap();
    std::fs::write(
        pulls.join(format!("{hex}.partial")),
        vec![b'x'; layer.len() / 2],
    )
    .unwrap();
    let out = other.kcnode(&with_kubeconfig(&server, &["pull", "resume:1"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("a resumed download did not verify") && err.contains("digest mismatch"),
        "{err}"
    );
    assert_eq!(builder.images(), other.images());
    let left: Vec<_> = std::fs::read_dir(&pulls).unwrap().collect();
    assert!(left.is_empty(), "pulls/ keeps {left:?}");
}

/// Runs `kcctl` with `server`'s kubeconfig; asserts success, returns stdout.
fn kcctl_ok(server: &ApiServer, args: &[&str]) -> String {
    let out = std::process::Command::new(kc_tests::bin("kcctl"))
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kcctl");
    assert!(
        out.status.success(),
        "kcctl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn kcctl_image_load_sends_local_and_archived_images_that_another_node_pulls_identical() {
    require_root();
    let server = ApiServer::start();
    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "loaded:1"]);
    let data_dir = builder.data_dir().to_str().unwrap().to_string();

    // From this host's kcnode image store.
    let out = kcctl_ok(
        &server,
        &["image", "load", "loaded:1", "--data-dir", &data_dir],
    );
    assert!(
        out.starts_with("Loaded image loaded:1 into the cluster registry")
            && out.contains("2 blobs uploaded, 0 already there"),
        "{out}"
    );
    let worker = Node::new();
    worker.ok(&with_kubeconfig(&server, &["pull", "loaded:1"]));
    assert_eq!(
        builder.images(),
        worker.images(),
        "same name, same image id"
    );
    assert_eq!(
        worker.ok(&["run", "--rm", "loaded:1", "echo", "ok"]),
        "ok\n"
    );

    // From an OCI layout made by umoci (no kcnode store involved).
    let dir = tempfile::tempdir().unwrap();
    let layout = image_support::umoci_image(dir.path());
    let out = kcctl_ok(&server, &["image", "load", "-i", layout.to_str().unwrap()]);
    assert!(
        out.starts_with("Loaded image layout:v1 into the cluster registry"),
        "{out}"
    );
    worker.ok(&with_kubeconfig(&server, &["pull", "layout:v1"]));
    assert_eq!(
        worker.ok(&["run", "--rm", "layout:v1"]),
        "hello from umoci\n"
    );

    // From a `kcnode image save` archive (docker-archive + OCI layout).
    let tar = dir.path().join("saved.tar");
    builder.ok(&["image", "save", "loaded:1", "-o", tar.to_str().unwrap()]);
    let out = kcctl_ok(
        &server,
        &["image", "load", "-i", tar.to_str().unwrap(), "loaded:1"],
    );
    assert!(out.contains("0 blobs uploaded, 2 already there"), "{out}");
}
