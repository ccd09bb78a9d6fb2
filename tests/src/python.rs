//! The official Python `kubernetes` client for the tests that drive kc
//! with it: a venv with the package from PyPI, made once per machine under
//! the target dir (pip is slow; the package is the same for every run).
//! Test binaries that run at once take turns making it (a file lock).

use std::path::Path;
use std::process::{Command, Output};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An exclusive `flock` on `path`, held until the file is dropped.
fn lock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "cannot lock {}", path.display());
    file
}

/// The venv's python, with the `kubernetes` package (made by the first
/// test that asks).
pub fn venv_python() -> std::path::PathBuf {
    static VENV: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(make_venv).clone()
}

fn make_venv() -> std::path::PathBuf {
    let target = crate::target_dir();
    std::fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", target.display()));
    let _lock = lock(&target.join("python-venv.lock"));
    let venv = target.join("python-kubernetes-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".kubernetes-installed");
    if ready.exists() {
        return python;
    }
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .output()
        .expect("run python3");
    assert!(
        made.status.success(),
        "cannot create a Python venv ({}): apt-get install python3-venv",
        stderr(&made)
    );
    let pip = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "kubernetes>=29",
        ])
        .output()
        .expect("run pip");
    assert!(
        pip.status.success(),
        "pip could not install the `kubernetes` client from PyPI (is PyPI reachable?): {}",
        stderr(&pip)
    );
    std::fs::write(&ready, "").expect("mark venv ready");
    python
}
