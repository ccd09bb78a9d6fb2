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
