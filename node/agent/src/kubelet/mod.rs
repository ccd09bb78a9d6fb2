//! The kubelet: the node agent's pod half. It is given the desired pods of
//! this node (`SyncPod`, `DeletePod`) and makes them real through the
//! container `Runtime` actor: one sandbox per pod (shared network, IPC and
//! UTS namespaces), init containers in order, then the app containers,
//! restarted by the pod's restartPolicy with CrashLoopBackOff, probed,
//! given env and volumes, and stopped gracefully. What it observes comes
//! back as `KubeletReport`s (pod statuses and events) on a channel.
//!
//! Shape: a dispatcher task owns one `pod_worker` task per pod (keyed by
//! uid); every worker is level-triggered (each tick compares desired with
//! observed state and acts idempotently) and persists its bookkeeping
//! (`record`) so that a restarted kcnode adopts running containers instead
//! of restarting them. The status is computed by the pure `status` module.
//!
//! Seams for other parts: `ConfigSource` (ConfigMaps/Secrets, implemented
//! by the cluster session or the static manifests), `ImageSource` (pulling
//! missing images; the registry work plugs in here), and
//! `KubeletHandle::pod_containers` (namespace/pod -> sandbox and container
//! ids, for logs/exec/port-forward).
//!
//! Wiring (what `kcnode kubelet --manifests` does in `cli/kubelet.rs`):
//!
//! ```text
//! let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
//! let kubelet = Kubelet::start(KubeletConfig { node_name, data_dir, runtime,
//!     host_ip, config: Arc::new(my_config_source), images: Arc::new(NoRegistry),
//!     network: Some(Arc::new(PodNetwork::new(pod_cidr, &data_dir))) }, tx);
//! kubelet.sync_pod(pod);                 // each pod bound to this node (add/update)
//! kubelet.reconcile(all_uids);           // after a full list: others are deleted
//! kubelet.delete_pod(&uid, Some(30));    // API deletion with its grace period
//! while let Some(r) = reports.recv().await { /* PodStatus / Event / PodTerminated */ }
//! ```

// The interface (DeletePod, the lookup, PodTerminated's uid) serves the
// cluster session and the streams, which are built on other branches.
#![allow(dead_code)]

pub mod backoff;
pub mod container_spec;
pub mod env;
pub mod etc_files;
pub mod events;
pub mod pod_worker;
pub mod probes;
pub mod quantity;
pub mod record;
pub mod registry_images;
pub mod status;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use actix::Addr;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, PodStatus, Secret};
use kc_runtime::container::actor::Runtime;
use tokio::sync::mpsc;

/// What the kubelet needs to run.
#[derive(Clone)]
pub struct KubeletConfig {
    /// This node's name (`spec.nodeName`, the events' source host).
    pub node_name: String,
    /// The node's data dir; the kubelet keeps `<data_dir>/kubelet/`.
    pub data_dir: PathBuf,
    /// The container runtime of this node.
    pub runtime: Addr<Runtime>,
    /// The node's address, reported as `status.hostIP`.
    pub host_ip: String,
    /// Referenced ConfigMaps and Secrets (env, envFrom, volumes).
    pub config: Arc<dyn ConfigSource>,
    /// Pulls images that are not in the local store.
    pub images: Arc<dyn ImageSource>,
    /// The pod network (addresses from the node's pod CIDR on the `kc0`
    /// bridge); None: pods keep a private network with loopback only and
    /// report no podIP.
    pub network: Option<Arc<crate::network::PodNetwork>>,
    /// The cluster DNS server pods with dnsPolicy ClusterFirst are given
    /// (None: they get the node's resolv.conf).
    pub cluster_dns: Option<std::net::IpAddr>,
}

/// Where the kubelet reads the ConfigMaps and Secrets its pods reference.
/// `Ok(None)` means "does not exist" (the container waits with
/// `CreateContainerConfigError`); `Err` is a failure to ask (retried).
pub trait ConfigSource: Send + Sync {
    fn get_configmap<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>>;
    fn get_secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>>;
}

/// Pulls an image into the node's image store (the `registry` part plugs in
/// here). `Err` is the message shown with reason `ErrImagePull`.
pub trait ImageSource: Send + Sync {
    fn pull<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// An `ImageSource` for nodes without a registry: every pull fails, so only
/// images already in the local store run.
pub struct NoRegistry;

impl ImageSource for NoRegistry {
    fn pull<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let msg = format!(
            "image {reference:?} is not in this node's image store and no registry is configured; \
             import it with `kcnode image load` or build it on the node"
        );
        Box::pin(async move { Err(msg) })
    }
}

