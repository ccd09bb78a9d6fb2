//! The official Python client's streams against a real pod on a worker:
//! interactive exec whose stdin arrives as WebSocket TEXT frames (what the
//! client sends for a `str`; they used to be dropped) and as BINARY ones,
//! and port-forward over the WebSocket channel protocol (ports in the
//! query, port number on each channel's first message; it used to be
//! refused with 400, only kubectl's SPDY tunnel was served).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kc_tests::cluster::TestCluster;
use kc_tests::container::{stderr, stdout};

#[test]
fn python_exec_with_text_stdin_and_channel_port_forward_reach_the_pod() {
    kc_tests::require_root();
    let python = kc_tests::python::venv_python();
    let cluster = TestCluster::start(1, &[]);
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n",
        cluster.workers[0].name
    );
    cluster.apply(&manifest);
    cluster.wait_ready("web", Duration::from_secs(60));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_python/stream_compat.py");
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cluster.cp.ns.name))
        .arg(&python)
        .arg(&script)
        .arg(&cluster.kubeconfig)
        .arg("web")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python stream script failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).trim_end().ends_with("ok"), "{}", stdout(&out));
}
