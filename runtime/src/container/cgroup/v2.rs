//! cgroup v2 file names: one unified tree; controllers must be enabled in
//! each ancestor's `cgroup.subtree_control`; limits in `memory.max`,
//! `memory.swap.max`, `cpu.max` ("quota period") and `pids.max`.
//! (Device filtering on v2 needs an eBPF program; kc relies on the minimal
//! /dev it builds instead.)

use std::path::Path;

use super::{CgroupError, write};
use crate::container::spec::Resources;

pub const CPU_PERIOD_US: u64 = 100_000;

/// The `cpu.max` line for `millis` thousandths of a CPU.
pub fn cpu_max(millis: u64) -> String {
    format!("{} {CPU_PERIOD_US}", millis * CPU_PERIOD_US / 1000)
}

/// Enables memory, cpu and pids for children of root and of every
/// directory down to `rel` (e.g. `kc/<node>`), creating them.
pub fn enable_controllers(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut dir = root.to_path_buf();
    let mut comps = vec![None];
    comps.extend(rel.components().map(Some));
    for c in comps {
        if let Some(c) = c {
            dir.push(c);
            std::fs::create_dir_all(&dir).map_err(super::io(&dir, "mkdir"))?;
        }
        let current =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        for ctl in ["memory", "cpu", "pids"] {
            if !current.split_whitespace().any(|c| c == ctl) {
                write(&dir, "cgroup.subtree_control", &format!("+{ctl}"))?;
            }
        }
    }
    Ok(())
}

pub fn apply(dir: &Path, res: &Resources) -> Result<(), CgroupError> {
    if let Some(bytes) = res.memory {
        write(dir, "memory.max", &bytes.to_string())?;
        if dir.join("memory.swap.max").exists() {
            write(dir, "memory.swap.max", "0")?;
        }
    }
    if let Some(millis) = res.cpu_millis {
        write(dir, "cpu.max", &cpu_max(millis))?;
    }
    if let Some(n) = res.pids {
        write(dir, "pids.max", &n.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::container::spec::Resources;
    use std::path::Path;

    /// The v2 writes against a directory tree standing in for cgroupfs
    /// (plain files: each write replaces the content).
    #[test]
    fn limits_and_controllers_land_in_v2_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.subtree_control"),
            "cpu memory pids",
        )
        .unwrap();
        super::enable_controllers(root.path(), Path::new("kc/node1")).unwrap();
        // Root already had them: untouched. New levels got each controller.
        assert_eq!(
            std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
            "cpu memory pids"
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("kc/node1/cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        let dir = root.path().join("kc/node1/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.swap.max"), "max").unwrap();
        super::apply(
            &dir,
            &Resources {
                memory: Some(100 << 20),
                cpu_millis: Some(500),
                pids: Some(20),
            },
        )
        .unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "104857600");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("pids.max"), "20");
    }

    #[test]
    fn hierarchy_v2_creates_the_container_group() {
        let root = tempfile::tempdir().unwrap();
        let h = super::super::Hierarchy::V2 {
            root: root.path().to_path_buf(),
        };
        let cg = h
            .create(
                "n",
                "abc",
                &Resources {
                    memory: None,
                    cpu_millis: None,
                    pids: Some(5),
                },
            )
            .unwrap();
        assert_eq!(cg.dirs, vec![root.path().join("kc/n/abc")]);
        assert_eq!(
            std::fs::read_to_string(root.path().join("kc/n/abc/pids.max")).unwrap(),
            "5"
        );
        assert!(
            !root.path().join("kc/n/abc/memory.max").exists(),
            "no memory limit asked"
        );
    }
    #[test]
    fn cpu_max_is_quota_then_period() {
        assert_eq!(super::cpu_max(500), "50000 100000");
        assert_eq!(super::cpu_max(1500), "150000 100000");
    }
}
