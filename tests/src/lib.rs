//! Helpers for kc's end-to-end tests: locating the built binaries and
//! checking prerequisites (root, kernel features, Debian packages) with a
//! clear failure instead of a silent skip.
//!
//! The end-to-end tests run the real `kcnode`/`kcctl` binaries; `tests/run.sh`
//! builds them before `cargo test`. Set `KC_BIN_DIR` to test other builds.

use std::path::PathBuf;

/// The directory holding the built `kcnode` and `kcctl` binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KC_BIN_DIR") {
        return PathBuf::from(dir);
    }
    target_dir().join("debug")
}

/// The build's target dir (`CARGO_TARGET_DIR` when the tests run with one).
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Path of a built kc binary (`kcnode`, `kcctl`); panics with a clear message
/// if it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace` first (or set KC_BIN_DIR)",
        path.display()
    );
    path
}

/// Fails the test with a clear message unless it runs as root (CI does).
pub fn require_root() {
    assert!(
        nix_is_root(),
        "this test needs root (namespaces, cgroups, mounts); run it as root, as CI does"
    );
}

/// Fails the test with a clear message unless `program` is on PATH.
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{program}` is not installed: apt-get install {debian_package} (tests/run.sh does this)"
    );
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub mod chaos;
pub mod cluster;
pub mod container;
pub mod fuzz;
pub mod ha;
pub mod hollow;
pub mod linearizability;
pub mod netns;
pub mod proxy_net;
pub mod python;
pub mod store_cluster;
