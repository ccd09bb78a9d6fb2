//! The node process: the container runtime, the kubelet and the session
//! with the control plane, wired together. `kcnode init` runs it beside the
//! control plane in the same process, `kcnode join` on its own.
//!
//! The session's pod events become kubelet messages (sync, delete,
//! reconcile after each full list), and the kubelet's reports go back up
//! the session. Mirror pods (this host's own parts) are shown, not run.
//! The runtime actor lives on an actix System thread of its own; the rest
//! runs on the tokio runtime (its `Addr` crosses threads).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::node_client::NodeClient;
use actix::Actor;
use anyhow::Context;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kc_protocol::node_api::{NodeRequest, NodeResponse, PodEvent};
use kc_runtime::container::Containers;
use kc_runtime::container::actor::Runtime;
use kc_runtime::image::distribution::RegistryConfig;
use kc_runtime::image::store::ImageStore;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::host::{HostFacts, NodeRole, node_object};
use crate::image_gc::ImageGc;
use crate::kubelet::registry_images::RegistryImages;
use crate::kubelet::{ConfigSource, Kubelet, KubeletConfig, KubeletHandle, KubeletReport};
use crate::mirror::{MIRROR_ANNOTATION, Part, mirror_pod};
use crate::session::{self, Link, Publisher, Report, SessionConfig, SessionEvent};
use crate::streams::StreamServer;

pub struct AgentConfig {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub role: NodeRole,
    /// The host's parts shown as mirror pods in kube-system.
    pub parts: Vec<Part>,
    /// The address the Node reports first (the advertised one).
    pub advertise: Option<IpAddr>,
    pub session: SessionConfig,
    /// How pods reach the other nodes' pods (`--pod-network`).
    pub pod_network: crate::network::routes::Mode,
    /// Image garbage collection and disk pressure (`image_gc.rs`).
    pub image_gc: crate::image_gc::ImageGcArgs,
    /// Registries (`host:port`) pulled from over plain HTTP.
    pub insecure_registries: Vec<String>,
}

struct HostPublisher {
    name: String,
    facts: HostFacts,
    role: NodeRole,
    parts: Vec<Part>,
    started: String,
    pid: u32,
    gc: Arc<ImageGc>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Publisher for HostPublisher {
    fn node(&self) -> Value {
        let mut node = node_object(&self.name, &self.facts, &self.role, &now());
        crate::image_gc::set_disk_pressure(&mut node, self.gc.disk_pressure().as_deref());
        node
    }

    fn mirror_pods(&self) -> Vec<Value> {
        let ip = self.facts.primary_ip().to_string();
        self.parts
            .iter()
            .map(|p| mirror_pod(p, &self.name, &ip, &self.started, self.pid))
            .collect()
    }
}

/// The file holding the PID of the running agent (for `kcnode leave`).
pub fn pid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("kcnode.pid")
}

/// ConfigMaps and Secrets read through the session's current connection.
struct SessionObjects(Link);

