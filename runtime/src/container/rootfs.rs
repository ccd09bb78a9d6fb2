//! The changed root (the seed guide's "chroot", done as runc does it):
//! an overlayfs over the image layers with a per-container upper dir, the
//! volumes bound in, a fresh /proc, a read-only /sys, a minimal /dev, then
//! `pivot_root` so the host's tree is unreachable, and finally the masked
//! and read-only /proc and /sys paths.
//!
//! Runs in the container's first process, inside its new mount namespace,
//! so every mount vanishes with the container: nothing to unmount on the
//! host afterwards.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::spec::Volume;

/// Files hidden behind /dev/null and directories behind an empty read-only
/// tmpfs (runc's default masked paths).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only (runc's default readonly paths).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The device nodes of the minimal /dev: (name, major, minor).
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct RootfsError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: nix::Error,
}

fn ctx(what: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError { what, path, source }
}

/// The overlayfs mount options: lower dirs top first, as overlay wants.
/// `volatile` (Linux 5.10+): a container's upper dir is never remounted
/// after a crash, so overlay need not sync the host filesystem when the
/// container's mount namespace goes away; that sync is what made a
/// container's exit wait on the host's disk. `setup` retries without it on
/// older kernels.
pub fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| escape_overlay(&p.to_string_lossy()))
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={},volatile",
        lower.join(":"),
        escape_overlay(&upper.to_string_lossy()),
        escape_overlay(&work.to_string_lossy())
    )
}

fn escape_overlay(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Where `inside` (an absolute container path) lands under `root`.
pub fn under(root: &Path, inside: &Path) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in inside.components() {
        if let std::path::Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}

/// Mounts the root filesystem at `target` and everything under it, then
/// pivots into it. On return `/` is the container's root.
pub fn setup(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volumes: &[Volume],
) -> Result<(), RootfsError> {
    let none: Option<&str> = None;
    // Keep our mounts from propagating back to the host.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(ctx("make / private", Path::new("/")))?;
    let opts = overlay_options(layers, upper, work);
    let mounted = mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    );
    if mounted == Err(nix::Error::EINVAL) {
        let plain = opts.trim_end_matches(",volatile");
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(plain),
        )
        .map_err(ctx("mount overlay at", target))?;
    } else {
        mounted.map_err(ctx("mount overlay at", target))?;
    }

    for v in volumes {
        let dst = under(target, &v.container);
        let is_dir = std::fs::metadata(&v.host)
            .map(|m| m.is_dir())
            .unwrap_or(true);
        if is_dir {
            let _ = std::fs::create_dir_all(&dst);
        } else {
            if let Some(parent) = dst.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&dst);
        }
        mount(
            Some(&v.host),
            &dst,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(ctx("bind volume", &v.host))?;
        if v.read_only {
            mount(
                none,
                &dst,
                none,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                none,
            )
            .map_err(ctx("make volume read-only", &dst))?;
        }
    }

    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc_ = target.join("proc");
    let _ = std::fs::create_dir_all(&proc_);
    mount(Some("proc"), &proc_, Some("proc"), nosuid, none)
        .map_err(ctx("mount proc at", &proc_))?;

    let sys = target.join("sys");
    let _ = std::fs::create_dir_all(&sys);
    // A fresh sysfs shows the devices of the network namespace we are in
    // now (our own, the sandbox's, or the caller's with --network host).
    mount(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        nosuid | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(ctx("mount sysfs at", &sys))?;

    setup_dev(&target.join("dev"))?;

    pivot(target)?;

    for p in MASKED_PATHS {
        mask(Path::new(p));
    }
    for p in READONLY_PATHS {
        let p = Path::new(p);
        if p.exists() {
            mount(Some(p), p, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
                .map_err(ctx("bind read-only path", p))?;
            mount(
                none,
                p,
                none,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid,
                none,
            )
            .map_err(ctx("make read-only", p))?;
        }
    }
    Ok(())
}

/// A tmpfs /dev with the standard nodes, devpts, shm and the usual links.
fn setup_dev(dev: &Path) -> Result<(), RootfsError> {
    let _ = std::fs::create_dir_all(dev);
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(ctx("mount tmpfs at", dev))?;
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(*major as u64, *minor as u64),
        )
        .map_err(ctx("mknod", &p))?;
        // mknod obeys the umask; make the mode exact.
        let _ = std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666));
    }
    let pts = dev.join("pts");
    let _ = std::fs::create_dir(&pts);
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .map_err(ctx("mount devpts at", &pts))?;
    let shm = dev.join("shm");
    let _ = std::fs::create_dir(&shm);
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ctx("mount shm at", &shm))?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let _ = std::os::unix::fs::symlink(to, dev.join(link));
    }
    Ok(())
}

/// pivot_root into `target` and drop the old root (runc's "pivot_root . ."
/// trick: no directory for the old root is needed).
fn pivot(target: &Path) -> Result<(), RootfsError> {
    nix::unistd::chdir(target).map_err(ctx("chdir", target))?;
    nix::unistd::pivot_root(".", ".").map_err(ctx("pivot_root into", target))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detach old root under", target))?;
    nix::unistd::chdir("/").map_err(ctx("chdir", Path::new("/")))?;
    Ok(())
}

fn mask(p: &Path) {
    let none: Option<&str> = None;
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, none);
        }
        Ok(_) => {
            let _ = mount(Some("/dev/null"), p, none, MsFlags::MS_BIND, none);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lists_layers_top_first() {
        let o = overlay_options(
            &["/l/bottom".into(), "/l/top".into()],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        );
        assert_eq!(
            o,
            "lowerdir=/l/top:/l/bottom,upperdir=/c/upper,workdir=/c/work,volatile"
        );
    }

    #[test]
    fn overlay_escapes_separators() {
        let o = overlay_options(&["/a:b,c".into()], Path::new("/u"), Path::new("/w"));
        assert_eq!(o, "lowerdir=/a\\:b\\,c,upperdir=/u,workdir=/w,volatile");
    }

    #[test]
    fn container_paths_stay_under_the_root() {
        assert_eq!(
            under(Path::new("/r"), Path::new("/data/x")),
            PathBuf::from("/r/data/x")
        );
        assert_eq!(
            under(Path::new("/r"), Path::new("/../../etc")),
            PathBuf::from("/r/etc")
        );
    }
}