/// What the kubelet tells the cluster.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Reports are few; unboxed is simpler to match.
pub enum KubeletReport {
    /// The pod's current status (sent when it changes).
    PodStatus {
        namespace: String,
        name: String,
        uid: String,
        status: PodStatus,
    },
    /// A notable step (Pulled, Created, Started, Killing, BackOff,
    /// Unhealthy, Failed, ...), ready to be stored as a core/v1 Event.
    Event(Event),
    /// The pod was deleted (`DeletePod`) and everything of it is gone from
    /// the node: the API object can now be removed.
    PodTerminated {
        namespace: String,
        name: String,
        uid: String,
    },
}

/// The runtime objects of one pod, for logs, exec and port-forward.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodContainers {
    pub uid: String,
    pub sandbox_id: Option<String>,
    /// The sandbox's network namespace (`/proc/<holder>/ns/net`).
    pub netns: Option<PathBuf>,
    /// Container name (init and app) -> current runtime container id.
    pub containers: BTreeMap<String, String>,
    /// Container name -> the previous run's container id (`logs --previous`).
    pub previous: BTreeMap<String, String>,
}

type Lookup = Arc<RwLock<HashMap<(String, String), PodContainers>>>;

/// Messages to the kubelet.
#[derive(Debug)]
pub enum Message {
    /// Desired state of a pod (add or update): the full object.
    SyncPod(Box<Pod>),
    /// The API deleted the pod: stop with `grace` seconds (default: the
    /// pod's terminationGracePeriodSeconds), remove it, report. `pod` names
    /// the API object when it still exists (a graceful deletion): a pod the
    /// node never started is then reported terminated at once.
    DeletePod {
        uid: String,
        grace: Option<i64>,
        pod: Option<(String, String)>,
    },
    /// The complete set of pods this node should run: any other pod the
    /// kubelet knows (running or remembered from before a restart) is
    /// deleted.
    Reconcile { uids: Vec<String> },
}

/// The handle to a running kubelet; cheap to clone.
#[derive(Clone)]
pub struct KubeletHandle {
    tx: mpsc::UnboundedSender<Message>,
    lookup: Lookup,
}

