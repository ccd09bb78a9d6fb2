//! rtnetlink messages, encoded and decoded without I/O: the few requests
//! the pod network needs (a veth pair whose peer is born in a sandbox's
//! namespace, the gateway bridge, addresses, routes, link up/delete) and
//! the kernel's acknowledgement. The byte layouts are the kernel's
//! (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`), in host
//! byte order, every part padded to 4 bytes. `netlink.rs` sends them.

use std::net::Ipv4Addr;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// Where a route leads, as `ip route`'s `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Via a gateway (`scope global`).
    Universe = 0,
    /// Directly on the link (`scope link`).
    Link = 253,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink request being built: header, family header, attributes
/// (nested ones through `begin`/`end`).
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Request {
    fn new(kind: u16, flags: u16, family_header: &[u8]) -> Request {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(family_header);
        buf.resize(align(buf.len()), 0);
        Request {
            buf,
            open: Vec::new(),
        }
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Request {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// A NUL-terminated string attribute (interface names).
    fn name(self, kind: u16, s: &str) -> Request {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn begin(mut self, kind: u16) -> Request {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    /// Raw bytes inside the innermost open attribute (a nested family header).
    fn raw(mut self, data: &[u8]) -> Request {
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    fn end(mut self) -> Request {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The message's bytes with its length and sequence number filled in.
    pub fn encode(&self, seq: u32) -> Vec<u8> {
        let mut b = self.buf.clone();
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }
}

/// `struct ifinfomsg`: family, type, index, flags, change.
fn ifinfomsg(index: u32, up: bool) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = AF_UNSPEC;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    if up {
        h[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        h[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    }
    h
}

/// `struct rtmsg` of an IPv4 route in the main table.
fn rtmsg(dst_len: u8, scope: Scope) -> [u8; 12] {
    [
        AF_INET,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        scope as u8,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// `ip link add HOST up type veth peer name PEER netns PID`: the peer is
/// born in the namespace of process `pid` under its final name, down (the
/// kernel configures the peer before pairing it, so `up` there fails with
/// ENOTCONN): bring it up with `link_up` from its namespace.
pub fn veth(host: &str, peer: &str, peer_netns_pid: i32) -> Request {
    Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, true))
        .name(IFLA_IFNAME, host)
        .begin(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, b"veth")
        .begin(IFLA_INFO_DATA)
        .begin(VETH_INFO_PEER)
        .raw(&ifinfomsg(0, false))
        .name(IFLA_IFNAME, peer)
        .attr(IFLA_NET_NS_PID, &(peer_netns_pid as u32).to_ne_bytes())
        .end()
        .end()
        .end()
}

/// `ip link add NAME up type bridge`.
pub fn bridge(name: &str) -> Request {
    Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, true))
        .name(IFLA_IFNAME, name)
        .begin(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, b"bridge")
        .end()
}

/// `ip link set dev INDEX up`.
pub fn link_up(index: u32) -> Request {
    Request::new(RTM_NEWLINK, 0, &ifinfomsg(index, true))
}

/// `ip link del dev INDEX`.
pub fn link_del(index: u32) -> Request {
    Request::new(RTM_DELLINK, 0, &ifinfomsg(index, false))
}

/// `ip addr replace ADDR/PREFIX dev INDEX`.
pub fn addr(index: u32, addr: Ipv4Addr, prefix: u8) -> Request {
    let mut h = [0u8; 8];
    h[0] = AF_INET;
    h[1] = prefix;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    Request::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &h)
        .attr(IFA_LOCAL, &addr.octets())
        .attr(IFA_ADDRESS, &addr.octets())
}

/// `ip route replace DST/LEN [via GATEWAY] dev INDEX scope SCOPE`.
pub fn route(
    dst: Ipv4Addr,
    dst_len: u8,
    gateway: Option<Ipv4Addr>,
    index: u32,
    scope: Scope,
) -> Request {
    let mut r = Request::new(
        RTM_NEWROUTE,
        NLM_F_CREATE | NLM_F_REPLACE,
        &rtmsg(dst_len, scope),
    );
    if dst_len > 0 {
        r = r.attr(RTA_DST, &dst.octets());
    }
    if let Some(gw) = gateway {
        r = r.attr(RTA_GATEWAY, &gw.octets());
    }
    r.attr(RTA_OIF, &index.to_ne_bytes())
}

/// The kernel's answer to request `seq` in `buf` (one datagram): `None`
/// if it holds none, else `Ok` or the positive errno.
pub fn ack(buf: &[u8], seq: u32) -> Option<Result<(), i32>> {
    let mut at = 0;
    while buf.len() >= at + NLMSG_HDRLEN {
        let word = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let len = word(at) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if kind == NLMSG_ERROR && word(at + 8) == seq && len >= NLMSG_HDRLEN + 4 {
            let code = word(at + NLMSG_HDRLEN) as i32;
            return Some(if code == 0 { Ok(()) } else { Err(-code) });
        }
        at += align(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], o: usize) -> u16 {
        u16::from_ne_bytes([b[o], b[o + 1]])
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }

    #[test]
    fn header_carries_length_type_flags_and_sequence() {
        let b = link_up(7).encode(42);
        assert_eq!(b.len(), 32);
        assert_eq!(u32_at(&b, 0), 32);
        assert_eq!(u16_at(&b, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&b, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&b, 8), 42);
        assert_eq!(u32_at(&b, 20), 7, "ifi_index");
        assert_eq!(u32_at(&b, 24), IFF_UP, "ifi_flags");
        assert_eq!(u32_at(&b, 28), IFF_UP, "ifi_change");
    }

    #[test]
    fn veth_nests_the_peer_with_its_name_and_namespace() {
        let b = veth("kcv01234567", "eth0", 4321).encode(1);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u16_at(&b, 6),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        // IFLA_IFNAME "kcv01234567\0": 4 + 12 bytes.
        assert_eq!(u16_at(&b, 32), 16);
        assert_eq!(u16_at(&b, 34), IFLA_IFNAME);
        assert_eq!(&b[36..48], b"kcv01234567\0");
        // IFLA_LINKINFO spans the rest of the message.
        assert_eq!(u16_at(&b, 50), IFLA_LINKINFO);
        assert_eq!(u16_at(&b, 48) as usize, b.len() - 48);
        // IFLA_INFO_KIND "veth".
        assert_eq!((u16_at(&b, 52), u16_at(&b, 54)), (8, IFLA_INFO_KIND));
        assert_eq!(&b[56..60], b"veth");
        // IFLA_INFO_DATA > VETH_INFO_PEER > ifinfomsg, name, netns pid.
        assert_eq!(u16_at(&b, 62), IFLA_INFO_DATA);
        assert_eq!(u16_at(&b, 60) as usize, b.len() - 60);
        assert_eq!(u16_at(&b, 66), VETH_INFO_PEER);
        assert_eq!(u16_at(&b, 64) as usize, b.len() - 64);
        assert_eq!(u32_at(&b, 76), 0, "the peer comes up later");
        assert_eq!((u16_at(&b, 84), u16_at(&b, 86)), (9, IFLA_IFNAME));
        assert_eq!(&b[88..93], b"eth0\0");
        assert_eq!((u16_at(&b, 96), u16_at(&b, 98)), (8, IFLA_NET_NS_PID));
        assert_eq!(u32_at(&b, 100), 4321);
        assert_eq!(b.len(), 104);
    }

    #[test]
    fn routes_carry_destination_gateway_and_device() {
        let gw = Ipv4Addr::new(10, 244, 1, 1);
        let b = route(Ipv4Addr::UNSPECIFIED, 0, Some(gw), 3, Scope::Universe).encode(5);
        assert_eq!(
            &b[16..24],
            &[AF_INET, 0, 0, 0, 254, RTPROT_BOOT, 0, RTN_UNICAST]
        );
        assert_eq!((u16_at(&b, 28), u16_at(&b, 30)), (8, RTA_GATEWAY));
        assert_eq!(&b[32..36], &gw.octets());
        assert_eq!((u16_at(&b, 36), u16_at(&b, 38)), (8, RTA_OIF));
        assert_eq!(u32_at(&b, 40), 3);
        assert_eq!(b.len(), 44, "no RTA_DST for a default route");

        let b = route(gw, 32, None, 9, Scope::Link).encode(6);
        assert_eq!(b[17], 32);
        assert_eq!(b[22], Scope::Link as u8);
        assert_eq!((u16_at(&b, 28), u16_at(&b, 30)), (8, RTA_DST));
        assert_eq!(&b[32..36], &gw.octets());
        assert_eq!(u16_at(&b, 38), RTA_OIF);
    }

    #[test]
    fn address_sets_local_and_address() {
        let ip = Ipv4Addr::new(10, 244, 1, 7);
        let b = addr(12, ip, 32).encode(1);
        assert_eq!(&b[16..20], &[AF_INET, 32, 0, 0]);
        assert_eq!(u32_at(&b, 20), 12);
        assert_eq!((u16_at(&b, 24), u16_at(&b, 26)), (8, IFA_LOCAL));
        assert_eq!(&b[28..32], &ip.octets());
        assert_eq!((u16_at(&b, 32), u16_at(&b, 34)), (8, IFA_ADDRESS));
        assert_eq!(b.len(), 40);
    }

    fn error_message(seq: u32, code: i32) -> Vec<u8> {
        let mut m = vec![0u8; 36];
        m[0..4].copy_from_slice(&36u32.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        m[16..20].copy_from_slice(&code.to_ne_bytes());
        m
    }

    #[test]
    fn ack_finds_the_answer_to_its_request() {
        assert_eq!(ack(&error_message(3, 0), 3), Some(Ok(())));
        assert_eq!(ack(&error_message(3, -17), 3), Some(Err(17)));
        assert_eq!(ack(&error_message(2, 0), 3), None, "another request");
        let mut two = error_message(2, -1);
        two.extend(error_message(3, -19));
        assert_eq!(ack(&two, 3), Some(Err(19)));
    }

    #[test]
    fn ack_survives_garbage() {
        assert_eq!(ack(&[], 1), None);
        assert_eq!(ack(&[0xff; 7], 1), None);
        let mut bad = error_message(1, 0);
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(ack(&bad, 1), None, "length past the datagram");
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(ack(&bad, 1), None, "length shorter than a header");
    }
}
