//! Routes to the other nodes' pod CIDRs, so pods reach pods on every node
//! by pod IP with no NAT (the source address is kept).
//!
//! `peers` is the pure part: from the Node objects (spec.podCIDR, first
//! InternalIP) to what this node must reach. Two ways to get there:
//!
//! - `Mode::Direct` (nodes on one L2 segment, as testnet is): a route
//!   `<cidr> via <node ip>` per peer;
//! - `Mode::Vxlan` (nodes that only share IP reachability): the kernel's
//!   VXLAN device `kcvx` (VNI 1, UDP 4789) holding the network address of
//!   this node's pod CIDR, and per peer a route `<cidr> via <peer's
//!   network address> dev kcvx onlink`, a permanent neighbour entry for
//!   that address and an FDB entry sending its MAC to the peer's node IP.
//!   Every VTEP MAC derives from its node's pod CIDR (`vtep_mac`), so
//!   nodes need to publish nothing beyond their Node.
//!
//! Our routes carry protocol number `ROUTE_PROTO`: `apply` reads them back
//! from the kernel and removes those of nodes that left (level-triggered,
//! so a restarted kcnode converges too).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;

use serde_json::Value;

use super::NetworkError;
use super::bridge::{exists, run};
use super::ipam::Cidr;

/// The route protocol number marking kc's routes (`ip route ... proto 152`).
pub const ROUTE_PROTO: &str = "152";
/// The VXLAN device of `Mode::Vxlan`.
pub const VXLAN_DEVICE: &str = "kcvx";
const VXLAN_VNI: &str = "1";
const VXLAN_PORT: &str = "4789";

/// How this node reaches the other nodes' pod CIDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Routes via the peers' addresses (nodes share a segment).
    #[default]
    Direct,
    /// A kernel VXLAN overlay between the nodes' addresses.
    Vxlan,
}

/// Another node's pod CIDR and the address it is reached at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub cidr: (Ipv4Addr, u8),
    pub node_ip: Ipv4Addr,
}

impl Peer {
    fn cidr(&self) -> String {
        format!("{}/{}", self.cidr.0, self.cidr.1)
    }
}

/// The peers of node `me` among `nodes` (Node objects by name): every other
/// node with a pod CIDR and an IPv4 InternalIP (the first one).
pub fn peers(nodes: &BTreeMap<String, Value>, me: &str) -> Vec<Peer> {
    let mut out: Vec<Peer> = nodes
        .iter()
        .filter(|(name, _)| name.as_str() != me)
        .filter_map(|(_, node)| {
            let cidr: Cidr = node["spec"]["podCIDR"].as_str()?.parse().ok()?;
            let node_ip = node["status"]["addresses"]
                .as_array()?
                .iter()
                .filter(|a| a["type"] == "InternalIP")
                .find_map(|a| a["address"].as_str()?.parse::<Ipv4Addr>().ok())?;
            Some(Peer {
                cidr: (cidr.network, cidr.prefix),
                node_ip,
            })
        })
        .collect();
    out.sort();
    out
}

/// The VTEP MAC of the node owning pod network `network`: `0a:58` and the
/// four octets (locally administered, unicast; as CNI plugins derive MACs).
pub fn vtep_mac(network: Ipv4Addr) -> String {
    let o = network.octets();
    format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The pod CIDRs kc routes to now (from the kernel).
fn installed() -> Result<Vec<String>, NetworkError> {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "show", "proto", ROUTE_PROTO])
        .output()
        .map_err(|e| NetworkError::Command(format!("cannot run `ip` (install iproute2): {e}")))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Creates the VXLAN device for this node (idempotent).
fn ensure_vxlan(local_ip: Ipv4Addr, own: &Cidr) -> Result<(), NetworkError> {
    if !exists(VXLAN_DEVICE) {
        let local = local_ip.to_string();
        let mac = vtep_mac(own.network);
        run(&[
            "link",
            "add",
            VXLAN_DEVICE,
            "address",
            &mac,
            "type",
            "vxlan",
            "id",
            VXLAN_VNI,
            "dstport",
            VXLAN_PORT,
            "local",
            &local,
            "nolearning",
        ])?;
        run(&["link", "set", VXLAN_DEVICE, "mtu", "1450"])?;
        run(&[
            "addr",
            "replace",
            &format!("{}/32", own.network),
            "dev",
            VXLAN_DEVICE,
        ])?;
    }
    run(&["link", "set", VXLAN_DEVICE, "up"])?;
    super::sysctl::router(&[VXLAN_DEVICE])
}

