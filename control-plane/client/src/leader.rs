//! Leader election over a `coordination.k8s.io/v1` Lease object, as
//! client-go's leaderelection does it: every control-plane member runs a
//! candidate; the one holding `kube-system/<name>` runs the work (scheduler
//! or controller manager) and the others wait.
//!
//! Safety argument. A candidate takes the lease over only after it has seen
//! the Lease object unchanged (same resourceVersion) for a whole
//! `lease_duration` of its *own monotonic clock*, and the takeover is a
//! compare-and-swap on that resourceVersion, so two candidates never both
//! succeed. The holder renews every `retry_period` and stops its work as soon
//! as `renew_deadline` (< `lease_duration`) has passed since its last
//! successful renewal, measured from *before* it sent that renewal. So by the
//! time anyone else can take over, the old holder has already stopped,
//! assuming clocks run at roughly the same rate (no wall-clock agreement is
//! needed). Work is also safe if this is violated: every write the work does
//! is itself a CAS through the API (bindings refuse bound pods, controllers
//! write with resourceVersions), so at worst a write fails and is retried.
//!
//! Defaults (3 s lease, 2 s deadline, 0.5 s retry) keep failover within
//! about 3.5 s, a small part of the 20 s "dead worker's pods elsewhere"
//! budget.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::{Client, resource};
use crate::clock;

/// Timing and identity of one candidate.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// The Lease's name in kube-system (`kube-scheduler`, `kube-controller-manager`).
    pub name: String,
    /// Who this candidate is (unique per member).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderConfig {
    pub fn new(name: &str, identity: &str) -> Self {
        Self {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
        }
    }
}

const NAMESPACE: &str = "kube-system";

/// What a candidate remembers of the lease it last saw.
struct Observed {
    resource_version: String,
    since: Instant,
}

fn micro_now() -> String {
    // MicroTime: RFC 3339 with microseconds.
    let now = clock::rfc3339_in(0);
    now.trim_end_matches('Z').to_string() + ".000000Z"
}

fn lease_spec(config: &LeaderConfig, acquire_time: &Value, transitions: i64) -> Value {
    json!({
        "holderIdentity": config.identity,
        "leaseDurationSeconds": config.lease_duration.as_secs().max(1),
        "acquireTime": acquire_time,
        "renewTime": micro_now(),
        "leaseTransitions": transitions,
    })
}

/// One attempt to acquire or renew. Ok(true) when this candidate holds the
/// lease after the attempt.
async fn try_acquire_or_renew(
    client: &Client,
    config: &LeaderConfig,
    observed: &mut Option<Observed>,
) -> anyhow::Result<bool> {
    let leases = resource("coordination.k8s.io", "v1", "leases");
    let current = match client.get(leases, NAMESPACE, &config.name).await {
        Ok(l) => l,
        Err(e) if e.code == 404 => {
            let lease = json!({
                "metadata": {"name": config.name, "namespace": NAMESPACE},
                "spec": lease_spec(config, &json!(micro_now()), 0),
            });
            return match client.create(leases, NAMESPACE, lease).await {
                Ok(_) => Ok(true),
                Err(e) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let holder = current["spec"]["holderIdentity"].as_str().unwrap_or("");
    let held_by_me = holder == config.identity;
    match observed {
        Some(o) if o.resource_version == rv => {}
        _ => {
            *observed = Some(Observed {
                resource_version: rv.clone(),
                since: Instant::now(),
            })
        }
    }
    let expired = observed
        .as_ref()
        .is_some_and(|o| o.since.elapsed() >= config.lease_duration);
    if !held_by_me && !holder.is_empty() && !expired {
        return Ok(false);
    }
    let transitions = current["spec"]["leaseTransitions"].as_i64().unwrap_or(0);
    let (acquire, transitions) = if held_by_me {
        (current["spec"]["acquireTime"].clone(), transitions)
    } else {
        (json!(micro_now()), transitions + 1)
    };
    let mut new = current.clone();
    new["spec"] = lease_spec(config, &acquire, transitions);
    match client.update(leases, new).await {
        Ok(_) => Ok(true),
        Err(e) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Aborts the leader's work when dropped, so aborting the candidate itself
/// stops the work too.
struct Work(tokio::task::JoinHandle<()>);

impl Drop for Work {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` whenever this candidate leads, forever: acquire, run while
/// renewing, abort the work when leadership is lost, start over.
pub async fn run<F, Fut>(client: Client, config: LeaderConfig, work: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut observed = None;
    loop {
        // Acquire.
        loop {
            match try_acquire_or_renew(&client, &config, &mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::debug!(lease = %config.name, error = %e, "cannot acquire"),
            }
            tokio::time::sleep(config.retry_period).await;
        }
        tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
        let mut task = Work(tokio::spawn(work()));
        let mut last_renew = Instant::now();
        loop {
            tokio::select! {
                _ = &mut task.0 => {
                    tracing::warn!(lease = %config.name, "leader work ended; it restarts");
                    task = Work(tokio::spawn(work()));
                }
                _ = tokio::time::sleep(config.retry_period) => {}
            }
            let attempt_start = Instant::now();
            let renewed = tokio::time::timeout(
                config.renew_deadline,
                try_acquire_or_renew(&client, &config, &mut observed),
            )
            .await;
            match renewed {
                Ok(Ok(true)) => last_renew = attempt_start,
                Ok(Ok(false)) => break,
                Ok(Err(e)) => tracing::debug!(lease = %config.name, error = %e, "renew failed"),
                Err(_) => {}
            }
            if last_renew.elapsed() >= config.renew_deadline {
                break;
            }
        }
        drop(task);
        observed = None;
        tracing::warn!(lease = %config.name, identity = %config.identity, "lost leadership");
    }
}

/// Who holds a lease now (for tests and status), if anyone.
pub async fn holder(client: &Client, name: &str) -> Option<String> {
    let leases = resource("coordination.k8s.io", "v1", "leases");
    let lease = client.get(leases, NAMESPACE, name).await.ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}
