//! `-it`: the container (and `exec -it`) get a real terminal allocated from
//! the container's own devpts, driven from a pty that `script` gives
//! kcnode; input typed reaches the shell and its exit code comes back.

use std::io::Write;
use std::process::{Command, Stdio};

use kc_tests::container::{Node, busybox_rootfs};
use kc_tests::{bin, require_program};

fn script(node: &Node, kc_args: &str, input: &str) -> (Option<i32>, String) {
    let script = require_program("script", "bsdutils");
    let cmd = format!("{} {kc_args}", bin("kcnode").display());
    let mut child = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .env("KC_DATA_DIR", node.data.path())
        .env("KC_NODE_NAME", &node.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn run_and_exec_with_a_terminal() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let (code, out) = script(
        &node,
        &format!("run -it --rm --rootfs {r} sh"),
        "tty; exit 5\n",
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("/dev/pts/0"), "no terminal inside: {out}");

    node.ok(&["run", "-d", "--name", "term", "--rootfs", &r, "sleep", "60"]);
    let (code, out) = script(&node, "exec -it term sh", "tty; exit 4\n");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("/dev/pts/"), "no terminal in exec: {out}");
}
