//! Blob replication between control-plane members: a member asked for a
//! blob it lacks fetches it from a peer (verified) and keeps it, so the
//! image survives the loss of the member it was pushed to.
//!
//! Two `kcnode serve-api` processes sharing one cluster CA stand in for two
//! members (each with its own store; only blobs are exercised here).

mod api_common;
mod image_support;

use std::process::Command;

use api_common::ApiServer;
use image_support::Node;

fn curl_blob(server: &ApiServer, digest: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "%{http_code}", "--cacert"])
        .arg(server.ca_pem())
        .args([
            "-H",
            &format!("Authorization: Bearer {}", server.admin_token()),
        ])
        .arg(format!("{}/v2/any/repo/blobs/{digest}", server.url))
        .output()
        .expect("run curl");
    let mut body = out.stdout;
    let code: Vec<u8> = body.split_off(body.len() - 3);
    (String::from_utf8(code).unwrap().parse().unwrap(), body)
}

#[test]
fn a_member_fetches_a_blob_it_lacks_from_its_peer_and_keeps_it() {
    kc_tests::require_program("curl", "curl");
    let first = ApiServer::start();
    let host = first.url.trim_start_matches("https://").to_string();
    // The second member joins the same cluster: same CA (its own
    // server/admin certificates are issued from it).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(
            first.dir.path().join("pki").join(f),
            dir.path().join("pki").join(f),
        )
        .unwrap();
    }
    let second = ApiServer::start_with(dir, &["--registry-peer", &host]);

    let builder = Node::new();
    builder.ok(&["image", "base", "busybox", "--tag", "rep:1"]);
    let kubeconfig = first.kubeconfig.to_str().unwrap().to_string();
    builder.ok(&["image", "push", "rep:1", "--kubeconfig", &kubeconfig]);
    let (hex, layer) = std::fs::read_dir(builder.data_dir().join("images/blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .max_by_key(|(_, d)| d.len())
        .unwrap();
    let digest = format!("sha256:{hex}");
    let on_disk = |s: &ApiServer| {
        s.dir
            .path()
            .join("registry/blobs/sha256")
            .join(&hex)
            .exists()
    };
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
