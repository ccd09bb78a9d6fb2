//! The official Python `kubernetes` client (from PyPI, in a venv this test
//! makes) drives kc's API server: create, list, watch, patch, delete.

mod api_common;

use std::path::Path;
use std::process::Command;

use api_common::{ApiServer, stderr, stdout};

/// Runs one of the scripts in `tests/api_python/` against a fresh API
/// server; it prints `ok` last when everything behaved like Kubernetes.
fn run_script(name: &str) {
    let python = kc_tests::python::venv_python();
    let api = ApiServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api_python")
        .join(name);
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

#[test]
fn python_kubernetes_client_creates_lists_watches_patches_deletes() {
    run_script("client_roundtrip.py");
}

/// CustomResourceDefinitions through ApiextensionsV1Api and custom objects
/// through CustomObjectsApi (create, validation, list, patch, status, watch,
/// delete), as operators written in Python use them.
#[test]
fn python_client_custom_objects_of_a_crd() {
    run_script("custom_objects.py");
}

/// What the Python client and a raw HTTP/1.1 client hit on kc (the issue
/// "Client compatibility"): `/version/`, DELETE's Status, keep-alive after
/// early errors, 413/422 for oversized objects, unsupported field labels,
/// JSON-patch `test` of null, streaming lists.
#[test]
fn python_client_and_raw_http_see_kubernetes_answers() {
    let python = kc_tests::python::venv_python();
    let api = ApiServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_python/client_compat.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&api.kubeconfig)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python compat script failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).trim_end().ends_with("ok"), "{}", stdout(&out));
}
