//! What a container's cgroup has used, read the way cAdvisor (the kubelet's
//! stats) reads it: cumulative CPU time, and the memory *working set*,
//! which is the usage minus the inactive file cache (pages the kernel can
//! drop at once, so they do not count as the container's memory).
//!
//! v1: `cpuacct.usage` (nanoseconds) in the cpuacct hierarchy,
//! `memory.usage_in_bytes` and `total_inactive_file` of `memory.stat`.
//! v2: `usage_usec` of `cpu.stat`, `memory.current` and `inactive_file` of
//! `memory.stat`. Reading is a few small files; a cgroup that is gone (the
//! container exited) reads as `None`.

use std::path::Path;

use super::{Cgroup, keyed_value};

/// Cumulative counters of one cgroup at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory working set in bytes.
    pub memory_working_set: u64,
}

/// cAdvisor's working set: usage minus the inactive file cache (never
/// below zero: the counters are read one after the other).
pub fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    keyed_value(&std::fs::read_to_string(path).ok()?, key)
}

impl Cgroup {
    /// The cgroup's counters now, `None` if it cannot be read (gone, or a
    /// v1 host without a cpuacct hierarchy).
    pub fn usage(&self) -> Option<CgroupUsage> {
        if self.v2 {
            let dir = self.dirs.first()?;
            let cpu_us = read_keyed(&dir.join("cpu.stat"), "usage_usec")?;
            let current = read_u64(&dir.join("memory.current"))?;
            let inactive = read_keyed(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
            return Some(CgroupUsage {
                cpu_ns: cpu_us.saturating_mul(1000),
                memory_working_set: working_set(current, inactive),
            });
        }
        let with = |file: &str| self.dirs.iter().find(|d| d.join(file).exists());
        let cpu_ns = read_u64(&with("cpuacct.usage")?.join("cpuacct.usage"))?;
        let memory = with("memory.usage_in_bytes")?;
        let usage = read_u64(&memory.join("memory.usage_in_bytes"))?;
        let inactive = read_keyed(&memory.join("memory.stat"), "total_inactive_file").unwrap_or(0);
        Some(CgroupUsage {
            cpu_ns,
            memory_working_set: working_set(usage, inactive),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_leaves_out_inactive_file_pages() {
        assert_eq!(working_set(100 << 20, 30 << 20), 70 << 20);
        assert_eq!(working_set(10, 20), 0, "never negative");
    }

    #[test]
    fn v1_counters_come_from_cpuacct_and_memory() {
        let t = tempfile::tempdir().unwrap();
        let (mem, acct) = (t.path().join("memory"), t.path().join("cpuacct"));
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::create_dir_all(&acct).unwrap();
        std::fs::write(acct.join("cpuacct.usage"), "123456789\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "10485760\n").unwrap();
        std::fs::write(
            mem.join("memory.stat"),
            "cache 5\ninactive_file 1\ntotal_inactive_file 2097152\n",
        )
        .unwrap();
        let cg = Cgroup {
            v2: false,
            dirs: vec![mem, acct],
        };
        assert_eq!(
            cg.usage(),
            Some(CgroupUsage {
                cpu_ns: 123_456_789,
                memory_working_set: 8 << 20,
            })
        );
    }

    #[test]
    fn v2_counters_come_from_cpu_stat_and_memory_current() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().to_path_buf();
        std::fs::write(d.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").unwrap();
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 0\ninactive_file 1024\n").unwrap();
        let cg = Cgroup {
            v2: true,
            dirs: vec![d],
        };
        assert_eq!(
            cg.usage(),
            Some(CgroupUsage {
                cpu_ns: 2_500_000,
                memory_working_set: 3072,
            })
        );
    }

    #[test]
    fn a_removed_cgroup_reads_as_nothing() {
        let cg = Cgroup {
            v2: false,
            dirs: vec!["/nonexistent/kc/x".into()],
        };
        assert_eq!(cg.usage(), None);
    }
}
