//! One member of a replicated control plane, wired up: a single QUIC
//! endpoint (UDP 7000) carrying the store's member transport (`kc-store/1`)
//! and the node API (`kc-join/1`, `kc-node/1`) by ALPN, the Raft store
//! member on it, then the API server with the registry, scheduler and
//! controllers (`apiserver::single`, the loops act only while this member
//! holds their Lease) and the node API.
//!
//! `kcnode init` founds a cluster with member 1; `kcnode join
//! --control-plane` adds a member: it gets the CA (with its key) and a Raft
//! id over the join exchange, issues its own certificates, starts its store
//! to join, and adds itself through the leader (learner, catch-up, voter:
//! `store::membership`). What a member is (id, founding or joined, the
//! peers it first knew) is kept in `<data-dir>/member.json`, so a restart
//! resumes from its log instead of joining again.

use crate::apiserver::streams::relay::{self, Relay};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::nodeapi::{self, NodeApi, PortListener};
use crate::pki::{CertRequest, IssuedCert};
use crate::single::{self, Single, SingleConfig};
use crate::store::StoreHandle;
use crate::store::membership;
use crate::store::raft_node::{self, StoreConfig};
use crate::store::transport::{MemberTls, Transport};

/// How long a new member may take to catch up with the leader's log.
const CATCH_UP: Duration = Duration::from_secs(120);

/// What this host is in the store, kept in `<data-dir>/member.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFile {
    /// Its Raft id (1 for the founder).
    pub id: u64,
    /// Founded the cluster (`init`) rather than joined it.
    pub founder: bool,
    /// The members it knew when it started first (id -> `host:port`).
    pub peers: BTreeMap<u64, String>,
}