fn route_to(mode: Mode, peer: &Peer) -> Result<(), NetworkError> {
    let cidr = peer.cidr();
    match mode {
        Mode::Direct => run(&[
            "route",
            "replace",
            &cidr,
            "via",
            &peer.node_ip.to_string(),
            "proto",
            ROUTE_PROTO,
        ]),
        Mode::Vxlan => {
            let vtep = peer.cidr.0.to_string();
            let mac = vtep_mac(peer.cidr.0);
            run(&[
                "neigh",
                "replace",
                &vtep,
                "lladdr",
                &mac,
                "dev",
                VXLAN_DEVICE,
                "nud",
                "permanent",
            ])?;
            let out = Command::new("bridge")
                .args(["fdb", "replace", &mac, "dev", VXLAN_DEVICE, "dst"])
                .arg(peer.node_ip.to_string())
                .args(["self", "permanent"])
                .output()
                .map_err(|e| {
                    NetworkError::Command(format!("cannot run `bridge` (install iproute2): {e}"))
                })?;
            if !out.status.success() {
                return Err(NetworkError::Command(format!(
                    "`bridge fdb replace {mac} dev {VXLAN_DEVICE}` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            run(&[
                "route",
                "replace",
                &cidr,
                "via",
                &vtep,
                "dev",
                VXLAN_DEVICE,
                "onlink",
                "proto",
                ROUTE_PROTO,
            ])
        }
    }
}

/// Makes the kernel's kc routes exactly `peers` (adds, replaces, removes).
pub fn apply(
    mode: Mode,
    local_ip: Ipv4Addr,
    own: &Cidr,
    peers: &[Peer],
) -> Result<(), NetworkError> {
    if mode == Mode::Vxlan {
        ensure_vxlan(local_ip, own)?;
    }
    let wanted: Vec<String> = peers.iter().map(Peer::cidr).collect();
    for stale in installed()?.iter().filter(|c| !wanted.contains(c)) {
        tracing::info!(cidr = %stale, "node left: removing its pod route");
        let _ = run(&["route", "del", stale, "proto", ROUTE_PROTO]);
    }
    let mut first_error = None;
    for peer in peers {
        if let Err(e) = route_to(mode, peer) {
            tracing::warn!(cidr = %peer.cidr(), via = %peer.node_ip, "cannot route to a node's pods: {e}");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes kc's routes and the VXLAN device (`kcnode leave`).
pub fn remove_all() {
    for cidr in installed().unwrap_or_default() {
        let _ = run(&["route", "del", &cidr, "proto", ROUTE_PROTO]);
    }
    if exists(VXLAN_DEVICE) {
        let _ = run(&["link", "del", VXLAN_DEVICE]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(cidr: Option<&str>, ips: &[(&str, &str)]) -> Value {
        let addresses: Vec<Value> = ips
            .iter()
            .map(|(t, a)| json!({"type": t, "address": a}))
            .collect();
        json!({"spec": {"podCIDR": cidr}, "status": {"addresses": addresses}})
    }

    #[test]
    fn peers_are_the_other_nodes_with_a_cidr_and_an_internal_ip() {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "me".into(),
            node(Some("10.244.0.0/24"), &[("InternalIP", "10.0.0.1")]),
        );
        nodes.insert(
            "b".into(),
            node(
                Some("10.244.2.0/24"),
                &[("Hostname", "b"), ("InternalIP", "10.0.0.3")],
            ),
        );
        nodes.insert(
            "a".into(),
            node(
                Some("10.244.1.0/24"),
                &[("InternalIP", "fe80::1"), ("InternalIP", "10.0.0.2")],
            ),
        );
        nodes.insert("new".into(), node(None, &[("InternalIP", "10.0.0.4")]));
        nodes.insert(
            "odd".into(),
            node(Some("banana"), &[("InternalIP", "10.0.0.5")]),
        );
        let p = peers(&nodes, "me");
        assert_eq!(
            p,
            vec![
                Peer {
                    cidr: ("10.244.1.0".parse().unwrap(), 24),
                    node_ip: "10.0.0.2".parse().unwrap()
                },
                Peer {
                    cidr: ("10.244.2.0".parse().unwrap(), 24),
                    node_ip: "10.0.0.3".parse().unwrap()
                },
            ]
        );
        assert_eq!(p[0].cidr(), "10.244.1.0/24");
    }

    #[test]
    fn vtep_macs_derive_from_the_pod_network() {
        assert_eq!(vtep_mac("10.244.1.0".parse().unwrap()), "0a:58:0a:f4:01:00");
    }
}
