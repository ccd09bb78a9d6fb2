//! The cluster's own Services, kept as kube-apiserver keeps them:
//!
//! - `default/kubernetes` (ClusterIP 10.96.0.1, port 443 named `https` to
//!   the API servers' port) whose Endpoints and EndpointSlice list the
//!   address of every live control-plane member: the endpoint reconciler.
//!   A member leaves the list when it leaves the store's membership or stops
//!   answering, so pods reaching `https://kubernetes.default.svc` through
//!   the node proxy always land on a live API server.
//! - `kube-system/kube-dns` (10.96.0.10, 53/UDP `dns`, 53/TCP `dns-tcp`):
//!   the object Kubernetes shows for the cluster DNS. Every node answers
//!   that address itself (node's `cluster_network`), so it has no
//!   endpoints and the node proxy leaves it alone.
//! - The control-plane mirror pods (`kc-store-<node>`, `kube-apiserver-<node>`,
//!   ...) of hosts that are no longer members are deleted.
//!
//! Only the store's leader runs it (it knows the membership; see
//! `member.rs`); which members are live is the caller's to find out. The
//! desired objects are pure functions; `reconcile` is one step through the
//! API, creating what is missing and updating what differs.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::endpoints::{SERVICE_NAME_LABEL, write};
use kc_client::client::{Client, resource};
use kc_client::status::ApiError;

/// The `kubernetes` Service's ClusterIP: the first address of the range.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
/// The cluster DNS Service's ClusterIP (kube-dns' usual address).
pub const DNS_SERVICE_IP: &str = "10.96.0.10";
/// The mirror pod annotation (the API server's convention).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the leader knows of the control plane when it reconciles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneView {
    /// The members' host addresses (live or not).
    pub members: BTreeSet<IpAddr>,
    /// The members whose API server answers.
    pub live: BTreeSet<IpAddr>,
    /// The API servers' port (6443).
    pub api_port: u16,
}

/// `default/kubernetes`: ClusterIP 10.96.0.1, 443 (`https`) -> `api_port`.
pub fn kubernetes_service(api_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": KUBERNETES_SERVICE_IP,
            "clusterIPs": [KUBERNETES_SERVICE_IP],
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}],
        },
    })
}

/// `kube-system/kube-dns`: 10.96.0.10, 53/UDP `dns` and 53/TCP `dns-tcp`.
pub fn kube_dns_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"kc.io/served-by": "the DNS server of every node agent, on this address"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": DNS_SERVICE_IP,
            "clusterIPs": [DNS_SERVICE_IP],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    })
}

/// The `kubernetes` Endpoints and EndpointSlice listing `live` (sorted).
pub fn kubernetes_endpoints(live: &BTreeSet<IpAddr>, api_port: u16) -> (Value, Value) {
    let port = json!({"name": "https", "port": api_port, "protocol": "TCP"});
    let subsets = if live.is_empty() {
        json!([])
    } else {
        let addresses: Vec<Value> = live
            .iter()
            .map(|ip| json!({"ip": ip.to_string()}))
            .collect();
        json!([{"addresses": addresses, "ports": [port.clone()]}])
    };
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": subsets,
    });
    let slice_endpoints: Vec<Value> = live
        .iter()
        .map(|ip| {
            json!({"addresses": [ip.to_string()],
                   "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {SERVICE_NAME_LABEL: "kubernetes"},
        },
        "addressType": "IPv4",
        "endpoints": slice_endpoints,
        "ports": [port],
    });
    (endpoints, slice)
}

