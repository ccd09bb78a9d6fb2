//! An in-process control plane (one-member Raft store on disk + the API's
//! `Rest` layer, bootstrapped like `kcnode serve-api`) for scheduler and
//! controller tests, with hollow nodes from `kc_member::hollow`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kc_member::apiserver::{self, Kv};
use kc_member::client::{Client, resource};
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::store::raft_node::{self, NoPeers, StoreConfig};
use serde_json::Value;

/// A running store + API layer.
pub struct ControlPlane {
    pub kv: Arc<dyn Kv>,
    pub client: Client,
    _dir: tempfile::TempDir,
}

impl ControlPlane {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let peers = BTreeMap::from([(1u64, "127.0.0.1:0".to_string())]);
        let (store, _thread) = raft_node::start(
            StoreConfig::new(1, dir.path().join("store"), peers),
            Arc::new(NoPeers),
        )
        .expect("the store starts");
        let kv: Arc<dyn Kv> = Arc::new(store);
        let client = apiserver::local::client(kv.clone(), "test");
        apiserver::bootstrap(&apiserver::rest::Rest::new(apiserver::Storage::new(
            kv.clone(),
        )))
        .await
        .expect("the system namespaces are created");
        Self {
            kv,
            client,
            _dir: dir,
        }
    }

    pub async fn pod(&self, ns: &str, name: &str) -> Value {
        self.client
            .get(resource("", "v1", "pods"), ns, name)
            .await
            .unwrap_or_else(|e| panic!("pod {ns}/{name}: {e}"))
    }

    pub async fn pods(&self, ns: &str) -> Vec<Value> {
        self.client
            .list(resource("", "v1", "pods"), Some(ns))
            .await
            .expect("pods list")
            .0
    }
}

/// Polls `check` every 50 ms until it returns Some, or panics after
/// `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pods that are not being deleted.
pub fn live(pods: &[Value]) -> Vec<&Value> {
    pods.iter()
        .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
        .collect()
}

/// The image of a pod's first container ("" when it has none).
pub fn image(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or("")
}

impl ControlPlane {
    /// Waits until exactly `n` live pods in `default` all run `img` and
    /// pass `also` (e.g. readiness).
    pub async fn wait_pods_of_image(&self, n: usize, img: &str, also: fn(&Value) -> bool) {
        eventually(
            Duration::from_secs(30),
            &format!("{n} pods of {img}"),
            || async {
                let pods = self.pods("default").await;
                let live = live(&pods);
                (live.len() == n && live.iter().all(|p| image(p) == img && also(p))).then_some(())
            },
        )
        .await;
    }
}

/// Node names `prefix-0..n`.
pub fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A control plane with `n` hollow nodes (`node-0..n`), a scheduler and a
/// controller manager (member `member-1`): the setup of most controller
/// and scheduler tests. Derefs to the `ControlPlane`; dropping it stops
/// everything.
pub struct HollowCluster {
    pub cp: ControlPlane,
    pub fleet: Fleet,
    scheduler: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
}

impl HollowCluster {
    pub async fn start(n: usize) -> Self {
        Self::start_with(n, HollowConfig::default()).await
    }

    pub async fn start_with(n: usize, config: HollowConfig) -> Self {
        let cp = ControlPlane::start().await;
        let fleet = Fleet::start(cp.client.clone(), names("node", n), config)
            .await
            .expect("hollow nodes register");
        let scheduler = kc_member::scheduler::start(cp.client.clone(), "member-1");
        let controllers = kc_member::controllers::start(cp.client.clone(), "member-1", None);
        Self {
            cp,
            fleet,
            scheduler,
            controllers,
        }
    }

    /// Stops the controller manager (like its member dying).
    pub fn stop_controllers(&self) {
        self.controllers.abort();
    }
}

impl std::ops::Deref for HollowCluster {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

impl Drop for HollowCluster {
    fn drop(&mut self) {
        self.scheduler.abort();
        self.controllers.abort();
    }
}
