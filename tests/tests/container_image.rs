//! `kcnode run IMAGE` from the image store: the busybox base image made on
//! this host (`kcnode image base busybox`) runs with its layers as the
//! overlay's lower dirs, and the container's writes never reach the image.

use kc_tests::container::{Node, stderr, stdout};

#[test]
fn run_an_image_from_the_store() {
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    let out = node.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/motd-kc; cat /etc/motd-kc; echo $PATH",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("changed\n"), "{text}");
    assert!(text.contains("/bin"), "no PATH from the image: {text}");
    // A second container starts from the pristine image.
    let out = node.run(&["run", "--rm", "busybox", "cat", "/etc/motd-kc"]);
    assert!(
        !out.status.success(),
        "a container's write leaked into the image"
    );
    let out = node.run(&["run", "--rm", "no-such-image:1", "true"]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}
