//! `kcnode image import` / `save`: images made by umoci and skopeo (OCI
//! layout dir and tar, oci-archive, docker-archive) import with their
//! content intact; save round-trips; each kind of bad input is refused
//! with a clear error and leaves the store exactly as it was.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_support::{Node, run, tar_dir, umoci_image};
use kc_tests::{require_program, require_root};

/// The file `rel` in the image's (only) unpacked layer that has it.
fn layer_file(node: &Node, rel: &str) -> Option<String> {
    let layers = node.data_dir().join("images/layers");
    fs::read_dir(layers)
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path().join(rel)).ok())
        .next()
}

#[test]
fn umoci_and_skopeo_images_import_and_save_round_trips() {
    require_root();
    require_program("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path());
    let node = Node::new();

    // An OCI layout directory: the bare tag is put on the directory's name.
    assert_eq!(
        node.ok(&["image", "import", layout.to_str().unwrap()]),
        "Loaded image: layout:v1\n"
    );
    let id = node.images()[0].1.clone();
    assert_eq!(
        layer_file(&node, "hello.txt").as_deref(),
        Some("hello from umoci\n")
    );
    // And it runs: its Cmd is `cat /hello.txt` (in its own network namespace).
    assert_eq!(node.ok(&["run", "--rm", "layout:v1"]), "hello from umoci\n");

    // The same layout as a tar, with --tag.
    let layout_tar = work.path().join("layout.tar");
    tar_dir(&layout, &layout_tar);
    node.ok(&[
        "image",
        "import",
        layout_tar.to_str().unwrap(),
        "--tag",
        "fromtar:1",
    ]);

    // skopeo's oci-archive and docker-archive.
    let oci_archive = work.path().join("oa.tar");
    let docker_archive = work.path().join("da.tar");
    let src = format!("oci:{}:v1", layout.display());
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &src,
        &format!("oci-archive:{}:v3", oci_archive.display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:myapp:2", docker_archive.display()),
    ]));
    node.ok(&["image", "import", oci_archive.to_str().unwrap()]);
    assert_eq!(
        node.ok(&["image", "import", docker_archive.to_str().unwrap()]),
        "Loaded image: myapp:2\n"
    );

    let images = node.images();
    let names: Vec<&str> = images.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fromtar:1", "layout:v1", "myapp:2", "oa:v3"]);
    assert!(
        images.iter().all(|(_, i)| *i == id),
        "same config, same image id: {images:?}"
    );

    // Save and re-import elsewhere; skopeo reads our archive both ways.
    let saved = work.path().join("saved.tar");
    node.ok(&["image", "save", "myapp:2", "-o", saved.to_str().unwrap()]);
    let other = Node::new();
    assert_eq!(
        other.ok(&["image", "import", saved.to_str().unwrap()]),
        "Loaded image: myapp:2\n"
    );
    assert_eq!(other.images(), vec![("myapp:2".to_string(), id.clone())]);
    assert_eq!(
        layer_file(&other, "hello.txt").as_deref(),
        Some("hello from umoci\n")
    );
    // Through a pipe: save to stdout, import from stdin.
    let third = Node::new();
    let pipe = format!(
        "{k} --data-dir {a} image save myapp:2 | {k} --data-dir {b} image import -",
        k = kc_tests::bin("kcnode").display(),
        a = node.data_dir().display(),
        b = third.data_dir().display()
    );
    run(Command::new("sh").args(["-c", &pipe]));
    assert_eq!(third.images(), vec![("myapp:2".to_string(), id.clone())]);
    for transport in ["oci-archive", "docker-archive"] {
        run(Command::new("skopeo").args(["inspect", &format!("{transport}:{}", saved.display())]));
    }
}

/// A copy of the umoci layout with `damage` applied, as a tar.
fn damaged_layout(work: &Path, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let layout = work.join("layout");
    let copy = work.join(name);
    run(Command::new("cp").arg("-a").arg(&layout).arg(&copy));
    damage(&copy);
    let tar = work.join(format!("{name}.tar"));
    tar_dir(&copy, &tar);
    tar
}

/// The blob files of a layout, biggest (the layer) first.
fn blobs_by_size(layout: &Path) -> Vec<PathBuf> {
    let mut blobs: Vec<PathBuf> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blobs.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    blobs
}

