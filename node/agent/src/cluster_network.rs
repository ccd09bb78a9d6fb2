//! The cluster-wide side of a node's network, run by the node agent for its
//! lifetime on the agent's tokio runtime (tasks, no threads of its own):
//!
//! - routes to every other node's pod CIDR (`network::routes`), from a
//!   watch of Nodes, added and removed as nodes join and leave;
//! - the service proxy (`proxy`): Services + EndpointSlices into the
//!   nftables table `ip kc`, re-synced on every change;
//! - the cluster DNS (`dns`): a UDP server on `CLUSTER_DNS_IP` (an address
//!   on this node's `lo`, so pods reach it through their default route and
//!   every node answers from its own watch, no DNAT), from the same
//!   snapshot as the proxy; other names go to the node's nameserver.
//!
//! The watches go over the session's current QUIC connection (`Link`,
//! `NodeRequest::Watch`: what the node identity may read) and are opened
//! again after a reconnect. Nothing is synced to the kernel before the
//! first full list, so a restarted kcnode keeps the old rules until it
//! knows better. The Service range is routed to `kc0` (`SERVICE_CIDR`).
//! `teardown` (for `kcnode leave`) removes the table, the routes, the
//! VXLAN device and the DNS address.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kc_protocol::node_api::{NodeRequest, PodEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::dns;
use crate::network::{Cidr, bridge, routes};
use crate::proxy::cache::{Kind, ObjectCache};
use crate::proxy::{Proxy, ProxyConfig, Snapshot};
use crate::session::Link;

/// The cluster DNS address pods' resolv.conf names (kube-dns' usual
/// ClusterIP; the API server never allocates it to a Service).
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

/// What the node's cluster network needs to know.
#[derive(Debug, Clone)]
pub struct ClusterNetworkConfig {
    pub node_name: String,
    /// This node's address (the peers' routes point at theirs).
    pub node_ip: Ipv4Addr,
    /// This node's pod CIDR (None: no routes are kept).
    pub pod_cidr: Option<Cidr>,
    pub mode: routes::Mode,
    pub proxy: ProxyConfig,
}

/// The collections watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Collection {
    Services,
    EndpointSlices,
    Nodes,
}

impl Collection {
    fn resource(self) -> &'static str {
        match self {
            Collection::Services => "services",
            Collection::EndpointSlices => "endpointslices",
            Collection::Nodes => "nodes",
        }
    }
}

/// One change to a collection.
#[derive(Debug)]
enum Update {
    /// A full list (after every (re)connect).
    Relisted(Vec<Value>),
    Upsert(Value),
    Deleted {
        namespace: String,
        name: String,
    },
}

/// The Service ClusterIP range, routed to `kc0` so that the node's own
/// connections to ClusterIPs have a route (and a pod-network source
/// address) before the proxy's DNAT, also on a host with no default route.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Starts the routes, proxy and DNS tasks.
pub fn start(config: ClusterNetworkConfig, link: Link) {
    if let Some(cidr) = config.pod_cidr {
        // Before the kubelet starts (it makes kc0 too): a few `ip` commands.
        route_services(&cidr);
    }
    let view = Arc::new(RwLock::new(Snapshot::default()));
    tokio::spawn(run_dns(view.clone()));
    let (tx, rx) = mpsc::channel(1024);
    for c in [
        Collection::Services,
        Collection::EndpointSlices,
        Collection::Nodes,
    ] {
        tokio::spawn(watch(link.clone(), c, tx.clone()));
    }
    tokio::spawn(reconcile(config, view, rx));
}

/// Routes the Service range to `kc0` (made if missing), source = the gateway.
fn route_services(cidr: &Cidr) {
    let routed = bridge::ensure_gateway(cidr).and_then(|()| {
        bridge::run(&[
            "route",
            "replace",
            SERVICE_CIDR,
            "dev",
            bridge::GATEWAY_DEVICE,
            "src",
            &cidr.gateway().to_string(),
        ])
    });
    if let Err(e) = routed {
        tracing::warn!("no route to the Service range {SERVICE_CIDR}: {e}");
    }
}

/// Removes what the node's cluster network put in the kernel.
pub fn teardown() {
    if let Err(e) = crate::proxy::nft::delete_table() {
        tracing::warn!("cannot remove the kc nftables table: {e}");
    }
    routes::remove_all();
    let _ = bridge::run(&["route", "del", SERVICE_CIDR, "dev", bridge::GATEWAY_DEVICE]);
    let _ = bridge::run(&["addr", "del", &format!("{CLUSTER_DNS_IP}/32"), "dev", "lo"]);
}

