//! The node's gateway device `kc0` and one veth pair per pod sandbox,
//! made with the `ip` command in kcnode's own network namespace (the
//! sandbox end is configured by entering the sandbox's namespace with
//! `nsenter`). Names derive from the pod uid, so the setup is idempotent
//! and a restarted kcnode finds what it made.
//!
//! Routed, not bridged (as Calico does): `kc0` is a bridge without ports
//! (this kernel has no dummy driver) holding the pods' gateway address (the first of the pod CIDR); each pod gets a
//! /32 address with an on-link default route via that gateway, and the
//! node a /32 route to the pod through the pod's veth (the veth answers
//! ARP for the gateway because the address is local to the node). Every
//! packet a pod sends is routed by the node, so the service proxy's
//! conntrack sees both directions of every connection, including one
//! DNATed to a pod on the same node or back to the pod that opened it
//! (hairpin), with no `br_netfilter` (a host-wide module) and no bridge
//! hairpin mode. (With the veths on a bridge, a hairpin SYN DNATed back
//! out of the port it came in on is dropped by the kernel before the
//! forward hook.) The node forwards (`ip_forward`) and sends no ICMP
//! redirects.

use std::net::Ipv4Addr;
use std::process::Command;

use super::NetworkError;
use super::ipam::Cidr;

pub const GATEWAY_DEVICE: &str = "kc0";

/// Runs `ip <args>` in kcnode's network namespace.
pub fn run(args: &[&str]) -> Result<(), NetworkError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetworkError::Command(format!("cannot run `ip` (install iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Command(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `ip -batch -` with `commands` (one per line), in kcnode's own
/// namespace or, with `sandbox`, in that holder's network namespace.
fn batch(sandbox: Option<i32>, commands: &[String]) -> Result<(), NetworkError> {
    use std::io::Write;
    let mut cmd = match sandbox {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let where_ = if sandbox.is_some() {
        " in the sandbox"
    } else {
        ""
    };
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetworkError::Command(format!(
                "cannot run `ip`{where_} (install iproute2 and util-linux): {e}"
            ))
        })?;
    let script = commands.join("\n") + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Command(format!("`ip -batch`{where_}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Command(format!(
            "`ip` {:?}{where_} failed: {}",
            commands,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether `link` exists in kcnode's network namespace (an ioctl, no
/// process: this is on every pod start's path).
pub(super) fn exists(link: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(link) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated name; the call only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// The host and sandbox-side (before renaming to eth0) veth names of a pod.
pub fn veth_names(uid: &str) -> (String, String) {
    let h = uid.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let tag = format!("{:08x}", h as u32);
    (format!("kcv{tag}"), format!("kcp{tag}"))
}

/// Creates the gateway device with the gateway address, if missing, and
/// makes the node a router for its pods (once per process: after that only
/// a missing device costs a command).
pub fn ensure_gateway(cidr: &Cidr) -> Result<(), NetworkError> {
    static UP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let present = exists(GATEWAY_DEVICE);
    if present && UP.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    if !present {
        run(&["link", "add", GATEWAY_DEVICE, "type", "bridge"])?;
        let gw = format!("{}/{}", cidr.gateway(), cidr.prefix);
        run(&["addr", "add", &gw, "dev", GATEWAY_DEVICE])?;
    }
    run(&["link", "set", GATEWAY_DEVICE, "up"])?;
    super::sysctl::router(&[GATEWAY_DEVICE])?;
    UP.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Gives the sandbox of holder `pid` address `ip` on a veth routed by the node.
pub fn attach(uid: &str, pid: i32, ip: &Ipv4Addr, cidr: &Cidr) -> Result<(), NetworkError> {
    let (host, peer) = veth_names(uid);
    if exists(&host) {
        // A veth of an earlier sandbox of this pod: replace it.
        let _ = run(&["link", "del", &host]);
    }
    // One `ip -batch` per side instead of a process per step: a pod start
    // waits for these (and they run under the network's lock).
    let setup = || -> Result<(), NetworkError> {
        let gw = cidr.gateway();
        batch(
            None,
            &[
                format!("link add {host} type veth peer name {peer}"),
                format!("link set {peer} netns {pid}"),
                format!("link set {host} up"),
            ],
        )?;
        batch(
            Some(pid),
            &[
                format!("link set {peer} name eth0"),
                format!("addr add {ip}/32 dev eth0"),
                "link set eth0 up".to_string(),
                "link set lo up".to_string(),
                format!("route add {gw} dev eth0 scope link"),
                format!("route add default via {gw} dev eth0"),
            ],
        )?;
        run(&["route", "replace", &format!("{ip}/32"), "dev", &host])
    };
    setup().inspect_err(|_| {
        let _ = run(&["link", "del", &host]);
    })
}

/// Removes the pod's veth (its peer goes with it).
pub fn detach(uid: &str) {
    let (host, _) = veth_names(uid);
    if exists(&host) {
        let _ = run(&["link", "del", &host]);
    }
}
