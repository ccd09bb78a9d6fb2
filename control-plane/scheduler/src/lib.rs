//! The scheduler: places unbound pods on nodes, as kube-scheduler does, as an
//! ordinary API client running only on the member holding the
//! `kube-system/kube-scheduler` lease.
//!
//! Map: `snapshot` (nodes and what is placed on them, kept incrementally
//! from informers), `filters/` and `scores/` (pure plugins), `algorithm`
//! (one decision), `queue` (waiting and parked pods with back-off), and this
//! module's loop, which owns them all and *assumes* each decision into the
//! snapshot before its binding is written, so many bindings are in flight at
//! once while the next decisions already see them. `binder` writes the
//! decisions in batches (many bindings per store transaction), `events`
//! records `Scheduled` events without ever holding the loop up. A failed
//! binding (409: bound meanwhile by someone else; or any error) drops the
//! assumption and the watch brings the truth; the binding subresource itself
//! refuses a pod already bound, so a pod is never placed twice.

pub mod algorithm;
pub mod binder;
pub mod events;
pub mod filters;
pub mod matching;
pub mod quantity;
pub mod queue;
pub mod scores;
pub mod snapshot;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use kc_client::Binding;

use algorithm::Decision;
use binder::{Bound, Decided};
use events::Recorder;
use kc_client::client::{Client, Event, resource};
use kc_client::leader::{self, LeaderConfig};
use queue::Queue;
use snapshot::{PodInfo, Snapshot};

/// The scheduler name pods ask for (`spec.schedulerName`).
pub const NAME: &str = "default-scheduler";
/// Decisions assumed but not yet bound at most (the binder's backlog).
const MAX_IN_FLIGHT: usize = 4096;
/// Decisions made before looking at new events again.
const BATCH: usize = 256;

/// Runs a scheduler candidate: schedules while this member holds the lease.
pub fn start(client: Client, identity: &str) -> tokio::task::JoinHandle<()> {
    let client = client.as_manager("kube-scheduler");
    let config = LeaderConfig::new("kube-scheduler", identity);
    tokio::spawn(leader::run(client.clone(), config, move || {
        run(client.clone())
    }))
}

struct Scheduler {
    client: Client,
    snapshot: Snapshot,
    queue: Queue,
    /// Unbound pods that are ours to place.
    pending: HashMap<String, PodInfo>,
    /// The FailedScheduling message last written per pod.
    reported: HashMap<String, String>,
    start: usize,
    in_flight: usize,
    /// Both informers have listed: decisions before that would see a
    /// partial cluster ("0/0 nodes are available").
    nodes_synced: bool,
    pods_synced: bool,
    tasks: JoinSet<()>,
    binder: mpsc::UnboundedSender<Decided>,
    events: Recorder,
}

/// The scheduling loop (until aborted on loss of leadership).
pub async fn run(client: Client) {
    let mut nodes = client.informer(resource("", "v1", "nodes"));
    let mut pods = client.informer(resource("", "v1", "pods"));
    let (done, mut done_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let binder = binder::start(client.clone(), done, &mut tasks);
    let events = Recorder::start(client.clone(), &mut tasks);
    let mut s = Scheduler {
        client,
        snapshot: Snapshot::default(),
        queue: Queue::default(),
        pending: HashMap::new(),
        reported: HashMap::new(),
        start: 0,
        in_flight: 0,
        nodes_synced: false,
        pods_synced: false,
        tasks,
        binder,
        events,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            biased;
            Some(ev) = nodes.recv() => s.on_node(ev),
            Some(ev) = pods.recv() => s.on_pod(ev),
            Some(b) = done_rx.recv() => s.on_bound(b),
            _ = tick.tick() => {
                s.queue.requeue_due(Instant::now());
                while s.tasks.try_join_next().is_some() {}
            }
            _ = std::future::ready(()), if s.ready() => {
                s.schedule_batch();
                tokio::task::yield_now().await;
            }
        }
    }
}

impl Scheduler {
    fn ready(&self) -> bool {
        self.nodes_synced
            && self.pods_synced
            && !self.queue.is_empty()
            && self.in_flight < MAX_IN_FLIGHT
    }

