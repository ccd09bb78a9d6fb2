//! What a shim process does once it runs (exec'd as `kcnode shim ...` or
//! forked by the zygote): detach, then become a container's monitor or a
//! pod sandbox's holder, and report on its ready descriptor ("R <pid>" or
//! "F <code> <msg>"). Starting one is `shim.rs`'s job.

use std::os::fd::{FromRawFd, OwnedFd};

use super::monitor::{self, Launch, Started};
use super::ops::{Containers, bind_ports};
use super::{cgroup, namespaces};

/// The process name (`/proc/<pid>/comm`) every holder gives itself: a
/// holder forked by the zygote keeps the zygote's command line.
pub const HOLDER_NAME: &str = "kc-pause";

/// Double-forks so the caller's `wait` returns at once and the shim is
/// adopted by init. Returns in the grandchild only.
fn detach() {
    // SAFETY: the shim is single-threaded; the intermediate exits at once.
    unsafe {
        match libc::fork() {
            0 => {}
            -1 => libc::_exit(125),
            _ => libc::_exit(0),
        }
        libc::setsid();
        match libc::fork() {
            0 => {}
            -1 => libc::_exit(125),
            _ => libc::_exit(0),
        }
    }
}

/// `kcnode shim monitor <id>`: monitors an already created container.
pub fn monitor_main(containers: &Containers, id: &str) -> i32 {
    monitor_with(containers, id, dup_stdout())
}

/// The monitor of container `id`, reporting on `ready` (from `monitor_main`
/// or a zygote's child).
pub fn monitor_with(containers: &Containers, id: &str, ready: OwnedFd) -> i32 {
    let dir = containers.dir(id);
    let state = match dir.read() {
        Ok(s) => s,
        Err(e) => return report(ready, 125, &format!("container {id}: {e}")),
    };
    let listeners = match bind_ports(&state.spec) {
        Ok(l) => l,
        Err(e) => return report(ready, 125, &e.to_string()),
    };
    let cg = cgroup::detect()
        .ok()
        .map(|h| h.cgroup(&containers.node, id));
    detach();
    monitor::run(
        Launch {
            dir,
            state,
            cgroup: cg,
            listeners,
            attach: false,
            upper: None,
        },
        ready,
    )
}

/// `kcnode shim pause --hostname H`: holds new network, IPC and UTS
/// namespaces for a pod sandbox until killed.
pub fn pause_main(hostname: &str) -> i32 {
    pause_with(hostname, dup_stdout())
}

/// The sandbox holder, reporting on `ready`.
pub fn pause_with(hostname: &str, ready: OwnedFd) -> i32 {
    detach();
    // The name that tells a holder from a process that reused its PID.
    if let Ok(name) = std::ffi::CString::new(HOLDER_NAME) {
        // SAFETY: PR_SET_NAME copies at most 16 bytes of a valid C string.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
    let flags = nix::sched::CloneFlags::CLONE_NEWNET
        | nix::sched::CloneFlags::CLONE_NEWIPC
        | nix::sched::CloneFlags::CLONE_NEWUTS;
    if let Err(e) = nix::sched::unshare(flags) {
        return report(ready, 125, &format!("unshare the sandbox namespaces: {e}"));
    }
    if let Err(e) = nix::unistd::sethostname(hostname) {
        return report(ready, 125, &format!("set the sandbox hostname: {e}"));
    }
    if let Err(e) = namespaces::loopback_up() {
        return report(ready, 125, &format!("bring up the sandbox loopback: {e}"));
    }
    let line = Started::Running {
        pid: std::process::id() as i32,
    }
    .encode();
    let mut f = std::fs::File::from(ready);
    let _ = std::io::Write::write_all(&mut f, line.as_bytes());
    drop(f);
    // SAFETY: closing our stdio onto /dev/null and sleeping until a signal.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        loop {
            libc::pause();
        }
    }
}

fn dup_stdout() -> OwnedFd {
    // SAFETY: dup of our stdout gives a new fd we own.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        libc::dup2(null, 1);
        libc::close(null);
        OwnedFd::from_raw_fd(fd)
    }
}

pub(crate) fn report(ready: OwnedFd, code: i32, message: &str) -> i32 {
    let mut f = std::fs::File::from(ready);
    let _ = std::io::Write::write_all(
        &mut f,
        Started::Failed {
            exit_code: code,
            message: message.to_string(),
        }
        .encode()
        .as_bytes(),
    );
    code
}
