//! Renders a [`Snapshot`] into the full text of the nftables table
//! `ip kc`, in the shape of kube-proxy's nftables mode:
//!
//! - map `service-ips` (ClusterIP . protocol . port → `goto svc-…`) and map
//!   `service-nodeports` (protocol . port → `goto ext-…`), looked up from the
//!   `services` chain on the nat prerouting and output hooks;
//! - one `svc-…` chain per Service port spreading new connections with
//!   `numgen random mod N` over one `ep-…` chain per ready endpoint, each
//!   doing `dnat to <pod ip>:<port>`;
//! - masquerade by mark: traffic from outside the pod network, NodePort
//!   traffic, and hairpin traffic (a pod reaching itself through its Service)
//!   is marked and masqueraded in postrouting;
//! - sessionAffinity ClientIP: one dynamic set with timeout per endpoint,
//!   filled on DNAT and checked before the random pick;
//! - Services without ready endpoints are rejected (filter hooks) instead of
//!   timing out.
//!
//! Pure: the same snapshot always renders the same text (sorted input), so
//! unit tests compare text and the applier can skip unchanged syncs.

use std::fmt::Write;

use super::model::{Service, ServicePort, Snapshot};

/// The table every rule lives in; kcnode owns it and nothing else.
pub const TABLE: &str = "kc";

/// The packet-mark bit meaning "masquerade this connection".
const MASQ_MARK: &str = "0x4000";

/// Node-level settings that shape the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The cluster's pod network (traffic from outside it to a ClusterIP
    /// is masqueraded so replies come back through this node).
    pub cluster_cidr: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            cluster_cidr: "10.244.0.0/16".to_string(),
        }
    }
}

fn port_id(svc: &Service, port: &ServicePort) -> String {
    let pname = if port.name.is_empty() {
        port.port.to_string()
    } else {
        port.name.clone()
    };
    format!(
        "{}/{}/{}/{}",
        svc.namespace,
        svc.name,
        port.protocol.nft(),
        pname
    )
}

fn ep_chain(id: &str, ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("ep-{id}/{ip}/{port}")
}

fn affinity_set(id: &str, ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("affinity-{id}/{ip}/{port}")
}

fn elements(out: &mut String, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(",\n\t\t\t     "));
    }
}

