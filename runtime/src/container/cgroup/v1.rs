//! cgroup v1 file names: one hierarchy per controller, limits in
//! `memory.limit_in_bytes`, `cpu.cfs_quota_us`, `pids.max`, and the devices
//! controller's allow list (deny everything, then allow the standard set
//! runc allows: null, zero, full, random, urandom, tty, console, ptmx, pts).

use std::path::Path;

use super::{CgroupError, write};
use crate::container::spec::Resources;

/// The CFS period every quota is expressed against (100 ms, as Docker).
pub const CFS_PERIOD_US: u64 = 100_000;

/// The device rules a container gets: `a` denied, these allowed.
pub const ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The quota for `millis` thousandths of a CPU per period.
pub fn cfs_quota_us(millis: u64) -> u64 {
    millis * CFS_PERIOD_US / 1000
}

pub fn apply(
    memory: &Path,
    cpu: &Path,
    pids: &Path,
    devices: Option<&Path>,
    res: &Resources,
) -> Result<(), CgroupError> {
    if let Some(bytes) = res.memory {
        write(memory, "memory.limit_in_bytes", &bytes.to_string())?;
        // Without this the group could swap instead of being OOM-killed.
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            write(memory, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
        }
        let _ = write(memory, "memory.swappiness", "0");
    }
    if let Some(millis) = res.cpu_millis {
        write(cpu, "cpu.cfs_period_us", &CFS_PERIOD_US.to_string())?;
        write(cpu, "cpu.cfs_quota_us", &cfs_quota_us(millis).to_string())?;
    }
    if let Some(n) = res.pids {
        write(pids, "pids.max", &n.to_string())?;
    }
    if let Some(dev) = devices {
        write(dev, "devices.deny", "a")?;
        for rule in ALLOWED_DEVICES {
            write(dev, "devices.allow", rule)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::container::spec::Resources;

    #[test]
    fn limits_land_in_v1_files() {
        let t = tempfile::tempdir().unwrap();
        let (mem, cpu, pids, dev) = (
            t.path().join("m"),
            t.path().join("c"),
            t.path().join("p"),
            t.path().join("d"),
        );
        for d in [&mem, &cpu, &pids, &dev] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(mem.join("memory.memsw.limit_in_bytes"), "").unwrap();
        super::apply(
            &mem,
            &cpu,
            &pids,
            Some(&dev),
            &Resources {
                memory: Some(64 << 20),
                cpu_millis: Some(250),
                pids: Some(7),
            },
        )
        .unwrap();
        let read = |d: &std::path::Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&pids, "pids.max"), "7");
        assert_eq!(read(&dev, "devices.deny"), "a");
        assert_eq!(
            read(&dev, "devices.allow"),
            "c 136:* rwm",
            "last rule written"
        );
    }
    #[test]
    fn half_a_cpu_is_half_the_period() {
        assert_eq!(super::cfs_quota_us(500), 50_000);
        assert_eq!(super::cfs_quota_us(2000), 200_000);
    }
}
