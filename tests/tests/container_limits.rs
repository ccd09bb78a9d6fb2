//! cgroup limits, enforced by the kernel and observed: a memory hog is
//! OOM-killed and recorded as such, a fork bomb stops at --pids-limit, a
//! busy loop is throttled to its --cpus quota.

use std::time::{Duration, Instant};

use kc_tests::container::{Node, busybox_rootfs};

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    // dd allocates and fills a 200 MB buffer: far above the 32 MB limit.
    let id = node.ok(&[
        "run",
        "-d",
        "--memory",
        "32m",
        "--name",
        "hog",
        "--rootfs",
        &r,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=200M",
        "count=1",
    ]);
    let s = node.wait_exited(id.trim(), 30);
    assert_eq!(s["oom_killed"], true, "not recorded as OOM-killed: {s}");
    assert_eq!(s["exit_code"], 137, "{s}");
    let ps = node.ok(&["ps", "-a"]);
    assert!(ps.contains("OOM"), "{ps}");
    // The same program under a sufficient limit is not killed.
    let out = node.run(&[
        "run",
        "--rm",
        "--memory",
        "512m",
        "--rootfs",
        &r,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=200M",
        "count=1",
    ]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn fork_bomb_stops_at_pids_limit() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    // The bomb runs in a subshell; afterwards the parent only uses
    // builtins (no fork is possible at the limit) and finally execs.
    let id = node.ok(&[
        "run", "-d", "--pids-limit", "10", "--rootfs", &r, "sh", "-c",
        "(i=0; while [ $i -lt 50 ]; do sleep 60 & i=$((i+1)); done) 2>/tmp/err; \
         set -- /proc/[0-9]*; echo procs=$#; read -r line < /tmp/err; echo \"err=$line\"; exec sleep 60",
    ]);
    let id = id.trim();
    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs = node.ok(&["logs", id]);
        if logs.contains("err=") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let procs: u32 = logs
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap_or_else(|| panic!("no count: {logs}"))
        .parse()
        .unwrap();
    assert!(procs <= 10, "{procs} processes despite --pids-limit 10");
    assert!(
        logs.contains("can't fork") || logs.contains("Resource temporarily unavailable"),
        "no fork failure seen: {logs}"
    );
    let current: u32 = std::fs::read_to_string(node.cgroup_dir("pids", id).join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 10, "pids.current {current} above the limit");
    node.ok(&["rm", "-f", id]);
}

#[test]
fn cpu_quota_is_observed() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let r = rootfs.path().display().to_string();
    let id = node.ok(&[
        "run",
        "-d",
        "--cpus",
        "0.2",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let id = id.trim();
    let pid = node.inspect(id)["pid"].as_i64().unwrap();
    let ticks = |pid: i64| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(") ").unwrap().1;
        let f: Vec<&str> = after.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let t0 = ticks(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    let used = (ticks(pid) - t0) as f64 / 100.0; // USER_HZ
    let wall = start.elapsed().as_secs_f64();
    let share = used / wall;
    assert!(share < 0.35, "a 0.2-CPU container used {share:.2} CPU");
    assert!(share > 0.02, "the busy loop hardly ran ({share:.2} CPU)");
    let stat = std::fs::read_to_string(node.cgroup_dir("cpu", id).join("cpu.stat")).unwrap();
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(throttled > 0, "never throttled: {stat}");
    node.ok(&["rm", "-f", id]);
}
