//! Hollow nodes: simulated node agents for tests and benchmarks. They do
//! through the API what a kubelet does, without containers: register a Node
//! (Ready, with allocatable cpu/memory/pods), renew their Lease in
//! `kube-node-lease`, report pods bound to them Running and Ready through
//! `pods/status`, and finish the deletion of their pods being deleted.
//! A pod that is meant to end (restartPolicy Never or OnFailure) whose
//! first container "runs" `true`, `false` or `exit N` (as its command and
//! args, also under `sh -c`), or that has the annotation
//! `kc.dev/hollow-exit-code: "N"`, is reported terminated with that exit
//! code: Succeeded for 0, else Failed (also for OnFailure: hollow nodes do
//! not restart containers).
//!
//! A whole fleet shares one pod informer and one heartbeat task, so a
//! thousand hollow nodes cost little more than one. `kill` makes a node go
//! silent (no heartbeat, no pod updates), like a crashed worker.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use kc_client::ApiError;
use kc_client::clock;
use kc_client::{Client, Event, resource};

/// What every node of a fleet looks like.
#[derive(Debug, Clone)]
pub struct HollowConfig {
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub labels: BTreeMap<String, String>,
    /// How often node Leases are renewed.
    pub heartbeat: Duration,
    /// Whether bound pods are reported Running (off: pods stay Pending
    /// after binding, which isolates the scheduler in benchmarks).
    pub report_running: bool,
}

impl Default for HollowConfig {
    fn default() -> Self {
        Self {
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            labels: BTreeMap::new(),
            heartbeat: Duration::from_secs(1),
            report_running: true,
        }
    }
}

/// Status writes in flight at once.
const STATUS_WRITERS: usize = 64;

/// A running fleet; dropping it stops every node.
pub struct Fleet {
    alive: Arc<Mutex<HashSet<String>>>,
    _tasks: JoinSet<()>,
}

fn node_object(name: &str, config: &HollowConfig) -> Value {
    let mut labels = config.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), name.into());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kc.dev/hollow".into(), "true".into());
    let resources =
        json!({"cpu": config.cpu, "memory": config.memory, "pods": config.pods.to_string()});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "hollow node is posting ready status",
                "lastHeartbeatTime": clock::rfc3339_in(0),
                "lastTransitionTime": clock::rfc3339_in(0),
            }],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "hollow",
                "osImage": "hollow", "containerRuntimeVersion": "hollow://0",
                "kubeletVersion": "v1.32.0", "kubeProxyVersion": "", "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

fn micro_now() -> String {
    clock::rfc3339_in(0).trim_end_matches('Z').to_string() + ".000000Z"
}

/// Registers (or re-registers as Ready) one node and its Lease.
pub async fn register(client: &Client, name: &str, config: &HollowConfig) -> Result<(), ApiError> {
    let nodes = resource("", "v1", "nodes");
    let obj = node_object(name, config);
    match client.create(nodes, "", obj.clone()).await {
        Ok(_) => {}
        Err(e) if e.code == 409 => {
            let mut current = client.get(nodes, "", name).await?;
            current["status"] = obj["status"].clone();
            client.update_status(nodes, current).await?;
        }
        Err(e) => return Err(e),
    }
    renew_lease(client, name).await
}

/// Renews (creating if needed) the node's Lease in kube-node-lease.
pub async fn renew_lease(client: &Client, name: &str) -> Result<(), ApiError> {
    let leases = resource("coordination.k8s.io", "v1", "leases");
    let patch = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_now()}});
    match client
        .merge_patch(leases, "kube-node-lease", name, "", &patch)
        .await
    {
        Err(e) if e.code == 404 => {
            let lease = json!({"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": patch["spec"]});
            match client.create(leases, "kube-node-lease", lease).await {
                Err(e) if e.code != 409 => Err(e),
                _ => Ok(()),
            }
        }
        other => other.map(|_| ()),
    }
}

