//! The `Runtime` actor with a pod sandbox: two containers created in one
//! sandbox share its localhost and hostname (the client reaches the
//! server on 127.0.0.1) while keeping their own PID namespaces; exec, logs,
//! status, stop and remove work through messages; removing the sandbox
//! ends its holder process.

use std::time::{Duration, Instant};

use actix::Actor;
use kc_runtime::container::actor::*;
use kc_runtime::container::spec::{ContainerSpec, Resources, SharedNamespaces};
use kc_runtime::container::{Containers, ExecSpec, Status};
use kc_tests::bin;
use kc_tests::container::{Node, busybox_rootfs};

/// Kills the sandbox holder if the test ends early.
struct Holder(i32);
impl Drop for Holder {
    fn drop(&mut self) {
        if kc_runtime::sandbox::is_holder(self.0) {
            // SAFETY: kill of the holder process this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

fn spec(rootfs: &std::path::Path, argv: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: String::new(),
        image: "busybox-test".into(),
        layers: vec![rootfs.to_path_buf()],
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        working_dir: "/".into(),
        user: String::new(),
        hostname: String::new(),
        tty: false,
        stdin: false,
        ports: vec![],
        volumes: vec![],
        resources: Resources {
            memory: Some(64 << 20),
            cpu_millis: None,
            pids: Some(100),
        },
        namespaces: SharedNamespaces::default(),
        auto_remove: false,
        stop_signal: None,
    }
}

#[test]
fn two_containers_in_a_sandbox_share_localhost_and_hostname() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let sys = actix::System::new();
    sys.block_on(async {
        let rt = Runtime::new(Containers::new(node.data.path(), &node.name), bin("kcnode")).start();
        let sb = rt.send(CreateSandbox { name: "pod1".into(), hostname: "pod-host".into() }).await.unwrap().unwrap();
        let _holder = Holder(sb.pid);

        let server = rt
            .send(CreateContainer { sandbox: Some(sb.id.clone()), spec: spec(rootfs.path(), &["httpd", "-f", "-p", "8080", "-h", "/www"]) })
            .await
            .unwrap()
            .unwrap();
        let st = rt.send(ContainerStatus { id: server.clone() }).await.unwrap().unwrap();
        assert_eq!(st.status, Status::Created);
        rt.send(StartContainer { id: server.clone() }).await.unwrap().unwrap();

        let client_argv = [
            "sh",
            "-c",
            "for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/index.html && break; sleep 0.1; done; hostname; ls /proc | grep -c '^[0-9]'",
        ];
        let client = rt.send(CreateContainer { sandbox: Some(sb.id.clone()), spec: spec(rootfs.path(), &client_argv) }).await.unwrap().unwrap();
        rt.send(StartContainer { id: client.clone() }).await.unwrap().unwrap();

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let st = rt.send(ContainerStatus { id: client.clone() }).await.unwrap().unwrap();
            if st.status == Status::Exited {
                assert_eq!(st.exit_code, Some(0), "{st:?}");
                break;
            }
            assert!(Instant::now() < deadline, "client did not finish");
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        let chunk = rt.send(Logs { id: client.clone(), offset: 0, timestamps: false }).await.unwrap().unwrap();
        assert!(chunk.finished);
        let again = rt.send(Logs { id: client.clone(), offset: chunk.next_offset, timestamps: false }).await.unwrap().unwrap();
        assert_eq!((again.text.as_str(), again.next_offset), ("", chunk.next_offset), "reading on from the end gave more");
        let logs = chunk.text;
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.first(), Some(&"hello from kc"), "client could not reach the server on localhost: {logs}");
        assert_eq!(lines.get(1), Some(&"pod-host"), "{logs}");
        let procs: u32 = lines.get(2).unwrap().parse().unwrap();
        assert!(procs <= 3, "the client sees the server's processes: {logs}");

        let out = rt
            .send(Exec { id: server.clone(), spec: ExecSpec { argv: vec!["hostname".into()], ..Default::default() } })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "pod-host\n");

        let st = rt.send(StopContainer { id: server.clone(), grace: Duration::from_secs(1) }).await.unwrap().unwrap();
        assert_eq!(st.status, Status::Exited);
        for id in [&server, &client] {
            rt.send(RemoveContainer { id: id.clone(), force: false }).await.unwrap().unwrap();
        }
        let err = rt.send(ContainerStatus { id: server.clone() }).await.unwrap().unwrap_err();
        assert!(err.to_string().contains("no such container"), "{err}");

        rt.send(RemoveSandbox { id: sb.id.clone() }).await.unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{}", sb.pid)).exists() {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", sb.pid)).unwrap_or_default();
            if stat.contains(") Z ") {
                break; // a zombie waiting for init: it holds no namespaces
            }
            assert!(Instant::now() < deadline, "sandbox holder still alive");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(
        node.leftover_cgroups().is_empty(),
        "{:?}",
        node.leftover_cgroups()
    );
}

