//! The shim zygote: one pre-started, single-threaded `kcnode shim zygote`
//! per node agent that forks sandbox holders and container monitors on
//! request, so a pod start costs a fork of a small process instead of an
//! exec of the whole kcnode binary (dynamic loading, relocation, argument
//! parsing) per holder and per container.
//!
//! The agent (multi-threaded, never forks without exec) keeps one end of a
//! `SOCK_SEQPACKET` socket pair, the zygote has the other as its stdin.
//! A request is one message, `Request::encode`, carrying the write end of
//! a fresh pipe (`SCM_RIGHTS`); the zygote forks, and the child runs what
//! `kcnode shim monitor|pause` runs with that pipe as its ready channel
//! (it detaches with a double fork, as the exec'd shim does, so holders and
//! monitors outlive kcnode and the zygote). The agent reads the ready line
//! ("R <pid>" / "F <code> <msg>") from the pipe's read end; requests run
//! concurrently. The zygote exits when the agent's end closes (the agent
//! ended); a dead zygote is restarted on the next request, and if that
//! fails the caller execs the shim as before.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use super::monitor::Started;
use super::ops::Containers;
use super::shim_process;

/// What the zygote is asked to fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `kcnode shim monitor <id>`.
    Monitor { id: String },
    /// `kcnode shim pause --hostname <hostname>`.
    Pause { hostname: String },
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Monitor { id } => format!("M {id}").into_bytes(),
            Request::Pause { hostname } => format!("P {hostname}").into_bytes(),
        }
    }

    pub fn decode(b: &[u8]) -> Option<Request> {
        let s = std::str::from_utf8(b).ok()?;
        let (kind, arg) = s.split_once(' ')?;
        if arg.is_empty() || arg.contains(['\n', '\0']) {
            return None;
        }
        match kind {
            "M" => Some(Request::Monitor { id: arg.into() }),
            "P" => Some(Request::Pause {
                hostname: arg.into(),
            }),
            _ => None,
        }
    }
}

/// The largest request (a container id or a 63-byte hostname fits easily).
const MAX_REQUEST: usize = 1024;

/// `kcnode shim zygote`: serves requests from stdin until it closes.
pub fn serve(containers: &Containers) -> i32 {
    // SAFETY: dup of our stdin (the channel) to a close-on-exec fd we own;
    // stdin then reads /dev/null, like the exec'd shim's.
    let chan = unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return 125;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        libc::dup2(null, 0);
        libc::close(null);
        OwnedFd::from_raw_fd(fd)
    };
    let mut buf = [0u8; MAX_REQUEST];
    loop {
        let (len, ready) = match receive(chan.as_raw_fd(), &mut buf) {
            Ok((0, _)) => return 0,
            Ok(r) => r,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("shim zygote: cannot read a request: {e}");
                return 1;
            }
        };
        let Some(ready) = ready else { continue };
        // SAFETY: the zygote is single-threaded: the child may do anything.
        match unsafe { libc::fork() } {
            0 => {
                drop(chan);
                let code = match Request::decode(&buf[..len]) {
                    Some(Request::Monitor { id }) => {
                        shim_process::monitor_with(containers, &id, ready)
                    }
                    Some(Request::Pause { hostname }) => shim_process::pause_with(&hostname, ready),
                    None => shim_process::report(ready, 125, "bad request to the shim zygote"),
                };
                // The intermediate child after a failure, or a monitor
                // whose container ended: never back into the loop.
                std::process::exit(code);
            }
            -1 => {
                let e = std::io::Error::last_os_error();
                shim_process::report(ready, 125, &format!("the shim zygote cannot fork: {e}"));
            }
            child => {
                drop(ready);
                // The child detaches (or fails) at once: reap it.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            }
        }
    }
}

/// One message and the fd it carries, if any.
fn receive(chan: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(chan, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel just installed this fd for us.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}

/// The agent's handle on its zygote (started on first use).
pub struct Zygote {
    shim: PathBuf,
    containers: Containers,
    running: Mutex<Option<Running>>,
}

struct Running {
    chan: OwnedFd,
    child: Child,
}

impl Zygote {
    pub fn new(shim: PathBuf, containers: Containers) -> Zygote {
        Zygote {
            shim,
            containers,
            running: Mutex::new(None),
        }
    }

    fn start(&self) -> std::io::Result<Running> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let child = Command::new(&self.shim)
            .arg("--data-dir")
            .arg(&self.containers.data_dir)
            .arg("--node-name")
            .arg(&self.containers.node)
            .args(["shim", "zygote"])
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Running { chan: ours, child })
    }

    /// Has the zygote fork `req` and answers the child's ready line. An
    /// error means the zygote could not be asked (the caller may exec the
    /// shim instead); a child that died early is a `Started::Failed`.
    pub fn spawn(&self, req: &Request) -> std::io::Result<Started> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        self.send(req, &write)?;
        drop(write);
        let mut out = String::new();
        let _ = std::fs::File::from(read).read_to_string(&mut out);
        Ok(Started::decode(&out))
    }

    fn send(&self, req: &Request, ready: &OwnedFd) -> std::io::Result<()> {
        let bytes = req.encode();
        let fds = [ready.as_raw_fd()];
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            let r = match running.as_ref() {
                Some(r) => r,
                None => running.insert(self.start()?),
            };
            let sent = sendmsg::<()>(
                r.chan.as_raw_fd(),
                &[IoSlice::new(&bytes)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
            match sent {
                Ok(_) => return Ok(()),
                Err(e) => {
                    // Gone (EPIPE): reap it and start a new one once.
                    if let Some(old) = running.take() {
                        stop(old);
                    }
                    if attempt == 1 {
                        return Err(e.into());
                    }
                    tracing::warn!("the shim zygote is gone ({e}): starting a new one");
                }
            }
        }
        Ok(())
    }
}

/// Closes the zygote's channel (it exits) and reaps it.
fn stop(r: Running) {
    let Running { chan, mut child } = r;
    drop(chan);
    let _ = child.wait();
}

impl Drop for Zygote {
    fn drop(&mut self) {
        if let Some(r) = self
            .running
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            stop(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Monitor {
                id: "0123456789abcdef".into(),
            },
            Request::Pause {
                hostname: "web-0".into(),
            },
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r));
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        for b in [
            &b""[..],
            b"M",
            b"M ",
            b"X abc",
            b"P a\nb",
            b"M a\0b",
            &[0xff, b' ', b'a'],
        ] {
            assert_eq!(Request::decode(b), None, "{b:?}");
        }
    }
}
