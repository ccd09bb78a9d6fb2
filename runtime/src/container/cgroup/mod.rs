//! cgroups: the kernel's resource accounting and limits for a group of
//! processes (the seed guide's "Control groups").
//!
//! Hosts differ: older ones mount one hierarchy per controller (v1, e.g.
//! /sys/fs/cgroup/memory), current ones a single unified hierarchy (v2).
//! `detect` reads /proc/self/mountinfo and picks the layout that actually
//! has the memory, cpu and pids controllers (a hybrid host may mount an
//! empty cgroup2 beside its v1 controllers). Every container gets a group
//! `kc/<node>/<id>` from the hierarchy root (absolute, whatever cgroup the
//! caller sits in), with limits written before its process joins, and removed
//! with the container. The version-specific file names live in `v1` and `v2`;
//! this module is the part both share.

pub mod usage;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use super::spec::Resources;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no usable cgroup hierarchy: need cgroup v1 memory/cpu/pids controllers or a cgroup2 mount with them enabled (see /proc/self/mountinfo)"
    )]
    NotFound,
    #[error("cgroup {path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { path, op, source }
}

/// One cgroup mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// v1: the controllers bound to this hierarchy; v2: empty (read
    /// cgroup.controllers).
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Which layout this host uses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// One mount point per controller we use (memory, cpu, pids, devices).
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        pids: PathBuf,
        devices: Option<PathBuf>,
        /// CPU time accounting (`cpuacct.usage`), for the metrics API;
        /// often mounted together with cpu (`cpu,cpuacct`), then the same path.
        cpuacct: Option<PathBuf>,
    },
    /// The unified hierarchy's mount point.
    V2 { root: PathBuf },
}

/// Parses /proc/self/mountinfo into its cgroup mounts.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape_octal(left[4]));
        match right[0] {
            "cgroup2" => out.push(CgroupMount {
                mount_point,
                controllers: vec![],
                v2: true,
            }),
            "cgroup" => {
                let known = [
                    "memory",
                    "cpu",
                    "cpuacct",
                    "pids",
                    "devices",
                    "freezer",
                    "blkio",
                    "cpuset",
                    "hugetlb",
                    "net_cls",
                    "net_prio",
                    "perf_event",
                    "rdma",
                    "misc",
                ];
                let controllers = right[2]
                    .split(',')
                    .filter(|o| known.contains(o))
                    .map(str::to_string)
                    .collect();
                out.push(CgroupMount {
                    mount_point,
                    controllers,
                    v2: false,
                });
            }
            _ => {}
        }
    }
    out
}

/// mountinfo escapes spaces and such as `\040`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks the hierarchy: a cgroup2 mount whose `cgroup.controllers` (as
/// returned by `v2_controllers`) has memory, cpu and pids wins; else the v1
/// mounts of those controllers.
pub fn choose(
    mounts: &[CgroupMount],
    v2_controllers: impl Fn(&Path) -> Vec<String>,
) -> Result<Hierarchy, CgroupError> {
    for m in mounts.iter().filter(|m| m.v2) {
        let have = v2_controllers(&m.mount_point);
        if ["memory", "cpu", "pids"]
            .iter()
            .all(|c| have.iter().any(|h| h == c))
        {
            return Ok(Hierarchy::V2 {
                root: m.mount_point.clone(),
            });
        }
    }
    let find = |c: &str| {
        mounts
            .iter()
            .find(|m| !m.v2 && m.controllers.iter().any(|x| x == c))
            .map(|m| m.mount_point.clone())
    };
    match (find("memory"), find("cpu"), find("pids")) {
        (Some(memory), Some(cpu), Some(pids)) => Ok(Hierarchy::V1 {
            memory,
            cpu,
            pids,
            devices: find("devices"),
            cpuacct: find("cpuacct"),
        }),
        _ => Err(CgroupError::NotFound),
    }
}

/// Detects this host's hierarchy.
pub fn detect() -> Result<Hierarchy, CgroupError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io(Path::new("/proc/self/mountinfo"), "read"))?;
    choose(&parse_mountinfo(&text), |p| {
        std::fs::read_to_string(p.join("cgroup.controllers"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    })
}

/// One container's cgroup: a directory per v1 controller, or one v2 dir.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    pub v2: bool,
    pub dirs: Vec<PathBuf>,
}

