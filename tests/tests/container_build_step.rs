//! The build's RUN step runs in a real container (`BuildStepRunner`): its
//! file changes, deletions included, land in the new layer, and a failing
//! step fails the build with the command and its exit code.

use kc_tests::container::{Node, stderr, stdout};

#[test]
fn run_steps_change_the_image_and_failures_stop_the_build() {
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo built-in-a-container > /hello && hostname > /built-on && rm /bin/true\nCMD [\"cat\", \"/hello\"]\n",
    )
    .unwrap();
    let out = node.run(&[
        "build",
        "-t",
        "stepped:1",
        &ctx.path().display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "build failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        node.ok(&["run", "--rm", "stepped:1"]),
        "built-in-a-container\n"
    );
    let out = node.run(&[
        "run",
        "--rm",
        "stepped:1",
        "sh",
        "-c",
        "test -e /bin/true && echo present || echo deleted",
    ]);
    assert_eq!(
        stdout(&out),
        "deleted\n",
        "the RUN step's deletion did not reach the layer"
    );

    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let out = node.run(&["build", "-t", "broken:1", &ctx.path().display().to_string()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("exit") && err.contains('3'), "{err}");
    assert!(node.leftover_cgroups().is_empty());
}

#[test]
fn stop_sends_the_images_stopsignal() {
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nSTOPSIGNAL SIGUSR1\nCMD [\"sh\", \"-c\", \"trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done\"]\n",
    )
    .unwrap();
    node.ok(&["build", "-t", "polite:1", &ctx.path().display().to_string()]);
    node.ok(&["run", "-d", "--name", "p", "polite:1"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    node.ok(&["stop", "-t", "10", "p"]);
    let s = node.inspect("p");
    assert_eq!(
        s["exit_code"], 0,
        "the image's STOPSIGNAL was not sent: {s}"
    );
    assert!(node.ok(&["logs", "p"]).contains("got-usr1"));
}
