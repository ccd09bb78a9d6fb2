//! The lifecycle verbs against real containers: run -d, ps, logs (with
//! timestamps and stream separation), exec (inside the same namespaces),
//! stop (SIGTERM then SIGKILL after the grace), kill, rm, inspect; exit
//! codes passed through; --rm leaving no state, cgroup or mount behind;
//! volumes, env, workdir and user.

use std::time::{Duration, Instant};

use kc_tests::container::{Node, busybox_rootfs, stderr, stdout};

#[test]
fn foreground_run_passes_output_and_exit_code() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let out = node.run(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
}

#[test]
fn rm_flag_leaves_no_state_cgroup_or_mount_behind() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo data > /tmp/f; sleep 0.2",
    ]);
    let left = node.leftover_container_dirs();
    assert!(left.is_empty(), "container dirs left: {left:?}");
    assert!(
        node.leftover_cgroups().is_empty(),
        "cgroups left: {:?}",
        node.leftover_cgroups()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&node.data.path().display().to_string()),
        "mounts left on the host"
    );
    assert_eq!(node.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn detached_container_lifecycle() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let id = node.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--hostname",
        "svc-host",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo started; echo warn >&2; sleep 60",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);

    let ps = node.ok(&["ps"]);
    assert!(ps.contains("svc") && ps.contains("Up"), "{ps}");

    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.ok(&["logs", "svc"]).contains("started") {
        assert!(Instant::now() < deadline, "no output in logs");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let logs = node.run(&["logs", "svc"]);
    assert_eq!(stdout(&logs), "started\n");
    assert_eq!(stderr(&logs), "warn\n");
    let ts = node.ok(&["logs", "-t", &id[..8]]);
    assert!(ts.starts_with("20") && ts.contains("Z started"), "{ts}");

    // exec joins the container's namespaces.
    let out = node.ok(&[
        "exec",
        "svc",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "svc-host");
    // (busybox sh execs its last command: PID 1 is now that sleep)
    assert_eq!(lines[1], "sleep 60 ", "{out}");
    assert_ne!(lines[2], "1");
    let out = node.run(&["exec", "svc", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let out = node.run(&["exec", "svc", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));

    // sh as PID 1 ignores SIGTERM: stop falls back to SIGKILL after the grace.
    let t = Instant::now();
    node.ok(&["stop", "-t", "1", "svc"]);
    assert!(t.elapsed() >= Duration::from_millis(900));
    let s = node.inspect("svc");
    assert_eq!(s["status"], "exited");
    assert_eq!(s["exit_code"], 137);
    assert_eq!(s["oom_killed"], false);
    assert!(node.leftover_cgroups().is_empty(), "cgroup kept after exit");

    let ps = node.ok(&["ps"]);
    assert!(!ps.contains("svc"), "{ps}");
    assert!(node.ok(&["ps", "-a"]).contains("Exited (137)"));
    node.ok(&["rm", "svc"]);
    assert!(!node.data.path().join("containers").join(&id).exists());
}

#[test]
fn stop_lets_a_handler_exit_cleanly_and_kill_sends_signals() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    node.ok(&["stop", "-t", "10", "polite"]);
    let s = node.inspect("polite");
    assert_eq!(s["exit_code"], 0, "{s}");
    assert!(node.ok(&["logs", "polite"]).contains("bye"));

    node.ok(&[
        "run", "-d", "--name", "victim", "--rootfs", &r, "sleep", "60",
    ]);
    let out = node.run(&["rm", "victim"]);
    assert!(
        !out.status.success() && stderr(&out).contains("running"),
        "{}",
        stderr(&out)
    );
    node.ok(&["kill", "victim"]);
    let s = node.wait_exited("victim", 10);
    assert_eq!(s["exit_code"], 137);
    node.ok(&["rm", "victim"]);
    let out = node.run(&["kill", "victim"]);
    assert!(
        stderr(&out).contains("no such container"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn volumes_env_workdir_and_user_apply() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let rw = tempfile::tempdir().unwrap();
    let vol_ro = format!("{}:/data:ro", host.path().display());
    let vol_rw = format!("{}:/out", rw.path().display());
    let out = node.run(&[
        "run", "--rm", "-v", &vol_ro, "-v", &vol_rw, "-e", "GREETING=hi there", "-w", "/work", "--rootfs", &r, "sh", "-c",
        "cat /data/in.txt; touch /data/x && echo ro-broken; echo $GREETING; pwd; echo written > /out/o.txt",
    ]);
    let text = stdout(&out);
    assert_eq!(text, "from host\nhi there\n/work\n", "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(rw.path().join("o.txt")).unwrap(),
        "written\n"
    );
    let out = node.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "id -u; grep CapEff /proc/self/status",
    ]);
    assert_eq!(out, "65534\nCapEff:\t0000000000000000\n");
}

#[test]
fn logs_follow_streams_until_the_container_exits() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    node.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo first; sleep 1; echo second; exit 2",
    ]);
    let t = Instant::now();
    let out = node.run(&["logs", "-f", "talker"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "first\nsecond\n");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "logs -f returned before the container ended"
    );
    assert_eq!(node.inspect("talker")["exit_code"], 2);
}

#[test]
fn ephemeral_containers_live_in_the_runtime_dir_until_they_exit() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let id = node.ok(&["run", "-d", "--rm", "--rootfs", &r, "sleep", "1"]);
    let id = id.trim();
    let dirs = node.leftover_container_dirs();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(
        dirs[0].ends_with(id) && !dirs[0].starts_with(node.data.path()),
        "not in the tmpfs runtime dir: {dirs:?}"
    );
    assert!(node.ok(&["ps"]).contains(&id[..12]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.leftover_container_dirs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the --rm container was not removed after exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(node.leftover_cgroups().is_empty());
}

#[test]
fn foreground_run_forwards_signals_to_the_container() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let child = node
        .cmd()
        .args([
            "run",
            "--rm",
            "--name",
            "fg",
            "--rootfs",
            &r,
            "sh",
            "-c",
            "trap 'echo got-term; exit 4' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // (the container may not exist yet on the first tries)
    while !stdout(&node.run(&["logs", "fg"])).contains("ready") {
        assert!(Instant::now() < deadline, "container did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the kcnode process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stdout(&out), "ready\ngot-term\n");
}

#[test]
fn interactive_run_passes_stdin_and_plain_run_does_not() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let run = |flags: &[&str]| {
        let mut child = node
            .cmd()
            .arg("run")
            .args(flags)
            .args(["--rm", "--rootfs", &r, "cat"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        stdout(&child.wait_with_output().unwrap())
    };
    assert_eq!(run(&["-i"]), "typed\n");
    assert_eq!(run(&[]), "", "stdin reached a container run without -i");
}

/// `rm -f` of a running `--rm` container races the container's own
/// cleanup (its monitor removes it as it exits); like Docker's, it succeeds
/// quietly and leaves nothing behind. (It used to print "remove its
/// directory: No such file or directory".)
#[test]
fn force_removing_a_running_rm_container_succeeds_quietly() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    for round in 0..5 {
        let name = format!("gone{round}");
        node.ok(&[
            "run", "-d", "--rm", "--name", &name, "--rootfs", &r, "sleep", "100",
        ]);
        let out = node.run(&["rm", "-f", &name]);
        assert!(
            out.status.success() && stderr(&out).is_empty(),
            "rm -f {name}: {}",
            stderr(&out)
        );
        assert_eq!(
            stdout(&out).trim(),
            name,
            "rm -f prints the name it removed"
        );
    }
    assert!(node.leftover_container_dirs().is_empty());
    assert!(node.leftover_cgroups().is_empty());
}
