//! Hardening like runc's defaults: capabilities cut to Docker's default
//! set, `no_new_privs`, and the user switch. Applied last, just before exec,
//! because mounting the rootfs needs the privileges dropped here.

/// Docker's default capabilities (by number, see capability.h).
pub const DEFAULT_CAPS: &[u32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

/// The capability bit mask of `caps` as capset's two 32-bit words.
pub fn cap_mask(caps: &[u32]) -> [u32; 2] {
    let mut m = [0u32; 2];
    for &c in caps {
        m[(c / 32) as usize] |= 1 << (c % 32);
    }
    m
}

/// The uid, gid and supplementary groups to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Drops privileges for good: no_new_privs, bounding set cut to the default
/// caps, user switched, then effective/permitted set to the default caps
/// (root) or nothing (other users). Inheritable and ambient are emptied.
pub fn harden(id: &Identity) -> std::io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let err = std::io::Error::last_os_error;
    // SAFETY: prctl/setgroups/setresgid/setresuid/capset with valid
    // arguments and buffers we own; no memory is shared.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(err());
        }
        for cap in 0..=last {
            if !DEFAULT_CAPS.contains(&cap)
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
            {
                return Err(err());
            }
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        let groups: Vec<libc::gid_t> = id.groups.clone();
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(err());
        }
        if libc::setresgid(id.gid, id.gid, id.gid) != 0
            || libc::setresuid(id.uid, id.uid, id.uid) != 0
        {
            return Err(err());
        }
        if id.uid == 0 {
            let m = cap_mask(DEFAULT_CAPS);
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            let header = Header {
                version: 0x2008_0522,
                pid: 0,
            };
            let data = [
                Data {
                    effective: m[0],
                    permitted: m[0],
                    inheritable: 0,
                },
                Data {
                    effective: m[1],
                    permitted: m[1],
                    inheritable: 0,
                },
            ];
            if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
                return Err(err());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_caps_mask_matches_docker() {
        // Docker's default CapEff as shown in /proc/self/status.
        let m = super::cap_mask(super::DEFAULT_CAPS);
        assert_eq!(((m[1] as u64) << 32) | m[0] as u64, 0x00000000a80425fb);
    }
}