/// The status a kubelet would report for a pod whose containers all run.
pub fn running_status(pod: &Value, node: &str) -> Value {
    let now = clock::rfc3339_in(0);
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({
                        "name": c["name"], "image": c["image"], "imageID": "",
                        "containerID": format!("hollow://{}", c["name"].as_str().unwrap_or("")),
                        "ready": true, "started": true, "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    let ip = fake_ip(pod["metadata"]["uid"].as_str().unwrap_or(""));
    json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": "10.255.0.1", "hostIPs": [{"ip": "10.255.0.1"}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
        "nominatedNodeName": null,
        "message": format!("running on hollow node {node}"),
    })
}

/// The annotation that makes a hollow node end a pod with an exit code.
pub const EXIT_CODE_ANNOTATION: &str = "kc.dev/hollow-exit-code";

/// The exit code a hollow node gives `pod`, if it is a pod that ends.
pub fn exit_code(pod: &Value) -> Option<i64> {
    if pod["spec"]["restartPolicy"] == "Always" || pod["spec"]["restartPolicy"].is_null() {
        return None;
    }
    if let Some(code) = pod["metadata"]["annotations"][EXIT_CODE_ANNOTATION].as_str() {
        return code.trim().parse().ok();
    }
    let c = &pod["spec"]["containers"][0];
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|k| c[*k].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let script = match words.as_slice() {
        [sh, "-c", script] if sh.ends_with("sh") => script.trim().to_string(),
        words => words.join(" "),
    };
    match script.as_str() {
        "true" | "/bin/true" => Some(0),
        "false" | "/bin/false" => Some(1),
        s => s.strip_prefix("exit ")?.trim().parse().ok(),
    }
}