impl SessionObjects {
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<T>, String> {
        let client = self
            .0
            .read()
            .ok()
            .and_then(|l| l.clone())
            .ok_or("not connected to the control plane")?;
        let req = NodeRequest::Get {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        match client.call(&req).await.map_err(|e| e.to_string())? {
            NodeResponse::Object(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{resource} {namespace}/{name}: {e}")),
            NodeResponse::Object(None) => Ok(None),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }
}

impl ConfigSource for SessionObjects {
    fn get_configmap<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>> {
        Box::pin(self.get("configmaps", namespace, name))
    }

    fn get_secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(self.get("secrets", namespace, name))
    }
}

/// The node's pod network, on the pod CIDR the control plane assigned this
/// node: learnt by registering the Node once before the kubelet starts (the
/// session registers again, idempotently), and kept in
/// `<data-dir>/network/pod-cidr` so a restart without a reachable control
/// plane keeps the same addresses. `None` (pods get no IP) if neither works.
async fn pod_network(
    config: &AgentConfig,
    publisher: &dyn Publisher,
) -> Option<Arc<crate::network::PodNetwork>> {
    let saved = config.data_dir.join("network").join("pod-cidr");
    let mut cidr = None;
    for member in &config.session.members {
        let attempt = async {
            let client =
                NodeClient::connect(member, &config.session.ca_pem, &config.session.cert).await?;
            let body = serde_json::to_vec(&publisher.node()).unwrap_or_default();
            client.call(&NodeRequest::Register { node: body }).await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), attempt).await {
            Ok(Ok(NodeResponse::Node(node))) => {
                let node: Value = serde_json::from_slice(&node).unwrap_or_default();
                cidr = node["spec"]["podCIDR"].as_str().map(str::to_string);
                break;
            }
            Ok(Ok(other)) => tracing::warn!(%member, "registration answered {other:?}"),
            Ok(Err(e)) => tracing::warn!(%member, "cannot register to learn the pod CIDR: {e}"),
            Err(_) => tracing::warn!(%member, "registration timed out"),
        }
    }
    match &cidr {
        Some(c) => {
            let _ = std::fs::create_dir_all(saved.parent()?);
            let _ = std::fs::write(&saved, c);
        }
        None => {
            cidr = std::fs::read_to_string(&saved)
                .ok()
                .map(|c| c.trim().to_string())
        }
    }
    let Some(cidr) = cidr else {
        tracing::warn!("no pod CIDR known: pods will get no pod IP");
        return None;
    };
    match cidr.parse() {
        Ok(cidr) => Some(Arc::new(crate::network::PodNetwork::new(
            cidr,
            &config.data_dir,
        ))),
        Err(e) => {
            tracing::warn!("pod CIDR {cidr:?} is not usable: {e}");
            None
        }
    }
}

/// The registry (API server, port 6443) of the control-plane member whose
/// node API is at `member` (`host:7000`).
fn member_registry(member: &str) -> String {
    let host = match member.rsplit_once(':') {
        Some((host, _)) => host,
        None => member,
    };
    format!("{host}:6443")
}

/// The kubelet's image source: the cluster registry, served by the API
/// server (port 6443) of every control-plane member — the one the session
/// is connected to first, then the others it knows (the list the session
/// keeps current in `members_file`) — reached with this node's certificate
/// (nodes may pull, not push).
fn cluster_registry(
    config: &AgentConfig,
    link: &Link,
    gc: Arc<ImageGc>,
) -> anyhow::Result<RegistryImages> {
    let member = config
        .session
        .members
        .first()
        .context("no control-plane member known")?;
    let registry = RegistryConfig {
        host: member_registry(member),
        ca_pem: Some(config.session.ca_pem.clone().into_bytes()),
        client_cert: Some((
            config.session.cert.cert_pem.clone().into_bytes(),
            config.session.cert.key_pem.clone().into_bytes(),
        )),
        ..RegistryConfig::default()
    };
    let store = ImageStore::open(&config.data_dir).context("cannot open the node's image store")?;
    let (link, first, file) = (
        link.clone(),
        config.session.members.clone(),
        config.session.members_file.clone(),
    );
    let mirrors = move || {
        let connected = link
            .read()
            .ok()
            .and_then(|l| l.as_ref().map(|c| c.address.clone()));
        let mut members: Vec<String> = connected.into_iter().collect();
        let saved = session::load_members(&file);
        for m in if saved.is_empty() { &first } else { &saved } {
            if !members.contains(m) {
                members.push(m.clone());
            }
        }
        members.iter().map(|m| member_registry(m)).collect()
    };
    Ok(RegistryImages::new(store, registry)
        .with_mirrors(Box::new(mirrors))
        .with_insecure(config.insecure_registries.clone())
        .with_gc(gc))
}

/// Starts the runtime actor on an actix System thread of its own.
fn start_runtime(data_dir: &Path, node: &str) -> anyhow::Result<actix::Addr<Runtime>> {
    let shim = std::env::current_exe().context("cannot find the kcnode binary")?;
    let containers = Containers::new(data_dir, node);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kc-runtime".into())
        .spawn(move || {
            let sys = actix::System::new();
            sys.block_on(async move {
                let _ = tx.send(Runtime::new(containers, shim).start());
            });
            let _ = sys.run();
        })
        .context("cannot start the runtime thread")?;
    rx.recv().context("the runtime actor did not start")
}

/// Starts the routes to the other nodes' pods, the service proxy and the
/// cluster DNS (`cluster_network`) beside the kubelet; answers the DNS
/// address pods get in their resolv.conf (None when there is no pod
/// network: such pods keep the node's resolv.conf).
fn start_cluster_network(
    config: &AgentConfig,
    node_ip: IpAddr,
    network: Option<&crate::network::PodNetwork>,
    link: &Link,
) -> Option<IpAddr> {
    let network = network?;
    let IpAddr::V4(node_ip) = node_ip else {
        tracing::warn!("node address {node_ip} is not IPv4: no cluster network");
        return None;
    };
    crate::cluster_network::start(
        crate::cluster_network::ClusterNetworkConfig {
            node_name: config.node_name.clone(),
            node_ip,
            pod_cidr: Some(network.cidr),
            mode: config.pod_network,
            proxy: crate::proxy::ProxyConfig::default(),
        },
        link.clone(),
    );
    Some(crate::cluster_network::CLUSTER_DNS_IP.into())
}

/// Runs the node side until the session ends (it does not on its own).
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let link: Link = Arc::default();
    let (reports_tx, reports_rx) = mpsc::channel(1024);
    let gc = Arc::new(ImageGc::new(
        &config.node_name,
        &config.data_dir,
        &config.image_gc,
        reports_tx.clone(),
    )?);
    let images = Arc::new(cluster_registry(&config, &link, gc.clone())?);
    let mut facts = HostFacts::read(&config.data_dir);
    if let Some(ip) = config.advertise {
        facts.addresses.retain(|a| *a != ip);
        facts.addresses.insert(0, ip);
    }
    let node_ip = facts.primary_ip();
    let host_ip = node_ip.to_string();
    let pid = std::process::id();
    std::fs::write(pid_file(&config.data_dir), format!("{pid}\n")).ok();
    let publisher = Arc::new(HostPublisher {
        name: config.node_name.clone(),
        facts,
        role: config.role.clone(),
        parts: config.parts.clone(),
        started: now(),
        pid,
        gc: gc.clone(),
    });
    gc.start();
    let runtime = start_runtime(&config.data_dir, &config.node_name)?;
    let (kubelet_tx, mut kubelet_rx) = mpsc::unbounded_channel();
    let network = pod_network(&config, &*publisher).await;
    let cluster_dns = start_cluster_network(&config, node_ip, network.as_deref(), &link);
    let kubelet = Kubelet::start(
        KubeletConfig {
            node_name: config.node_name.clone(),
            data_dir: config.data_dir.clone(),
            runtime,
            host_ip,
            config: Arc::new(SessionObjects(link.clone())),
            images,
            network,
            cluster_dns,
        },
        kubelet_tx,
    );
    let (events_tx, mut events_rx) = mpsc::channel::<SessionEvent>(256);
    let kubelet_lookup = kubelet.clone();
    tokio::spawn(crate::stats::run(
        config.node_name.clone(),
        kubelet.clone(),
        link.clone(),
        config.parts.iter().map(|p| p.component).collect(),
    ));
    tokio::spawn(async move {
        let mut feeder = Feeder::new(kubelet);
        while let Some(ev) = events_rx.recv().await {
            feeder.handle(ev);
        }
    });
    tokio::spawn(async move {
        while let Some(r) = kubelet_rx.recv().await {
            if reports_tx.send(to_report(r)).await.is_err() {
                return;
            }
        }
    });
    let streams = Arc::new(StreamServer {
        data_dir: config.data_dir.clone(),
        node_name: config.node_name.clone(),
        kcnode: std::env::current_exe().context("cannot find the kcnode binary")?,
        lookup: Arc::new(kubelet_lookup),
    });
    session::run(
        config.session,
        publisher,
        link,
        events_tx,
        reports_rx,
        streams,
    )
    .await;
    Ok(())
}

