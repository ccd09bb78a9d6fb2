//! The resolv.conf a pod with dnsPolicy ClusterFirst gets: the cluster DNS
//! server and the search path that makes short Service names work.

use std::net::IpAddr;

use super::CLUSTER_DOMAIN;

/// `nameserver`, `search <ns>.svc.cluster.local svc.cluster.local
/// cluster.local`, `options ndots:5`, as kubelet writes it.
pub fn render(dns_server: IpAddr, namespace: &str) -> String {
    format!(
        "nameserver {dns_server}\nsearch {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn cluster_first_resolv_conf() {
        assert_eq!(
            super::render("10.96.0.10".parse().unwrap(), "shop"),
            "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
    }
}