/// The status a kubelet would report for a pod whose containers all
/// exited with `code`.
pub fn terminated_status(pod: &Value, node: &str, code: i64) -> Value {
    let now = clock::rfc3339_in(0);
    let reason = if code == 0 { "Completed" } else { "Error" };
    let mut status = running_status(pod, node);
    if let Some(cs) = status["containerStatuses"].as_array_mut() {
        for c in cs {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["state"] = json!({"terminated": {"exitCode": code, "reason": reason,
                "startedAt": now, "finishedAt": now,
                "containerID": c["containerID"]}});
        }
    }
    let cond = |t: &str, s: &str| {
        let mut c = json!({"type": t, "status": s, "lastTransitionTime": now});
        if s == "False" {
            c["reason"] = json!("PodCompleted");
        }
        c
    };
    status["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
    status["conditions"] = json!([
        cond("PodReadyToStartContainers", "False"),
        cond("Initialized", "True"),
        cond("Ready", "False"),
        cond("ContainersReady", "False"),
        cond("PodScheduled", "True")
    ]);
    status["message"] = json!(format!("exited with {code} on hollow node {node}"));
    status
}

fn fake_ip(uid: &str) -> String {
    let h = uid
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!(
        "10.{}.{}.{}",
        64 + (h >> 16) % 64,
        (h >> 8) & 255,
        (h & 255).max(2)
    )
}

impl Fleet {
    /// Registers `names` and runs them until the fleet is dropped.
    pub async fn start(
        client: Client,
        names: Vec<String>,
        config: HollowConfig,
    ) -> Result<Self, ApiError> {
        let client = client.as_manager("hollow-kubelet");
        let limit = Arc::new(Semaphore::new(STATUS_WRITERS));
        let mut joins = JoinSet::new();
        for name in &names {
            let (client, name, config, limit) =
                (client.clone(), name.clone(), config.clone(), limit.clone());
            joins.spawn(async move {
                let _permit = limit.acquire_owned().await;
                register(&client, &name, &config).await
            });
        }
        while let Some(r) = joins.join_next().await {
            r.map_err(|e| ApiError::internal(e.to_string()))??;
        }
        let alive = Arc::new(Mutex::new(names.into_iter().collect::<HashSet<_>>()));
        let mut tasks = JoinSet::new();
        tasks.spawn(heartbeats(client.clone(), alive.clone(), config.heartbeat));
        tasks.spawn(kubelet(client, alive.clone(), config.report_running));
        Ok(Self {
            alive,
            _tasks: tasks,
        })
    }

    /// Makes `node` silent, as if its machine died.
    pub fn kill(&self, node: &str) {
        self.alive.lock().expect("fleet lock").remove(node);
    }

    pub fn is_alive(&self, node: &str) -> bool {
        self.alive.lock().expect("fleet lock").contains(node)
    }
}

async fn heartbeats(client: Client, alive: Arc<Mutex<HashSet<String>>>, every: Duration) {
    let limit = Arc::new(Semaphore::new(STATUS_WRITERS));
    let mut writes = JoinSet::new();
    loop {
        tokio::time::sleep(every).await;
        let names: Vec<String> = alive.lock().expect("fleet lock").iter().cloned().collect();
        for name in names {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let client = client.clone();
            writes.spawn(async move {
                if let Err(e) = renew_lease(&client, &name).await {
                    tracing::debug!(node = %name, error = %e, "hollow heartbeat failed");
                }
                drop(permit);
            });
        }
        while writes.try_join_next().is_some() {}
    }
}

/// Reports bound pods Running and completes deletions, for live nodes.
async fn kubelet(client: Client, alive: Arc<Mutex<HashSet<String>>>, report_running: bool) {
    let pods = resource("", "v1", "pods");
    let mut events = client.informer(pods);
    let limit = Arc::new(Semaphore::new(STATUS_WRITERS));
    let mut writes = JoinSet::new();
    while let Some(ev) = events.recv().await {
        let Event::Applied(pod) = ev else { continue };
        let Some(node) = pod["spec"]["nodeName"].as_str().map(str::to_string) else {
            continue;
        };
        if !alive.lock().expect("fleet lock").contains(&node) {
            continue;
        }
        let deleting = pod["metadata"]["deletionTimestamp"].is_string();
        let pending = pod["status"]["phase"]
            .as_str()
            .is_none_or(|p| p == "Pending");
        let to_report = report_running && pending;
        if !(deleting || to_report) {
            continue;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        writes.spawn(async move {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            let result = if deleting {
                client
                    .delete(pods, ns, name, json!({"gracePeriodSeconds": 0}))
                    .await
                    .map(|_| ())
            } else {
                let status = match exit_code(&pod) {
                    Some(code) => terminated_status(&pod, &node, code),
                    None => running_status(&pod, &node),
                };
                let patch = json!({"status": status});
                client
                    .merge_patch(pods, ns, name, "status", &patch)
                    .await
                    .map(|_| ())
            };
            if let Err(e) = result
                && e.code != 404
            {
                tracing::debug!(pod = %name, error = %e, "hollow pod update failed");
            }
            drop(permit);
        });
        while writes.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_that_end_get_their_exit_code() {
        let pod = |policy: &str, cmd: Value| {
            json!({"metadata": {}, "spec": {"restartPolicy": policy,
                "containers": [{"name": "c", "command": cmd}]}})
        };
        assert_eq!(exit_code(&pod("Never", json!(["true"]))), Some(0));
        assert_eq!(exit_code(&pod("Never", json!(["false"]))), Some(1));
        assert_eq!(
            exit_code(&pod("OnFailure", json!(["sh", "-c", "exit 3"]))),
            Some(3)
        );
        assert_eq!(exit_code(&pod("Never", json!(["sleep", "100"]))), None);
        assert_eq!(exit_code(&pod("Always", json!(["true"]))), None);
        let mut annotated = pod("Never", json!(["sleep", "1"]));
        annotated["metadata"]["annotations"] = json!({EXIT_CODE_ANNOTATION: "2"});
        assert_eq!(exit_code(&annotated), Some(2));
        let st = terminated_status(&pod("Never", json!(["false"])), "n", 1);
        assert_eq!(st["phase"], "Failed");
        assert_eq!(
            st["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
    }
}