    fn on_node(&mut self, ev: Event) {
        match ev {
            Event::Applied(obj) => {
                if let Ok(node) = serde_json::from_value(obj) {
                    self.snapshot.upsert_node(&node);
                    self.queue.cluster_changed();
                }
            }
            Event::Deleted(obj) => {
                if let Some(name) = obj["metadata"]["name"].as_str() {
                    self.snapshot.remove_node(name);
                }
            }
            Event::Synced => self.nodes_synced = true,
        }
    }

    fn on_pod(&mut self, ev: Event) {
        match ev {
            Event::Applied(obj) => {
                let Some(pod) = PodInfo::from_json(&obj) else {
                    return;
                };
                let key = pod.key.clone();
                if pod.node_name.is_some() || pod.terminal {
                    if pod.terminal {
                        self.queue.cluster_changed();
                    }
                    self.pending.remove(&key);
                    self.queue.remove(&key);
                    self.reported.remove(&key);
                    self.snapshot.update_pod(pod);
                } else if pod.deleting {
                    self.forget_pod(&key);
                } else if pod.scheduler_name == NAME {
                    let assumed = self.snapshot.placement(&key).is_some();
                    self.pending.insert(key.clone(), pod);
                    if !assumed {
                        self.queue.add(&key);
                    }
                }
            }
            Event::Deleted(obj) => {
                self.forget_pod(&kc_client::client::key_of(&obj));
                self.queue.cluster_changed();
            }
            Event::Synced => self.pods_synced = true,
        }
    }

    fn forget_pod(&mut self, key: &str) {
        self.pending.remove(key);
        self.queue.remove(key);
        self.reported.remove(key);
        self.snapshot.remove_pod(key);
    }

    fn on_bound(&mut self, b: Bound) {
        self.in_flight -= 1;
        if b.result.is_ok() {
            self.events.scheduled(&b.binding);
        }
        if let Err(e) = b.result {
            tracing::debug!(pod = %b.key, error = %e, "binding failed");
            self.snapshot.forget(&b.key);
            if e.code == 404 {
                self.forget_pod(&b.key);
            } else if self.pending.contains_key(&b.key) {
                // Bound by someone else (the watch will say so) or a
                // transient failure: decide again.
                self.queue.add(&b.key);
            }
        }
    }

    fn schedule_batch(&mut self) {
        for _ in 0..BATCH {
            if self.in_flight >= MAX_IN_FLIGHT {
                break;
            }
            let Some(key) = self.queue.pop() else { break };
            let Some(pod) = self.pending.get(&key) else {
                continue;
            };
            match algorithm::decide(&self.snapshot, pod, &mut self.start) {
                Decision::Node(node) => {
                    self.snapshot.assume(pod, &node);
                    self.in_flight += 1;
                    let binding =
                        Binding::new(&pod.namespace, pod_name(&key), Some(&pod.uid), &node);
                    if self.binder.send(Decided { key, binding }).is_err() {
                        tracing::warn!("the binder is gone; scheduling stops");
                        return;
                    }
                }
                Decision::Unschedulable(message) => {
                    self.queue.park(&key, Instant::now());
                    if self.reported.get(&key) != Some(&message) {
                        self.reported.insert(key.clone(), message.clone());
                        let (client, ns, name) = (
                            self.client.clone(),
                            pod.namespace.clone(),
                            pod_name(&key).to_string(),
                        );
                        self.tasks.spawn(async move {
                            report_unschedulable(&client, &ns, &name, &message).await
                        });
                    }
                }
            }
        }
    }
}

fn pod_name(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, n)| n)
}

/// PodScheduled=False with the reasons, and a FailedScheduling event.
async fn report_unschedulable(client: &Client, ns: &str, name: &str, message: &str) {
    tracing::info!(pod = %format!("{ns}/{name}"), %message, "unschedulable");
    let pods = resource("", "v1", "pods");
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastTransitionTime": kc_client::clock::rfc3339_in(0),
    }]}});
    match client.merge_patch(pods, ns, name, "status", &patch).await {
        Ok(pod) => {
            client
                .event(&pod, "Warning", "FailedScheduling", message, NAME)
                .await
        }
        Err(e) => tracing::debug!(error = %e, "cannot record PodScheduled=False"),
    }
}

/// The PodScheduled condition of a pod, for tests and tools.
pub fn scheduled_condition(pod: &Value) -> Option<&Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
}
