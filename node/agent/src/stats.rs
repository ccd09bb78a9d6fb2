//! The node's resource usage sampler: what the kubelet's summary API gives
//! metrics-server, sent up the session instead of scraped.
//!
//! Every `resolution` (15 s, metrics-server's default; `KC_METRICS_RESOLUTION`
//! in seconds overrides it) it reads each running container's cgroup
//! (cumulative CPU time and memory working set, `kc_runtime`'s
//! `cgroup::usage`) and the whole host, turns the CPU counters into rates
//! over the time since the previous sample (nanocores), and sends one
//! `NodeRequest::Usage` with the node and all its pods. A container is
//! reported from its second sample on (a rate needs two points), as
//! metrics-server does.
//!
//! The node's own figures are the whole host's, like the kubelet's node
//! summary (the root cgroup): CPU from /proc/stat (every non-idle state),
//! memory as MemTotal − MemAvailable from /proc/meminfo. That is what the
//! Node's capacity and allocatable describe (`host.rs` reads the same
//! host), so `kubectl top node`'s percentages compare like with like. On a
//! testnet, where every node is a network namespace of one machine, every
//! node therefore shows the same machine-wide figures.
//!
//! The host's mirror pods (`kube-apiserver-<node>`, ... in kube-system) are
//! parts of this kcnode process, so each reports the process's own usage
//! (/proc/self: CPU time and resident memory), as `kubectl top pod -n
//! kube-system` shows the control plane's pods on Kubernetes. They are one
//! process: the figures of one host's mirror pods are the same figures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kc_protocol::node_api::{ContainerUsage, NodeRequest, NodeUsage, PodUsage};
use kc_runtime::container::cgroup::{self, Hierarchy, usage::CgroupUsage};

use crate::kubelet::KubeletHandle;
use crate::session::Link;

/// metrics-server's default `--metric-resolution`.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);

/// The sampling period: `KC_METRICS_RESOLUTION` (seconds) or the default.
pub fn resolution() -> Duration {
    std::env::var("KC_METRICS_RESOLUTION")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(DEFAULT_RESOLUTION, Duration::from_secs)
}

/// CPU used between two readings of a cumulative counter, as a rate in
/// nanocores (10⁹ = one whole core busy). A counter that went backwards
/// (a new cgroup under an old key) or an empty window gives 0.
pub fn nanocores(before_ns: u64, now_ns: u64, elapsed: Duration) -> u64 {
    let window = elapsed.as_nanos();
    if window == 0 || now_ns < before_ns {
        return 0;
    }
    ((now_ns - before_ns) as u128 * 1_000_000_000 / window) as u64
}

/// One pod's containers to read: (container name, runtime container id).
pub struct PodToRead {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<(String, String)>,
}

/// The key of the host's own counter among the containers' ids.
const HOST: &str = "";

/// The prefix of the "container ids" of mirror pods: this process.
const SELF_PREFIX: &str = "kc:self/";

/// This process's usage from /proc/self/stat (utime + stime, in clock
/// ticks) and /proc/self/status (VmRSS). Pure.
pub fn process_usage(stat: &str, status: &str, ticks_per_second: u64) -> Option<CgroupUsage> {
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime the 14th, stime the 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(CgroupUsage {
        cpu_ns: (utime + stime) * 1_000_000_000 / ticks_per_second.max(1),
        memory_working_set: rss_kib * 1024,
    })
}

fn self_usage() -> Option<CgroupUsage> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    process_usage(
        &std::fs::read_to_string("/proc/self/stat").ok()?,
        &std::fs::read_to_string("/proc/self/status").ok()?,
        ticks,
    )
}

