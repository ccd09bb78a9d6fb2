//! A default seccomp filter: the dangerous syscalls Docker's default
//! profile keeps from containers (kernel modules, kexec, bpf, keyrings,
//! mount/pivot_root, clock setting, swap, reboot, namespaces via unshare and
//! setns, ...) fail with EPERM; everything else is allowed. Syscalls of a
//! foreign ABI (x32, i386 on x86_64) are refused outright so they cannot be
//! used to get around the list.
//!
//! The classic-BPF program is built by a pure function (unit-tested) and
//! installed last before exec, after no_new_privs.

use libc::sock_filter;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_BIT: u32 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7;
/// Other architectures: no filter is installed (see `install`).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const AUDIT_ARCH: u32 = 0;

/// The denied syscalls (by this architecture's numbers).
pub fn denied() -> Vec<u32> {
    let mut v = vec![
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_acct,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_quotactl,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_lookup_dcookie,
        libc::SYS_kcmp,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
    ]);
    v.into_iter().map(|n| n as u32).collect()
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The program: foreign arch or x32 -> EPERM; each denied number -> EPERM;
/// else allow.
pub fn program(arch: u32, denied: &[u32]) -> Vec<sock_filter> {
    let ld_w_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    // Layout: 0 ld arch; 1 jeq arch; 2 ld nr; 3 jge x32; 4.. jeq each;
    // then ret allow; last ret errno.
    let len = 4 + denied.len() + 2;
    let deny_at = len - 1;
    let to_deny = |i: usize| (deny_at - (i + 1)) as u8;
    let mut p = vec![
        stmt(ld_w_abs, 4), // seccomp_data.arch
        jump(jeq, arch, 0, to_deny(1)),
        stmt(ld_w_abs, 0), // seccomp_data.nr
        jump(jge, X32_BIT, to_deny(3), 0),
    ];
    for (i, nr) in denied.iter().enumerate() {
        p.push(jump(jeq, *nr, to_deny(4 + i), 0));
    }
    p.push(stmt(ret, RET_ALLOW));
    p.push(stmt(ret, RET_ERRNO | libc::EPERM as u32));
    p
}

/// Installs the default filter on the calling thread (and what it execs).
pub fn install() -> std::io::Result<()> {
    if AUDIT_ARCH == 0 {
        tracing::warn!("no seccomp filter for this architecture");
        return Ok(());
    }
    let prog = program(AUDIT_ARCH, &denied());
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset of BPF `program` emits.
    fn run(p: &[sock_filter], arch: u32, nr: u32) -> u32 {
        let mut pc = 0;
        let mut acc = 0;
        loop {
            let i = &p[pc];
            match i.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    acc = if i.k == 4 { arch } else { nr }
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += if acc == i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += if acc >= i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn denied_syscalls_get_eperm_and_others_pass() {
        let d = denied();
        let p = program(AUDIT_ARCH, &d);
        let eperm = RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_mount as u32), eperm);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_unshare as u32), eperm);
        assert_eq!(run(&p, AUDIT_ARCH, *d.last().unwrap()), eperm);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_read as u32), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_execve as u32), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_read as u32 | X32_BIT), eperm);
        assert_eq!(run(&p, 0x4000_0003, libc::SYS_read as u32), eperm);
    }
}
