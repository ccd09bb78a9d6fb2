//! `kcnode kubelet --manifests DIR` (hidden, for development and tests):
//! the kubelet fed by a static pod source, like the real kubelet's
//! `--pod-manifest-path`. Pods (and the ConfigMaps and Secrets they use)
//! are read from the YAML/JSON files in DIR, re-read every second; a file's
//! pod that changes gets a new uid (its content hash), so the old one is
//! deleted and the new one started, as Kubernetes does for static pods.
//! Reported statuses are written to `<data-dir>/kubelet/status/<ns>_<name>.json`
//! (a Pod object with metadata and status) and events appended to
//! `<data-dir>/kubelet/events.jsonl`, so tests and humans can read them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::Actor;
use anyhow::Context;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kc_runtime::container::Containers;
use kc_runtime::container::actor::Runtime;

use super::GlobalOpts;
use kc_agent::kubelet::{ConfigSource, Kubelet, KubeletConfig, KubeletReport, NoRegistry};

#[derive(Debug, clap::Subcommand)]
pub enum KubeletCommand {
    /// Run the kubelet on the pods of a manifests directory (static pods).
    #[command(hide = true)]
    Kubelet(KubeletArgs),
}

#[derive(Debug, clap::Args)]
pub struct KubeletArgs {
    /// Directory of Pod, ConfigMap and Secret manifests (.yaml, .yml, .json).
    #[arg(long)]
    pub manifests: PathBuf,
    /// The address reported as the pods' hostIP [default: this host's outbound address].
    #[arg(long)]
    pub host_ip: Option<String>,
    /// Give pods addresses from this IPv4 network on a `kc0` bridge (e.g.
    /// 10.88.0.0/24). Changes kcnode's network namespace, so it is refused
    /// in the host's initial one: run kcnode in a namespace of its own.
    #[arg(long)]
    pub pod_cidr: Option<String>,
}