/// The host's mirror pods, each read as this process.
fn mirror_pods(node: &str, components: &[&'static str]) -> Vec<PodToRead> {
    components
        .iter()
        .map(|c| PodToRead {
            namespace: "kube-system".into(),
            name: format!("{c}-{node}"),
            containers: vec![(c.to_string(), format!("{SELF_PREFIX}{c}"))],
        })
        .collect()
}

/// Turns counters into rates; remembers the previous reading of each
/// counter (pure: the readings and the clock are passed in).
#[derive(Default)]
pub struct Rates {
    previous: HashMap<String, (u64, Instant)>,
}

impl Rates {
    /// Records `cpu_ns` for `key` at `at`; the rate since the previous
    /// reading, if there was one.
    fn rate(&mut self, key: &str, cpu_ns: u64, at: Instant) -> Option<u64> {
        let before = self.previous.insert(key.to_string(), (cpu_ns, at));
        before.map(|(ns, then)| nanocores(ns, cpu_ns, at.saturating_duration_since(then)))
    }

    /// One sample: the host's counters and each pod's containers', read by
    /// `read` (container id -> counters; `None` when the cgroup is gone).
    /// Counters of containers no longer present are forgotten.
    pub fn sample(
        &mut self,
        host: Option<CgroupUsage>,
        pods: &[PodToRead],
        read: impl Fn(&str) -> Option<CgroupUsage>,
        at: Instant,
        timestamp: String,
        window: Duration,
    ) -> NodeUsage {
        let mut seen = vec![HOST.to_string()];
        let (mut cpu, mut memory) = (0, 0);
        if let Some(h) = host {
            cpu = self.rate(HOST, h.cpu_ns, at).unwrap_or(0);
            memory = h.memory_working_set;
        }
        let mut out = Vec::new();
        for pod in pods {
            let mut containers = Vec::new();
            for (name, id) in &pod.containers {
                let Some(u) = read(id) else { continue };
                seen.push(id.clone());
                if let Some(rate) = self.rate(id, u.cpu_ns, at) {
                    containers.push(ContainerUsage {
                        name: name.clone(),
                        cpu_nanocores: rate,
                        memory_bytes: u.memory_working_set,
                    });
                }
            }
            if !containers.is_empty() {
                out.push(PodUsage {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    containers,
                });
            }
        }
        self.previous.retain(|k, _| seen.contains(k));
        NodeUsage {
            timestamp,
            window_ms: window.as_millis() as u64,
            cpu_nanocores: cpu,
            memory_bytes: memory,
            pods: out,
        }
    }
}

/// CPU time of the whole host in nanoseconds from /proc/stat's `cpu` line:
/// every state but idle and iowait, in USER_HZ ticks.
pub fn host_cpu_ns(proc_stat: &str, ticks_per_second: u64) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(busy.saturating_mul(1_000_000_000 / ticks_per_second.max(1)))
}

/// Memory in use on the whole host: MemTotal − MemAvailable, in bytes.
pub fn host_memory_bytes(meminfo: &str) -> Option<u64> {
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    Some(kib("MemTotal")?.saturating_sub(kib("MemAvailable")?) * 1024)
}

fn host_usage() -> Option<CgroupUsage> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_ns = host_cpu_ns(&std::fs::read_to_string("/proc/stat").ok()?, ticks)?;
    let memory = host_memory_bytes(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
    Some(CgroupUsage {
        cpu_ns,
        memory_working_set: memory,
    })
}

/// The pods the kubelet runs, with their current containers.
fn pods_to_read(kubelet: &KubeletHandle) -> Vec<PodToRead> {
    kubelet
        .all_pod_containers()
        .into_iter()
        .map(|((namespace, name), pc)| PodToRead {
            namespace,
            name,
            containers: pc.containers.into_iter().collect(),
        })
        .collect()
}

