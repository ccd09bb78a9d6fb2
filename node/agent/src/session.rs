//! The node's session with the control plane: connect to a member, register
//! the Node, renew the Lease, publish mirror pods, watch the pods bound to
//! this node and send their statuses back. On any failure it reconnects
//! with exponential back-off (100 ms to 5 s), trying the members in turn,
//! and keeps the member list current (persisted for restarts).

use std::path::PathBuf;
use std::time::Duration;

use crate::node_client::{ClientError, NodeClient};
use kc_pki::IssuedCert;
use kc_protocol::node_api::{NodeRequest, NodeResponse, PodEvent};
use serde_json::Value;
use tokio::sync::mpsc;

pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The wait after `current` failed.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// What the agent sends up (the kubelet's pod statuses and events).
#[derive(Debug, Clone)]
pub enum Report {
    PodStatus {
        namespace: String,
        name: String,
        status: Value,
    },
    Event(Value),
    /// The kubelet stopped a deleted pod: remove its API object.
    PodTerminated {
        namespace: String,
        name: String,
        uid: String,
    },
}

/// What the session tells the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A new pod watch starts: a full list and `Synced` follow.
    Watching,
    Pod(PodEvent),
}

/// The current connection, for requests outside the session loop (the
/// kubelet reading ConfigMaps and Secrets).
pub type Link = std::sync::Arc<std::sync::RwLock<Option<NodeClient>>>;

/// Builds what the session publishes, fresh at each use (timestamps).
pub trait Publisher: Send + Sync + 'static {
    fn node(&self) -> Value;
    fn mirror_pods(&self) -> Vec<Value>;
}

pub struct SessionConfig {
    pub ca_pem: String,
    pub cert: IssuedCert,
    pub members: Vec<String>,
    /// Where the member list is kept across restarts.
    pub members_file: PathBuf,
    pub heartbeat: Duration,
    pub lease_seconds: i32,
    /// Re-post the Node status every this many heartbeats.
    pub status_every: u32,
}