impl KubeletHandle {
    pub fn sync_pod(&self, pod: Pod) {
        let _ = self.tx.send(Message::SyncPod(Box::new(pod)));
    }
    /// The pod's API object is gone: stop and remove what runs of it.
    pub fn delete_pod(&self, uid: &str, grace: Option<i64>) {
        let _ = self.tx.send(Message::DeletePod {
            uid: uid.to_string(),
            grace,
            pod: None,
        });
    }
    /// The pod `namespace/name` is being deleted gracefully (its object
    /// has a deletionTimestamp): stop it, then report it terminated so the
    /// object is removed, also when this node never started it.
    pub fn terminate_pod(&self, namespace: &str, name: &str, uid: &str, grace: Option<i64>) {
        let _ = self.tx.send(Message::DeletePod {
            uid: uid.to_string(),
            grace,
            pod: Some((namespace.to_string(), name.to_string())),
        });
    }
    pub fn reconcile(&self, uids: Vec<String>) {
        let _ = self.tx.send(Message::Reconcile { uids });
    }
    /// The sandbox and containers of a pod, if the kubelet runs it.
    pub fn pod_containers(&self, namespace: &str, name: &str) -> Option<PodContainers> {
        self.lookup
            .read()
            .ok()?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    /// Every pod the kubelet runs, keyed by (namespace, name) (the usage
    /// sampler reads their containers' cgroups).
    pub fn all_pod_containers(&self) -> Vec<((String, String), PodContainers)> {
        self.lookup
            .read()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// The kubelet's dispatcher.
pub struct Kubelet;

impl Kubelet {
    /// Starts the kubelet on the current tokio runtime (the runtime actor's
    /// `Addr` may live on another thread). Reports go to `reports`.
    pub fn start(
        config: KubeletConfig,
        reports: mpsc::UnboundedSender<KubeletReport>,
    ) -> KubeletHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let lookup: Lookup = Arc::default();
        let ctx = pod_worker::WorkerContext {
            config: Arc::new(config),
            reports,
            lookup: lookup.clone(),
        };
        tokio::spawn(dispatch(ctx, rx));
        KubeletHandle { tx, lookup }
    }
}

/// Routes messages to per-pod workers; starts workers for new pods
/// (adopting a persisted record if there is one) and forgets finished ones.
/// A pod synced again while its worker is still tearing it down (a static
/// manifest removed and put back) starts anew once the teardown is over.
async fn dispatch(ctx: pod_worker::WorkerContext, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut workers: HashMap<String, pod_worker::WorkerHandle> = HashMap::new();
    let mut pending: HashMap<String, Pod> = HashMap::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => return,
            },
            _ = tick.tick() => None,
        };
        workers.retain(|_, w| !w.is_finished());
        let ready: Vec<String> = pending
            .keys()
            .filter(|u| !workers.contains_key(*u))
            .cloned()
            .collect();
        for uid in ready {
            if let Some(pod) = pending.remove(&uid) {
                let rec = record::load(&ctx.config.data_dir, &uid);
                workers.insert(uid, pod_worker::spawn(ctx.clone(), pod, rec));
            }
        }
        let Some(msg) = msg else { continue };
        match msg {
            Message::SyncPod(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if uid.is_empty() {
                    tracing::warn!("pod {:?} has no metadata.uid; ignored", pod.metadata.name);
                    continue;
                }
                match workers.get(&uid) {
                    Some(w) if w.is_deleting() => {
                        pending.insert(uid, *pod);
                    }
                    Some(w) => w.update(*pod),
                    None => {
                        let rec = record::load(&ctx.config.data_dir, &uid);
                        workers.insert(uid, pod_worker::spawn(ctx.clone(), *pod, rec));
                    }
                }
            }
            Message::DeletePod { uid, grace, pod } => {
                pending.remove(&uid);
                match workers.get_mut(&uid) {
                    Some(w) => w.delete(grace),
                    None => match record::load(&ctx.config.data_dir, &uid) {
                        Some(rec) => {
                            let w = pod_worker::spawn_orphan_cleanup(ctx.clone(), rec, grace);
                            workers.insert(uid, w);
                        }
                        // Bound here but never started (it arrived already
                        // terminating, e.g. after this kcnode restarted):
                        // nothing to stop, so the object can go now.
                        None => {
                            if let Some((namespace, name)) = pod {
                                let _ = ctx.reports.send(KubeletReport::PodTerminated {
                                    namespace,
                                    name,
                                    uid,
                                });
                            }
                        }
                    },
                }
            }
            Message::Reconcile { uids } => {
                pending.retain(|u, _| uids.contains(u));
                for (uid, w) in workers.iter_mut() {
                    if !uids.contains(uid) && !w.is_deleting() {
                        w.delete(None);
                    }
                }
                for rec in record::load_all(&ctx.config.data_dir) {
                    if !uids.contains(&rec.uid) && !workers.contains_key(&rec.uid) {
                        let uid = rec.uid.clone();
                        let w = pod_worker::spawn_orphan_cleanup(ctx.clone(), rec, Some(0));
                        workers.insert(uid, w);
                    }
                }
            }
        }
    }
}

/// The kubelet answers the stream server's question "which container is
/// (namespace, pod, container) on this node?" from its live pod records.
impl crate::streams::PodLookup for KubeletHandle {
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> crate::streams::LookupFuture<'a> {
        use crate::streams::{LookupError, PodTarget};
        let found = self.pod_containers(namespace, pod);
        Box::pin(async move {
            let pc = found.ok_or_else(|| LookupError {
                code: 404,
                message: format!("pod {namespace}/{pod} is not running on this node"),
            })?;
            // Port-forward names no container: any will do, the pod's
            // network namespace is what matters.
            let name = if container.is_empty() {
                pc.containers.keys().next().cloned().unwrap_or_default()
            } else {
                container.to_string()
            };
            let container_id = pc.containers.get(&name).cloned();
            let previous_container_id = pc.previous.get(&name).cloned();
            match (container_id, container.is_empty()) {
                (Some(container_id), _) => Ok(PodTarget {
                    container_id,
                    previous_container_id,
                    netns: pc.netns,
                }),
                (None, true) if pc.netns.is_some() => Ok(PodTarget {
                    container_id: String::new(),
                    previous_container_id: None,
                    netns: pc.netns,
                }),
                _ => Err(LookupError {
                    code: 404,
                    message: format!(
                        "container {name:?} of pod {namespace}/{pod} has not started on this node"
                    ),
                }),
            }
        })
    }
}