/// The manifest blob of a layout (the one index.json points at).
fn manifest_blob(layout: &Path) -> PathBuf {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn bad_archives_are_refused_and_leave_the_store_unchanged() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    umoci_image(work.path());
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    let before = (node.images(), node.store_files());

    let good = work.path().join("good.tar");
    tar_dir(&work.path().join("layout"), &good);
    let size = fs::metadata(&good).unwrap().len();
    let truncated = work.path().join("truncated.tar");
    fs::write(&truncated, &fs::read(&good).unwrap()[..(size / 2) as usize]).unwrap();

    let corrupt = damaged_layout(work.path(), "corrupt", |l| {
        let layer = &blobs_by_size(l)[0];
        let mut data = fs::read(layer).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        fs::write(layer, data).unwrap();
    });
    let missing = damaged_layout(work.path(), "missing", |l| {
        fs::remove_file(&blobs_by_size(l)[0]).unwrap()
    });
    let bad_json = damaged_layout(work.path(), "badjson", |l| {
        // Valid digest, invalid document: rewrite the manifest and fix up its digest.
        let old = manifest_blob(l);
        let data = b"{\"schemaVersion\": 2, \"config\": ";
        let hex = sha256_hex(data);
        fs::remove_file(&old).unwrap();
        fs::write(l.join("blobs/sha256").join(&hex), data).unwrap();
        let index = fs::read_to_string(l.join("index.json")).unwrap();
        let old_hex = old.file_name().unwrap().to_str().unwrap();
        let index = index.replace(old_hex, &hex);
        fs::write(l.join("index.json"), fix_size(&index, &hex, data.len())).unwrap();
    });
    let symlinked = damaged_layout(work.path(), "symlinked", |l| {
        let layer = &blobs_by_size(l)[0];
        fs::remove_file(layer).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", layer).unwrap();
    });
    let garbage = work.path().join("garbage.tar");
    fs::write(
        &garbage,
        b"this is not a tar archive at all, just some text\n",
    )
    .unwrap();

    let cases: [(&Path, &str); 6] = [
        (&symlinked, "not a regular file"),
        (&truncated, "truncated"),
        (&corrupt, "digest mismatch"),
        (&missing, "missing"),
        (&bad_json, "not valid JSON"),
        (&garbage, "not a"),
    ];
    for (path, expected) in cases {
        let err = node.fails(&["image", "import", path.to_str().unwrap()]);
        assert!(
            err.contains(expected),
            "importing {}: want {expected:?} in: {err}",
            path.display()
        );
        eprintln!("{}: {err}", path.display());
        assert_eq!(
            (node.images(), node.store_files()),
            before,
            "store changed by {}",
            path.display()
        );
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Sets the `size` of the index.json descriptor with digest `hex`.
fn fix_size(index: &str, hex: &str, size: usize) -> String {
    let mut v: serde_json::Value = serde_json::from_str(index).unwrap();
    for m in v["manifests"].as_array_mut().unwrap() {
        if m["digest"].as_str().unwrap().ends_with(hex) {
            m["size"] = size.into();
        }
    }
    v.to_string()
}

#[test]
fn multi_platform_index_picks_this_hosts_image() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    umoci_image(work.path());
    // Wrap the layout's manifest in a nested index listing it for this
    // host's platform and a bogus one for another, as multi-arch images are.
    let nested = damaged_layout(work.path(), "nested", |l| {
        let mut index: serde_json::Value =
            serde_json::from_slice(&fs::read(l.join("index.json")).unwrap()).unwrap();
        let mut manifest = index["manifests"][0].clone();
        let annotations = manifest
            .as_object_mut()
            .unwrap()
            .remove("annotations")
            .unwrap();
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        manifest["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        let mut other = manifest.clone();
        other["platform"] = serde_json::json!({"architecture": "s390x", "os": "linux"});
        other["digest"] = format!("sha256:{}", "0".repeat(64)).into();
        let inner = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [other, manifest],
        })
        .to_string();
        let hex = sha256_hex(inner.as_bytes());
        fs::write(l.join("blobs/sha256").join(&hex), &inner).unwrap();
        index["manifests"] = serde_json::json!([{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": inner.len(),
            "annotations": annotations,
        }]);
        fs::write(l.join("index.json"), index.to_string()).unwrap();
    });
    let node = Node::new();
    let out = node.ok(&["image", "import", nested.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: nested:v1\n");
    assert_eq!(node.ok(&["run", "--rm", "nested:v1"]), "hello from umoci\n");
}