impl MemberFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("member.json")
    }

    pub fn load(data_dir: &Path) -> Option<MemberFile> {
        let bytes = std::fs::read(Self::path(data_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(data_dir);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// How to start a member.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// Data dir, API server address, kubeconfig, cluster name, advertised IPs.
    pub api: SingleConfig,
    /// The UDP port of the store and the node API.
    pub listen: SocketAddr,
    pub node_name: String,
    /// The address other members and nodes reach this one at.
    pub advertise: IpAddr,
}

impl MemberConfig {
    /// `advertise:port`: this member's address in the store and for nodes.
    pub fn address(&self) -> String {
        SocketAddr::new(self.advertise, self.listen.port()).to_string()
    }
}

/// A running member.
pub struct Member {
    pub id: u64,
    pub control_plane: Single,
    pub node_api: NodeApi,
    pub store: StoreHandle,
    /// This host's node certificate (also the member's TLS identity).
    pub node_cert: IssuedCert,
}

/// Starts a member. The first start of a founder (no `member.json`) founds
/// a cluster; a joined member's `member.json` and CA must be in place
/// (`kcnode join --control-plane` writes them).
pub async fn start(config: &MemberConfig) -> anyhow::Result<Member> {
    let data_dir = &config.api.data_dir;
    let me = match MemberFile::load(data_dir) {
        Some(m) => m,
        None => {
            let m = MemberFile {
                id: 1,
                founder: true,
                peers: BTreeMap::from([(1, config.address())]),
            };
            m.save(data_dir)?;
            m
        }
    };
    let ca = Arc::new(single::cluster_ca(data_dir, &config.api.cluster_name)?);
    let pki_dir = data_dir.join("pki");
    let mut ips = vec![config.advertise, IpAddr::from([127, 0, 0, 1])];
    ips.dedup();
    let request = CertRequest::member(
        &config.node_name,
        &[config.node_name.clone(), "localhost".into()],
        &ips,
    );
    let mut node_cert = single::load_or_issue(&pki_dir, "node", &ca, &request)?;
    if !crate::pki::pem_to_der(&node_cert.cert_pem, "node certificate")
        .and_then(|der| crate::pki::Identity::from_cert_der(&der))
        .is_ok_and(|id| id.is_member())
    {
        // Issued by an older kcnode, before member certificates had their
        // group: the store's peers now require it.
        tracing::info!("re-issuing this member's certificate with the control-plane group");
        node_cert = ca
            .issue(&request)
            .context("cannot re-issue the node certificate")?;
        node_cert.save(&pki_dir, "node")?;
    }
    let tls = MemberTls {
        ca_pem: ca.cert_pem().to_string(),
        cert: node_cert.clone(),
    };
    let endpoint = nodeapi::bind(config.listen, &ca, &node_cert, Some(&tls))
        .context("cannot open the control plane's UDP port")?;
    let transport = Transport::on_endpoint(me.id, endpoint.clone());
    let relay = Relay::new(
        endpoint.clone(),
        relay::client_config(&tls).map_err(|e| anyhow::anyhow!("relay TLS: {e}"))?,
    );
    let mut store_config = StoreConfig::new(me.id, data_dir.join("store"), me.peers.clone());
    store_config.join = !me.founder;
    let (store, store_thread) = raft_node::start(store_config, Arc::new(transport.clone()))
        .context("cannot start the store member")?;
    transport.attach(store.clone());
    let listener = PortListener::start(endpoint, Some(Arc::new(transport.clone())));

    if !me.founder {
        let others: Vec<String> = me
            .peers
            .iter()
            .filter(|(id, _)| **id != me.id)
            .map(|(_, a)| a.clone())
            .collect();
        let first_start = store.status().await.is_ok_and(|s| s.applied_index == 0);
        if first_start {
            tracing::info!(
                id = me.id,
                "adding this member to the store (learner, catch-up, voter)"
            );
            membership::add_member(&others, &tls, me.id, &config.address(), CATCH_UP)
                .await
                .context("cannot add this host to the control plane's store")?;
        } else {
            // A restart: the log names this member already; make sure a
            // join interrupted before the promotion is finished.
            let (tls, address, id) = (tls.clone(), config.address(), me.id);
            tokio::spawn(async move {
                loop {
                    match membership::add_member(&others, &tls, id, &address, CATCH_UP).await {
                        Ok(_) => break,
                        Err(e) => tracing::warn!("cannot confirm this member's place: {e}"),
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
        }
    }

    let control_plane = single::start_with_store(&config.api, store.clone(), store_thread).await?;
    let node_api = listener
        .open(
            ca.clone(),
            control_plane.api.state.rest.clone(),
            vec![config.address()],
        )
        .context("cannot start the node API")?;
    // Logs, exec and port-forward reach pods through the nodes' sessions.
    let _ = control_plane
        .api
        .state
        .tunnel
        .set(node_api.shared.nodes.clone());
    // ... also of nodes connected to another member, through that member.
    node_api.shared.nodes.set_relay(relay);
    keep_members_current(
        store.clone(),
        node_api.shared.clone(),
        &control_plane,
        data_dir,
        config,
    );
    reconcile_cluster_services(
        store.clone(),
        me.id,
        control_plane.kv.clone(),
        control_plane.api.local_addr.port(),
    );
    Ok(Member {
        id: me.id,
        control_plane,
        node_api,
        store,
        node_cert,
    })
}

/// Keeps the node API's member list (join answers, `Members` requests) and
/// the registry's peers equal to the store's membership.
fn keep_members_current(
    store: StoreHandle,
    shared: Arc<nodeapi::Shared>,
    control_plane: &Single,
    data_dir: &Path,
    config: &MemberConfig,
) {
    let registry = control_plane.api.state.registry.clone();
    let (data_dir, me, api_port) = (
        data_dir.to_path_buf(),
        config.address(),
        control_plane.api.local_addr.port(),
    );
    tokio::spawn(async move {
        let mut known = BTreeMap::new();
        loop {
            if let Ok(status) = store.status().await
                && !status.members.is_empty()
                && status.members != known
            {
                known = status.members.clone();
                shared.set_store_members(status.members);
                if let Some(relay) = shared.nodes.relay() {
                    relay.set_peers(known.values().filter(|a| **a != me).cloned().collect());
                }
                let peers = registry_peers(&known, &me, api_port);
                if let Some(registry) = &registry
                    && let Err(e) = single::registry_peers_tls(&data_dir).map(|tls| {
                        registry.set_peers(crate::registry::peers::Peers {
                            addresses: peers,
                            tls: Arc::new(tls),
                        })
                    })
                {
                    tracing::warn!("cannot set the registry's peers: {e}");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// How often the leader reconciles the cluster's own Services.
const SERVICES_EVERY: Duration = Duration::from_secs(2);
/// How long a member's API server may take to accept a connection before
/// it counts as dead for the `kubernetes` Service's endpoints.
const API_PROBE: Duration = Duration::from_secs(1);

/// On the store's leader only: keeps `default/kubernetes` (its endpoints:
/// the members whose API server accepts connections), `kube-system/kube-dns`
/// and removes the control-plane mirror pods of former members
/// (`controllers::apiserver_endpoints`).
fn reconcile_cluster_services(
    store: StoreHandle,
    me: u64,
    kv: Arc<dyn crate::apiserver::Kv>,
    api_port: u16,
) {
    use crate::controllers::apiserver_endpoints::{self, ControlPlaneView};
    let client = kc_apiserver::local::client(kv, "kube-apiserver");
    tokio::spawn(async move {
        let mut last_error = String::new();
        loop {
            tokio::time::sleep(SERVICES_EVERY).await;
            let Ok(status) = store.status().await else {
                continue;
            };
            if status.leader != me || status.members.is_empty() {
                continue;
            }
            let members: BTreeMap<u64, IpAddr> = status
                .members
                .iter()
                .filter_map(|(id, a)| Some((*id, a.parse::<SocketAddr>().ok()?.ip())))
                .collect();
            let probes = members.iter().map(|(id, ip)| async move {
                let live = *id == me
                    || tokio::time::timeout(
                        API_PROBE,
                        tokio::net::TcpStream::connect(SocketAddr::new(*ip, api_port)),
                    )
                    .await
                    .is_ok_and(|c| c.is_ok());
                live.then_some(*ip)
            });
            let live = futures::future::join_all(probes)
                .await
                .into_iter()
                .flatten()
                .collect();
            let view = ControlPlaneView {
                members: members.values().copied().collect(),
                live,
                api_port,
            };
            match apiserver_endpoints::reconcile(&client, &view).await {
                Ok(()) => last_error.clear(),
                Err(e) if e.message != last_error => {
                    tracing::warn!("cannot reconcile the cluster's own Services: {}", e.message);
                    last_error = e.message;
                }
                Err(_) => {}
            }
        }
    });
}

/// The other members' API servers (`host:port`), for the registry's
/// pull-through: each member's host with this member's API port.
pub fn registry_peers(members: &BTreeMap<u64, String>, me: &str, api_port: u16) -> Vec<String> {
    members
        .values()
        .filter(|a| a.as_str() != me)
        .filter_map(|a| a.parse::<SocketAddr>().ok())
        .map(|a| SocketAddr::new(a.ip(), api_port).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_peers_are_the_other_members_api_servers() {
        let members = BTreeMap::from([
            (1, "10.0.0.1:7000".to_string()),
            (7, "10.0.0.2:7000".to_string()),
        ]);
        assert_eq!(
            registry_peers(&members, "10.0.0.1:7000", 6443),
            vec!["10.0.0.2:6443".to_string()]
        );
    }

    #[test]
    fn the_member_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let m = MemberFile {
            id: 42,
            founder: false,
            peers: BTreeMap::from([(1, "10.0.0.1:7000".to_string())]),
        };
        m.save(dir.path()).unwrap();
        assert_eq!(MemberFile::load(dir.path()), Some(m));
    }
}
