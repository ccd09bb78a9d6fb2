//! The node process: the session with the control plane and what it feeds.
//! `kcnode init` runs it beside the control plane in the same process,
//! `kcnode join` on its own. Until the kubelet lands (branch `kubelet`),
//! pods bound to this node are received and logged, not run.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kc_protocol::node_api::PodEvent;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::host::{HostFacts, NodeRole, node_object};
use crate::mirror::{Part, mirror_pod};
use crate::session::{self, Publisher, SessionConfig};

pub struct AgentConfig {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub role: NodeRole,
    /// The host's parts shown as mirror pods in kube-system.
    pub parts: Vec<Part>,
    /// The address the Node reports first (the advertised one).
    pub advertise: Option<IpAddr>,
    pub session: SessionConfig,
}

struct HostPublisher {
    name: String,
    facts: HostFacts,
    role: NodeRole,
    parts: Vec<Part>,
    started: String,
    pid: u32,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Publisher for HostPublisher {
    fn node(&self) -> Value {
        node_object(&self.name, &self.facts, &self.role, &now())
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

/// Runs the node side until the session ends (it does not on its own).
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let mut facts = HostFacts::read(&config.data_dir);
    if let Some(ip) = config.advertise {
        facts.addresses.retain(|a| *a != ip);
        facts.addresses.insert(0, ip);
    }
    let pid = std::process::id();
    std::fs::write(pid_file(&config.data_dir), format!("{pid}\n")).ok();
    let publisher = Arc::new(HostPublisher {
        name: config.node_name.clone(),
        facts,
        role: config.role,
        parts: config.parts,
        started: now(),
        pid,
    });
    let (pods_tx, mut pods_rx) = mpsc::channel::<PodEvent>(256);
    let (_reports_tx, reports_rx) = mpsc::channel(256);
    let node = config.node_name.clone();
    tokio::spawn(async move {
        while let Some(ev) = pods_rx.recv().await {
            log_pod_event(&node, &ev);
        }
    });
    session::run(config.session, publisher, pods_tx, reports_rx).await;
    Ok(())
}

fn log_pod_event(node: &str, ev: &PodEvent) {
    match ev {
        PodEvent::Upsert(bytes) => {
            let pod: Value = serde_json::from_slice(bytes).unwrap_or_default();
            tracing::info!(
                %node,
                namespace = pod["metadata"]["namespace"].as_str().unwrap_or(""),
                name = pod["metadata"]["name"].as_str().unwrap_or(""),
                "pod bound to this node (no kubelet in this build: not run)"
            );
        }
        PodEvent::Deleted { namespace, name } => {
            tracing::info!(%node, %namespace, %name, "pod removed from this node")
        }
        PodEvent::Synced => tracing::info!(%node, "pods bound to this node listed"),
    }
}
