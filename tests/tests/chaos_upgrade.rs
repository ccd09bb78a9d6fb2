//! A rolling upgrade, made cheap: every kcnode is restarted in turn (SIGTERM,
//! then started again with the same data dir) announcing a newer minor wire
//! version (`KC_WIRE_MINOR=1`), workers first, while a client keeps
//! writing through the API. During the worker upgrades no write fails; the
//! pods keep their containers (no restart) across their node's upgrade;
//! the mixed-version cluster converges (every Node Ready); the control
//! plane's own restart costs a short window of failed writes (one member:
//! printed as a FIGURE, not asserted), and every acknowledged write is
//! there at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kc_tests::chaos::{ChaosCluster, ClusterSpec, container_ids, is_running_ready, name_of};
use kc_tests::cluster::eventually;
use kc_tests::container::stdout;

const MANIFEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: steady\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: steady\n  template:\n    metadata:\n      labels:\n        app: steady\n    spec:\n      containers:\n      - name: main\n        image: busybox\n        command: [\"sleep\", \"3600\"]\n";

/// A client writing ConfigMaps until stopped: (acknowledged names, failures
/// with the time they happened).
struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, Vec<Instant>)>,
}

impl Writer {
    fn start(ns: String, kubeconfig: std::path::PathBuf) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let name = format!("w-{n}");
                let out = std::process::Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{ns}"))
                    .arg("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(["--request-timeout=5s", "create", "configmap", &name])
                    .output()
                    .expect("run kubectl");
                if out.status.success() {
                    acked.push(name);
                } else {
                    failed.push(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (acked, failed)
        });
        Writer { stop, thread }
    }

    fn finish(self) -> (Vec<String>, Vec<Instant>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("writer thread")
    }
}

fn containers_by_pod(cluster: &ChaosCluster) -> BTreeMap<String, Vec<String>> {
    cluster
        .pods("app=steady")
        .iter()
        .map(|p| (name_of(p).to_string(), container_ids(p)))
        .collect()
}

#[test]
fn a_rolling_upgrade_to_a_newer_minor_keeps_the_cluster_serving() {
    let mut cluster = ChaosCluster::start(ClusterSpec::default());
    cluster.apply(MANIFEST);
    eventually(Duration::from_secs(90), "3 pods Running", || {
        let pods = cluster.pods("app=steady");
        (pods.len() == 3 && pods.iter().all(is_running_ready)).then_some(())
    });
    let before = containers_by_pod(&cluster);
    let writer = Writer::start(cluster.cp().ns.name.clone(), cluster.kubeconfig());
    std::thread::sleep(Duration::from_secs(1));
    for i in 1..cluster.hosts.len() {
        cluster.stop_host(i, Duration::from_secs(30));
        cluster.start_host_env(i, &[("KC_WIRE_MINOR", "1")]);
        let name = cluster.hosts[i].name.clone();
        eventually(Duration::from_secs(30), "upgraded worker Ready", || {
            (cluster.node_ready(&name) == "True").then_some(())
        });
    }
    let (acked_workers, failed_workers) = writer.finish();
    assert!(
        failed_workers.is_empty(),
        "{} writes failed while workers were upgraded",
        failed_workers.len()
    );
    println!(
        "FIGURE writes during the worker upgrades: {} acknowledged, 0 failed",
        acked_workers.len()
    );

    // The control plane last: one member, so a short outage.
    let writer = Writer::start(cluster.cp().ns.name.clone(), cluster.kubeconfig());
    std::thread::sleep(Duration::from_secs(1));
    let down = Instant::now();
    cluster.stop_host(0, Duration::from_secs(30));
    cluster.start_host_env(0, &[("KC_WIRE_MINOR", "1")]);
    cluster.wait_all_ready(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let (acked_cp, failed_cp) = writer.finish();
    let window = failed_cp
        .last()
        .map_or(0.0, |t| t.duration_since(down).as_secs_f64());
    println!(
        "FIGURE control-plane upgrade (one member): {} writes failed, API back {window:.1} s after the stop",
        failed_cp.len()
    );

    // Nothing restarted, nothing lost.
    let pods = cluster.pods("app=steady");
    assert!(pods.iter().all(is_running_ready), "{pods:#?}");
    assert_eq!(
        containers_by_pod(&cluster),
        before,
        "pods restarted by the upgrade"
    );
    let out = cluster.kubectl(&["get", "configmaps", "-o", "name"]);
    let present = stdout(&out);
    for name in acked_workers.iter().chain(&acked_cp) {
        assert!(
            present.contains(&format!("configmap/{name}\n")),
            "acknowledged write {name} lost"
        );
    }
}
