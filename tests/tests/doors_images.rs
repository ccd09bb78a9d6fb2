//! Bad image archives at `kcnode image import`, end to end, beyond the
//! truncated/corrupt/missing-blob cases of image_import.rs: OCI archives
//! made here byte by byte (valid digests, so the layer itself is what is
//! judged) whose layer has `../` and absolute entries, a symlink followed
//! by files, whiteouts and opaque markers through it, a hard link to a host
//! file, a header claiming 8 GiB; an outer archive with a `../` entry; and
//! seeded random damage of a good archive. Every bad one is refused with a
//! clear message (no panic), nothing is written outside the store (the
//! decoys outside stay untouched), the store is as it was, and a good
//! archive still imports afterwards.

mod image_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use image_support::Node;
use kc_tests::fuzz;
use serde_json::json;
use sha2::{Digest, Sha256};

const RANDOM_CASES: usize = 25;

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A regular file whose header claims `size` bytes but carries 512.
    Lying(&'a str, u64),
}

/// Writes the header name as given, even where `tar` refuses (`..`).
fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
}

fn header(kind: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    raw_name(&mut h, name);
    h
}

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            Entry::File(name, data) => {
                let h = header(tar::EntryType::Regular, name, data.len() as u64);
                b.append(&h, *data).expect("append");
            }
            Entry::Symlink(name, target) | Entry::Hardlink(name, target) => {
                let kind = if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(kind, name, 0);
                h.set_link_name(target).expect("link name");
                h.set_cksum();
                b.append(&h, &b""[..]).expect("append");
            }
            Entry::Lying(name, size) => {
                let h = header(tar::EntryType::Regular, name, *size);
                let mut data = b.into_inner().expect("tar");
                // Drop the end-of-archive blocks: the lying entry comes last.
                data.truncate(data.len() - 1024);
                data.extend_from_slice(h.as_bytes());
                data.extend_from_slice(&[7u8; 512]);
                return data;
            }
        }
    }
    b.into_inner().expect("tar")
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An OCI archive (tar of an OCI layout) of one image `doors:1` with
/// `layers`, plus an `extra` outer entry (raw name) if given.
fn oci_archive(layers: &[Vec<u8>], extra: Option<(&str, &[u8])>) -> Vec<u8> {
    let config = json!({
        "architecture": kc_runtime::image::oci::host_architecture(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha(l)).collect::<Vec<_>>()},
    })
    .to_string()
    .into_bytes();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(l), "size": l.len()})).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest),
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "doors:1"}}],
    })
    .to_string()
    .into_bytes();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
    ];
    for blob in [config, manifest].into_iter().chain(layers.iter().cloned()) {
        let hex = sha(&blob).trim_start_matches("sha256:").to_string();
        files.push((format!("blobs/sha256/{hex}"), blob));
    }
    if let Some((name, data)) = extra {
        files.push((name.to_string(), data.to_vec()));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let h = header(tar::EntryType::Regular, &name, data.len() as u64);
        b.append(&h, &data[..]).expect("append");
    }
    b.into_inner().expect("tar")
}

/// The decoys outside every store: an empty dir and a file with one link.
struct Decoys {
    dir: tempfile::TempDir,
}