/// Runs the session forever: pod events go to `pods`, reports come from
/// `reports`.
pub async fn run(
    mut config: SessionConfig,
    publisher: std::sync::Arc<dyn Publisher>,
    link: Link,
    pods: mpsc::Sender<SessionEvent>,
    mut reports: mpsc::Receiver<Report>,
    streams: std::sync::Arc<crate::streams::StreamServer>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut outbox = Outbox::default();
    let mut next = 0usize;
    loop {
        let address = config.members[next % config.members.len().max(1)].clone();
        next += 1;
        match NodeClient::connect(&address, &config.ca_pem, &config.cert).await {
            Ok(client) => {
                tracing::info!(%address, "connected to the control plane");
                // The control plane opens log/exec/port-forward streams on
                // this connection; serve them until it closes.
                tokio::spawn(
                    streams
                        .clone()
                        .serve_connection(client.connection().clone()),
                );
                if let Ok(mut l) = link.write() {
                    *l = Some(client.clone());
                }
                match serve(
                    &mut config,
                    &client,
                    &*publisher,
                    &pods,
                    &mut reports,
                    &mut outbox,
                    &mut backoff,
                )
                .await
                {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(%address, "session lost: {e}; reconnecting"),
                }
            }
            Err(e) => tracing::warn!(%address, "cannot connect: {e}; retrying in {backoff:?}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

async fn serve(
    config: &mut SessionConfig,
    client: &NodeClient,
    publisher: &dyn Publisher,
    pods: &mpsc::Sender<SessionEvent>,
    reports: &mut mpsc::Receiver<Report>,
    outbox: &mut Outbox,
    backoff: &mut Duration,
) -> Result<(), ClientError> {
    register(client, publisher).await?;
    outbox.forget_sent();
    outbox.flush(client).await?;
    refresh_members(config, client).await?;
    *backoff = MIN_BACKOFF;
    let mut watch = client.watch_pods().await?;
    if pods.send(SessionEvent::Watching).await.is_err() {
        return Ok(());
    }
    let mut ticker = tokio::time::interval(config.heartbeat);
    let mut beats = 0u32;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                client.call(&NodeRequest::Heartbeat {
                    lease_duration_seconds: config.lease_seconds,
                }).await?;
                if beats.is_multiple_of(config.status_every.max(1)) {
                    if beats > 0 {
                        register(client, publisher).await?;
                        refresh_members(config, client).await?;
                    }
                    for pod in publisher.mirror_pods() {
                        client.call(&NodeRequest::MirrorPod { pod: to_json(&pod) }).await?;
                    }
                }
                beats = beats.wrapping_add(1);
            }
            ev = watch.recv() => match ev {
                Some(ev) => {
                    if pods.send(SessionEvent::Pod(ev)).await.is_err() {
                        return Ok(()); // the agent stopped
                    }
                }
                None => return Err(ClientError::NoAnswer),
            },
            report = reports.recv() => {
                let Some(first) = report else { return Ok(()) };
                // Everything already queued goes out in one flush.
                let mut batch = vec![first];
                while let Ok(more) = reports.try_recv() {
                    batch.push(more);
                }
                for report in batch {
                    outbox.take(client, report);
                }
                outbox.flush(client).await?;
            },
            why = client.closed() => {
                return Err(ClientError::Connect { addr: client.address.clone(), reason: why });
            }
        }
    }
}

/// Asks the control plane for its members and keeps (and persists) the
/// list, so a reconnect can go to any member, also after a restart.
async fn refresh_members(
    config: &mut SessionConfig,
    client: &NodeClient,
) -> Result<(), ClientError> {
    if let NodeResponse::Members(members) = client.call(&NodeRequest::Members).await?
        && !members.is_empty()
        && members != config.members
    {
        tracing::info!(?members, "control-plane members");
        config.members = members;
        save_members(config);
    }
    Ok(())
}

/// What the kubelet reported and the control plane has not yet accepted:
/// kept across a lost connection and sent again on the next one (the
/// kubelet reports a status only when it changes).
#[derive(Default)]
pub struct Outbox {
    /// The latest status of each pod, re-sent after every reconnect.
    statuses: std::collections::HashMap<(String, String), Value>,
    sent: std::collections::HashMap<(String, String), Value>,
    terminations: Vec<(String, String, String)>,
}

impl Outbox {
    /// Queues a report. Events are best effort and sent at once on their
    /// own task, so that they never hold up statuses or the pod watch.
    fn take(&mut self, client: &NodeClient, report: Report) {
        match report {
            Report::PodStatus {
                namespace,
                name,
                status,
            } => {
                self.statuses.insert((namespace, name), status);
            }
            Report::PodTerminated {
                namespace,
                name,
                uid,
            } => {
                self.statuses.remove(&(namespace.clone(), name.clone()));
                self.terminations.push((namespace, name, uid));
            }
            Report::Event(event) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let req = NodeRequest::Event {
                        event: to_json(&event),
                    };
                    if let Err(e) = client.call(&req).await {
                        tracing::debug!("event not recorded: {e}");
                    }
                });
            }
        }
    }

    /// Sends what is new since the last successful send on `client`: the
    /// statuses of different pods concurrently (one request each, so one
    /// pod's order is kept), then the removals.
    async fn flush(&mut self, client: &NodeClient) -> Result<(), ClientError> {
        let due: Vec<((String, String), Value)> = self
            .statuses
            .iter()
            .filter(|(key, status)| self.sent.get(*key) != Some(*status))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let started = std::time::Instant::now();
        let requests: Vec<NodeRequest> = due
            .iter()
            .map(|((namespace, name), status)| NodeRequest::PodStatus {
                namespace: namespace.clone(),
                name: name.clone(),
                status: to_json(status),
            })
            .collect();
        let results = futures::future::join_all(requests.iter().map(|r| client.call(r))).await;
        tracing::debug!(
            statuses = due.len(),
            ms = started.elapsed().as_millis() as u64,
            "pod statuses sent"
        );
        for ((key, status), result) in due.into_iter().zip(results) {
            match result {
                Ok(_) => {}
                Err(ClientError::Refused(why)) => {
                    tracing::warn!(pod = ?key, "pod status refused: {why}")
                }
                Err(other) => return Err(other),
            }
            self.sent.insert(key, status);
        }
        while let Some((namespace, name, uid)) = self.terminations.last().cloned() {
            let req = NodeRequest::DeletePod {
                namespace: namespace.clone(),
                name: name.clone(),
                uid,
            };
            match client.call(&req).await {
                Ok(_) => {}
                Err(ClientError::Refused(why)) => {
                    tracing::warn!(%namespace, %name, "pod removal refused: {why}")
                }
                Err(other) => return Err(other),
            }
            self.sent.remove(&(namespace, name));
            self.terminations.pop();
        }
        Ok(())
    }

    /// After a reconnect everything is sent again.
    fn forget_sent(&mut self) {
        self.sent.clear();
    }
}

async fn register(client: &NodeClient, publisher: &dyn Publisher) -> Result<(), ClientError> {
    client
        .call(&NodeRequest::Register {
            node: to_json(&publisher.node()),
        })
        .await
        .map(drop)
}

fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn save_members(config: &SessionConfig) {
    let text = config.members.join("\n") + "\n";
    if let Err(e) = std::fs::write(&config.members_file, text) {
        tracing::warn!(
            "cannot save the member list to {}: {e}",
            config.members_file.display()
        );
    }
}

/// The member list saved by an earlier run.
pub fn load_members(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut d = MIN_BACKOFF;
        let mut seen = vec![d];
        for _ in 0..10 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(*seen.last().unwrap(), MAX_BACKOFF);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn members_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let config = SessionConfig {
            ca_pem: String::new(),
            cert: IssuedCert {
                cert_pem: String::new(),
                key_pem: String::new(),
            },
            members: vec!["10.0.0.1:7000".into(), "10.0.0.2:7000".into()],
            members_file: dir.path().join("members"),
            heartbeat: Duration::from_secs(1),
            lease_seconds: 40,
            status_every: 6,
        };
        save_members(&config);
        assert_eq!(load_members(&config.members_file), config.members);
    }
}
