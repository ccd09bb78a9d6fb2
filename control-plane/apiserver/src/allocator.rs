//! ClusterIP and NodePort allocation for Services: never the same IP or
//! port twice.
//!
//! Each allocated value is a key in the store
//! (`/registry/kc.ipallocations/services/<ip>`,
//! `/registry/kc.portallocations/nodeports/<port>`) written in the same
//! transaction as the Service, with a compare that the key does not exist;
//! a Service delete removes them in its own transaction. So two concurrent
//! creates can pick the same candidate, but only one commits; the other
//! retries with a fresh pick. Picking is pure ([`pick_free`]) over the set
//! of keys read just before.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::status::{ApiError, Cause};

/// The Service CIDR: 10.96.0.0/16.
pub const SERVICE_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 16);
/// Addresses below this offset are never picked automatically (10.96.0.1 is
/// the `kubernetes` Service, 10.96.0.10 the cluster DNS); they may be asked
/// for explicitly.
const STATIC_BAND: u32 = 16;
/// The NodePort range.
pub const NODE_PORTS: std::ops::RangeInclusive<u32> = 30000..=32767;

pub const IP_PREFIX: &str = "/registry/kc.ipallocations/services/";
pub const PORT_PREFIX: &str = "/registry/kc.portallocations/nodeports/";

fn net_size() -> u32 {
    1u32 << (32 - SERVICE_NET.1)
}

fn in_service_net(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SERVICE_NET.1);
    u32::from(ip) & mask == u32::from(SERVICE_NET.0)
}

pub fn ip_key(ip: Ipv4Addr) -> Vec<u8> {
    format!("{IP_PREFIX}{ip}").into_bytes()
}

pub fn port_key(port: u32) -> Vec<u8> {
    format!("{PORT_PREFIX}{port}").into_bytes()
}

/// A free value in `range` not in `used`, starting the scan at `start`
/// (random, so concurrent creators rarely collide) and wrapping around.
pub fn pick_free(
    range: std::ops::RangeInclusive<u32>,
    used: &BTreeSet<u32>,
    start: u32,
) -> Option<u32> {
    let (lo, hi) = (*range.start(), *range.end());
    if hi < lo {
        return None;
    }
    let len = hi - lo + 1;
    (0..len)
        .map(|i| lo + (start.wrapping_add(i)) % len)
        .find(|v| !used.contains(v))
}

/// What is taken: allocated IPs (as offsets in the service net) and ports.
#[derive(Debug, Default, Clone)]
pub struct Taken {
    pub ips: BTreeSet<u32>,
    pub ports: BTreeSet<u32>,
}

impl Taken {
    /// Reads the allocation keys' suffixes.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut taken = Taken::default();
        for key in keys {
            let key = String::from_utf8_lossy(key);
            if let Some(ip) = key
                .strip_prefix(IP_PREFIX)
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
            {
                if in_service_net(ip) {
                    taken.ips.insert(u32::from(ip) - u32::from(SERVICE_NET.0));
                }
            } else if let Some(port) = key.strip_prefix(PORT_PREFIX).and_then(|s| s.parse().ok()) {
                taken.ports.insert(port);
            }
        }
        taken
    }
}

