//! Isolation, proved from inside real containers: PID 1, hidden host
//! processes, own hostname, no host mounts, read-only /sys and /proc/sys,
//! masked /proc files, Docker's capability set and no_new_privs.

use kc_tests::container::{Node, busybox_rootfs, stderr, stdout};

fn rootfs_arg(r: &tempfile::TempDir) -> String {
    r.path().display().to_string()
}

#[test]
fn container_is_pid_1_and_sees_no_host_processes() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let me = std::process::id().to_string();
    let out = node.ok(&[
        "run", "--rm", "--rootfs", &rootfs_arg(&rootfs), "sh", "-c",
        &format!("echo pid=$$; ls /proc | grep -c '^[0-9]'; test -e /proc/{me} && echo host-visible || echo host-hidden"),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "{out}");
    let procs: u32 = lines[1].parse().unwrap();
    assert!(procs <= 3, "the container sees {procs} processes: {out}");
    assert_eq!(lines[2], "host-hidden", "{out}");
}

#[test]
fn hostname_is_set_and_isolated() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let out = node.run(&[
        "run",
        "--rm",
        "--hostname",
        "box-one",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "sh",
        "-c",
        "hostname; hostname changed; hostname",
    ]);
    // Without CAP_SYS_ADMIN (Docker's default set) the container cannot rename itself.
    assert_eq!(stdout(&out), "box-one\nbox-one\n");
    assert!(stderr(&out).contains("not permitted"), "{}", stderr(&out));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box-one");
}

#[test]
fn container_cannot_see_host_mounts_or_write_sys() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let out = node.run(&[
        "run", "--rm", "--rootfs", &rootfs_arg(&rootfs), "sh", "-c",
        "cat /proc/mounts; echo ---; touch /sys/kc-x && echo sys-writable; echo 1 > /proc/sys/kernel/domainname && echo procsys-writable; \
         wc -c < /proc/timer_list; ls /dev | tr '\\n' ' '",
    ]);
    let text = stdout(&out);
    let (mounts, rest) = text.split_once("---\n").expect("marker");
    for line in mounts.lines() {
        let target = line.split(' ').nth(1).unwrap();
        assert!(
            !target.starts_with("/tmp")
                && !target.contains("cgroup")
                && !target.starts_with("/home"),
            "host mount visible: {line}"
        );
    }
    assert!(
        mounts.lines().any(|l| l.starts_with("overlay / overlay")),
        "root is not the overlay: {mounts}"
    );
    assert!(
        mounts.lines().any(|l| l.contains(" /sys sysfs ro,")),
        "sysfs not read-only: {mounts}"
    );
    assert!(!rest.contains("sys-writable"), "{rest}");
    assert!(!rest.contains("procsys-writable"), "{rest}");
    let err = stderr(&out);
    assert!(err.contains("Read-only file system"), "{err}");
    let mut rest_lines = rest.lines();
    assert!(
        std::path::Path::new("/proc/timer_list").exists(),
        "this host has no /proc/timer_list to test masking with"
    );
    assert_eq!(
        rest_lines.next(),
        Some("0"),
        "/proc/timer_list is not masked: {rest}"
    );
    let devs = rest_lines.next().unwrap_or("");
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
    ] {
        assert!(
            devs.split(' ').any(|d| d == want),
            "/dev lacks {want}: {devs}"
        );
    }
    assert!(
        !devs.contains("sda") && !devs.contains("mem "),
        "host devices in /dev: {devs}"
    );
}

#[test]
fn capabilities_are_dockers_defaults_with_no_new_privs() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let out = node.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "grep",
        "-E",
        "^(CapEff|CapBnd|CapInh|NoNewPrivs|Seccomp)",
        "/proc/self/status",
    ]);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "no seccomp filter: {out}");
    // Without CAP_SYS_ADMIN, mounting fails even as root.
    let out = node.run(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "mount",
        "-t",
        "tmpfs",
        "t",
        "/tmp",
    ]);
    assert!(
        !out.status.success(),
        "mount succeeded inside the container"
    );
}

#[test]
fn each_container_has_its_own_loopback_network() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let out = node.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "sh",
        "-c",
        "ls /sys/class/net; ip -o link show lo",
    ]);
    assert!(out.starts_with("lo\n"), "interfaces other than lo: {out}");
    assert!(out.contains("UP"), "loopback is down: {out}");
}

#[test]
fn seccomp_refuses_new_user_namespaces() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    // unshare(CLONE_NEWUSER) needs no capability: only the filter stops it.
    let out = node.run(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "unshare",
        "-U",
        "true",
    ]);
    assert!(
        !out.status.success(),
        "unshare -U succeeded inside the container"
    );
    assert!(stderr(&out).contains("not permitted"), "{}", stderr(&out));
}

#[test]
fn container_sees_its_cgroup_as_the_root() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let out = node.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs_arg(&rootfs),
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(!out.contains("kc/"), "host cgroup paths visible: {out}");
    assert!(
        out.lines()
            .any(|l| l.contains(":pids:/") || l.starts_with("0::/")),
        "{out}"
    );
    let id = node.ok(&["run", "-d", "--rootfs", &rootfs_arg(&rootfs), "sleep", "30"]);
    let out = node.ok(&["exec", id.trim(), "cat", "/proc/self/cgroup"]);
    assert!(
        !out.contains("kc/"),
        "host cgroup paths visible in exec: {out}"
    );
}
