//! Blob replication between control-plane members: a member asked for a
//! blob it lacks fetches it from a peer (verified) and keeps it; and every
//! member copies the blobs of a committed manifest eagerly, catching up on
//! restart, so the image survives the loss of the member it was pushed to.
//!
//! Two `kcnode serve-api` processes sharing one cluster CA stand in for two
//! members. Each has its own one-member store, so the test plays Raft's
//! part for the manifest record: it PUTs the manifest to the second member
//! too (accepted because its blobs are on a peer), which is what every
//! member's store would hold after the commit in a multi-member cluster.

mod api_common;
mod image_support;

use std::process::Command;

use api_common::ApiServer;
use image_support::Node;

/// curl on `server`'s `path` as the admin, with `extra` arguments: the
/// status and the body.
fn curl(server: &ApiServer, path: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "%{http_code}", "--cacert"])
        .arg(server.ca_pem())
        .args([
            "-H",
            &format!("Authorization: Bearer {}", server.admin_token()),
        ])
        .args(extra)
        .arg(format!("{}{path}", server.url))
        .output()
        .expect("run curl");
    let mut body = out.stdout;
    let code: Vec<u8> = body.split_off(body.len() - 3);
    (String::from_utf8(code).unwrap().parse().unwrap(), body)
}

fn curl_blob(server: &ApiServer, digest: &str) -> (u16, Vec<u8>) {
    curl(server, &format!("/v2/any/repo/blobs/{digest}"), &[])
}

/// Copies the cluster CA of `first` into a new data dir for a second member.
fn second_member_dir(first: &ApiServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(
            first.dir.path().join("pki").join(f),
            dir.path().join("pki").join(f),
        )
        .unwrap();
    }
    dir
}

/// The blobs (hex digest -> bytes) of a node's image store.
fn node_blobs(node: &Node) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(node.data_dir().join("images/blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn member_has(server: &ApiServer, hex: &str) -> bool {
    server
        .dir
        .path()
        .join("registry/blobs/sha256")
        .join(hex)
        .exists()
}

/// Waits until `server` holds every blob of `blobs` on its disk.
fn wait_replicated(server: &ApiServer, blobs: &[(String, Vec<u8>)], what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let missing: Vec<&str> = blobs
            .iter()
            .filter(|(hex, _)| !member_has(server, hex))
            .map(|(hex, _)| hex.as_str())
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: blobs {missing:?} never reached the member within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_committed_manifest_is_replicated_eagerly_and_survives_the_member_it_was_pushed_to() {
    kc_tests::require_root();
    kc_tests::require_program("curl", "curl");
    let first = ApiServer::start();
    let host = first.url.trim_start_matches("https://").to_string();
    let peer = ["--registry-peer", host.as_str()];
    let second = ApiServer::start_with(second_member_dir(&first), &peer);

    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "eager:1"]);
    let kubeconfig = first.kubeconfig.to_str().unwrap().to_string();
    builder.ok(&["image", "push", "eager:1", "--kubeconfig", &kubeconfig]);
    let blobs = node_blobs(&builder);
    assert_eq!(blobs.len(), 3, "manifest, config and one layer");
    assert!(blobs.iter().all(|(hex, _)| !member_has(&second, hex)));

    // The manifest record reaches the second member's store (Raft's part,
    // played by the test): a manifest whose blobs are only on a peer is
    // accepted, and the second member copies them without being asked.
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let (code, manifest) = curl(&first, "/v2/eager/manifests/1", &["-H", accept]);
    assert_eq!(code, 200);
    let path = std::env::temp_dir().join(format!("kc-manifest-{}", std::process::id()));
    std::fs::write(&path, &manifest).unwrap();
    let body = format!("@{}", path.display());
    let put = [
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        body.as_str(),
    ];
    let (code, text) = curl(&second, "/v2/eager/manifests/1", &put);
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&text));
    wait_replicated(&second, &blobs, "after the manifest was committed");

    // A member that lost blobs while down (here: deleted) catches up on
    // restart from the manifests in its store.
    let layer = blobs.iter().max_by_key(|(_, d)| d.len()).unwrap();
    std::fs::remove_file(
        second
            .dir
            .path()
            .join("registry/blobs/sha256")
            .join(&layer.0),
    )
    .unwrap();
    let second = second.restart(&peer);
    wait_replicated(&second, &blobs, "after a restart");

    // The member the image was pushed to is gone: everything is pulled
    // from the second one, bit-identical.
    drop(first);
    for (hex, data) in &blobs {
        let (code, body) = curl_blob(&second, &format!("sha256:{hex}"));
        assert_eq!(code, 200, "blob {hex}");
        assert!(body == *data, "blob {hex} differs from the pushed one");
    }
    let worker = Node::new();
    let kubeconfig = second.kubeconfig.to_str().unwrap().to_string();
    worker.ok(&["pull", "eager:1", "--kubeconfig", &kubeconfig]);
    assert_eq!(builder.images(), worker.images(), "same image id");
    assert_eq!(node_blobs(&worker), blobs, "bit-identical blobs");

    // A manifest whose blobs no member has is refused.
    let doc = String::from_utf8(manifest).unwrap();
    let bogus = doc.replacen(&layer.0, &"1".repeat(64), 1);
    std::fs::write(&path, bogus).unwrap();
    let (code, _) = curl(&second, "/v2/eager/manifests/2", &put);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 400, "a manifest with an unknown blob is refused");
}

#[test]
fn a_member_fetches_a_blob_it_lacks_from_its_peer_and_keeps_it() {
    kc_tests::require_program("curl", "curl");
    let first = ApiServer::start();
    let host = first.url.trim_start_matches("https://").to_string();
    // The second member joins the same cluster: same CA (its own
    // server/admin certificates are issued from it).
    let second = ApiServer::start_with(second_member_dir(&first), &["--registry-peer", &host]);

    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "rep:1"]);
    let kubeconfig = first.kubeconfig.to_str().unwrap().to_string();
    builder.ok(&["image", "push", "rep:1", "--kubeconfig", &kubeconfig]);
    let (hex, layer) = node_blobs(&builder)
        .into_iter()
        .max_by_key(|(_, d)| d.len())
        .unwrap();
    let digest = format!("sha256:{hex}");
    let on_disk = |s: &ApiServer| member_has(s, &hex);
    assert!(on_disk(&first) && !on_disk(&second));

    // Asked for it, the second member fetches it from the first.
    let (code, body) = curl_blob(&second, &digest);
    assert_eq!(code, 200);
    assert!(
        body == layer,
        "the fetched blob differs from the pushed one"
    );
    assert!(on_disk(&second), "the fetched blob is kept");

    // Once the first member is gone, the second still serves it.
    drop(first);
    let (code, body) = curl_blob(&second, &digest);
    assert_eq!(code, 200);
    assert!(body == layer);

    // A blob no member has is still unknown (and does not hang).
    let missing = format!("sha256:{}", "0".repeat(64));
    assert_eq!(curl_blob(&second, &missing).0, 404);
}
