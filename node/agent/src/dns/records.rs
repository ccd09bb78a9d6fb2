//! The pure DNS lookup: a query name and type against a snapshot of
//! Services, giving records, "name exists but no such type" or NXDOMAIN.

use std::net::Ipv4Addr;

use crate::proxy::model::{Service, Snapshot};

use super::CLUSTER_DOMAIN;

/// Query types the cluster zone answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    A,
    Srv,
    Ptr,
    Other,
}

/// One answer record's data (TTL and name come from the query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    /// port, target host name (fully qualified, no trailing dot)
    Srv(u16, String),
    Ptr(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Records(Vec<Data>),
    /// The name exists but has no records of this type (NOERROR, empty).
    NoData,
    NxDomain,
    /// Not in our zone (we do not forward).
    Refused,
}

fn service_fqdn(s: &Service) -> String {
    format!("{}.{}.svc.{CLUSTER_DOMAIN}", s.name, s.namespace)
}

/// The A records of a Service: its ClusterIP, or (headless) its ready
/// endpoints' pod IPs.
fn addresses(s: &Service) -> Vec<Ipv4Addr> {
    match s.cluster_ip {
        Some(ip) => vec![ip],
        None => {
            let mut ips: Vec<Ipv4Addr> = s
                .ports
                .iter()
                .flat_map(|p| p.endpoints.iter().map(|(ip, _)| *ip))
                .collect();
            ips.sort();
            ips.dedup();
            ips
        }
    }
}

/// Answers `name` (any case, with or without the trailing dot).
pub fn lookup(snap: &Snapshot, name: &str, kind: Kind) -> Answer {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rev) = name.strip_suffix(".in-addr.arpa") {
        return reverse(snap, rev, kind);
    }
    let Some(rest) = name.strip_suffix(&format!(".svc.{CLUSTER_DOMAIN}")) else {
        return if name == CLUSTER_DOMAIN || name.ends_with(&format!(".{CLUSTER_DOMAIN}")) {
            Answer::NxDomain
        } else {
            Answer::Refused
        };
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let find = |svc: &str, ns: &str| {
        snap.services
            .iter()
            .find(|s| s.name == svc && s.namespace == ns)
    };
    match labels.as_slice() {
        [svc, ns] => match find(svc, ns) {
            None => Answer::NxDomain,
            Some(s) => match kind {
                Kind::A => records(addresses(s).into_iter().map(Data::A).collect()),
                Kind::Srv => records(
                    s.ports
                        .iter()
                        .filter(|p| !p.name.is_empty())
                        .map(|p| Data::Srv(p.port, service_fqdn(s)))
                        .collect(),
                ),
                _ => Answer::NoData,
            },
        },
        // _<port>._<proto>.<svc>.<ns>
        [port, proto, svc, ns] if port.starts_with('_') && proto.starts_with('_') => {
            let Some(s) = find(svc, ns) else {
                return Answer::NxDomain;
            };
            let p = s
                .ports
                .iter()
                .find(|p| p.name == port[1..] && p.protocol.nft() == &proto[1..]);
            match (p, kind) {
                (None, _) => Answer::NxDomain,
                (Some(p), Kind::Srv) => Answer::Records(vec![Data::Srv(p.port, service_fqdn(s))]),
                (Some(_), _) => Answer::NoData,
            }
        }
        _ => Answer::NxDomain,
    }
}

fn records(list: Vec<Data>) -> Answer {
    if list.is_empty() {
        Answer::NoData
    } else {
        Answer::Records(list)
    }
}

fn reverse(snap: &Snapshot, rev: &str, kind: Kind) -> Answer {
    let mut octets: Vec<&str> = rev.split('.').collect();
    octets.reverse();
    let Ok(ip) = octets.join(".").parse::<Ipv4Addr>() else {
        return Answer::Refused;
    };
    match snap.services.iter().find(|s| s.cluster_ip == Some(ip)) {
        None => Answer::Refused,
        Some(s) if kind == Kind::Ptr => Answer::Records(vec![Data::Ptr(service_fqdn(s))]),
        Some(_) => Answer::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::{Protocol, ServicePort};

    fn snap() -> Snapshot {
        let port = |eps: Vec<(Ipv4Addr, u16)>| ServicePort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 80,
            node_port: None,
            endpoints: eps,
        };
        Snapshot {
            services: vec![
                Service {
                    namespace: "default".into(),
                    name: "web".into(),
                    cluster_ip: Some("10.96.0.20".parse().unwrap()),
                    affinity_timeout: None,
                    ports: vec![port(vec![])],
                },
                Service {
                    namespace: "shop".into(),
                    name: "db".into(),
                    cluster_ip: None,
                    affinity_timeout: None,
                    ports: vec![port(vec![
                        ("10.244.1.3".parse().unwrap(), 5432),
                        ("10.244.0.2".parse().unwrap(), 5432),
                    ])],
                },
            ],
        }
    }

    #[test]
    fn services_resolve_to_cluster_ips_and_headless_to_pods() {
        let s = snap();
        assert_eq!(
            lookup(&s, "WEB.default.svc.cluster.local.", Kind::A),
            Answer::Records(vec![Data::A("10.96.0.20".parse().unwrap())])
        );
        assert_eq!(
            lookup(&s, "db.shop.svc.cluster.local", Kind::A),
            Answer::Records(vec![
                Data::A("10.244.0.2".parse().unwrap()),
                Data::A("10.244.1.3".parse().unwrap())
            ])
        );
        assert_eq!(
            lookup(&s, "web.default.svc.cluster.local", Kind::Other),
            Answer::NoData
        );
        assert_eq!(
            lookup(&s, "nope.default.svc.cluster.local", Kind::A),
            Answer::NxDomain
        );
        assert_eq!(lookup(&s, "example.com", Kind::A), Answer::Refused);
    }

    #[test]
    fn srv_and_ptr() {
        let s = snap();
        assert_eq!(
            lookup(&s, "_http._tcp.web.default.svc.cluster.local", Kind::Srv),
            Answer::Records(vec![Data::Srv(80, "web.default.svc.cluster.local".into())])
        );
        assert_eq!(
            lookup(&s, "20.0.96.10.in-addr.arpa", Kind::Ptr),
            Answer::Records(vec![Data::Ptr("web.default.svc.cluster.local".into())])
        );
    }
}
