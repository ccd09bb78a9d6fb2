//! Namespaces: what a container can see (the seed guide's "Namespaces").
//!
//! Each container gets new PID and mount namespaces; network, IPC and UTS
//! are new too unless the container joins a pod sandbox's (through the
//! sandbox's `/proc/<pid>/ns/*` files) or shares the host's network.
//! The clone flags are computed purely; the joins and the loopback
//! bring-up run in the container's first process before it execs.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;

use super::spec::{NamespaceMode, SharedNamespaces};

/// The flags to clone the container's init with.
pub fn clone_flags(ns: &SharedNamespaces) -> CloneFlags {
    let mut f = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS;
    if ns.network == NamespaceMode::New {
        f |= CloneFlags::CLONE_NEWNET;
    }
    if ns.ipc == NamespaceMode::New {
        f |= CloneFlags::CLONE_NEWIPC;
    }
    if ns.uts == NamespaceMode::New {
        f |= CloneFlags::CLONE_NEWUTS;
    }
    f
}

/// Namespace files opened before the clone, joined by the child.
pub struct Joins {
    fds: Vec<(OwnedFd, CloneFlags)>,
}

impl Joins {
    /// Opens the namespace files of every `Join` mode in `ns`.
    pub fn open(ns: &SharedNamespaces) -> std::io::Result<Joins> {
        let mut fds = Vec::new();
        for (mode, flag) in [
            (&ns.network, CloneFlags::CLONE_NEWNET),
            (&ns.ipc, CloneFlags::CLONE_NEWIPC),
            (&ns.uts, CloneFlags::CLONE_NEWUTS),
        ] {
            if let NamespaceMode::Join(path) = mode {
                let f = std::fs::File::open(path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("open namespace {}: {e}", path.display()))
                })?;
                fds.push((OwnedFd::from(f), flag));
            }
        }
        Ok(Joins { fds })
    }

    /// Enters the opened namespaces (in the calling, single-threaded process).
    pub fn enter(&self) -> nix::Result<()> {
        for (fd, flag) in &self.fds {
            nix::sched::setns(fd, *flag)?;
        }
        Ok(())
    }
}

/// Enters the namespaces of a running process `pid` (for `exec`): all of
/// cgroup, ipc, uts, net, pid and mnt. PID takes effect for children only.
pub fn enter_all(pid: i32) -> std::io::Result<()> {
    let mut fds = Vec::new();
    for (name, flag) in [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{pid}/ns/{name}");
        let f = std::fs::File::open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("open {path}: {e}")))?;
        fds.push((OwnedFd::from(f), flag));
    }
    for (fd, flag) in &fds {
        nix::sched::setns(fd, *flag)
            .map_err(|e| std::io::Error::other(format!("setns {flag:?}: {e}")))?;
    }
    Ok(())
}

/// Brings the loopback interface up in the current network namespace.
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq we own; the fd is
    // closed by OwnedFd.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_container_gets_all_new_namespaces() {
        let f = clone_flags(&SharedNamespaces::default());
        for want in [
            CloneFlags::CLONE_NEWPID,
            CloneFlags::CLONE_NEWNS,
            CloneFlags::CLONE_NEWNET,
            CloneFlags::CLONE_NEWIPC,
            CloneFlags::CLONE_NEWUTS,
        ] {
            assert!(f.contains(want));
        }
    }

    #[test]
    fn a_sandboxed_container_keeps_only_pid_and_mount_new() {
        let ns = SharedNamespaces {
            network: NamespaceMode::Join("/proc/1/ns/net".into()),
            ipc: NamespaceMode::Join("/proc/1/ns/ipc".into()),
            uts: NamespaceMode::Join("/proc/1/ns/uts".into()),
        };
        assert_eq!(
            clone_flags(&ns),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
    }
}
