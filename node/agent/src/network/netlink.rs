//! An rtnetlink socket: sends the requests of `rtmsg.rs` to the kernel
//! and waits for each acknowledgement (no process, a few syscalls).
//!
//! A socket works on the network namespace it was created in, whatever
//! thread uses it later: `Netlink::open_in` creates one inside another
//! process's namespace from a short-lived std thread that `setns`es there
//! (the thread's namespace dies with it; the socket keeps pointing at the
//! sandbox). Tokio's threads never change namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::rtmsg::{self, Request};

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket on the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket/bind calls on a zeroed sockaddr_nl; the fd
        // is owned right away.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            let sa = &sa as *const libc::sockaddr_nl as *const libc::sockaddr;
            let len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
            // Bound to a kernel-chosen port, connected to the kernel (port 0).
            if libc::bind(fd.as_raw_fd(), sa, len) < 0 || libc::connect(fd.as_raw_fd(), sa, len) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(Netlink { fd, seq: 0 })
        }
    }

    /// A socket on the network namespace of process `pid` (a sandbox's
    /// holder), made from a thread that enters it and then ends.
    pub fn open_in(pid: i32) -> io::Result<Netlink> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        std::thread::Builder::new()
            .name("kc-netns".into())
            .spawn(move || {
                // SAFETY: setns of this thread only (CLONE_NEWNET is allowed
                // per thread); the thread ends right after.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                Netlink::open()
            })?
            .join()
            .map_err(|_| io::Error::other("the namespace thread panicked"))?
    }

    /// Sends `req` and waits for its acknowledgement.
    pub fn request(&mut self, req: &Request) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let msg = req.encode(self.seq);
        // SAFETY: send of a buffer we own on our socket (connected to the
        // kernel).
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: recv into a buffer we own, bounded by its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            match rtmsg::ack(&buf[..n as usize], self.seq) {
                Some(Ok(())) => return Ok(()),
                Some(Err(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                None => continue,
            }
        }
    }

    /// The index of interface `name` in this socket's namespace (0 if none):
    /// asked through the socket itself, so it works on another namespace.
    pub fn index(&self, name: &str) -> u32 {
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        if name.len() >= req.ifr_name.len() {
            return 0;
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCGIFINDEX reads the name and writes the index into our
        // ifreq; netlink sockets answer the generic device ioctls in their
        // namespace.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) };
        if r < 0 {
            0
        } else {
            // SAFETY: the kernel filled the index member of the union.
            unsafe { req.ifr_ifru.ifru_ifindex as u32 }
        }
    }
}
