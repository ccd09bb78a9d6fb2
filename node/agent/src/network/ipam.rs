//! Pod addresses from the node's pod CIDR (IPv4): the first host address is
//! the bridge's (the gateway), pods get the lowest free one after it. The
//! table (address -> pod uid) is a JSON file rewritten atomically, so an
//! address is never handed to two pods, across kcnode restarts too; the
//! same pod asking again gets the same address.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IpamError {
    #[error("invalid pod CIDR {0:?}: expected an IPv4 network such as 10.88.0.0/24 (prefix 8-29)")]
    Cidr(String),
    #[error("pod CIDR {0} is full: no free address for another pod")]
    Full(String),
    #[error("address table {path}: {message}")]
    State { path: String, message: String },
}

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Cidr, IpamError> {
        let err = || IpamError::Cidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| err())?;
        let prefix: u8 = p.parse().map_err(|_| err())?;
        if !(8..=29).contains(&prefix) {
            return Err(err());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl Cidr {
    fn base(&self) -> u32 {
        u32::from(self.network)
    }
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    /// The bridge's address, the pods' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }
    /// Pod addresses, in order (not the network, gateway or broadcast).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (2..self.size() - 1).map(move |i| Ipv4Addr::from(self.base() + i))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Table {
    allocated: BTreeMap<Ipv4Addr, String>,
}

/// Pure: the address for `uid` given the table (existing or lowest free).
fn choose(table: &Table, cidr: &Cidr, uid: &str) -> Result<Ipv4Addr, IpamError> {
    if let Some((ip, _)) = table.allocated.iter().find(|(_, u)| *u == uid) {
        return Ok(*ip);
    }
    cidr.hosts()
        .find(|ip| !table.allocated.contains_key(ip))
        .ok_or_else(|| IpamError::Full(cidr.to_string()))
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> IpamError {
    IpamError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load(path: &Path) -> Result<Table, IpamError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| state_err(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::default()),
        Err(e) => Err(state_err(path, e)),
    }
}

fn store(path: &Path, t: &Table) -> Result<(), IpamError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| state_err(path, e))?;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(t).map_err(|e| state_err(path, e))?;
    std::fs::write(&tmp, bytes).map_err(|e| state_err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| state_err(path, e))
}

/// The address of pod `uid` (allocated on first call).
pub fn allocate(path: &Path, cidr: &Cidr, uid: &str) -> Result<Ipv4Addr, IpamError> {
    let mut t = load(path)?;
    let ip = choose(&t, cidr, uid)?;
    if t.allocated.insert(ip, uid.to_string()).is_none() {
        store(path, &t)?;
    }
    Ok(ip)
}

/// Frees the address of pod `uid`.
pub fn release(path: &Path, uid: &str) -> Result<(), IpamError> {
    let mut t = load(path)?;
    let before = t.allocated.len();
    t.allocated.retain(|_, u| u != uid);
    if t.allocated.len() != before {
        store(path, &t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_normalise() {
        let c: Cidr = "10.88.0.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.88.0.0/24");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(c.hosts().count(), 253);
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/24", "10.0.0.0/7", "::1/64"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_unique_stable_and_reused_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ipam.json");
        let c: Cidr = "10.1.0.0/29".parse().unwrap();
        let a = allocate(&p, &c, "a").unwrap();
        let b = allocate(&p, &c, "b").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(allocate(&p, &c, "a").unwrap(), a);
        for u in ["c", "d", "e"] {
            allocate(&p, &c, u).unwrap();
        }
        assert_eq!(
            allocate(&p, &c, "f"),
            Err(IpamError::Full("10.1.0.0/29".into()))
        );
        release(&p, "b").unwrap();
        assert_eq!(allocate(&p, &c, "f").unwrap(), b);
    }
}
