//! Losing a worker, on a real cluster (one control-plane member that also
//! runs pods, two workers, each a host in its own network namespace):
//!
//! - power cut: every process of a worker is SIGKILLed (kcnode, monitors,
//!   sandbox holders, containers) and its link goes down. Its Node turns
//!   Ready=Unknown after the grace period, its Deployment pods run on the
//!   other hosts (the time is printed as a FIGURE, goal ≤ 20 s), and when
//!   the worker comes back its old pods are removed from the API and its
//!   runtime, with never more live pods than replicas.
//! - partition: a worker's link goes down for longer than the grace period
//!   while its pods run. Its containers keep running on the cut host the
//!   whole time; after healing, the node is Ready again, its evicted pods'
//!   containers are stopped there and the Deployment has exactly its
//!   replicas Running.

use std::time::{Duration, Instant};

use kc_tests::chaos::{
    self, ChaosCluster, ClusterSpec, container_ids, is_running_ready, measure, node_of,
};
use kc_tests::cluster::eventually;

const REPLICAS: usize = 4;

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {REPLICAS}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: main\n        image: busybox\n        command: [\"sleep\", \"3600\"]\n"
    )
}

/// Starts the cluster and a Deployment; returns it with the index of the
/// worker running the most of its pods (the victim) and the pods.
fn cluster_with_pods(app: &str) -> (ChaosCluster, usize, Vec<serde_json::Value>) {
    let cluster = ChaosCluster::start(ClusterSpec::default());
    cluster.apply(&deployment(app));
    let selector = format!("app={app}");
    let pods = eventually(Duration::from_secs(90), "every replica Running", || {
        let pods = cluster.pods(&selector);
        (pods.iter().filter(|p| is_running_ready(p)).count() == REPLICAS).then_some(pods)
    });
    let spread = chaos::spread(&pods);
    let victim = (1..cluster.hosts.len())
        .max_by_key(|i| spread.get(&cluster.hosts[*i].name).copied().unwrap_or(0))
        .expect("workers");
    assert!(
        spread
            .get(&cluster.hosts[victim].name)
            .copied()
            .unwrap_or(0)
            > 0,
        "no pod on any worker: {spread:?}"
    );
    (cluster, victim, pods)
}

#[test]
fn a_dead_worker_s_pods_move_within_the_grace_period_and_are_cleaned_when_it_returns() {
    let (mut cluster, victim, pods) = cluster_with_pods("lost");
    let vname = cluster.hosts[victim].name.clone();
    let old: Vec<String> = pods
        .iter()
        .filter(|p| node_of(p) == vname)
        .map(|p| chaos::name_of(p).to_string())
        .collect();

    let failure = Instant::now();
    let killed = cluster.kill_host(victim);
    chaos::link_down(&cluster.hosts[victim]);
    assert!(
        killed >= 3,
        "a worker with pods has kcnode, monitors and containers: {killed}"
    );
    assert!(
        chaos::host_pids(&cluster.hosts[victim]).is_empty(),
        "processes left on the dead worker"
    );
    measure(Duration::from_secs(30), "dead worker Ready=Unknown", || {
        cluster.node_ready(&vname) == "Unknown"
    });
    chaos::wait_replaced(
        &cluster,
        "app=lost",
        REPLICAS,
        &vname,
        "dead worker's pods replaced",
        failure,
    );

    // The worker comes back (same data dir: a reboot).
    chaos::link_up(&cluster.hosts[victim]);
    cluster.start_host(victim);
    eventually(Duration::from_secs(30), "worker Ready again", || {
        (cluster.node_ready(&vname) == "True").then_some(())
    });
    chaos::wait_converged(&cluster, "app=lost", REPLICAS, &old);
    // Nothing of the old pods is left on the worker: no container record.
    let left = eventually(
        Duration::from_secs(30),
        "old containers removed on the worker",
        || {
            let on_host = chaos::all_containers(&cluster.hosts[victim]);
            let old_ids: Vec<String> = pods
                .iter()
                .filter(|p| node_of(p) == vname)
                .flat_map(container_ids)
                .collect();
            (!old_ids.iter().any(|id| on_host.contains(id))).then_some(on_host)
        },
    );
    let live_here = cluster
        .pods("app=lost")
        .iter()
        .filter(|p| node_of(p) == vname)
        .count();
    assert!(
        left.len() <= live_here,
        "containers on the returned worker beyond its pods: {left:?}\n{}",
        cluster.logs()
    );
}

#[test]
fn a_cut_off_worker_keeps_its_containers_and_converges_after_healing() {
    let (cluster, victim, pods) = cluster_with_pods("cut");
    let vname = cluster.hosts[victim].name.clone();
    let host = &cluster.hosts[victim];
    let old: Vec<String> = pods
        .iter()
        .filter(|p| node_of(p) == vname)
        .map(|p| chaos::name_of(p).to_string())
        .collect();
    let ids: Vec<String> = pods
        .iter()
        .filter(|p| node_of(p) == vname)
        .flat_map(container_ids)
        .collect();
    assert!(
        !ids.is_empty(),
        "container ids of the victim's pods: {pods:#?}"
    );
    let still_running = || chaos::assert_containers_running(host, &ids);
    still_running();

    let failure = Instant::now();
    chaos::link_down(host);
    measure(Duration::from_secs(30), "cut worker Ready=Unknown", || {
        still_running();
        cluster.node_ready(&vname) == "Unknown"
    });
    chaos::wait_replaced(
        &cluster,
        "app=cut",
        REPLICAS,
        &vname,
        "cut worker's pods replaced",
        failure,
    );
    // Well past the grace period and the eviction: still running there.
    std::thread::sleep(Duration::from_secs(3));
    still_running();

    chaos::link_up(host);
    chaos::wait_healed_worker(&cluster, victim, &vname, ("app=cut", REPLICAS), &old, &ids);
}