async fn run_dns(view: Arc<RwLock<Snapshot>>) {
    let addr = format!("{CLUSTER_DNS_IP}/32");
    if let Err(e) = bridge::run(&["addr", "replace", &addr, "dev", "lo"]) {
        tracing::warn!("cluster DNS not started: cannot add {addr} to lo: {e}");
        return;
    }
    let listen = SocketAddr::from((CLUSTER_DNS_IP, 53));
    let socket = match tokio::net::UdpSocket::bind(listen).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%listen, "cluster DNS not started: cannot bind: {e}");
            return;
        }
    };
    tracing::info!(%listen, "cluster DNS serving");
    let node_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = dns::server::upstream_of(&node_resolv);
    if let Err(e) = dns::server::serve_async(socket, view, upstream).await {
        tracing::warn!(%listen, "cluster DNS stopped: {e}");
    }
}

/// Keeps one collection's watch open over the session's connection.
async fn watch(link: Link, c: Collection, tx: mpsc::Sender<(Collection, Update)>) {
    let request = NodeRequest::Watch {
        resource: c.resource().into(),
    };
    loop {
        let client = link.read().ok().and_then(|l| l.clone());
        if let Some(client) = client {
            match client.watch(&request).await {
                Ok(mut events) => {
                    let mut listing = Some(Vec::new());
                    while let Some(ev) = events.recv().await {
                        let update = match ev {
                            PodEvent::Upsert(bytes) => {
                                let Ok(obj) = serde_json::from_slice::<Value>(&bytes) else {
                                    continue;
                                };
                                match &mut listing {
                                    Some(list) => {
                                        list.push(obj);
                                        continue;
                                    }
                                    None => Update::Upsert(obj),
                                }
                            }
                            PodEvent::Deleted { namespace, name } => {
                                Update::Deleted { namespace, name }
                            }
                            PodEvent::Synced => {
                                Update::Relisted(listing.take().unwrap_or_default())
                            }
                        };
                        if tx.send((c, update)).await.is_err() {
                            return;
                        }
                    }
                    tracing::debug!(resource = c.resource(), "watch ended; watching again");
                }
                Err(e) => tracing::debug!(resource = c.resource(), "cannot watch: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The objects the tasks render from.
#[derive(Default)]
struct State {
    services: ObjectCache,
    nodes: BTreeMap<String, Value>,
    synced: HashSet<Collection>,
}

impl State {
    /// Applies one change.
    fn apply(&mut self, c: Collection, u: Update) {
        let kind = match c {
            Collection::Services => Kind::Service,
            Collection::EndpointSlices => Kind::EndpointSlice,
            Collection::Nodes => {
                match u {
                    Update::Relisted(items) => {
                        self.nodes = items.into_iter().map(|n| (name_of(&n), n)).collect();
                        self.synced.insert(c);
                    }
                    Update::Upsert(n) => {
                        self.nodes.insert(name_of(&n), n);
                    }
                    Update::Deleted { name, .. } => {
                        self.nodes.remove(&name);
                    }
                }
                return;
            }
        };
        match u {
            Update::Relisted(items) => {
                self.services.replace_all(kind, items);
                self.synced.insert(c);
            }
            Update::Upsert(obj) => self.services.upsert(kind, obj),
            Update::Deleted { namespace, name } => self.services.remove(
                kind,
                &json!({"metadata": {"namespace": namespace, "name": name}}),
            ),
        }
    }

    fn services_known(&self) -> bool {
        self.synced.contains(&Collection::Services)
            && self.synced.contains(&Collection::EndpointSlices)
    }
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap_or("").to_string()
}

/// How long to wait before retrying a sync the kernel refused.
const RETRY: Duration = Duration::from_secs(2);

async fn reconcile(
    config: ClusterNetworkConfig,
    view: Arc<RwLock<Snapshot>>,
    mut rx: mpsc::Receiver<(Collection, Update)>,
) {
    let mut state = State::default();
    let mut proxy = Some(Proxy::new(config.proxy.clone()));
    let mut applied_peers: Option<Vec<routes::Peer>> = None;
    let (mut services_dirty, mut nodes_dirty) = (false, false);
    loop {
        let wait = if services_dirty || nodes_dirty {
            RETRY
        } else {
            Duration::from_secs(3600)
        };
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(None) => return,
            Ok(Some((c, u))) => {
                let mut mark = |c: Collection| match c {
                    Collection::Nodes => nodes_dirty = true,
                    _ => services_dirty = true,
                };
                mark(c);
                state.apply(c, u);
                // Take everything already queued before touching the kernel.
                while let Ok((c, u)) = rx.try_recv() {
                    mark(c);
                    state.apply(c, u);
                }
            }
            Err(_) => {} // retry what failed
        }
        if services_dirty && state.services_known() {
            services_dirty = !sync_services(&state, &view, &mut proxy).await;
        }
        if nodes_dirty && state.synced.contains(&Collection::Nodes) {
            nodes_dirty = !sync_routes(&config, &state, &mut applied_peers).await;
        }
    }
}

/// Proxy rules and DNS from the current objects; false if it must be retried.
async fn sync_services(
    state: &State,
    view: &Arc<RwLock<Snapshot>>,
    proxy: &mut Option<Proxy>,
) -> bool {
    let snapshot = match state.services.snapshot() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("services not synced: {e}");
            return true; // bad input: wait for the next change
        }
    };
    if let Ok(mut v) = view.write() {
        *v = snapshot.clone();
    }
    let snapshot = proxied(snapshot);
    let Some(mut p) = proxy.take() else {
        return false;
    };
    let started = std::time::Instant::now();
    let (p, result) = match tokio::task::spawn_blocking(move || {
        let r = p.sync_if_changed(&snapshot);
        (p, r)
    })
    .await
    {
        Ok(done) => done,
        Err(e) => {
            tracing::error!("proxy sync task failed: {e}");
            return false;
        }
    };
    *proxy = Some(p);
    match result {
        Ok(true) => {
            tracing::info!(elapsed = ?started.elapsed(), "service rules synced");
            true
        }
        Ok(false) => true,
        Err(e) => {
            tracing::warn!("service rules not applied (retrying): {e}");
            false
        }
    }
}

/// What the proxy renders: every Service but the cluster DNS one
/// (`kube-system/kube-dns` on `CLUSTER_DNS_IP`), which this node answers
/// itself on its `lo`, with no endpoints to forward to.
fn proxied(mut snapshot: Snapshot) -> Snapshot {
    snapshot
        .services
        .retain(|s| s.cluster_ip != Some(CLUSTER_DNS_IP));
    snapshot
}

/// Routes to the other nodes' pod CIDRs; false if it must be retried.
async fn sync_routes(
    config: &ClusterNetworkConfig,
    state: &State,
    applied: &mut Option<Vec<routes::Peer>>,
) -> bool {
    let Some(own) = config.pod_cidr else {
        return true;
    };
    let peers = routes::peers(&state.nodes, &config.node_name);
    if applied.as_ref() == Some(&peers) {
        return true;
    }
    let (mode, ip, list) = (config.mode, config.node_ip, peers.clone());
    let result = tokio::task::spawn_blocking(move || routes::apply(mode, ip, &own, &list)).await;
    match result {
        Ok(Ok(())) => {
            tracing::info!(
                peers = peers.len(),
                ?mode,
                "routes to the other nodes' pods synced"
            );
            *applied = Some(peers);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!("routes not all applied (retrying): {e}");
            false
        }
        Err(e) => {
            tracing::error!("route sync task failed: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}})
    }

    #[test]
    fn the_cluster_dns_service_is_answered_locally_not_proxied() {
        let mut s = State::default();
        let mut dns = svc("kube-dns");
        dns["spec"]["clusterIP"] = json!("10.96.0.10");
        s.apply(Collection::Services, Update::Relisted(vec![svc("a"), dns]));
        s.apply(Collection::EndpointSlices, Update::Relisted(vec![]));
        let snap = s.services.snapshot().unwrap();
        assert_eq!(snap.services.len(), 2, "DNS still sees kube-dns");
        let names: Vec<String> = proxied(snap).services.into_iter().map(|x| x.name).collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn services_are_known_after_both_lists_and_follow_events() {
        let mut s = State::default();
        s.apply(Collection::Services, Update::Relisted(vec![svc("a")]));
        assert!(!s.services_known(), "EndpointSlices not listed yet");
        s.apply(Collection::EndpointSlices, Update::Relisted(vec![]));
        assert!(s.services_known());
        s.apply(Collection::Services, Update::Upsert(svc("b")));
        let names = |s: &State| -> Vec<String> {
            let snap = s.services.snapshot().unwrap();
            snap.services.iter().map(|x| x.name.clone()).collect()
        };
        assert_eq!(names(&s), ["a", "b"]);
        s.apply(
            Collection::Services,
            Update::Deleted {
                namespace: "default".into(),
                name: "a".into(),
            },
        );
        assert_eq!(names(&s), ["b"]);
        // A relist after a reconnect replaces everything.
        s.apply(Collection::Services, Update::Relisted(vec![svc("c")]));
        assert_eq!(names(&s), ["c"]);
    }

    #[test]
    fn nodes_follow_lists_and_deletions() {
        let mut s = State::default();
        let node = |n: &str| json!({"metadata": {"name": n}});
        s.apply(
            Collection::Nodes,
            Update::Relisted(vec![node("a"), node("b")]),
        );
        s.apply(
            Collection::Nodes,
            Update::Deleted {
                namespace: String::new(),
                name: "a".into(),
            },
        );
        assert_eq!(s.nodes.keys().collect::<Vec<_>>(), ["b"]);
        assert!(s.synced.contains(&Collection::Nodes));
    }
}
