//! The container's first process, from clone to exec.
//!
//! Runs in the child of the monitor's clone (already in its new PID and
//! mount namespaces, and new network/IPC/UTS unless shared): joins the
//! sandbox's namespaces if any, joins its cgroup, builds and pivots into its
//! root, sets the hostname and brings loopback up, wires stdio, switches
//! user, drops privileges and execs. Any failure is written to the error
//! pipe (as "<exit code> <message>") for the monitor to report; a
//! successful exec closes that pipe (close-on-exec) with nothing written.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use super::cgroup::Cgroup;
use super::namespaces::{self, Joins};
use super::spec::{ContainerSpec, NamespaceMode};
use super::{rootfs, security, user};

/// The directories of the overlay root.
pub struct RootfsPlan {
    pub layers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

/// What the child needs, prepared by the monitor before clone.
pub struct Init<'a> {
    pub spec: &'a ContainerSpec,
    pub rootfs: &'a RootfsPlan,
    /// Join this cgroup ourselves first thing...
    pub cgroup: Option<&'a Cgroup>,
    /// ...or, if set, let the monitor move us (in parallel with our rootfs
    /// work: a v1 cgroup move waits for an RCU grace period) and wait for
    /// its byte on this pipe before exec.
    pub cgroup_placed: Option<RawFd>,
    pub joins: &'a Joins,
    /// The fds to become 0, 1, 2 (ignored with `tty_socket`).
    pub stdio: [RawFd; 3],
    /// With a tty: allocate the pty inside and send its master here.
    pub tty_socket: Option<RawFd>,
    pub err_pipe: RawFd,
}

/// Runs the init sequence; never returns.
pub fn run(init: &Init) -> isize {
    let (code, msg) = match setup_and_exec(init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report_and_exit(init.err_pipe, code, &msg)
}

/// Writes "<code> <message>" to the error pipe and exits with `code`.
pub fn report_and_exit(err_pipe: RawFd, code: i32, msg: &str) -> ! {
    let line = format!("{code} {msg}");
    // SAFETY: writing a buffer we own to a pipe fd we own, then exiting
    // without running the parent's atexit handlers or destructors.
    unsafe {
        libc::write(err_pipe, line.as_ptr().cast(), line.len());
        libc::_exit(code)
    }
}

/// A value that cannot exist: what a successful exec returns.
pub enum Never {}

fn setup_and_exec(init: &Init) -> Result<Never, (i32, String)> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: &dyn std::fmt::Display| (125, format!("{what}: {e}"))
    };
    let spec = init.spec;
    init.joins
        .enter()
        .map_err(|e| fail("join sandbox namespaces")(&e))?;
    if let (Some(cg), None) = (init.cgroup, init.cgroup_placed) {
        cg.join_self().map_err(|e| fail("join cgroup")(&e))?;
    }
    let own_net = spec.namespaces.network == NamespaceMode::New;
    let r = init.rootfs;
    rootfs::setup(&r.layers, &r.upper, &r.work, &r.target, &spec.volumes)
        .map_err(|e| fail("prepare rootfs")(&e))?;
    if spec.namespaces.uts == NamespaceMode::New && !spec.hostname.is_empty() {
        nix::unistd::sethostname(&spec.hostname).map_err(|e| fail("set hostname")(&e))?;
    }
    if own_net {
        namespaces::loopback_up().map_err(|e| fail("bring up loopback")(&e))?;
    }

    if let Some(fd) = init.cgroup_placed {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into our buffer.
        if unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) } != 1 {
            return Err((
                125,
                "the monitor could not place the container in its cgroup".to_string(),
            ));
        }
    }
    // Now in its cgroup: make that the root of what it sees (cgroup
    // namespace), so /proc/self/cgroup shows "/" and no host paths.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| fail("unshare the cgroup namespace")(&e))?;
    let mut stdio = init.stdio;
    let _pty_slave = match init.tty_socket {
        Some(sock) => {
            let (master, slave) =
                super::tty::open_pty_here().map_err(|e| fail("allocate a pty")(&e))?;
            super::tty::send_fd(sock, std::os::fd::AsRawFd::as_raw_fd(&master))
                .map_err(|e| fail("pass the pty to the monitor")(&e))?;
            let s = std::os::fd::AsRawFd::as_raw_fd(&slave);
            stdio = [s, s, s];
            Some(slave)
        }
        None => None,
    };
    // SAFETY: dup2/setsid/ioctl on fds the monitor passed us; this process
    // is single-threaded.
    unsafe {
        for (i, fd) in stdio.iter().enumerate() {
            if *fd != i as RawFd && libc::dup2(*fd, i as RawFd) < 0 {
                return Err(fail("set up stdio")(&std::io::Error::last_os_error()));
            }
        }
        if spec.tty {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
        // Nothing but stdio (and the error pipe, closed on exec) crosses.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            4u32, /* CLOSE_RANGE_CLOEXEC */
        );
    }

    exec_command(&spec.argv, &spec.env, &spec.user, &spec.working_dir)
}

/// The last steps shared by a container's init and `exec`: chdir, user,
/// privileges dropped, execve of `argv` found on the container's PATH.
/// Only returns on failure, with the exit code to report (127: not found,
/// 126: not executable, 125: anything else).
pub fn exec_command(
    argv: &[String],
    env: &[String],
    user_spec: &str,
    working_dir: &str,
) -> Result<Never, (i32, String)> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: &dyn std::fmt::Display| (125, format!("{what}: {e}"))
    };
    let workdir = if working_dir.is_empty() {
        "/"
    } else {
        working_dir
    };
    let _ = std::fs::create_dir_all(workdir);
    nix::unistd::chdir(workdir)
        .map_err(|e| fail(&format!("chdir to working directory {workdir}"))(&e))?;

    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let id = user::resolve(user_spec, &passwd, &group).map_err(|e| (125, e))?;

    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let argv0 = argv.first().ok_or((125, "empty command".to_string()))?;
    let program = find_executable(argv0, path_env).ok_or_else(|| {
        (
            127,
            format!(
                "exec {argv0:?}: executable file not found in $PATH ({path_env}) of the container"
            ),
        )
    })?;
    let cstr = |s: &str| CString::new(s).map_err(|_| (125, format!("{s:?} contains a NUL byte")));
    let c_argv: Vec<CString> = argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let c_env: Vec<CString> = env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let prog = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| (125, "bad path".to_string()))?;

    security::harden(&id).map_err(|e| fail("drop privileges")(&e))?;
    super::seccomp::install().map_err(|e| fail("install the seccomp filter")(&e))?;
    let e = nix::unistd::execve(&prog, &c_argv, &c_env).unwrap_err();
    let code = if e == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    };
    Err((code, format!("exec {}: {e}", program.display())))
}

/// Finds `name` like execvp does, using the container's PATH.
pub fn find_executable(name: &str, path_env: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path_env
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn executables_are_found_on_path() {
        assert_eq!(
            super::find_executable("sh", "/nonexistent:/bin"),
            Some("/bin/sh".into())
        );
        assert_eq!(super::find_executable("./x", ""), Some("./x".into()));
        assert_eq!(
            super::find_executable("no-such-program-kc", "/bin:/usr/bin"),
            None
        );
    }
}