/// The control-plane mirror pods (namespace, name) of hosts that are not
/// `members`. Nothing when the membership is unknown (empty).
pub fn stale_mirror_pods(pods: &[Value], members: &BTreeSet<IpAddr>) -> Vec<(String, String)> {
    if members.is_empty() {
        return Vec::new();
    }
    pods.iter()
        .filter(|p| p["metadata"]["annotations"][MIRROR_ANNOTATION].is_string())
        .filter(|p| p["metadata"]["labels"]["tier"] == "control-plane")
        .filter(|p| {
            p["status"]["hostIP"]
                .as_str()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| !members.contains(&ip))
        })
        .map(|p| {
            (
                p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// One step: the two Services exist, `kubernetes`' endpoints are the live
/// members, removed members' control-plane mirror pods are gone.
pub async fn reconcile(client: &Client, view: &ControlPlaneView) -> Result<(), ApiError> {
    let services = resource("", "v1", "services");
    for svc in [kubernetes_service(view.api_port), kube_dns_service()] {
        let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
        let name = svc["metadata"]["name"].as_str().unwrap_or("");
        match client.get(services, ns, name).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => match client.create(services, ns, svc.clone()).await {
                // Created meanwhile by an earlier leader: fine.
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    let (endpoints, slice) = kubernetes_endpoints(&view.live, view.api_port);
    write(
        client,
        resource("", "v1", "endpoints"),
        endpoints,
        &["subsets"],
    )
    .await?;
    write(
        client,
        resource("discovery.k8s.io", "v1", "endpointslices"),
        slice,
        &["endpoints", "ports"],
    )
    .await?;
    let pods = resource("", "v1", "pods");
    let (kube_system, _) = client.list(pods, Some("kube-system")).await?;
    for (ns, name) in stale_mirror_pods(&kube_system, &view.members) {
        tracing::info!(pod = %name, "deleting the mirror pod of a removed control-plane member");
        // At once: the host that ran it is gone, no kubelet confirms.
        match client
            .delete(pods, &ns, &name, json!({"gracePeriodSeconds": 0}))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_kubernetes_service_is_443_https_on_the_first_address() {
        let svc = kubernetes_service(6443);
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(svc["spec"]["ports"][0]["name"], "https");
        assert_eq!(svc["spec"]["ports"][0]["port"], 443);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 6443);
        assert!(
            svc["spec"]["selector"].is_null(),
            "no selector: endpoints are ours"
        );
        let dns = kube_dns_service();
        assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(dns["spec"]["ports"][0]["protocol"], "UDP");
        assert_eq!(dns["spec"]["ports"][1]["name"], "dns-tcp");
    }

    #[test]
    fn endpoints_list_every_live_member_and_nothing_else() {
        let (ep, slice) = kubernetes_endpoints(&ips(&["10.0.0.2", "10.0.0.1"]), 6443);
        assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(ep["subsets"][0]["addresses"][1]["ip"], "10.0.0.2");
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
        assert_eq!(
            slice["metadata"]["labels"][SERVICE_NAME_LABEL],
            "kubernetes"
        );
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2);
        assert_eq!(slice["endpoints"][1]["addresses"][0], "10.0.0.2");
        assert_eq!(slice["ports"][0]["name"], "https");
        let (ep, slice) = kubernetes_endpoints(&BTreeSet::new(), 6443);
        assert_eq!(ep["subsets"], json!([]));
        assert_eq!(slice["endpoints"], json!([]));
    }

    #[test]
    fn only_control_plane_mirror_pods_of_non_members_are_stale() {
        let pod = |name: &str, tier: &str, ip: &str, mirror: bool| {
            let mut p = json!({"metadata": {"namespace": "kube-system", "name": name,
                                             "labels": {"tier": tier}},
                                "status": {"hostIP": ip}});
            if mirror {
                p["metadata"]["annotations"] = json!({MIRROR_ANNOTATION: "x"});
            }
            p
        };
        let pods = [
            pod("kc-store-cp1", "control-plane", "10.0.0.1", true),
            pod("kc-store-cp3", "control-plane", "10.0.0.3", true),
            pod("kube-proxy-cp3", "node", "10.0.0.3", true),
            pod("user-pod", "control-plane", "10.0.0.3", false),
        ];
        let stale = stale_mirror_pods(&pods, &ips(&["10.0.0.1", "10.0.0.2"]));
        assert_eq!(
            stale,
            vec![("kube-system".to_string(), "kc-store-cp3".to_string())]
        );
        assert!(stale_mirror_pods(&pods, &BTreeSet::new()).is_empty());
    }
}