pub fn run(global: &GlobalOpts, cmd: KubeletCommand) -> anyhow::Result<ExitCode> {
    let KubeletCommand::Kubelet(args) = cmd;
    let data_dir = global.data_dir();
    let node = global.node_name();
    std::fs::create_dir_all(data_dir.join("kubelet").join("status"))
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    anyhow::ensure!(
        args.manifests.is_dir(),
        "--manifests {}: not a directory",
        args.manifests.display()
    );
    let shim = std::env::current_exe().context("cannot find the kcnode binary")?;
    let host_ip = args.host_ip.unwrap_or_else(outbound_ip);
    let network = match &args.pod_cidr {
        None => None,
        Some(c) => {
            anyhow::ensure!(
                !kc_agent::network::in_initial_netns(),
                "--pod-cidr changes the network namespace kcnode runs in, and this is the host's \
                 initial one: run it in a namespace of its own (e.g. nsenter --net=/run/netns/NAME kcnode ...)"
            );
            let cidr: kc_agent::network::Cidr = c.parse()?;
            Some(Arc::new(kc_agent::network::PodNetwork::new(
                cidr, &data_dir,
            )))
        }
    };
    let sys = actix::System::new();
    sys.block_on(async move {
        let runtime = Runtime::new(Containers::new(&data_dir, &node), shim).start();
        let objects = Arc::new(StaticObjects::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let kubelet = Kubelet::start(
            KubeletConfig {
                node_name: node.clone(),
                data_dir: data_dir.clone(),
                runtime,
                host_ip,
                config: objects.clone(),
                images: Arc::new(NoRegistry),
                network,
                cluster_dns: None,
            },
            tx,
        );
        let out = data_dir.join("kubelet");
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                if let Err(e) = write_report(&out, r) {
                    tracing::error!("cannot write a kubelet report: {e}");
                }
            }
        });
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut last_uids: Option<Vec<String>> = None;
        loop {
            let scan = scan(&args.manifests, &node);
            for e in &scan.errors {
                tracing::warn!("{e}");
            }
            *objects
                .configmaps
                .write()
                .unwrap_or_else(|e| e.into_inner()) = scan.configmaps;
            *objects.secrets.write().unwrap_or_else(|e| e.into_inner()) = scan.secrets;
            let mut uids: Vec<String> = Vec::new();
            for pod in scan.pods {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let json = serde_json::to_string(&pod).unwrap_or_default();
                if seen.get(&uid) != Some(&json) {
                    seen.insert(uid.clone(), json);
                    kubelet.sync_pod(pod);
                }
                uids.push(uid);
            }
            uids.sort();
            if last_uids.as_ref() != Some(&uids) {
                seen.retain(|u, _| uids.contains(u));
                kubelet.reconcile(uids.clone());
                last_uids = Some(uids);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// ConfigMaps and Secrets of the manifests directory.
#[derive(Default)]
struct StaticObjects {
    configmaps: RwLock<HashMap<(String, String), ConfigMap>>,
    secrets: RwLock<HashMap<(String, String), Secret>>,
}

impl ConfigSource for StaticObjects {
    fn get_configmap<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>> {
        let key = (namespace.to_string(), name.to_string());
        let v = self
            .configmaps
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        Box::pin(async move { Ok(v) })
    }
    fn get_secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        let key = (namespace.to_string(), name.to_string());
        let v = self.secrets.read().ok().and_then(|m| m.get(&key).cloned());
        Box::pin(async move { Ok(v) })
    }
}

#[derive(Default)]
struct Scan {
    pods: Vec<Pod>,
    configmaps: HashMap<(String, String), ConfigMap>,
    secrets: HashMap<(String, String), Secret>,
    errors: Vec<String>,
}

/// FNV-1a, for stable static pod uids.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Reads every manifest of `dir`.
fn scan(dir: &Path, node: &str) -> Scan {
    let mut out = Scan::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let docs = match parse_docs(&text) {
            Ok(d) => d,
            Err(e) => {
                out.errors.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        for doc in docs {
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let res = match kind {
                "Pod" => serde_json::from_value::<Pod>(doc.clone()).map(|mut pod| {
                    let (ns, name) = key(&pod.metadata);
                    pod.metadata.namespace = Some(ns.clone());
                    if pod.metadata.uid.is_none() {
                        let h = fnv(format!("{ns}/{name}/{doc}").as_bytes());
                        pod.metadata.uid = Some(format!("static-{h:016x}"));
                    }
                    if let Some(spec) = pod.spec.as_mut() {
                        spec.node_name = Some(node.to_string());
                    }
                    out.pods.push(pod);
                }),
                "ConfigMap" => serde_json::from_value::<ConfigMap>(doc.clone()).map(|c| {
                    out.configmaps.insert(key(&c.metadata), c);
                }),
                "Secret" => serde_json::from_value::<Secret>(doc.clone()).map(|s| {
                    out.secrets.insert(key(&s.metadata), s);
                }),
                other => {
                    out.errors.push(format!(
                        "{}: kind {other:?} ignored (Pod, ConfigMap, Secret are read)",
                        f.display()
                    ));
                    Ok(())
                }
            };
            if let Err(e) = res {
                out.errors
                    .push(format!("{}: invalid {kind}: {e}", f.display()));
            }
        }
    }
    out
}

/// The documents of a YAML (or JSON) file.
fn parse_docs(text: &str) -> Result<Vec<serde_json::Value>, String> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(de).map_err(|e| e.to_string())?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn write_report(out: &Path, r: KubeletReport) -> std::io::Result<()> {
    use std::io::Write;
    let status_file = |ns: &str, name: &str| out.join("status").join(format!("{ns}_{name}.json"));
    match r {
        KubeletReport::PodStatus {
            namespace,
            name,
            uid,
            status,
        } => {
            let mut meta = BTreeMap::new();
            meta.insert("name", name.clone());
            meta.insert("namespace", namespace.clone());
            meta.insert("uid", uid);
            let doc = serde_json::json!({"metadata": meta, "status": status});
            write_atomic(
                &status_file(&namespace, &name),
                &serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?,
            )
        }
        KubeletReport::Event(ev) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out.join("events.jsonl"))?;
            let line = serde_json::to_string(&ev).map_err(std::io::Error::other)?;
            writeln!(f, "{line}")
        }
        KubeletReport::PodTerminated {
            namespace, name, ..
        } => {
            let _ = std::fs::remove_file(status_file(&namespace, &name));
            Ok(())
        }
    }
}

/// The source address this host would use to reach other hosts (no packet
/// is sent), or empty if it has no route.
fn outbound_ip() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("10.255.255.255:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_give_pods_with_stable_uids_and_objects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: c, image: busybox}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: x}\ndata: {k: v}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "kind: Pod\nspec: 3\n").unwrap();
        let s = scan(dir.path(), "n1");
        assert_eq!(s.pods.len(), 1);
        let p = &s.pods[0];
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(p.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        let uid = p.metadata.uid.clone().unwrap();
        assert!(uid.starts_with("static-"));
        assert_eq!(scan(dir.path(), "n1").pods[0].metadata.uid, Some(uid));
        assert!(s.configmaps.contains_key(&("x".into(), "cm".into())));
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    }
}
