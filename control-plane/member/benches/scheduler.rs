//! Scheduler throughput with hollow nodes, in process (one-member Raft store
//! on disk, the API's `Rest` layer, the real scheduler with its leader
//! election), printing a table:
//! - "create+schedule": pods created as fast as the API takes them (64
//!   concurrent creators) while the scheduler runs; pods/s from the first
//!   create to the last binding seen by a watch;
//! - "schedule only": the same number of pods created first, then the
//!   scheduler started; pods/s from its start to the last binding.
//!
//! Hollow nodes renew their Leases every 10 s (kubelet's default) and do not
//! report pods Running, so the figures are the scheduler's and the API's.
//!
//! Run: `bench/scheduler.sh` or `cargo bench -p kc-member --bench scheduler`
//! (`KC_BENCH_NODES=1000,5000`, `KC_BENCH_PODS=10000`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kc_member::apiserver::{self, Kv};
use kc_member::client::{Client, Event, resource};
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::scheduler;
use kc_member::store::raft_node::{self, NoPeers, StoreConfig};
use serde_json::json;
use tokio::task::JoinSet;

const CREATORS: usize = 64;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

async fn control_plane(dir: &std::path::Path) -> Client {
    let peers = BTreeMap::from([(1u64, "127.0.0.1:0".to_string())]);
    let (store, _thread) = raft_node::start(
        StoreConfig::new(1, dir.join("store"), peers),
        Arc::new(NoPeers),
    )
    .expect("the store starts");
    let kv: Arc<dyn Kv> = Arc::new(store);
    let client = apiserver::local::client(kv.clone(), "bench");
    apiserver::bootstrap(&apiserver::rest::Rest::new(apiserver::Storage::new(
        kv.clone(),
    )))
    .await
    .expect("bootstrap");
    client
}

async fn create_pods(client: &Client, count: usize) {
    let pods = resource("", "v1", "pods");
    let mut set = JoinSet::new();
    for c in 0..CREATORS {
        let client = client.clone();
        set.spawn(async move {
            for i in (c..count).step_by(CREATORS) {
                let pod = json!({
                    "metadata": {"name": format!("pod-{i}"), "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "pause",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
                });
                client
                    .create(pods, "default", pod)
                    .await
                    .expect("create pod");
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Waits until `count` pods are bound; returns when the last was seen.
async fn wait_bound(client: &Client, count: usize) -> Instant {
    let mut events = client.informer(resource("", "v1", "pods"));
    let mut bound = HashSet::new();
    while let Some(ev) = events.recv().await {
        if let Event::Applied(p) = ev
            && p["spec"]["nodeName"].is_string()
        {
            bound.insert(p["metadata"]["name"].as_str().unwrap_or("").to_string());
            if bound.len() >= count {
                return Instant::now();
            }
        }
    }
    Instant::now()
}

async fn scenario(nodes: usize, pods: usize, precreate: bool) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = control_plane(dir.path()).await;
    let config = HollowConfig {
        cpu: "32".into(),
        memory: "128Gi".into(),
        pods: 110,
        heartbeat: Duration::from_secs(10),
        report_running: false,
        ..Default::default()
    };
    let names: Vec<String> = (0..nodes).map(|i| format!("hollow-{i}")).collect();
    let t = Instant::now();
    let _fleet = Fleet::start(client.clone(), names, config)
        .await
        .expect("hollow nodes");
    let register = t.elapsed();
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move { wait_bound(&client, pods).await })
    };
    let (start, create_time, _sched);
    if precreate {
        let t = Instant::now();
        create_pods(&client, pods).await;
        create_time = t.elapsed();
        start = Instant::now();
        _sched = scheduler::start(client.clone(), "bench");
    } else {
        _sched = scheduler::start(client.clone(), "bench");
        // Let it win its lease first, so the figure is scheduling.
        tokio::time::sleep(Duration::from_millis(300)).await;
        start = Instant::now();
        create_pods(&client, pods).await;
        create_time = start.elapsed();
    }
    let end = watcher.await.expect("watcher");
    let took = end.duration_since(start);
    let _ = register;
    (pods as f64 / took.as_secs_f64(), took, create_time)
}

/// The 1-minute load average (the machine is shared: figures need it).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pods = env_list("KC_BENCH_PODS", "10000")[0];
    println!(
        "{:<8} {:<8} {:<18} {:>10} {:>12} {:>14} {:>6}",
        "nodes", "pods", "mode", "pods/s", "total", "creates took", "load"
    );
    for nodes in env_list("KC_BENCH_NODES", "1000,5000") {
        for precreate in [false, true] {
            let (rate, took, created) = rt.block_on(scenario(nodes, pods, precreate));
            println!(
                "{:<8} {:<8} {:<18} {:>10.0} {:>10.2} s {:>12.2} s {:>6}",
                nodes,
                pods,
                if precreate {
                    "schedule only"
                } else {
                    "create+schedule"
                },
                rate,
                took.as_secs_f64(),
                created.as_secs_f64(),
                load_average()
            );
        }
    }
}
