//! `exec`: run another process inside a running container.
//!
//! A forked helper joins the container's cgroup and all its namespaces
//! (ipc, uts, net, pid, mnt: entering the mount namespace also puts it at
//! the container's root), then forks again because a PID namespace only
//! applies to children; the grandchild drops privileges like the init did
//! and execs. With `tty`, a pty carries the session and our terminal runs
//! raw; otherwise our stdio is the process's stdio.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::wait::{WaitStatus, waitpid};

use super::init;
use super::namespaces;
use super::ops::{Containers, Error};
use super::spec::merge_env;
use super::state::Status;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// The terminal's first size (columns, rows); none: our stdin's.
    pub winsize: Option<(u16, u16)>,
    /// A descriptor to read later sizes from, one `COLUMNS ROWS` line each
    /// (the node passes a client's resizes this way).
    pub resize_fd: Option<i32>,
}

fn wait_code(pid: nix::unistd::Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}

impl Containers {
    /// Runs `exec` in container `key`; returns its exit code. Forks: call
    /// from a single-threaded process.
    pub fn exec(&self, key: &str, exec: &ExecSpec) -> Result<i32, Error> {
        let s = self.find(key)?;
        let pid = match (s.status, s.pid) {
            (Status::Running, Some(p)) => p,
            _ => return Err(Error::NotRunning(s.spec.name.clone())),
        };
        let ioe = |what: &str| {
            let (id, what) = (s.id.clone(), what.to_string());
            move |e: nix::Error| Error::Io {
                id,
                what,
                source: e.into(),
            }
        };
        let cg = self.cgroup(&s.id);
        // With a tty, the pty is allocated inside the container and its
        // master sent back on this channel.
        let tty_chan = if exec.tty {
            Some(super::tty::fd_channel().map_err(|e| Error::Io {
                id: s.id.clone(),
                what: "socketpair".into(),
                source: e,
            })?)
        } else {
            None
        };
        let (err_r, err_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ioe("pipe"))?;
        let env = merge_env(&s.spec.env, &exec.env);
        let user = exec.user.clone().unwrap_or_else(|| s.spec.user.clone());
        let workdir = exec
            .working_dir
            .clone()
            .unwrap_or_else(|| s.spec.working_dir.clone());
        // SAFETY: single-threaded caller; children run our code and _exit.
        match unsafe { nix::unistd::fork() }.map_err(ioe("fork"))? {
            nix::unistd::ForkResult::Child => {
                let ef = err_w.as_raw_fd();
                if let Some(cg) = &cg
                    && let Err(e) = cg.join_self()
                {
                    init::report_and_exit(ef, 125, &e.to_string());
                }
                if let Err(e) = namespaces::enter_all(pid) {
                    init::report_and_exit(
                        ef,
                        125,
                        &format!("enter the container's namespaces: {e}"),
                    );
                }
                // SAFETY: as above.
                match unsafe { nix::unistd::fork() } {
                    Ok(nix::unistd::ForkResult::Child) => {
                        if let Some((_, theirs)) = &tty_chan {
                            let slave = match super::tty::open_pty_here().and_then(|(m, sl)| {
                                super::tty::send_fd(theirs.as_raw_fd(), m.as_raw_fd()).map(|_| sl)
                            }) {
                                Ok(sl) => sl,
                                Err(e) => {
                                    init::report_and_exit(ef, 125, &format!("allocate a pty: {e}"))
                                }
                            };
                            // SAFETY: wiring our own fds as stdio.
                            unsafe {
                                for fd in 0..3 {
                                    libc::dup2(slave.as_raw_fd(), fd);
                                }
                                libc::setsid();
                                libc::ioctl(0, libc::TIOCSCTTY, 0);
                            }
                        }
                        // SAFETY: marks every other fd close-on-exec.
                        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
                        let (code, msg) =
                            match init::exec_command(&exec.argv, &env, &user, &workdir) {
                                Ok(never) => match never {},
                                Err(e) => e,
                            };
                        init::report_and_exit(ef, code, &msg)
                    }
                    Ok(nix::unistd::ForkResult::Parent { child }) => {
                        drop(err_w);
                        drop(tty_chan);
                        let code = wait_code(child);
                        // SAFETY: leaving without unwinding into the caller.
                        unsafe { libc::_exit(code) }
                    }
                    Err(e) => init::report_and_exit(ef, 125, &format!("fork: {e}")),
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(err_w);
                let master = tty_chan.and_then(|(ours, theirs)| {
                    drop(theirs);
                    super::tty::recv_fd(ours.as_raw_fd())
                });
                if let Some(m) = &master {
                    match exec.winsize {
                        Some((cols, rows)) => super::tty::set_winsize(m.as_raw_fd(), cols, rows),
                        None => super::tty::copy_winsize(0, m.as_raw_fd()),
                    }
                }
                let mut msg = String::new();
                let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
                if !msg.is_empty() {
                    let code = wait_code(child);
                    let text = msg
                        .split_once(' ')
                        .map(|(_, m)| m.to_string())
                        .unwrap_or(msg);
                    return Err(Error::Start {
                        id: s.id.clone(),
                        exit_code: code,
                        message: text,
                    });
                }
                if let Some(m) = master {
                    copy_tty(&m, exec.resize_fd);
                }
                Ok(wait_code(child))
            }
        }
    }
}

/// Copies our stdin to the pty and the pty to our stdout until it closes;
/// sizes read from `resize_fd` (`COLUMNS ROWS` lines) resize the pty.
fn copy_tty(master: &OwnedFd, resize_fd: Option<i32>) {
    let _raw = super::tty::RawMode::enter(0);
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut resizes = resize_fd.map(|fd| (fd, Vec::new()));
    loop {
        let mut pfds = vec![libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if stdin_open {
            pfds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let resize_slot = resizes.as_ref().map(|(fd, _)| {
            pfds.push(libc::pollfd {
                fd: *fd,
                events: libc::POLLIN,
                revents: 0,
            });
            pfds.len() - 1
        });
        // SAFETY: valid pollfd array.
        if unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) } < 0 {
            continue;
        }
        if let Some(i) = resize_slot
            && pfds[i].revents != 0
            && let Some((fd, pending)) = resizes.as_mut()
        {
            // SAFETY: read into our buffer.
            let n = unsafe { libc::read(*fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                resizes = None;
            } else {
                pending.extend_from_slice(&buf[..n as usize]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if let Some((cols, rows)) = super::tty::parse_size(&line) {
                        super::tty::set_winsize(master.as_raw_fd(), cols, rows);
                    }
                }
            }
        }
        if stdin_open && pfds[1].revents != 0 {
            // SAFETY: read into our buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                stdin_open = false;
            } else {
                // SAFETY: write from our buffer.
                unsafe { libc::write(master.as_raw_fd(), buf.as_ptr().cast(), n as usize) };
            }
        }
        if pfds[0].revents != 0 {
            // SAFETY: read into our buffer.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            // SAFETY: write from our buffer.
            unsafe { libc::write(1, buf.as_ptr().cast(), n as usize) };
        }
    }
}
