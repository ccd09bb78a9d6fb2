//! Terminals for `-t`: a pseudo-terminal whose slave becomes the
//! container's stdio, the caller's terminal switched to raw mode while
//! attached (restored on drop), and the window size carried over.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// A new pty pair sized like the terminal on `size_from` (if it is one).
pub fn open_pty(size_from: i32) -> std::io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: TIOCGWINSZ fills a winsize we own; openpty returns two fds we
    // take ownership of.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        let have = libc::ioctl(size_from, libc::TIOCGWINSZ, &mut ws) == 0;
        let pty = nix::pty::openpty(if have { Some(&ws) } else { None }, None)
            .map_err(std::io::Error::from)?;
        for fd in [&pty.master, &pty.slave] {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
        Ok((pty.master, pty.slave))
    }
}

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
