//! Full restart of a cluster (one control-plane member, two workers): every
//! kcnode stops (first with SIGTERM, then again with kill -9) and, as in a
//! machine reboot, every other process of every host dies too (monitors,
//! sandbox holders, containers). Started again with the same data dirs:
//! every object is there with the same uid (Deployment, its pods, Service
//! with its ClusterIP, ConfigMap), the registry serves the pushed image
//! under the same digest and image id, every pod is Running again (its
//! containers restarted) and serves the ConfigMap's text on its pod IP, and
//! the Service's endpoints list the pods again.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use kc_tests::chaos::{
    self, ChaosCluster, ClusterSpec, container_ids, is_running_ready, name_of, node_of,
};
use kc_tests::cluster::eventually;
use kc_tests::container::{stderr, stdout};
use serde_json::Value;

const MANIFEST: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
data:
  text: survives-restarts
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox
        command: [\"sh\", \"-c\", \"mkdir -p /srv && echo $TEXT > /srv/index.html && exec httpd -f -p 8080 -h /srv\"]
        env:
        - name: TEXT
          valueFrom:
            configMapKeyRef:
              name: greeting
              key: text
        readinessProbe:
          tcpSocket:
            port: 8080
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
";

/// uid (and ClusterIP) of every object the test made, by kind/name.
fn identities(cluster: &ChaosCluster) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kind in ["deployment", "service", "configmap", "pod", "replicaset"] {
        for item in cluster.items(&[kind]) {
            let name = name_of(&item);
            if name == "kube-root-ca.crt" || name == "kubernetes" {
                continue;
            }
            let mut id = item["metadata"]["uid"].as_str().unwrap_or("").to_string();
            if let Some(ip) = item["spec"]["clusterIP"].as_str() {
                id += &format!(" {ip}");
            }
            out.insert(format!("{kind}/{name}"), id);
        }
    }
    out
}

/// Every pod Running and Ready, answering on its pod IP with the
/// ConfigMap's text (fetched from its host's namespace), and the Service's
/// endpoints listing them; returns the pods.
fn wait_serving(cluster: &ChaosCluster, what: &str, old: &[Value]) -> Vec<Value> {
    let old_ids: Vec<String> = old.iter().flat_map(container_ids).collect();
    let pods = eventually(Duration::from_secs(120), what, || {
        let pods = cluster.pods("app=web");
        // Statuses from before a restart linger in the store until the
        // nodes report again: wait for the new containers.
        let fresh = pods
            .iter()
            .flat_map(container_ids)
            .all(|id| !old_ids.contains(&id));
        (pods.len() == 3 && fresh && pods.iter().all(is_running_ready)).then_some(pods)
    });
    for pod in &pods {
        let host = &cluster.hosts[cluster
            .host_index(node_of(pod))
            .expect("pod on a known host")];
        let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
        let mut last = String::new();
        let mut body = None;
        for _ in 0..40 {
            let out = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", host.ns.name))
                // (busybox 1.35's `wget -T` segfaults: bound it with timeout.)
                .args(["timeout", "5", "busybox", "wget", "-q", "-O", "-"])
                .arg(format!("http://{ip}:8080/"))
                .output()
                .expect("run busybox wget");
            if out.status.success() {
                body = Some(stdout(&out));
                break;
            }
            last = format!("{}: {}{}", out.status, stdout(&out), stderr(&out));
            std::thread::sleep(Duration::from_millis(500));
        }
        let body = body.unwrap_or_else(|| {
            let addrs = host.ns.exec(&["ip", "-br", "addr"]);
            panic!(
                "{what}: pod {} does not answer on {ip}:8080 from {}: {last}\n{}\n{}",
                name_of(pod),
                host.name,
                stdout(&addrs),
                cluster.logs()
            )
        });
        assert_eq!(body.trim(), "survives-restarts", "{}", name_of(pod));
    }
    let mut want: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .collect();
    want.sort();
    eventually(
        Duration::from_secs(30),
        "Service endpoints list the pods",
        || {
            let out = cluster.kubectl(&["get", "endpoints", "web", "-o", "json"]);
            let ep: Value = serde_json::from_slice(&out.stdout).ok()?;
            let mut ips: Vec<&str> = ep["subsets"]
                .as_array()?
                .iter()
                .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
                .filter_map(|a| a["ip"].as_str())
                .collect();
            ips.sort();
            (ips == want).then_some(())
        },
    );
    pods
}