/// Samples forever and sends each sample on the session's current
/// connection (skipped while there is none).
pub async fn run(node: String, kubelet: KubeletHandle, link: Link, mirror: Vec<&'static str>) {
    let hierarchy: Option<Hierarchy> = match cgroup::detect() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("no container usage for the metrics API: {e}");
            None
        }
    };
    let period = resolution();
    let mut ticker = tokio::time::interval(period);
    let mut rates = Rates::default();
    let mut last = Instant::now();
    let mut first = true;
    loop {
        ticker.tick().await;
        let mut pods = pods_to_read(&kubelet);
        pods.extend(mirror_pods(&node, &mirror));
        let (hierarchy, node_name) = (hierarchy.clone(), node.clone());
        let read = tokio::task::spawn_blocking(move || {
            let host = host_usage();
            let own = self_usage();
            let usage: HashMap<String, CgroupUsage> = pods
                .iter()
                .flat_map(|p| p.containers.iter())
                .filter_map(|(_, id)| {
                    if id.starts_with(SELF_PREFIX) {
                        return Some((id.clone(), own?));
                    }
                    let h = hierarchy.as_ref()?;
                    Some((id.clone(), h.cgroup(&node_name, id).usage()?))
                })
                .collect();
            (host, pods, usage)
        })
        .await;
        let Ok((host, pods, usage)) = read else {
            continue;
        };
        let now = Instant::now();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let sample = rates.sample(
            host,
            &pods,
            |id| usage.get(id).copied(),
            now,
            timestamp,
            now - last,
        );
        last = now;
        if std::mem::take(&mut first) {
            continue; // no rates yet: the next sample has them
        }
        let client = link.read().ok().and_then(|l| l.clone());
        if let Some(client) = client
            && let Err(e) = client.call(&NodeRequest::Usage(sample)).await
        {
            tracing::debug!("usage sample not accepted: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_own_usage_is_read_from_proc_self() {
        let stat =
            "4242 (kc node) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 123 456 789";
        let status = "Name:\tkcnode\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        let u = process_usage(stat, status, 100).unwrap();
        assert_eq!(u.cpu_ns, 3_000_000_000, "300 ticks at 100 Hz");
        assert_eq!(u.memory_working_set, 20 * 1024 * 1024);
        assert!(process_usage("garbage", status, 100).is_none());
        let pods = mirror_pods("cp1", &["kube-apiserver", "kube-scheduler"]);
        assert_eq!(pods[0].name, "kube-apiserver-cp1");
        assert_eq!(pods[0].namespace, "kube-system");
        assert_ne!(
            pods[0].containers[0].1, pods[1].containers[0].1,
            "one counter per pod"
        );
    }

    #[test]
    fn a_busy_core_is_a_billion_nanocores() {
        let s = Duration::from_secs(10);
        assert_eq!(nanocores(0, 10_000_000_000, s), 1_000_000_000);
        assert_eq!(nanocores(5, 5 + 2_500_000_000, s), 250_000_000);
        assert_eq!(nanocores(100, 50, s), 0, "counter went backwards");
        assert_eq!(nanocores(0, 100, Duration::ZERO), 0, "empty window");
    }

    #[test]
    fn containers_are_reported_from_their_second_sample() {
        let mut rates = Rates::default();
        let pods = vec![PodToRead {
            namespace: "default".into(),
            name: "burn".into(),
            containers: vec![("c".into(), "id1".into()), ("gone".into(), "id2".into())],
        }];
        let t0 = Instant::now();
        let read = |cpu: u64| {
            move |id: &str| {
                (id == "id1").then_some(CgroupUsage {
                    cpu_ns: cpu,
                    memory_working_set: 64 << 20,
                })
            }
        };
        let host = |cpu| {
            Some(CgroupUsage {
                cpu_ns: cpu,
                memory_working_set: 1 << 30,
            })
        };
        let first = rates.sample(host(0), &pods, read(1_000), t0, "t0".into(), Duration::ZERO);
        assert!(first.pods.is_empty(), "no rate from one point");
        assert_eq!(first.memory_bytes, 1 << 30);
        let t1 = t0 + Duration::from_secs(15);
        let second = rates.sample(
            host(30_000_000_000),
            &pods,
            read(1_000 + 7_500_000_000),
            t1,
            "t1".into(),
            Duration::from_secs(15),
        );
        assert_eq!(second.cpu_nanocores, 2_000_000_000, "two busy cores");
        assert_eq!(second.window_ms, 15_000);
        assert_eq!(second.pods.len(), 1);
        assert_eq!(
            second.pods[0].containers,
            vec![ContainerUsage {
                name: "c".into(),
                cpu_nanocores: 500_000_000,
                memory_bytes: 64 << 20,
            }]
        );
    }

    #[test]
    fn host_counters_parse_from_proc() {
        let stat = "cpu  100 20 30 5000 40 5 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(host_cpu_ns(stat, 100), Some(160 * 10_000_000));
        let meminfo = "MemTotal:        2048 kB\nMemFree:  100 kB\nMemAvailable:    1024 kB\n";
        assert_eq!(host_memory_bytes(meminfo), Some(1024 * 1024));
        assert_eq!(host_memory_bytes("MemTotal: 5 kB\n"), None);
    }
}
