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

// The interface (DeletePod, the lookup, PodTerminated's uid) serves the
// cluster session and the streams, which are built on other branches.
#![allow(dead_code)]

pub mod backoff;
pub mod container_spec;
pub mod env;
pub mod events;
pub mod pod_worker;
pub mod probes;
pub mod quantity;
pub mod record;
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
}

type Lookup = Arc<RwLock<HashMap<(String, String), PodContainers>>>;

/// Messages to the kubelet.
#[derive(Debug)]
pub enum Message {
    /// Desired state of a pod (add or update): the full object.
    SyncPod(Box<Pod>),
    /// The API deleted the pod: stop with `grace` seconds (default: the
    /// pod's terminationGracePeriodSeconds), remove it, report.
    DeletePod { uid: String, grace: Option<i64> },
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
    pub fn delete_pod(&self, uid: &str, grace: Option<i64>) {
        let _ = self.tx.send(Message::DeletePod {
            uid: uid.to_string(),
            grace,
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
async fn dispatch(ctx: pod_worker::WorkerContext, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut workers: HashMap<String, pod_worker::WorkerHandle> = HashMap::new();
    while let Some(msg) = rx.recv().await {
        workers.retain(|_, w| !w.is_finished());
        match msg {
            Message::SyncPod(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if uid.is_empty() {
                    tracing::warn!("pod {:?} has no metadata.uid; ignored", pod.metadata.name);
                    continue;
                }
                match workers.get(&uid) {
                    Some(w) => w.update(*pod),
                    None => {
                        let rec = record::load(&ctx.config.data_dir, &uid);
                        workers.insert(uid, pod_worker::spawn(ctx.clone(), *pod, rec));
                    }
                }
            }
            Message::DeletePod { uid, grace } => match workers.get(&uid) {
                Some(w) => w.delete(grace),
                None => {
                    if let Some(rec) = record::load(&ctx.config.data_dir, &uid) {
                        pod_worker::spawn_orphan_cleanup(ctx.clone(), rec, grace);
                    }
                }
            },
            Message::Reconcile { uids } => {
                for (uid, w) in &workers {
                    if !uids.contains(uid) {
                        w.delete(None);
                    }
                }
                for rec in record::load_all(&ctx.config.data_dir) {
                    if !uids.contains(&rec.uid) && !workers.contains_key(&rec.uid) {
                        pod_worker::spawn_orphan_cleanup(ctx.clone(), rec, Some(0));
                    }
                }
            }
        }
    }
}
