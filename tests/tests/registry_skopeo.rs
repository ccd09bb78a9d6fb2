//! The cluster registry judged by real clients: skopeo pushes an OCI image
//! made by umoci to `kcnode serve-api`'s `/v2/` and pulls it back
//! bit-identical; curl shows the protocol's refusals (anonymous callers,
//! a corrupted upload, a manifest whose blobs were never pushed).

mod api_common;
mod image_support;

use std::path::Path;
use std::process::Command;

use api_common::ApiServer;
use image_support::{run, umoci_image};
use kc_tests::require_program;

/// `curl` against the registry: (status, body). `auth` is a `user:pass`.
fn curl(
    server: &ApiServer,
    auth: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let work = server.dir.path().join("curl-body");
    std::fs::write(&work, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg("--cacert")
        .arg(server.ca_pem())
        .arg("--data-binary")
        .arg(format!("@{}", work.display()));
    if let Some(a) = auth {
        cmd.args(["-u", a]);
    }
    let out = cmd
        .arg(format!("{}{path}", server.url))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("curl printed a status");
    (
        code.trim().parse().expect("a status code"),
        body.to_string(),
    )
}

fn curl_headers(server: &ApiServer, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(server.ca_pem())
        .arg(format!("{}{path}", server.url))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

fn sha256_of(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Every file of an OCI layout's blobs dir, sorted: (name, content).
fn blobs(layout: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
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

#[test]
fn skopeo_pushes_an_umoci_image_and_pulls_it_back_bit_identical() {
    require_program("skopeo", "skopeo");
    let server = ApiServer::start();
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path());
    let creds = format!("kc:{}", server.admin_token());
    let host = server.url.trim_start_matches("https://").to_string();
    // skopeo reads the CA from a cert dir as `ca.crt`.
    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(server.ca_pem(), certs.join("ca.crt")).unwrap();
    let dest = format!("docker://{host}/test/img:1");
    run(Command::new("skopeo")
        .args(["copy", "--dest-creds", &creds, "--dest-cert-dir"])
        .arg(&certs)
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&dest));
    // Pushing again finds every blob already there.
    run(Command::new("skopeo")
        .args(["copy", "--dest-creds", &creds, "--dest-cert-dir"])
        .arg(&certs)
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}/test/img:again")));

    let back = work.path().join("back");
    run(Command::new("skopeo")
        .args(["copy", "--src-creds", &creds, "--src-cert-dir"])
        .arg(&certs)
        .arg(&dest)
        .arg(format!("oci:{}:v1", back.display())));
    let index = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p.join("index.json")).unwrap()).unwrap()
    };
    assert_eq!(
        index(&layout)["manifests"][0]["digest"],
        index(&back)["manifests"][0]["digest"],
        "the manifest came back with another digest"
    );
    // Every blob that came back is byte for byte one of the original's
    // (umoci's layout also keeps older, unreferenced blobs) and is what its
    // name says; and they are the whole image: manifest, config, layers.
    let original: std::collections::BTreeMap<_, _> = blobs(&layout).into_iter().collect();
    let returned = blobs(&back);
    for (name, data) in &returned {
        assert!(
            original.get(name) == Some(data),
            "blob {name} came back different from what was pushed"
        );
        assert_eq!(sha256_of(data), format!("sha256:{name}"));
    }
    let manifest_hex = index(&back)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(&original[&manifest_hex]).unwrap();
    let layers = manifest["layers"].as_array().unwrap().len();
    assert_eq!(
        returned.len(),
        2 + layers,
        "manifest, config and {layers} layers"
    );

    // Tag list and catalog, through Basic auth with the token.
    let (code, body) = curl(&server, Some(&creds), "GET", "/v2/test/img/tags/list", b"");
    assert_eq!(code, 200, "{body}");
    let tags: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1", "again"]));
    let (code, body) = curl(&server, Some(&creds), "GET", "/v2/_catalog", b"");
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"repositories":["test/img"]}"#)
    );
}

#[test]
fn anonymous_callers_corrupt_uploads_and_dangling_manifests_are_refused() {
    require_program("curl", "curl");
    let server = ApiServer::start();
    let creds = format!("kc:{}", server.admin_token());

    // Anonymous: 401 with a Basic challenge, so docker/skopeo send credentials.
    let (code, body) = curl(&server, None, "GET", "/v2/", b"");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("UNAUTHORIZED"), "{body}");
    let headers = curl_headers(&server, "/v2/");
    assert!(
        headers.contains("www-authenticate: basic realm=\"kc\""),
        "{headers}"
    );
    // A wrong token is anonymous too.
    assert_eq!(curl(&server, Some("kc:wrong"), "GET", "/v2/", b"").0, 401);
    assert_eq!(
        curl(&server, Some(&creds), "GET", "/v2/", b""),
        (200, "{}".into())
    );

    // A monolithic upload whose content is not what its digest says.
    let original = b"the layer as it was meant to be";
    let digest = sha256_of(original);
    let (code, body) = curl(
        &server,
        Some(&creds),
        "POST",
        &format!("/v2/test/bad/blobs/uploads/?digest={digest}"),
        b"the layer, corrupted on the way",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    let (code, _) = curl(
        &server,
        Some(&creds),
        "GET",
        &format!("/v2/test/bad/blobs/{digest}"),
        b"",
    );
    assert_eq!(code, 404, "a refused upload must not be stored");

    // The same content, right this time, is accepted and served back.
    let (code, body) = curl(
        &server,
        Some(&creds),
        "POST",
        &format!("/v2/test/bad/blobs/uploads/?digest={digest}"),
        original,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = curl(
        &server,
        Some(&creds),
        "GET",
        &format!("/v2/test/bad/blobs/{digest}"),
        b"",
    );
    assert_eq!((code, body.as_bytes()), (200, &original[..]));

    // A manifest naming a blob nobody pushed.
    let missing = sha256_of(b"never pushed");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": original.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 12}]
    });
    let (code, body) = curl(
        &server,
        Some(&creds),
        "PUT",
        "/v2/test/bad/manifests/1",
        manifest.to_string().as_bytes(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    let (code, _) = curl(
        &server,
        Some(&creds),
        "GET",
        "/v2/test/bad/manifests/1",
        b"",
    );
    assert_eq!(code, 404);
}