/// The full text of `table ip kc { … }` for `snap`.
pub fn render(cfg: &ProxyConfig, snap: &Snapshot) -> String {
    let mut service_ips = Vec::new();
    let mut nodeports = Vec::new();
    let mut no_ep_ips = Vec::new();
    let mut no_ep_nodeports = Vec::new();
    let mut sets = String::new();
    let mut chains = String::new();

    for svc in &snap.services {
        let Some(cip) = svc.cluster_ip else {
            continue; // headless: DNS only, no proxying
        };
        for port in &svc.ports {
            let id = port_id(svc, port);
            let proto = port.protocol.nft();
            if port.endpoints.is_empty() {
                no_ep_ips.push(format!("{cip} . {proto} . {}", port.port));
                if let Some(np) = port.node_port {
                    no_ep_nodeports.push(format!("{proto} . {np}"));
                }
                continue;
            }
            service_ips.push(format!("{cip} . {proto} . {} : goto svc-{id}", port.port));
            if let Some(np) = port.node_port {
                nodeports.push(format!("{proto} . {np} : goto ext-{id}"));
                let _ = writeln!(
                    chains,
                    "\tchain ext-{id} {{\n\t\tjump mark-for-masquerade\n\t\tgoto svc-{id}\n\t}}"
                );
            }
            let _ = writeln!(chains, "\tchain svc-{id} {{");
            let _ = writeln!(
                chains,
                "\t\tip saddr != {} jump mark-for-masquerade",
                cfg.cluster_cidr
            );
            if svc.affinity_timeout.is_some() {
                for (ip, tport) in &port.endpoints {
                    let _ = writeln!(
                        chains,
                        "\t\tip saddr @{} goto {}",
                        affinity_set(&id, *ip, *tport),
                        ep_chain(&id, *ip, *tport)
                    );
                }
            }
            match port.endpoints.as_slice() {
                [(ip, tport)] => {
                    let _ = writeln!(chains, "\t\tgoto {}", ep_chain(&id, *ip, *tport));
                }
                eps => {
                    let arms: Vec<String> = eps
                        .iter()
                        .enumerate()
                        .map(|(i, (ip, tport))| {
                            format!("{i} : goto {}", ep_chain(&id, *ip, *tport))
                        })
                        .collect();
                    let _ = writeln!(
                        chains,
                        "\t\tnumgen random mod {} vmap {{ {} }}",
                        eps.len(),
                        arms.join(", ")
                    );
                }
            }
            let _ = writeln!(chains, "\t}}");
            for (ip, tport) in &port.endpoints {
                let _ = writeln!(chains, "\tchain {} {{", ep_chain(&id, *ip, *tport));
                let _ = writeln!(chains, "\t\tip saddr {ip} jump mark-for-masquerade");
                if let Some(timeout) = svc.affinity_timeout {
                    let set = affinity_set(&id, *ip, *tport);
                    let _ = writeln!(
                        sets,
                        "\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
                    );
                    let _ = writeln!(chains, "\t\tupdate @{set} {{ ip saddr }}");
                }
                let _ = writeln!(chains, "\t\tmeta l4proto {proto} dnat to {ip}:{tport}");
                let _ = writeln!(chains, "\t}}");
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "table ip {TABLE} {{");
    let _ = writeln!(out, "\tcomment \"Kubernetes Services, managed by kcnode\"");
    out.push_str("\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n");
    elements(&mut out, &service_ips);
    out.push_str("\t}\n\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n");
    elements(&mut out, &nodeports);
    out.push_str(
        "\t}\n\tset no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service\n",
    );
    elements(&mut out, &no_ep_ips);
    out.push_str("\t}\n\tset no-endpoint-nodeports {\n\t\ttype inet_proto . inet_service\n");
    elements(&mut out, &no_ep_nodeports);
    out.push_str("\t}\n");
    out.push_str(&sets);
    out.push_str(concat!(
        "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n",
        "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n",
        "\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tjump masquerading\n\t}\n",
        "\tchain filter-input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n\t\tct state new jump reject-no-endpoints\n\t}\n",
        "\tchain filter-forward {\n\t\ttype filter hook forward priority filter - 10; policy accept;\n\t\tct state new jump reject-no-endpoints\n\t}\n",
        "\tchain filter-output {\n\t\ttype filter hook output priority filter - 10; policy accept;\n\t\tct state new jump reject-no-endpoints\n\t}\n",
        "\tchain reject-no-endpoints {\n\t\tip daddr . meta l4proto . th dport @no-endpoint-services reject\n",
        "\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @no-endpoint-nodeports reject\n\t}\n",
        "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n",
        "\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n\t}\n",
    ));
    let _ = writeln!(
        out,
        "\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark | {MASQ_MARK}\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain masquerading {{\n\t\tmeta mark & {MASQ_MARK} == 0 return\n\t\tmeta mark set meta mark ^ {MASQ_MARK}\n\t\tmasquerade fully-random\n\t}}"
    );
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::{Protocol, Service, ServicePort};

    fn svc(eps: &[&str], node_port: Option<u16>, affinity: Option<u32>) -> Snapshot {
        Snapshot {
            services: vec![Service {
                namespace: "default".into(),
                name: "web".into(),
                cluster_ip: Some("10.96.0.10".parse().unwrap()),
                affinity_timeout: affinity,
                ports: vec![ServicePort {
                    name: "http".into(),
                    protocol: Protocol::Tcp,
                    port: 80,
                    node_port,
                    endpoints: eps.iter().map(|e| (e.parse().unwrap(), 8080)).collect(),
                }],
            }],
        }
    }

    fn chain<'a>(text: &'a str, name: &str) -> &'a str {
        let start = text
            .find(&format!("\tchain {name} {{"))
            .unwrap_or_else(|| panic!("no chain {name} in\n{text}"));
        let end = start + text[start..].find("\n\t}").unwrap();
        &text[start..end + 3]
    }

    #[test]
    fn cluster_ip_spreads_over_endpoints_with_numgen() {
        let text = render(
            &ProxyConfig::default(),
            &svc(&["10.244.0.2", "10.244.0.3"], None, None),
        );
        assert!(
            text.contains("elements = { 10.96.0.10 . tcp . 80 : goto svc-default/web/tcp/http }")
        );
        assert_eq!(
            chain(&text, "svc-default/web/tcp/http"),
            "\tchain svc-default/web/tcp/http {\n\
             \t\tip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\
             \t\tnumgen random mod 2 vmap { 0 : goto ep-default/web/tcp/http/10.244.0.2/8080, 1 : goto ep-default/web/tcp/http/10.244.0.3/8080 }\n\
             \t}"
        );
        assert_eq!(
            chain(&text, "ep-default/web/tcp/http/10.244.0.3/8080"),
            "\tchain ep-default/web/tcp/http/10.244.0.3/8080 {\n\
             \t\tip saddr 10.244.0.3 jump mark-for-masquerade\n\
             \t\tmeta l4proto tcp dnat to 10.244.0.3:8080\n\
             \t}"
        );
    }

    #[test]
    fn service_without_endpoints_is_rejected_not_mapped() {
        let text = render(&ProxyConfig::default(), &svc(&[], Some(30080), None));
        assert!(!text.contains("svc-default/web"));
        assert!(text.contains("elements = { 10.96.0.10 . tcp . 80 }"));
        assert!(text.contains("elements = { tcp . 30080 }"));
    }

    #[test]
    fn node_port_goes_through_masquerading_ext_chain() {
        let text = render(
            &ProxyConfig::default(),
            &svc(&["10.244.0.2"], Some(30080), None),
        );
        assert!(text.contains("elements = { tcp . 30080 : goto ext-default/web/tcp/http }"));
        assert_eq!(
            chain(&text, "ext-default/web/tcp/http"),
            "\tchain ext-default/web/tcp/http {\n\t\tjump mark-for-masquerade\n\t\tgoto svc-default/web/tcp/http\n\t}"
        );
        // a single endpoint needs no random pick
        assert!(
            chain(&text, "svc-default/web/tcp/http")
                .contains("\t\tgoto ep-default/web/tcp/http/10.244.0.2/8080\n")
        );
    }

    #[test]
    fn client_ip_affinity_uses_timed_sets() {
        let text = render(
            &ProxyConfig::default(),
            &svc(&["10.244.0.2", "10.244.0.3"], None, Some(60)),
        );
        assert!(text.contains(
            "\tset affinity-default/web/tcp/http/10.244.0.2/8080 {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 60s\n\t}"
        ));
        let svc_chain = chain(&text, "svc-default/web/tcp/http");
        assert!(svc_chain.contains(
            "ip saddr @affinity-default/web/tcp/http/10.244.0.3/8080 goto ep-default/web/tcp/http/10.244.0.3/8080"
        ));
        assert!(
            chain(&text, "ep-default/web/tcp/http/10.244.0.2/8080")
                .contains("update @affinity-default/web/tcp/http/10.244.0.2/8080 { ip saddr }")
        );
    }

    #[test]
    fn headless_services_render_nothing() {
        let mut snap = svc(&["10.244.0.2"], None, None);
        snap.services[0].cluster_ip = None;
        let text = render(&ProxyConfig::default(), &snap);
        assert!(!text.contains("default/web"));
    }
}
