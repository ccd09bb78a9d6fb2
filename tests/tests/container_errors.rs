//! Bad input gives a clear error (and Docker's exit codes), never a panic
//! and never a half-made container.

use kc_tests::container::{Node, busybox_rootfs, stderr};

#[test]
fn each_bad_input_gives_its_error() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "lots"], "invalid memory size"),
        (&["--memory", "1k"], "invalid memory size"),
        (&["--cpus", "0"], "invalid --cpus"),
        (&["--pids-limit", "0"], "invalid --pids-limit"),
        (&["-p", "99999:80"], "invalid port mapping"),
        (&["-p", "80"], "invalid port mapping"),
        (&["-v", "relative:/x"], "invalid volume"),
        (&["-e", "=x"], "invalid environment variable"),
        (&["--name", "bad name"], "invalid container name"),
        (&["-w", "relative"], "invalid working directory"),
        (&["--network", "mesh"], "unknown --network"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", &r, "true"]);
        let out = node.run(&args);
        assert!(!out.status.success(), "{flags:?} accepted");
        let err = stderr(&out);
        assert!(
            err.contains(want),
            "{flags:?}: expected {want:?} in {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        node.ok(&["ps", "-a", "-q"]),
        "",
        "a bad input left a container behind"
    );
    assert!(node.leftover_cgroups().is_empty());
}

#[test]
fn missing_command_and_rootfs_are_reported() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let out = node.run(&["run", "--rm", "--rootfs", &r, "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    let out = node.run(&["run", "--rm", "--rootfs", "/nonexistent-kc-rootfs", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    let out = node.run(&["run", "--rm", "--rootfs", &r]);
    assert!(stderr(&out).contains("no command"), "{}", stderr(&out));
    assert!(node.leftover_cgroups().is_empty());
    assert_eq!(node.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn names_are_unique_and_unknown_containers_are_named() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&["run", "--name", "once", "--rootfs", &r, "true"]);
    let out = node.run(&["run", "--name", "once", "--rootfs", &r, "true"]);
    assert!(stderr(&out).contains("already used"), "{}", stderr(&out));
    for verb in [
        &["logs", "ghost"][..],
        &["stop", "ghost"],
        &["rm", "ghost"],
        &["exec", "ghost", "true"],
        &["inspect", "ghost"],
    ] {
        let out = node.run(verb);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("no such container: ghost"),
            "{verb:?}: {}",
            stderr(&out)
        );
    }
    let out = node.run(&["kill", "-s", "BOGUS", "once"]);
    assert!(stderr(&out).contains("unknown signal"), "{}", stderr(&out));
}
