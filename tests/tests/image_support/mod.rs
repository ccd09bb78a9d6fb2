//! Shared helpers of the image and build tests: run `kcnode` on a private
//! data dir, check results, make test images with umoci.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kc_tests::require_program;

/// A private data dir and node name, and `kcnode` commands on them; its
/// containers, cgroups and runtime dir go with it (the container tests'
/// `Node` does the work).
pub struct Node {
    inner: kc_tests::container::Node,
}

impl Node {
    pub fn new() -> Node {
        Node {
            inner: kc_tests::container::Node::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.inner.data.path()
    }

    /// The node name its kcnode commands use (`KC_NODE_NAME`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn kcnode(&self, args: &[&str]) -> Output {
        self.inner.run(args)
    }

    /// Runs kcnode, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kcnode(args);
        assert!(
            out.status.success(),
            "kcnode {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs kcnode, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kcnode(args);
        assert!(
            !out.status.success(),
            "kcnode {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }

    /// `(repository:tag, image id)` of every listed image.
    pub fn images(&self) -> Vec<(String, String)> {
        self.ok(&["images"])
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (format!("{}:{}", f[0], f[1]), f[2].to_string())
            })
            .collect()
    }

    /// Names of everything in the store's blob, layer and tmp dirs, to
    /// compare before and after a failed operation.
    pub fn store_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let dir = self.data_dir().join("images").join(sub);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd {
                    out.push(format!(
                        "{sub}/{}",
                        e.unwrap().file_name().to_string_lossy()
                    ));
                }
            }
        }
        out.sort();
        out
    }
}

/// Runs a command, asserting success.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes an OCI layout at `dir/layout` with umoci: image `layout:v1`
/// holding a static busybox and /hello.txt, Cmd `cat /hello.txt`.
pub fn umoci_image(dir: &Path) -> PathBuf {
    require_program("umoci", "umoci");
    let busybox = require_program("busybox", "busybox-static");
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let image = format!("{}:v1", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/cat")).unwrap();
    std::fs::write(rootfs.join("hello.txt"), "hello from umoci\n").unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/cat",
        "--config.cmd",
        "/hello.txt",
    ]));
    layout
}

/// Tars a directory's contents to `out`.
pub fn tar_dir(dir: &Path, out: &Path) {
    run(Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg("."));
}
