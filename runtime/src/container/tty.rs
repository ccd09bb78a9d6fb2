//! Terminals for `-t`: a pseudo-terminal whose slave becomes the
//! container's stdio, the caller's terminal switched to raw mode while
//! attached (restored on drop), and the window size carried over.
//!
//! The pty is allocated *inside* the container (from its own devpts
//! instance, as runc does), so `tty` and `ttyname` work there; its master
//! is sent back to the monitor (or `exec`) over a unix socket.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// Puts the terminal on `fd` into raw mode until dropped.
pub struct RawMode {
    fd: i32,
    saved: Termios,
}

impl RawMode {
    /// Returns None if `fd` is not a terminal.
    pub fn enter(fd: i32) -> Option<RawMode> {
        // SAFETY: fd stays open for the life of the process (stdin).
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(b, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in enter.
        let b = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(b, SetArg::TCSANOW, &self.saved);
    }
}

/// Opens a new pty from the current mount namespace's /dev/ptmx.
pub fn open_pty_here() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    // SAFETY: open/ioctl on fds we own; buffers are ours.
    unsafe {
        let m = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if m < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let master = OwnedFd::from_raw_fd(m);
        let unlock: libc::c_int = 0;
        if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut n: libc::c_uint = 0;
        if libc::ioctl(m, libc::TIOCGPTN, &mut n) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path =
            std::ffi::CString::new(format!("/dev/pts/{n}")).map_err(std::io::Error::other)?;
        let s = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((master, OwnedFd::from_raw_fd(s)))
    }
}

/// A socket pair for passing the master back.
pub fn fd_channel() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}

/// Sends `fd` over the unix socket `sock`.
pub fn send_fd(sock: i32, fd: i32) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd];
    let iov = [std::io::IoSlice::new(b"m")];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// Receives an fd from `sock`; None if the other side closed without one.
pub fn recv_fd(sock: i32) -> Option<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ok()?;
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just gave us this fd.
            return fds.first().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    None
}

/// Sets the pty `master`'s window size (which signals SIGWINCH to its
/// foreground process group).
pub fn set_winsize(master: i32, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ioctl with a winsize we own.
    unsafe {
        libc::ioctl(master, libc::TIOCSWINSZ, &ws);
    }
}

/// `COLUMNS ROWS` (one resize line; `x` also separates) as numbers.
pub fn parse_size(line: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.trim().split([' ', 'x']);
    let cols = parts.next()?.parse().ok()?;
    let rows = parts.next()?.parse().ok()?;
    Some((cols, rows))
}

/// Copies the window size of the terminal on `from` to the pty `master`.
pub fn copy_winsize(from: i32, master: i32) {
    // SAFETY: ioctls with a winsize we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn resize_lines_are_columns_then_rows() {
        assert_eq!(parse_size(b"100 40\n"), Some((100, 40)));
        assert_eq!(parse_size(b"80x24"), Some((80, 24)));
        assert_eq!(parse_size(b"wide tall\n"), None);
        assert_eq!(parse_size(b"70000 1\n"), None);
    }
}
