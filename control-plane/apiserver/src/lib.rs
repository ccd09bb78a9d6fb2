//! The Kubernetes REST API over HTTPS, backed by the store.
//!
//! Map of the module:
//! - `server`: HTTPS listener (TLS, HTTP/1.1 + h2) and the router;
//! - `handler`: parses a request into who/verb/target, authorizes, renders;
//! - `auth`: client certificates, bearer tokens, admin and node rules;
//! - `inflight`: the max-in-flight limits (429 TooManyRequests);
//! - `registry`: the table of served resources that drives everything;
//! - `discovery`, `openapi`: documents generated from the registry
//!   (`schemas`: the kinds' OpenAPI schemas, from the k8s-openapi types);
//! - `rest`: the verbs (get/list/create/update/patch/delete) over the store;
//! - `storage`: keys, revisions and compare-and-swap writes (`Kv` is the store);
//! - `watch`: store watches as Kubernetes watch streams;
//! - `kinds`: per-kind defaults and validation; `names`: name rules;
//! - `crd`: CustomResourceDefinitions and their custom resources;
//! - `patch`: JSON, merge, strategic merge patch and apply;
//! - `managed`: server-side apply field ownership (managedFields, conflicts);
//! - `streams`: pods/log, pods/exec, pods/portforward tunnelled to the node;
//! - `table_decode`: decoding only what Table rows read (large pod lists);
//! - `selectors`, `table`, `negotiate`, `status`, `metrics`: the rest of the
//!   wire format.

pub mod admission;
pub mod aggregator;
pub mod allocator;
pub mod auth;
pub mod backend;
pub mod binding;
pub mod body;
pub mod component_status;
pub mod conversion;
pub mod crd;
pub mod discovery;
pub mod handler;
pub mod inflight;
pub mod kinds;
pub mod kubeconfig;
pub mod local;
pub mod managed;
pub mod metrics;
pub mod names;
pub mod namespace_lifecycle;
pub mod negotiate;
pub mod nesting;
pub mod openapi;
pub mod partial;
pub mod patch;
pub mod protobuf;
pub mod reply;
pub mod resource_metrics;
pub mod rest;
pub mod schemas;
pub mod selectors;
pub mod server;
pub mod storage;
pub mod streams;
pub mod table;
pub mod table_decode;
pub mod timestamps;
pub mod typed;
pub mod view;
pub mod watch;
pub mod webhook;

// The API's vocabulary, shared with its clients (kc-client).
pub use kc_client::{clock, registry, status};

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;

pub use auth::Authenticator;
pub use handler::ApiState;
pub use storage::{Kv, Storage};

use rest::{Query, Rest, SYSTEM_NAMESPACES};
use status::ApiError;

/// The largest request body accepted (Kubernetes' limit is 3 MiB).
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Creates what a fresh cluster has: the system namespaces, priority
/// classes and the APIServices of the built-in groups. Waits (up to
/// ten seconds) for a store that is still electing its leader.
pub async fn bootstrap(rest: &Rest) -> Result<(), ApiError> {
    let mut attempts = 0;
    loop {
        match bootstrap_once(rest).await {
            Err(e) if e.code == 503 && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn bootstrap_once(rest: &Rest) -> Result<(), ApiError> {
    let namespaces = registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
    let classes = registry::lookup("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priority classes are registered");
    let objects = SYSTEM_NAMESPACES
        .iter()
        .map(|ns| {
            let obj =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            (namespaces, obj)
        })
        .chain(
            kinds::SYSTEM_PRIORITY_CLASSES
                .iter()
                .map(|(name, value, description)| {
                    let obj = json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": { "name": name }, "value": value, "description": description });
                    (classes, obj)
                }),
        );
    let api_services = registry::lookup("apiregistration.k8s.io", "v1", "apiservices")
        .expect("APIServices are registered");
    let registered: Vec<String> = rest
        .storage
        .list_local(&Storage::prefix(api_services, None))
        .await?
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let local_api_services = aggregator::local_api_services()
        .into_iter()
        .filter(|o| {
            !registered
                .iter()
                .any(|n| o["metadata"]["name"].as_str() == Some(n))
        })
        .map(|o| (api_services, o));
    for (resource, obj) in objects.chain(local_api_services) {
        match rest.create(resource, "", obj, &Query::new()).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A running API server.
pub struct ApiServer {
    pub local_addr: SocketAddr,
    pub state: Arc<ApiState>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    crds: tokio::task::JoinHandle<()>,
    classes: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    aggregation: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Binds `listen`, bootstraps the cluster's namespaces and serves.
    pub async fn start(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
        kv: Arc<dyn Kv>,
        auth: Authenticator,
    ) -> anyhow::Result<Self> {
        Self::start_with_registry(listen, tls, kv, auth, None).await
    }

    /// Like `start`, also serving the image registry (`/v2/`) with its
    /// blobs under `registry_dir`.
    pub async fn start_with_registry(
        listen: SocketAddr,
        tls: rustls::ServerConfig,
        kv: Arc<dyn Kv>,
        auth: Authenticator,
        registry_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let registry = match registry_dir {
            Some(dir) => Some(Arc::new(
                kc_registry::Registry::open(dir, kv.clone()).map_err(|e| {
                    anyhow::anyhow!("cannot open the image registry in {}: {e}", dir.display())
                })?,
            )),
            None => None,
        };
        if let Some(registry) = &registry {
            registry.start_replication();
        }
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {listen}: {e} (is another API server running?)")
        })?;
        let local_addr = listener.local_addr()?;
        let crds = crd::sync::start(local::client(kv.clone(), "apiextensions-apiserver"));
        let classes = admission::start(local::client(kv.clone(), "admission"));
        let webhooks = webhook::start(local::client(kv.clone(), "admission-webhooks"));
        let aggregation = aggregator::start(
            local::client(kv.clone(), "kube-aggregator"),
            Storage::new(kv.clone()),
        );
        let rest = Rest::new(Storage::new(kv));
        bootstrap(&rest)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the system namespaces: {e}"))?;
        let state = Arc::new(ApiState {
            rest,
            auth,
            metrics: metrics::Metrics::default(),
            inflight: inflight::InFlight::default(),
            server_address: local_addr.to_string(),
            body_limit: BODY_LIMIT,
            registry,
            tunnel: std::sync::OnceLock::new(),
        });
        let mut tls = tls;
        tls.alpn_protocols = server::ALPN.iter().map(|p| p.to_vec()).collect();
        let app = server::router(state.clone());
        let task = tokio::spawn(server::serve(listener, Arc::new(tls), app));
        tracing::info!(%local_addr, "API server listening");
        Ok(Self {
            local_addr,
            state,
            task: Some(task),
            crds,
            classes,
            webhooks,
            aggregation,
        })
    }

    /// Serves until the listener fails.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.crds.abort();
        self.classes.abort();
        self.webhooks.abort();
        self.aggregation.abort();
    }
}