fn to_report(r: KubeletReport) -> Report {
    match r {
        KubeletReport::PodStatus {
            namespace,
            name,
            status,
            ..
        } => Report::PodStatus {
            namespace,
            name,
            status: serde_json::to_value(status).unwrap_or_default(),
        },
        KubeletReport::Event(event) => {
            Report::Event(serde_json::to_value(event).unwrap_or_default())
        }
        KubeletReport::PodTerminated {
            namespace,
            name,
            uid,
        } => Report::PodTerminated {
            namespace,
            name,
            uid,
        },
    }
}

/// Turns the session's pod events into kubelet messages.
struct Feeder {
    kubelet: KubeletHandle,
    /// namespace/name -> uid of the pods the kubelet was given.
    known: HashMap<(String, String), String>,
    /// The uids of the list being received (after `Watching`).
    listing: Option<Vec<String>>,
}

impl Feeder {
    fn new(kubelet: KubeletHandle) -> Self {
        Self {
            kubelet,
            known: HashMap::new(),
            listing: None,
        }
    }

    fn handle(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::Watching => self.listing = Some(Vec::new()),
            SessionEvent::Pod(PodEvent::Synced) => {
                let uids = self.listing.take().unwrap_or_default();
                self.known.retain(|_, uid| uids.contains(uid));
                self.kubelet.reconcile(uids);
            }
            SessionEvent::Pod(PodEvent::Upsert(bytes)) => {
                let pod: Pod = match serde_json::from_slice(&bytes) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("undecodable pod from the control plane: {e}");
                        return;
                    }
                };
                let meta = &pod.metadata;
                let is_mirror = meta
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
                if is_mirror {
                    return; // shown for this host's parts, not run
                }
                let key = (
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                );
                let uid = meta.uid.clone().unwrap_or_default();
                if let Some(listing) = &mut self.listing {
                    listing.push(uid.clone());
                }
                self.known.insert(key.clone(), uid.clone());
                if meta.deletion_timestamp.is_some() {
                    self.kubelet.terminate_pod(
                        &key.0,
                        &key.1,
                        &uid,
                        meta.deletion_grace_period_seconds,
                    );
                } else {
                    self.kubelet.sync_pod(pod);
                }
            }
            SessionEvent::Pod(PodEvent::Deleted { namespace, name }) => {
                if let Some(uid) = self.known.remove(&(namespace, name)) {
                    self.kubelet.delete_pod(&uid, Some(0));
                }
            }
        }
    }
}
