//! The scheduler's event trail through the real kubectl against `kcnode
//! serve-api` with hollow nodes: `kubectl describe pod` lists
//! `Normal  Scheduled  ...  default-scheduler  Successfully assigned
//! default/<pod> to <node>`, as with kube-scheduler.

mod api_common;

use std::time::{Duration, Instant};

use api_common::ApiServer;

#[test]
fn kubectl_describe_shows_the_scheduled_event() {
    let api = ApiServer::start_with(
        tempfile::tempdir().expect("temp dir"),
        &["--hollow-nodes", "2"],
    );
    api.ok(&["run", "web", "--image=nginx:1.25"]);
    let start = Instant::now();
    let (node, describe) = loop {
        let node = api.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]);
        let describe = api.ok(&["describe", "pod", "web"]);
        if !node.is_empty() && describe.contains("Successfully assigned") {
            break (node, describe);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no Scheduled event for web (node {node:?}):\n{describe}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(node.starts_with("hollow-"), "{node}");
    let line = describe
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("Scheduled"))
        .expect("a Scheduled row");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[..2], ["Normal", "Scheduled"], "{line}");
    assert_eq!(cells.get(3), Some(&"default-scheduler"), "{line}");
    assert_eq!(
        cells[4..].join(" "),
        format!("Successfully assigned default/web to {node}"),
        "{describe}"
    );
}