fn needs_node_ports(spec: &Value) -> bool {
    matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

/// Fills in a new Service's clusterIP/clusterIPs and nodePorts from what is
/// free, honouring values the user gave (422 if taken or out of range).
/// Returns the allocation keys the create must claim.
pub fn assign(object: &mut Value, taken: &Taken, seed: u32) -> Result<Vec<Vec<u8>>, ApiError> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let invalid = |field: &str, value: &str, detail: &str| {
        ApiError::invalid(
            "",
            "Service",
            &name,
            vec![Cause::invalid(field, value, detail)],
        )
    };
    let spec = &mut object["spec"];
    let mut claims = Vec::new();
    if spec["type"] != "ExternalName" {
        let ip = match spec["clusterIP"].as_str() {
            Some("None") => None,
            None | Some("") => {
                let used: BTreeSet<u32> = taken.ips.clone();
                let offset =
                    pick_free(STATIC_BAND..=net_size() - 2, &used, seed).ok_or_else(|| {
                        ApiError::internal(
                            "no ClusterIP left in 10.96.0.0/16; delete unused Services",
                        )
                    })?;
                Some(Ipv4Addr::from(u32::from(SERVICE_NET.0) + offset))
            }
            Some(text) => {
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIP",
                        text,
                        "must be a valid IP address, (e.g. 10.9.8.7)",
                    )
                })?;
                if !in_service_net(ip) {
                    return Err(invalid(
                        "spec.clusterIP",
                        text,
                        "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16",
                    ));
                }
                if taken
                    .ips
                    .contains(&(u32::from(ip) - u32::from(SERVICE_NET.0)))
                {
                    return Err(invalid(
                        "spec.clusterIP",
                        text,
                        "provided IP is already allocated",
                    ));
                }
                Some(ip)
            }
        };
        let text = ip.map_or("None".to_string(), |ip| ip.to_string());
        spec["clusterIP"] = json!(text);
        spec["clusterIPs"] = json!([text]);
        claims.extend(ip.map(ip_key));
    }
    if needs_node_ports(spec) {
        let mut used = taken.ports.clone();
        let ports = spec["ports"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut asked = Vec::with_capacity(ports.len());
        // Ports the user asked for first, so automatic picks avoid them.
        for (i, port) in ports.iter().enumerate() {
            let Some(p) = port["nodePort"].as_u64().filter(|p| *p != 0) else {
                asked.push(None);
                continue;
            };
            let field = format!("spec.ports[{i}].nodePort");
            let p = u32::try_from(p).unwrap_or(u32::MAX);
            if !NODE_PORTS.contains(&p) {
                return Err(invalid(
                    &field,
                    &p.to_string(),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
            if !used.insert(p) {
                return Err(invalid(
                    &field,
                    &p.to_string(),
                    "provided port is already allocated",
                ));
            }
            asked.push(Some(p));
        }
        let mut filled = Vec::with_capacity(ports.len());
        for (i, (mut port, asked)) in ports.into_iter().zip(asked).enumerate() {
            let chosen = match asked {
                Some(p) => p,
                None => {
                    let start = seed.wrapping_mul(31).wrapping_add(i as u32);
                    let p = pick_free(NODE_PORTS, &used, start)
                        .ok_or_else(|| ApiError::internal("no NodePort left in 30000-32767"))?;
                    used.insert(p);
                    p
                }
            };
            port["nodePort"] = json!(chosen);
            claims.push(port_key(chosen));
            filled.push(port);
        }
        spec["ports"] = Value::Array(filled);
    }
    Ok(claims)
}

/// The allocation keys a stored Service holds (released on delete).
pub fn held(object: &Value) -> Vec<Vec<u8>> {
    let spec = &object["spec"];
    let mut keys = Vec::new();
    if let Some(ip) = spec["clusterIP"]
        .as_str()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
    {
        keys.push(ip_key(ip));
    }
    for port in spec["ports"].as_array().into_iter().flatten() {
        if let Some(p) = port["nodePort"].as_u64().filter(|p| *p != 0) {
            keys.push(port_key(p as u32));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn pick_free_skips_used_and_wraps() {
        let used = BTreeSet::from([5, 6, 9]);
        assert_eq!(pick_free(5..=9, &used, 0), Some(7));
        assert_eq!(pick_free(5..=9, &used, 4), Some(7)); // 9 taken, wraps to 5,6 taken, 7
        assert_eq!(pick_free(5..=6, &BTreeSet::from([5, 6]), 3), None);
    }

    #[test]
    fn automatic_ips_are_never_repeated_and_avoid_the_static_band() {
        let mut taken = Taken::default();
        for seed in 0..300 {
            let mut s = svc(json!({"type": "ClusterIP"}));
            let claims = assign(&mut s, &taken, seed % 7).unwrap();
            let keys: Vec<&[u8]> = claims.iter().map(Vec::as_slice).collect();
            let t = Taken::from_keys(keys);
            let ip = *t.ips.first().unwrap();
            assert!(ip >= STATIC_BAND);
            assert!(taken.ips.insert(ip), "IP offset {ip} handed out twice");
            assert_eq!(s["spec"]["clusterIPs"][0], s["spec"]["clusterIP"]);
        }
    }

    #[test]
    fn user_ip_honoured_if_free_else_422() {
        let mut s = svc(json!({"clusterIP": "10.96.0.10"}));
        let claims = assign(&mut s, &Taken::default(), 0).unwrap();
        assert_eq!(
            claims,
            vec![b"/registry/kc.ipallocations/services/10.96.0.10".to_vec()]
        );
        let taken = Taken::from_keys(claims.iter().map(Vec::as_slice));
        let err = assign(&mut svc(json!({"clusterIP": "10.96.0.10"})), &taken, 0).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("provided IP is already allocated"),
            "{}",
            err.message
        );
        let err = assign(&mut svc(json!({"clusterIP": "192.168.1.1"})), &taken, 0).unwrap_err();
        assert!(
            err.message.contains("not in the valid range"),
            "{}",
            err.message
        );
    }

    #[test]
    fn headless_claims_nothing_and_node_ports_are_distinct() {
        let mut s = svc(json!({"clusterIP": "None", "ports": [{"port": 1}]}));
        assert!(assign(&mut s, &Taken::default(), 0).unwrap().is_empty());
        assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));

        let mut s = svc(
            json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]}),
        );
        let taken = Taken {
            ports: BTreeSet::from([30000]),
            ..Taken::default()
        };
        let claims = assign(&mut s, &taken, 0).unwrap();
        let p0 = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(p0 != 30000 && p0 != 30001 && (30000..=32767).contains(&p0));
        assert_eq!(claims.len(), 3);
        assert_eq!(held(&s), claims);
        let err = assign(
            &mut svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30000}]})),
            &taken,
            0,
        )
        .unwrap_err();
        assert!(err.message.contains("provided port is already allocated"));
    }
}
