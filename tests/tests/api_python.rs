//! The official Python `kubernetes` client (from PyPI, in a venv this test
//! makes) drives kc's API server: create, list, watch, patch, delete.

mod api_common;

use std::path::Path;
use std::process::Command;

use api_common::{ApiServer, stderr, stdout};

/// A venv with the `kubernetes` package, made once per machine under the
/// target dir (pip is slow; the package is the same for every run).
fn venv_python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python-kubernetes-venv");
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

#[test]
fn python_kubernetes_client_creates_lists_watches_patches_deletes() {
    let python = venv_python();
    let api = ApiServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_python/client_roundtrip.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&api.kubeconfig)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python client script failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).trim_end().ends_with("ok"), "{}", stdout(&out));
}