/// `kcnode pull` of the pushed image on `host`: the image id it reports.
fn pull(cluster: &ChaosCluster, host: usize, reference: &str) -> String {
    let kc = cluster.lan_kubeconfig();
    let kc = kc.to_str().expect("utf-8 path");
    let out = cluster.hosts[host].run(&["pull", reference, "--kubeconfig", kc]);
    assert!(out.status.success(), "pull {reference}: {}", stderr(&out));
    stdout(&out)
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches(')')
        .to_string()
}

/// Stops every kcnode (SIGTERM, or SIGKILL if `kill`), then every other
/// process of every host (a reboot), and starts the cluster again.
fn full_restart(cluster: &mut ChaosCluster, kill: bool) {
    for i in (0..cluster.hosts.len()).rev() {
        if kill {
            cluster.kill_host(i);
        } else {
            cluster.stop_host(i, Duration::from_secs(30));
            cluster.kill_host(i);
        }
    }
    for i in 0..cluster.hosts.len() {
        assert!(
            chaos::host_pids(&cluster.hosts[i]).is_empty(),
            "processes left on {}",
            cluster.hosts[i].name
        );
    }
    for i in 0..cluster.hosts.len() {
        cluster.start_host(i);
    }
}

#[test]
fn a_full_restart_brings_back_every_object_image_and_pod() {
    let mut cluster = ChaosCluster::start(ClusterSpec::default());
    cluster.apply(MANIFEST);
    let kc = cluster.kubeconfig();
    let kc = kc.to_str().expect("utf-8 path").to_string();
    let cp = cluster.cp();
    let out = cp.run(&["tag", "busybox", "resilience/keep:1"]);
    assert!(out.status.success(), "tag: {}", stderr(&out));
    let out = cp.run(&["image", "push", "resilience/keep:1", "--kubeconfig", &kc]);
    assert!(out.status.success(), "push: {}", stderr(&out));
    let pushed = stdout(&out);
    let mut before_pods = wait_serving(&cluster, "pods serving before the restarts", &[]);
    let before = identities(&cluster);
    assert!(before.len() >= 7, "{before:?}");
    let image_id = pull(&cluster, 1, "resilience/keep:1");

    for (round, kill) in [(1, false), (2, true)] {
        let how = if kill { "kill -9" } else { "SIGTERM" };
        let start = std::time::Instant::now();
        full_restart(&mut cluster, kill);
        cluster.wait_all_ready(Duration::from_secs(60));
        let pods = wait_serving(
            &cluster,
            &format!("pods serving after restart {round} ({how})"),
            &before_pods,
        );
        println!(
            "FIGURE full restart ({how}): every pod serving again after {:.1} s",
            start.elapsed().as_secs_f64()
        );
        assert_eq!(
            identities(&cluster),
            before,
            "objects after restart {round} ({how})\n{}",
            cluster.logs()
        );
        for (old, new) in before_pods.iter().zip(&pods) {
            assert_eq!(node_of(old), node_of(new), "pods stay on their nodes");
        }
        before_pods = pods;
        // The registry still has the image: a fresh pull on another host
        // yields the same image id, and a re-push uploads nothing and names
        // the same manifest digest.
        let host = 1 + round % 2;
        let _ = cluster.hosts[host].run(&["rmi", "resilience/keep:1"]);
        assert_eq!(pull(&cluster, host, "resilience/keep:1"), image_id);
        let again = cp_push(&cluster, &kc);
        assert!(again.contains("0 blobs uploaded"), "{again}");
        assert_eq!(
            digest(&again),
            digest(&pushed),
            "manifest digest after restart {round}"
        );
    }
}

fn cp_push(cluster: &ChaosCluster, kc: &str) -> String {
    let out = cluster
        .cp()
        .run(&["image", "push", "resilience/keep:1", "--kubeconfig", kc]);
    assert!(out.status.success(), "push: {}", stderr(&out));
    stdout(&out)
}

/// The `sha256:…` digest in a push line.
fn digest(line: &str) -> String {
    line.split(|c: char| c == '(' || c == ';' || c.is_whitespace())
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_default()
        .to_string()
}