/// Containers outlive the agent that started them: a new `Runtime` (a
/// restarted node agent) finds them running, and the exit status of one
/// that ended while no agent ran was kept by its monitor.
#[test]
fn a_restarted_runtime_adopts_running_containers() {
    let node = Node::new();
    let rootfs = busybox_rootfs();
    let containers = || Containers::new(node.data.path(), &node.name);
    let (long, short, pid) = actix::System::new().block_on(async {
        let rt = Runtime::new(containers(), bin("kcnode")).start();
        let long = rt
            .send(CreateContainer {
                sandbox: None,
                spec: spec(rootfs.path(), &["sleep", "60"]),
            })
            .await
            .unwrap()
            .unwrap();
        let pid = rt
            .send(StartContainer { id: long.clone() })
            .await
            .unwrap()
            .unwrap();
        let short = rt
            .send(CreateContainer {
                sandbox: None,
                spec: spec(rootfs.path(), &["sh", "-c", "sleep 0.5; exit 3"]),
            })
            .await
            .unwrap()
            .unwrap();
        rt.send(StartContainer { id: short.clone() })
            .await
            .unwrap()
            .unwrap();
        (long, short, pid)
    });
    // The first agent is gone; let the short one finish meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    actix::System::new().block_on(async {
        let rt = Runtime::new(containers(), bin("kcnode")).start();
        let st = rt
            .send(ContainerStatus { id: long.clone() })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(st.status, Status::Running);
        assert_eq!(st.pid, Some(pid));
        let st = rt
            .send(ContainerStatus { id: short.clone() })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (st.status, st.exit_code),
            (Status::Exited, Some(3)),
            "{st:?}"
        );
        let st = rt
            .send(StopContainer {
                id: long.clone(),
                grace: Duration::from_millis(200),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(st.exit_code, Some(137));
        for id in [long, short] {
            rt.send(RemoveContainer { id, force: false })
                .await
                .unwrap()
                .unwrap();
        }
    });
    assert!(node.leftover_cgroups().is_empty());
}

/// The live `kcnode shim zygote` children of this test process serving the
/// node whose data dir is `data` (other tests' runtimes have their own).
fn zygotes_of(data: &std::path::Path) -> Vec<i32> {
    let parent = std::process::id();
    let data = data.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) STATE PPID ...": the fields after the last ')'.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        if rest.len() < 2 || rest[0] == "Z" || rest[1] != parent.to_string() {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("shim\0zygote") && cmdline.contains(&format!("\0{data}\0")) {
            found.push(pid);
        }
    }
    found
}

/// A new sandbox (its hostname `name`), checked to be a live holder.
async fn holder(rt: &actix::Addr<Runtime>, name: &str) -> (kc_runtime::sandbox::Sandbox, Holder) {
    let sb = rt
        .send(CreateSandbox {
            name: name.into(),
            hostname: name.into(),
        })
        .await
        .unwrap()
        .unwrap();
    let guard = Holder(sb.pid);
    assert!(
        kc_runtime::sandbox::is_holder(sb.pid),
        "{} is no holder",
        sb.pid
    );
    (sb, guard)
}

/// Sandbox holders are forked by the runtime's zygote (one `kcnode shim
/// zygote` child of the agent), detached from it; when the zygote dies the
/// next request starts a new one and still gets a holder.
#[test]
fn a_dead_zygote_is_replaced() {
    let node = Node::new();
    let sys = actix::System::new();
    sys.block_on(async {
        let rt = Runtime::new(Containers::new(node.data.path(), &node.name), bin("kcnode")).start();
        let (first, _h1) = holder(&rt, "z1").await;
        let zygotes = zygotes_of(node.data.path());
        assert_eq!(zygotes.len(), 1, "expected one zygote: {zygotes:?}");
        // SAFETY: kill of the zygote this test's runtime started.
        unsafe { libc::kill(zygotes[0], libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !zygotes_of(node.data.path()).is_empty() {
            assert!(Instant::now() < deadline, "the zygote did not die");
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            kc_runtime::sandbox::is_holder(first.pid),
            "the holder died with the zygote"
        );

        let (second, _h2) = holder(&rt, "z2").await;
        let now = zygotes_of(node.data.path());
        assert!(
            now.len() == 1 && now[0] != zygotes[0],
            "no new zygote: {now:?} (old {})",
            zygotes[0]
        );
        for sb in [&first, &second] {
            rt.send(RemoveSandbox { id: sb.id.clone() })
                .await
                .unwrap()
                .unwrap();
        }
    });
}