impl Hierarchy {
    /// The container's cgroup directories (`kc/<node>/<id>` under each root).
    pub fn cgroup(&self, node: &str, id: &str) -> Cgroup {
        let rel = Path::new("kc").join(node).join(id);
        match self {
            Hierarchy::V1 {
                memory,
                cpu,
                pids,
                devices,
                cpuacct,
            } => {
                let mut dirs: Vec<PathBuf> = Vec::new();
                let optional = [devices.as_ref(), cpuacct.as_ref()];
                for root in [Some(memory), Some(cpu), Some(pids)]
                    .into_iter()
                    .chain(optional)
                    .flatten()
                {
                    let d = root.join(&rel);
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
                Cgroup { v2: false, dirs }
            }
            Hierarchy::V2 { root } => Cgroup {
                v2: true,
                dirs: vec![root.join(rel)],
            },
        }
    }

    /// Creates the container's cgroup with its limits applied.
    pub fn create(&self, node: &str, id: &str, res: &Resources) -> Result<Cgroup, CgroupError> {
        let cg = self.cgroup(node, id);
        match self {
            Hierarchy::V1 {
                memory,
                cpu,
                pids,
                devices,
                ..
            } => {
                for d in &cg.dirs {
                    mkdir_all(d)?;
                }
                let at = |root: &Path| root.join("kc").join(node).join(id);
                v1::apply(
                    &at(memory),
                    &at(cpu),
                    &at(pids),
                    devices.as_ref().map(|d| at(d)).as_deref(),
                    res,
                )?;
            }
            Hierarchy::V2 { root } => {
                v2::enable_controllers(root, &Path::new("kc").join(node))?;
                mkdir_all(&cg.dirs[0])?;
                v2::apply(&cg.dirs[0], res)?;
            }
        }
        Ok(cg)
    }
}

fn mkdir_all(d: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(d).map_err(io(d, "mkdir"))
}

/// Writes `value` into the cgroup file `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(io(&p, "write"))
}

/// Reads the value of `key` in a flat-keyed cgroup file ("key value" lines).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

impl Cgroup {
    /// Moves the calling process into this cgroup ("0" means the writer,
    /// which also works from inside a new PID namespace).
    pub fn join_self(&self) -> Result<(), CgroupError> {
        for d in &self.dirs {
            write(d, "cgroup.procs", "0")?;
        }
        Ok(())
    }

    /// Moves process `pid` into this cgroup.
    pub fn place(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// How many times the OOM killer ended a process of this group.
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = if self.v2 {
            (&self.dirs[0], "memory.events")
        } else {
            match self
                .dirs
                .iter()
                .find(|d| d.join("memory.oom_control").exists())
            {
                Some(d) => (d, "memory.oom_control"),
                None => return 0,
            }
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| keyed_value(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// The PIDs in the group (from the first directory; all hold the same).
    pub fn pids(&self) -> Vec<i32> {
        self.dirs
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Removes the group's directories, first killing anything left in it.
    /// Missing directories are fine (already removed).
    pub fn remove(&self) -> Result<(), CgroupError> {
        for attempt in 0..200 {
            let mut busy = None;
            for d in &self.dirs {
                match std::fs::remove_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => busy = Some((d.clone(), e)),
                }
            }
            match busy {
                None => return Ok(()),
                Some((d, e)) if attempt == 199 => return Err(io(&d, "rmdir")(e)),
                Some(_) => {
                    for pid in self.pids() {
                        // SAFETY: kill has no memory-safety preconditions.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
";
    const PURE_V2: &str = "29 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn hybrid_host_with_empty_cgroup2_uses_v1() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 6);
        let h = choose(&mounts, |_| vec!["hugetlb".into()]).unwrap();
        assert_eq!(
            h,
            Hierarchy::V1 {
                memory: "/sys/fs/cgroup/memory".into(),
                cpu: "/sys/fs/cgroup/cpu,cpuacct".into(),
                pids: "/sys/fs/cgroup/pids".into(),
                devices: Some("/sys/fs/cgroup/devices".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
            }
        );
        let cg = h.cgroup("n1", "abc");
        assert!(!cg.v2);
        assert_eq!(cg.dirs[0], PathBuf::from("/sys/fs/cgroup/memory/kc/n1/abc"));
        assert_eq!(cg.dirs.len(), 4);
    }

    #[test]
    fn pure_v2_host_uses_the_unified_hierarchy() {
        let mounts = parse_mountinfo(PURE_V2);
        let h = choose(&mounts, |_| {
            vec![
                "cpuset".into(),
                "cpu".into(),
                "memory".into(),
                "pids".into(),
            ]
        })
        .unwrap();
        assert_eq!(
            h,
            Hierarchy::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert_eq!(
            h.cgroup("n", "x"),
            Cgroup {
                v2: true,
                dirs: vec!["/sys/fs/cgroup/kc/n/x".into()]
            }
        );
    }

    #[test]
    fn no_controllers_is_an_error() {
        let mounts = parse_mountinfo(PURE_V2);
        assert!(matches!(
            choose(&mounts, |_| vec![]),
            Err(CgroupError::NotFound)
        ));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let m = parse_mountinfo("1 2 0:1 / /a\\040b rw - cgroup2 cgroup2 rw\n");
        assert_eq!(m[0].mount_point, PathBuf::from("/a b"));
    }

    #[test]
    fn keyed_files_are_read() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(t, "oom_kill"), Some(3));
        assert_eq!(keyed_value(t, "nope"), None);
    }
}
