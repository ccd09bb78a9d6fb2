//! The monitor: one small process per container, its parent for life.
//!
//! It clones the container's init into new namespaces, reports to whoever
//! started it whether the exec succeeded (a line on the "ready" fd), serves
//! published ports, pumps stdout/stderr into the log file (and to the
//! attached terminal for a foreground run), reaps the container, records the
//! exit code and OOM kill in state.json, removes the cgroup, and with
//! `--rm` the whole container. It is a fork of `kcnode` (no exec, no async
//! runtime) or, from a multi-threaded caller, `kcnode shim <dir>`; either
//! way it does not depend on the caller staying alive.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cgroup::Cgroup;
use super::init::{self, RootfsPlan};
use super::logs::{LogWriter, Stream};
use super::namespaces::{self, Joins};
use super::proxy;
use super::state::{ContainerDir, State, Status, now_rfc3339};

/// What the starter learns from the ready fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Running { pid: i32 },
    Failed { exit_code: i32, message: String },
}

impl Started {
    pub fn encode(&self) -> String {
        match self {
            Started::Running { pid } => format!("R {pid}\n"),
            Started::Failed { exit_code, message } => format!("F {exit_code} {message}\n"),
        }
    }
    pub fn decode(s: &str) -> Started {
        let s = s.trim_end();
        if let Some(pid) = s.strip_prefix("R ").and_then(|p| p.parse().ok()) {
            return Started::Running { pid };
        }
        if let Some(rest) = s.strip_prefix("F ") {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            return Started::Failed {
                exit_code: code.parse().unwrap_or(125),
                message: msg.to_string(),
            };
        }
        Started::Failed {
            exit_code: 125,
            message: format!("the container monitor exited before starting the container ({s:?})"),
        }
    }
}

/// Everything the monitor works with.
pub struct Launch {
    pub dir: ContainerDir,
    pub state: State,
    pub cgroup: Option<Cgroup>,
    pub listeners: Vec<(TcpListener, u16)>,
    /// Forward output to our stdout/stderr (and stdin in) instead of /dev/null.
    pub attach: bool,
    /// Overlay upper dir other than the container's own (build steps).
    pub upper: Option<std::path::PathBuf>,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

/// Runs the monitor to the end; returns the container's exit code (for a
/// foreground `run` to pass on).
pub fn run(mut l: Launch, ready: OwnedFd) -> i32 {
    // SAFETY: setsid/dup2 on our own process and fds.
    unsafe {
        libc::setsid();
        if !l.attach
            && let Ok(null) = dev_null()
        {
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
    let mut ready = std::fs::File::from(ready);
    let spec = l.state.spec.clone();
    let fail = |l: &mut Launch, ready: &mut std::fs::File, code: i32, message: String| {
        let _ = ready.write_all(
            Started::Failed {
                exit_code: code,
                message: message.clone(),
            }
            .encode()
            .as_bytes(),
        );
        record_exit(l, code, Some(message));
        code
    };

    // Stdio for the container.
    let mut keep: Vec<OwnedFd> = Vec::new(); // child's ends, closed after clone
    let (child_stdio, outputs): ([RawFd; 3], Vec<(OwnedFd, Stream)>) =
        match (|| -> std::io::Result<_> {
            if spec.tty {
                // The pty is made inside the container; its master arrives
                // on `tty_chan` after the clone.
                Ok(([0, 1, 2], vec![]))
            } else {
                let stdin = if l.attach && spec.stdin {
                    0
                } else {
                    let n = dev_null()?;
                    let fd = n.as_raw_fd();
                    keep.push(n);
                    fd
                };
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                let fds = [stdin, out_w.as_raw_fd(), err_w.as_raw_fd()];
                keep.push(out_w);
                keep.push(err_w);
                Ok((fds, vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)]))
            }
        })() {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    &mut l,
                    &mut ready,
                    125,
                    format!("set up container stdio: {e}"),
                );
            }
        };
    let joins = match Joins::open(&spec.namespaces) {
        Ok(j) => j,
        Err(e) => return fail(&mut l, &mut ready, 125, e.to_string()),
    };
    let tty_chan = if spec.tty {
        match super::tty::fd_channel() {
            Ok(c) => Some(c),
            Err(e) => return fail(&mut l, &mut ready, 125, format!("socketpair: {e}")),
        }
    } else {
        None
    };
    let (err_r, err_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return fail(&mut l, &mut ready, 125, format!("pipe: {e}")),
    };
    let plan = RootfsPlan {
        layers: spec.layers.clone(),
        upper: l.upper.clone().unwrap_or_else(|| l.dir.upper()),
        work: l.dir.work(),
        target: l.dir.rootfs(),
    };
    let placed = match pipe() {
        Ok(p) => p,
        Err(e) => return fail(&mut l, &mut ready, 125, format!("pipe: {e}")),
    };
    let init = init::Init {
        cgroup_placed: Some(placed.0.as_raw_fd()),
        spec: &spec,
        rootfs: &plan,
        cgroup: l.cgroup.as_ref(),
        joins: &joins,
        stdio: child_stdio,
        tty_socket: tty_chan.as_ref().map(|(_, c)| c.as_raw_fd()),
        err_pipe: err_w.as_raw_fd(),
    };
    let pid = match spawn_init(&init, &spec.namespaces) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                &mut l,
                &mut ready,
                125,
                format!("clone the container's init: {e}"),
            );
        }
    };
    drop(err_w);
    drop(keep);
    let (placed_r, placed_w) = placed;
    drop(placed_r);
    match l.cgroup.as_ref().map(|cg| cg.place(pid.as_raw())) {
        Some(Err(e)) => tracing::warn!("{e}"), // the child reports it
        _ => {
            let _ = nix::unistd::write(&placed_w, b"1");
        }
    }
    drop(placed_w);
    let mut outputs = outputs;
    if let Some((ours, theirs)) = tty_chan {
        drop(theirs);
        if let Some(master) = super::tty::recv_fd(ours.as_raw_fd()) {
            if l.attach {
                super::tty::copy_winsize(0, master.as_raw_fd());
            }
            outputs.push((master, Stream::Stdout));
        }
    }
    let mut err_msg = String::new();
    let _ = std::fs::File::from(err_r).read_to_string(&mut err_msg);
    if !err_msg.is_empty() {
        let _ = waitpid(pid, None);
        let (code, msg) = err_msg.split_once(' ').unwrap_or(("125", &err_msg));
        let code = code.parse().unwrap_or(125);
        return fail(&mut l, &mut ready, code, msg.to_string());
    }

    l.state.status = Status::Running;
    l.state.pid = Some(pid.as_raw());
    l.state.monitor_pid = Some(std::process::id() as i32);
    l.state.started_at = Some(now_rfc3339());
    let _ = l.dir.write(&l.state);

    if !l.listeners.is_empty() {
        match std::fs::File::open(format!("/proc/{pid}/ns/net")) {
            Ok(f) => {
                let netns = Arc::new(OwnedFd::from(f));
                for (listener, port) in l.listeners.drain(..) {
                    proxy::serve(listener, port, netns.clone());
                }
            }
            Err(e) => tracing::warn!("publish ports: open the container's network namespace: {e}"),
        }
    }
    let _ = ready.write_all(Started::Running { pid: pid.as_raw() }.encode().as_bytes());
    drop(ready);

    pump(&l, outputs, spec.tty);

    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break 255,
        }
    };
    record_exit(&mut l, code, None);
    code
}