impl Decoys {
    fn new() -> Decoys {
        let dir = tempfile::Builder::new()
            .prefix("kc-decoy-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("victim"), "host file\n").unwrap();
        Decoys { dir }
    }

    fn empty(&self) -> String {
        self.dir.path().join("empty").display().to_string()
    }

    fn victim(&self) -> String {
        self.dir.path().join("victim").display().to_string()
    }

    /// Panics if anything was written into the decoys.
    fn untouched(&self, what: &str) {
        let empty: Vec<_> = std::fs::read_dir(self.dir.path().join("empty"))
            .unwrap()
            .collect();
        assert!(
            empty.is_empty(),
            "{what} wrote outside the store: {empty:?}"
        );
        let victim = self.dir.path().join("victim");
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!(meta.nlink(), 1, "{what} hard-linked the host file");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file\n");
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{what} wrote next to the decoys: {names:?}");
    }
}

fn import(node: &Node, work: &Path, name: &str, data: &[u8]) -> std::process::Output {
    let path = work.join(name);
    std::fs::write(&path, data).unwrap();
    node.kcnode(&["image", "import", path.to_str().expect("utf-8 path")])
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside_the_store() {
    let node = Node::new();
    let work = tempfile::tempdir().unwrap();
    let decoys = Decoys::new();
    let before = (node.images(), node.store_files());
    let up = "../".repeat(12);
    let escape = format!("{up}{}/escaped", decoys.empty().trim_start_matches('/'));
    let (empty, victim) = (decoys.empty(), decoys.victim());
    // A symlink to the empty decoy, then an entry whose path goes through it.
    let through_link = |name: &str| {
        oci_archive(
            &[layer(&[
                Entry::Symlink("link", &empty),
                Entry::File(name, b"x"),
            ])],
            None,
        )
    };
    let hostile: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot-dot entry",
            oci_archive(&[layer(&[Entry::File(&escape, b"x")])], None),
            "escapes the layer root",
        ),
        (
            "symlink then a file through it",
            through_link("link/pwned"),
            "cannot unpack",
        ),
        (
            "whiteout through a symlink",
            through_link("link/.wh.victim"),
            "symlink",
        ),
        (
            "opaque marker through a symlink",
            through_link("link/.wh..wh..opq"),
            "symlink",
        ),
        (
            "whiteout of ..",
            oci_archive(&[layer(&[Entry::File(".wh...", b"")])], None),
            "names no file",
        ),
        (
            "hard link to a host file",
            oci_archive(&[layer(&[Entry::Hardlink("hl", &victim)])], None),
            "a hard link to /",
        ),
        (
            "a header claiming 8 GiB",
            oci_archive(&[layer(&[Entry::Lying("big", 8 << 30)])], None),
            "",
        ),
        (
            "dot-dot entry in the archive itself",
            oci_archive(
                &[layer(&[Entry::File("ok", b"x")])],
                Some((&escape, b"outside")),
            ),
            "",
        ),
    ];
    for (what, data, want) in &hostile {
        let out = import(&node, work.path(), "hostile.tar", data);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        decoys.untouched(what);
        if what.contains("archive itself") {
            // The stray entry is no part of the layout: ignored or refused.
            if out.status.success() {
                let _ = node.kcnode(&["rmi", "doors:1"]);
                let _ = node.kcnode(&["image", "prune"]);
            }
            continue;
        }
        assert!(!out.status.success(), "{what} was imported");
        assert!(err.contains(want), "{what}: want {want:?} in: {err}");
        assert_eq!(
            (node.images(), node.store_files()),
            before,
            "store changed by {what}"
        );
    }

    // Seeded random damage of a good archive: refused or imported whole,
    // never a panic, never a half-written store.
    let good = oci_archive(
        &[layer(&[
            Entry::File("etc/hello", b"hello\n"),
            Entry::Symlink("etc/link", "hello"),
        ])],
        None,
    );
    let mut rng = fuzz::rng(13);
    for case in 0..RANDOM_CASES {
        let data = fuzz::damage(&mut rng, &good);
        let snapshot = (node.images(), node.store_files());
        let out = import(&node, work.path(), "damaged.tar", &data);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("panicked"), "case {case}: {err}");
        if out.status.success() {
            let _ = node.kcnode(&["rmi", "doors:1"]);
            let _ = node.kcnode(&["image", "prune"]);
        } else {
            assert!(
                err.contains("kcnode: "),
                "case {case}: unclear error: {err}"
            );
            assert_eq!(
                (node.images(), node.store_files()),
                snapshot,
                "store changed by damaged case {case}: {err}"
            );
        }
        decoys.untouched(&format!("random case {case}"));
    }

    // The store still works: the good archive imports and runs nothing odd.
    let out = import(&node, work.path(), "good.tar", &good);
    assert!(
        out.status.success(),
        "good archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        node.images().iter().any(|(n, _)| n == "doors:1"),
        "{:?}",
        node.images()
    );
}
