//! The resolv.conf a pod gets, by its dnsPolicy (Kubernetes' rules):
//!
//! - `ClusterFirst` (the default): the cluster DNS server and the search
//!   path that makes short Service names work, `options ndots:5`; a
//!   hostNetwork pod gets the node's file instead (as kubelet does), and so
//!   does every pod when the node has no cluster DNS;
//! - `ClusterFirstWithHostNet`: the cluster's, also for hostNetwork pods;
//! - `Default`: the node's resolv.conf;
//! - `None`: only what `dnsConfig` says.
//!
//! `dnsConfig` (nameservers, searches, options) is merged into the first
//! three too. Pure; the kubelet writes the text and binds it at
//! /etc/resolv.conf in every container of the pod.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use super::CLUSTER_DOMAIN;

/// `nameserver`, `search <ns>.svc.cluster.local svc.cluster.local
/// cluster.local`, `options ndots:5`, as kubelet writes it.
pub fn render(dns_server: IpAddr, namespace: &str) -> String {
    format!(
        "nameserver {dns_server}\nsearch {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n"
    )
}

/// A resolv.conf as its three kinds of lines.
#[derive(Debug, Default, PartialEq)]
struct Conf {
    nameservers: Vec<String>,
    searches: Vec<String>,
    /// `name` or `name:value`
    options: Vec<String>,
}

fn parse(text: &str) -> Conf {
    let mut c = Conf::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => c.nameservers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => {
                c.searches = words.map(str::to_string).collect();
            }
            Some("options") => c.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    c
}

fn print(c: &Conf) -> String {
    let mut out = String::new();
    // Resolvers use at most three nameservers and six search domains.
    for ns in c.nameservers.iter().take(3) {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !c.searches.is_empty() {
        let s: Vec<&str> = c.searches.iter().take(6).map(String::as_str).collect();
        out.push_str(&format!("search {}\n", s.join(" ")));
    }
    if !c.options.is_empty() {
        out.push_str(&format!("options {}\n", c.options.join(" ")));
    }
    out
}

fn option_name(o: &str) -> &str {
    o.split(':').next().unwrap_or(o)
}

/// The resolv.conf of `pod`, given the node's cluster DNS address (if any)
/// and the text of the node's own resolv.conf.
pub fn for_pod(pod: &Pod, cluster_dns: Option<IpAddr>, node_resolv: &str) -> String {
    let spec = pod.spec.as_ref();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.and_then(|s| s.host_network) == Some(true);
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let cluster = |dns: IpAddr| parse(&render(dns, namespace));
    let mut conf = match (policy, cluster_dns) {
        ("None", _) => Conf::default(),
        ("Default", _) => parse(node_resolv),
        ("ClusterFirstWithHostNet", Some(dns)) => cluster(dns),
        ("ClusterFirst", Some(dns)) if !host_network => cluster(dns),
        _ => parse(node_resolv),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        conf.nameservers
            .extend(extra.nameservers.iter().flatten().cloned());
        conf.searches
            .extend(extra.searches.iter().flatten().cloned());
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.as_deref() else {
                continue;
            };
            conf.options.retain(|x| option_name(x) != name);
            conf.options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            });
        }
    }
    print(&conf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: &str = "# from the host\nnameserver 192.0.2.53\nsearch lan\noptions edns0\n";

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": spec}))
        .unwrap()
    }

    fn dns() -> Option<IpAddr> {
        Some("10.96.0.10".parse().unwrap())
    }

    #[test]
    fn cluster_first_resolv_conf() {
        assert_eq!(
            render("10.96.0.10".parse().unwrap(), "shop"),
            "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
        let p = pod(json!({"containers": []}));
        assert_eq!(
            for_pod(&p, dns(), NODE),
            render("10.96.0.10".parse().unwrap(), "shop")
        );
    }

    #[test]
    fn host_network_and_default_get_the_nodes_file() {
        let node = "nameserver 192.0.2.53\nsearch lan\noptions edns0\n";
        let host = pod(json!({"containers": [], "hostNetwork": true}));
        assert_eq!(for_pod(&host, dns(), NODE), node);
        let default = pod(json!({"containers": [], "dnsPolicy": "Default"}));
        assert_eq!(for_pod(&default, dns(), NODE), node);
        // No cluster DNS on this node: ClusterFirst falls back to the node's.
        assert_eq!(for_pod(&pod(json!({"containers": []})), None, NODE), node);
        let with_host_net = pod(json!({"containers": [], "hostNetwork": true,
            "dnsPolicy": "ClusterFirstWithHostNet"}));
        assert!(for_pod(&with_host_net, dns(), NODE).starts_with("nameserver 10.96.0.10\n"));
    }

    #[test]
    fn none_takes_dns_config_only_and_config_merges() {
        let none = pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.2.3.4"], "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}}));
        assert_eq!(
            for_pod(&none, dns(), NODE),
            "nameserver 1.2.3.4\nsearch a.example\noptions ndots:2 rotate\n"
        );
        let merged = pod(json!({"containers": [], "dnsConfig": {
            "options": [{"name": "ndots", "value": "1"}]}}));
        assert!(
            for_pod(&merged, dns(), NODE).ends_with("options ndots:1\n"),
            "{}",
            for_pod(&merged, dns(), NODE)
        );
    }
}
