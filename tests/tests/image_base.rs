//! `kcnode image base busybox` makes a runnable `busybox:latest` from the
//! host's busybox-static, `images` lists it, `rmi` removes it and its blobs.

use std::path::Path;
use std::process::{Command, Output};

use kc_tests::{bin, require_program, require_root};

fn kcnode(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("kcnode"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run kcnode")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "kcnode failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn busybox_base_image_is_listed_runnable_and_removable() {
    require_root();
    require_program("busybox", "busybox-static");
    let dir = tempfile::tempdir().unwrap();
    ok(kcnode(dir.path(), &["image", "base", "busybox"]));

    let list = ok(kcnode(dir.path(), &["images"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{list}");
    assert!(
        lines[1].starts_with("busybox") && lines[1].contains("latest"),
        "{list}"
    );

    // The single layer is a complete root: busybox's sh runs in it.
    let layers: Vec<_> = std::fs::read_dir(dir.path().join("images/layers"))
        .unwrap()
        .collect();
    assert_eq!(layers.len(), 1);
    let root = layers[0].as_ref().unwrap().path();
    let out = Command::new("chroot")
        .arg(&root)
        .args([
            "/bin/sh",
            "-c",
            "echo hello from $(basename $(readlink /bin/ls)); grep -c . /etc/passwd",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from busybox\n2\n"
    );

    // tag + inspect: one image, two names, its config as JSON.
    ok(kcnode(dir.path(), &["tag", "busybox", "mybox:1"]));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(kcnode(dir.path(), &["image", "inspect", "mybox:1"]))).unwrap();
    assert_eq!(
        inspect[0]["RepoTags"],
        serde_json::json!(["busybox:latest", "mybox:1"])
    );
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        ok(kcnode(dir.path(), &["images", "-q"])).lines().count(),
        1,
        "one image, two tags"
    );
    assert_eq!(
        ok(kcnode(dir.path(), &["images", "mybox"])).lines().count(),
        2
    );
    let history = ok(kcnode(dir.path(), &["image", "history", "mybox:1"]));
    assert!(history.contains("kcnode image base busybox"), "{history}");
    ok(kcnode(dir.path(), &["rmi", "mybox:1"]));

    // prune removes staging dirs left by killed kcnodes (older than a day).
    let tmp = dir.path().join("images/tmp");
    std::fs::create_dir_all(tmp.join("tx-stale/layer")).unwrap();
    std::fs::create_dir_all(tmp.join("tx-live")).unwrap();
    let old = Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(tmp.join("tx-stale"))
        .status()
        .unwrap();
    assert!(old.success());
    ok(kcnode(dir.path(), &["image", "prune"]));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["tx-live"]);
    std::fs::remove_dir(tmp.join("tx-live")).unwrap();

    let rmi = ok(kcnode(dir.path(), &["rmi", "busybox"]));
    assert!(rmi.contains("Untagged: busybox:latest"), "{rmi}");
    assert_eq!(ok(kcnode(dir.path(), &["images"])).lines().count(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("images/layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn unknown_base_and_unknown_image_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = kcnode(dir.path(), &["image", "base", "alpine"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown base image \"alpine\""));
    let out = kcnode(dir.path(), &["rmi", "nosuch:1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"nosuch:1\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_kcnodes_share_the_store_safely() {
    require_root();
    require_program("busybox", "busybox-static");
    let dir = tempfile::tempdir().unwrap();
    // Eight processes make and tag base images at once; the store's lock
    // keeps every tag (no lost update of the tag file) and one layer.
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(bin("kcnode"))
                .arg("--data-dir")
                .arg(dir.path())
                .args(["image", "base", "busybox", "--tag", &format!("bb:{i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = ok(kcnode(dir.path(), &["images"]));
    assert_eq!(list.lines().count(), 9, "{list}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("images/layers"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("images/tmp"))
            .unwrap()
            .count(),
        0
    );
}