/// Clones the container's init with the namespace flags.
fn spawn_init(init: &init::Init, ns: &super::spec::SharedNamespaces) -> nix::Result<Pid> {
    let mut stack = vec![0u8; 512 * 1024];
    let flags = namespaces::clone_flags(ns);
    // SAFETY: the child gets its own copy of the address space (no
    // CLONE_VM); the monitor is single-threaded at this point, so the
    // child's allocator state is consistent.
    unsafe {
        nix::sched::clone(
            Box::new(|| init::run(init)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
}

/// Copies the container's output into the log (and to our stdout/stderr if
/// attached; with a tty, our stdin into the terminal too) until it closes.
fn pump(l: &Launch, outputs: Vec<(OwnedFd, Stream)>, tty: bool) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.dir.log());
    let mut log = log.ok().map(LogWriter::new);
    let mut open: Vec<(OwnedFd, Stream)> = outputs;
    let master = if tty {
        open.first().map(|(fd, _)| fd.as_raw_fd())
    } else {
        None
    };
    let mut stdin_open = tty && l.attach;
    let mut buf = vec![0u8; 32 * 1024];
    while !open.is_empty() {
        let mut pfds: Vec<libc::pollfd> = open
            .iter()
            .map(|(fd, _)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if stdin_open {
            pfds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: pfds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if stdin_open && pfds.last().is_some_and(|p| p.revents != 0) {
            // SAFETY: reading into our buffer from fd 0.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                stdin_open = false;
            } else if let Some(m) = master {
                write_all_fd(m, &buf[..r as usize]);
            }
        }
        let mut closed = Vec::new();
        for (i, (fd, stream)) in open.iter().enumerate() {
            if pfds[i].revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer from an fd we own.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                closed.push(i);
                continue;
            }
            let chunk = &buf[..r as usize];
            if let Some(w) = log.as_mut() {
                let _ = w.write(*stream, chunk);
            }
            if l.attach {
                write_all_fd(if *stream == Stream::Stdout { 1 } else { 2 }, chunk);
            }
        }
        for i in closed.into_iter().rev() {
            open.remove(i);
        }
    }
    if let Some(w) = log.as_mut() {
        let _ = w.finish();
    }
}

fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a live slice.
        let w = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if w <= 0 {
            if w < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[w as usize..];
    }
}

/// Records the end: exit code, OOM kill, time; removes the cgroup, and
/// with auto-remove the container's directory.
fn record_exit(l: &mut Launch, code: i32, error: Option<String>) {
    let oom = l
        .cgroup
        .as_ref()
        .map(|c| c.oom_kills() > 0)
        .unwrap_or(false);
    if let Some(cg) = &l.cgroup
        && let Err(e) = cg.remove()
    {
        tracing::warn!("{e}");
    }
    l.state.status = Status::Exited;
    l.state.exit_code = Some(code);
    l.state.oom_killed = oom;
    l.state.error = error;
    l.state.finished_at = Some(now_rfc3339());
    if oom && l.attach {
        eprintln!(
            "kcnode: container {} was killed by the OOM killer: it needed more than its memory limit",
            l.state.spec.name
        );
    }
    if l.state.spec.auto_remove {
        let _ = std::fs::remove_dir_all(&l.dir.root);
    } else {
        let _ = l.dir.write(&l.state);
    }
}

/// Makes an fd number into a File (for the shim's inherited ready fd).
///
/// # Safety
/// `fd` must be open and owned by nobody else.
pub unsafe fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: per the function's contract.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::Started;

    #[test]
    fn ready_lines_round_trip() {
        for s in [
            Started::Running { pid: 42 },
            Started::Failed {
                exit_code: 127,
                message: "exec \"x\": not found".into(),
            },
        ] {
            assert_eq!(Started::decode(&s.encode()), s);
        }
        assert!(matches!(
            Started::decode(""),
            Started::Failed { exit_code: 125, .. }
        ));
    }
}
