//! Image garbage collection on a node under disk pressure (`kcnode image
//! gc`): nothing happens below the high mark; above it, images no
//! container uses go and images a container uses (even a stopped one)
//! stay. The marks are set to 100 % and 0 % so the host's real disk usage
//! decides nothing.

mod image_support;

use image_support::Node;
use kc_tests::require_root;

fn tags(node: &Node) -> Vec<String> {
    let mut t: Vec<String> = node.images().into_iter().map(|(n, _)| n).collect();
    t.sort();
    t
}

#[test]
fn disk_pressure_removes_unused_images_and_keeps_used_ones() {
    require_root();
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    node.ok(&["tag", "busybox", "keep:1"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("data.bin"), vec![7u8; 1 << 20]).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    node.ok(&["build", "-t", "drop:1", ctx.path().to_str().unwrap()]);
    // A stopped container still holds its image.
    node.ok(&["run", "--name", "user", "keep:1", "true"]);

    let out = node.ok(&["image", "gc", "--high", "100", "--low", "100"]);
    assert!(
        !out.contains("Removed"),
        "no pressure, nothing removed: {out}"
    );
    assert_eq!(tags(&node), ["busybox:latest", "drop:1", "keep:1"]);

    let out = node.ok(&["image", "gc", "--high", "0", "--low", "0"]);
    assert!(out.contains("Removed: drop:1"), "{out}");
    assert_eq!(
        tags(&node),
        ["busybox:latest", "keep:1"],
        "the used image stays, under both names"
    );
    assert_eq!(
        node.ok(&["run", "--rm", "keep:1", "echo", "still runs"]),
        "still runs\n"
    );

    let err = node.fails(&["image", "gc", "--high", "10", "--low", "20"]);
    assert!(
        err.contains("--low (20) must not exceed --high (10)"),
        "{err}"
    );
    node.ok(&["rm", "user"]);
}
