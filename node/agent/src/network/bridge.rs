//! The node's gateway device `kc0` and one veth pair per pod sandbox,
//! made through rtnetlink (`netlink.rs`, no process on a pod's start) in
//! kcnode's own network namespace (the sandbox end through a socket opened
//! inside the sandbox's namespace). Names derive from the pod uid, so the
//! setup is idempotent and a restarted kcnode finds what it made. `run`
//! (the `ip` command) stays for the rarer route changes of
//! `routes.rs` and `cluster_network.rs`.
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
use super::netlink::Netlink;
use super::rtmsg::{self, Scope};

pub const GATEWAY_DEVICE: &str = "kc0";
/// The pod's end of its veth, inside the sandbox.
pub const POD_DEVICE: &str = "eth0";

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

/// Whether `link` exists in kcnode's network namespace (an ioctl, no
/// process: this is on every pod start's path).
pub(super) fn exists(link: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(link) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated name; the call only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// The name of a pod's veth on the node (its peer is `eth0` in the sandbox).
pub fn veth_name(uid: &str) -> String {
    let h = uid.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let tag = format!("{:08x}", h as u32);
    format!("kcv{tag}")
}

/// A netlink failure as a network error naming what was being done.
fn failed(what: String) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |e| NetworkError::Command(format!("cannot {what}: {e}"))
}

/// Creates the gateway device with the gateway address, if missing, and
/// makes the node a router for its pods (once per process: after that only
/// a missing device costs a request).
pub fn ensure_gateway(cidr: &Cidr) -> Result<(), NetworkError> {
    static UP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let present = exists(GATEWAY_DEVICE);
    if present && UP.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let mut nl = Netlink::open().map_err(failed("open a netlink socket".into()))?;
    if !present {
        nl.request(&rtmsg::bridge(GATEWAY_DEVICE))
            .map_err(failed(format!(
                "create the gateway bridge {GATEWAY_DEVICE}"
            )))?;
    }
    let index = nl.index(GATEWAY_DEVICE);
    let gw = cidr.gateway();
    nl.request(&rtmsg::addr(index, gw, cidr.prefix))
        .map_err(failed(format!(
            "give {GATEWAY_DEVICE} the gateway address {gw}/{}",
            cidr.prefix
        )))?;
    nl.request(&rtmsg::link_up(index))
        .map_err(failed(format!("bring {GATEWAY_DEVICE} up")))?;
    super::sysctl::router(&[GATEWAY_DEVICE])?;
    UP.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Gives the sandbox of holder `pid` address `ip` on a veth routed by the
/// node, through netlink (no process): the veth pair is created with its
/// peer already in the sandbox's namespace as `eth0`; the sandbox side is
/// brought up and gets its /32, the on-link route to the gateway and the
/// default route through a socket opened in its namespace; the node a /32
/// route to the pod over the host end.
pub fn attach(uid: &str, pid: i32, ip: &Ipv4Addr, cidr: &Cidr) -> Result<(), NetworkError> {
    let host = veth_name(uid);
    let mut nl = Netlink::open().map_err(failed("open a netlink socket".into()))?;
    let old = nl.index(&host);
    if old != 0 {
        // A veth of an earlier sandbox of this pod: replace it.
        let _ = nl.request(&rtmsg::link_del(old));
    }
    let gw = cidr.gateway();
    let mut setup = || -> Result<(), NetworkError> {
        nl.request(&rtmsg::veth(&host, POD_DEVICE, pid))
            .map_err(failed(format!(
                "create veth {host} with its peer {POD_DEVICE} in the sandbox of process {pid}"
            )))?;
        let mut sb = Netlink::open_in(pid).map_err(failed(format!(
            "enter the network namespace of sandbox process {pid}"
        )))?;
        let eth0 = sb.index(POD_DEVICE);
        let in_sandbox = |what: &str| failed(format!("{what} in the sandbox of process {pid}"));
        sb.request(&rtmsg::link_up(eth0))
            .map_err(in_sandbox(&format!("bring {POD_DEVICE} up")))?;
        sb.request(&rtmsg::addr(eth0, *ip, 32))
            .map_err(in_sandbox(&format!("add {ip}/32 to {POD_DEVICE}")))?;
        sb.request(&rtmsg::route(gw, 32, None, eth0, Scope::Link))
            .map_err(in_sandbox(&format!("add the route to the gateway {gw}")))?;
        sb.request(&rtmsg::route(
            Ipv4Addr::UNSPECIFIED,
            0,
            Some(gw),
            eth0,
            Scope::Universe,
        ))
        .map_err(in_sandbox(&format!("add the default route via {gw}")))?;
        let index = nl.index(&host);
        nl.request(&rtmsg::route(*ip, 32, None, index, Scope::Link))
            .map_err(failed(format!("route {ip}/32 to {host}")))
    };
    setup().inspect_err(|_| detach(uid))
}

/// Removes the pod's veth (its peer goes with it).
pub fn detach(uid: &str) {
    let host = veth_name(uid);
    if let Ok(mut nl) = Netlink::open() {
        let index = nl.index(&host);
        if index != 0 {
            let _ = nl.request(&rtmsg::link_del(index));
        }
    }
}
