//! The soak run (not part of the default test run; `testnet/soak.sh` runs
//! it): a cluster of hosts in network namespaces (`--control-planes`
//! members, `--workers` workers; unique names, so it never meets a testnet
//! or another run), `--minutes` of churn — create, scale and delete
//! Deployments, every acknowledged write recorded — and every
//! `--kill-every` seconds a random process is killed and started again:
//! kill -9 of a worker's kcnode, a power cut of every process of a worker,
//! and with several members also kill -9 of a member's kcnode or of the
//! one holding the Raft leadership.
//! At the end, after up to `--settle` seconds: every Deployment that must
//! exist has its last acknowledged replica count and exactly that many
//! Running pods, every acknowledged delete is gone, no pod is Pending or
//! Terminating. Prints its counts; exits 1 on any lost write or stuck pod.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kc_tests::chaos::{self, ChaosCluster, ClusterSpec, is_live, is_running_ready, name_of};
use kc_tests::container::stderr;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Options {
    minutes: f64,
    members: usize,
    workers: usize,
    seed: u64,
    kill_every: u64,
    settle: u64,
}

const HELP: &str = "soak [--minutes N (30)] [--control-planes N (1)] [--workers M (2)] [--seed S] [--kill-every SECONDS (60)] [--settle SECONDS (180)]";

fn options() -> Result<Options, String> {
    let mut o = Options {
        minutes: 30.0,
        members: 1,
        workers: 2,
        seed: std::process::id() as u64,
        kill_every: 60,
        settle: 180,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .ok_or_else(|| format!("{} needs a value; usage: {HELP}", args[i]))
        };
        let bad = |e: &dyn std::fmt::Display| format!("{}: {e}; usage: {HELP}", args[i]);
        match args[i].as_str() {
            "--minutes" => o.minutes = value()?.parse().map_err(|e| bad(&e))?,
            "--control-planes" => o.members = value()?.parse().map_err(|e| bad(&e))?,
            "--workers" => o.workers = value()?.parse().map_err(|e| bad(&e))?,
            "--seed" => o.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--kill-every" => o.kill_every = value()?.parse().map_err(|e| bad(&e))?,
            "--settle" => o.settle = value()?.parse().map_err(|e| bad(&e))?,
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}; usage: {HELP}")),
        }
        i += 2;
    }
    if o.members == 0 {
        return Err("--control-planes must be at least 1".into());
    }
    if o.workers == 0 {
        return Err("--workers must be at least 1 (workers are what gets killed)".into());
    }
    Ok(o)
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{soak: \"yes\"}}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}, soak: \"yes\"}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - {{name: main, image: busybox, command: [sleep, \"36000\"]}}\n"
    )
}

/// What the churn was told (acknowledged) and did.
#[derive(Default)]
struct Ledger {
    /// Deployment -> its last acknowledged replicas. A write that failed
    /// may still have happened: its Deployment leaves this map (unknown).
    want: BTreeMap<String, u32>,
    /// Acknowledged deletes.
    gone: Vec<String>,
    acked: usize,
    failed: usize,
    created: usize,
}

impl Ledger {
    fn record(&mut self, ok: bool) -> bool {
        if ok {
            self.acked += 1;
        } else {
            self.failed += 1;
        }
        ok
    }
}

fn churn(cluster: &ChaosCluster, rng: &mut StdRng, ledger: &mut Ledger) {
    let names: Vec<String> = ledger.want.keys().cloned().collect();
    let roll = rng.random_range(0..10);
    if names.len() < 3 || (roll < 4 && names.len() < 12) {
        ledger.created += 1;
        let name = format!("soak-{}", ledger.created);
        let replicas = rng.random_range(1..=3);
        let out = chaos::kubectl_stdin(
            cluster.api_host(),
            &cluster.kubeconfig(),
            &["--request-timeout=10s", "apply", "-f", "-"],
            &deployment(&name, replicas),
        );
        if ledger.record(out.status.success()) {
            ledger.want.insert(name, replicas);
        }
        return;
    }
    let name = names[rng.random_range(0..names.len())].clone();
    if roll < 8 {
        let replicas = rng.random_range(0..=3);
        let out = cluster.kubectl(&[
            "--request-timeout=10s",
            "scale",
            "deployment",
            &name,
            "--replicas",
            &replicas.to_string(),
        ]);
        if ledger.record(out.status.success()) {
            ledger.want.insert(name, replicas);
        } else {
            ledger.want.remove(&name);
        }
    } else {
        let out = cluster.kubectl(&[
            "--request-timeout=10s",
            "delete",
            "deployment",
            &name,
            "--wait=false",
        ]);
        if ledger.record(out.status.success()) {
            ledger.gone.push(name.clone());
        }
        ledger.want.remove(&name);
    }
}

/// Problems left: (lost acknowledged writes, stuck pods), with details.
fn verdict(cluster: &ChaosCluster, ledger: &Ledger) -> (usize, usize, Vec<String>) {
    let deploys = cluster.items(&["deployments", "-l", "soak=yes"]);
    let pods = cluster.pods("soak=yes");
    let mut notes = Vec::new();
    let mut lost = 0;
    for (name, want) in &ledger.want {
        match deploys.iter().find(|d| name_of(d) == name) {
            None => {
                lost += 1;
                notes.push(format!("{name}: acknowledged, missing"));
            }
            Some(d) if d["spec"]["replicas"] != *want => {
                lost += 1;
                notes.push(format!(
                    "{name}: replicas {} != {want}",
                    d["spec"]["replicas"]
                ));
            }
            Some(_) => {}
        }
    }
    for name in &ledger.gone {
        if deploys.iter().any(|d| name_of(d) == name) {
            lost += 1;
            notes.push(format!("{name}: deleted, still there"));
        }
    }
    let mut stuck = 0;
    for (name, want) in &ledger.want {
        let running = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == name.as_str())
            .filter(|p| is_live(p) && is_running_ready(p))
            .count();
        if running != *want as usize {
            stuck += 1;
            notes.push(format!(
                "{name}: {running} Running pods for {want} replicas"
            ));
        }
    }
    for p in &pods {
        if !is_live(p) || p["status"]["phase"] == "Pending" {
            stuck += 1;
            notes.push(format!(
                "pod {}: {} {}",
                name_of(p),
                p["status"]["phase"],
                if is_live(p) { "" } else { "Terminating" }
            ));
        }
    }
    (lost, stuck, notes)
}

/// What the soak killed.
#[derive(Default)]
struct Kills {
    worker_crashes: usize,
    power_cuts: usize,
    member_crashes: usize,
    leader_crashes: usize,
}

/// Kills a random process: kill -9 of a worker's kcnode or a power cut of
/// a worker; with several members also kill -9 of a member's kcnode or of
/// the Raft leader's. Returns the host to start again.
fn strike(cluster: &mut ChaosCluster, rng: &mut StdRng, kills: &mut Kills) -> usize {
    let kinds = if cluster.members > 1 { 4 } else { 2 };
    let worker = rng.random_range(cluster.members..cluster.hosts.len());
    let (victim, what) = match rng.random_range(0..kinds) {
        0 => {
            let n = cluster.kill_host(worker);
            kills.power_cuts += 1;
            println!(
                "soak: power cut of worker {} ({n} processes)",
                cluster.hosts[worker].name
            );
            return worker;
        }
        1 => {
            kills.worker_crashes += 1;
            (worker, "worker")
        }
        2 => match cluster.leader_now() {
            Some(leader) => {
                kills.leader_crashes += 1;
                (leader, "leader member")
            }
            None => {
                kills.member_crashes += 1;
                (
                    rng.random_range(0..cluster.members),
                    "member (no leader known)",
                )
            }
        },
        _ => {
            kills.member_crashes += 1;
            (rng.random_range(0..cluster.members), "member")
        }
    };
    if let Some(mut p) = cluster.procs[victim].take() {
        p.kill();
    }
    println!(
        "soak: kill -9 kcnode of {what} {}",
        cluster.hosts[victim].name
    );
    victim
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let mut rng = StdRng::seed_from_u64(o.seed);
    println!(
        "soak: {} min, {} control-plane members, {} workers, seed {}, a kill every {} s",
        o.minutes, o.members, o.workers, o.seed, o.kill_every
    );
    let mut cluster = ChaosCluster::start(ClusterSpec {
        members: o.members,
        workers: o.workers,
        ..ClusterSpec::default()
    });
    let mut ledger = Ledger::default();
    let mut kills = Kills::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(o.minutes * 60.0);
    let mut next_kill = start + Duration::from_secs(o.kill_every);
    while Instant::now() < end {
        churn(&cluster, &mut rng, &mut ledger);
        if Instant::now() >= next_kill {
            let victim = strike(&mut cluster, &mut rng, &mut kills);
            std::thread::sleep(Duration::from_secs(1));
            cluster.start_host(victim);
            next_kill += Duration::from_secs(o.kill_every);
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(1000..3000)));
    }
    println!("soak: churn over; settling (up to {} s)", o.settle);
    let settle_start = Instant::now();
    let mut result = verdict(&cluster, &ledger);
    while result.0 + result.1 > 0 && settle_start.elapsed() < Duration::from_secs(o.settle) {
        std::thread::sleep(Duration::from_secs(2));
        result = verdict(&cluster, &ledger);
    }
    let (lost, stuck, notes) = result;
    println!(
        "soak: {:.1} min of churn, settled in {:.0} s",
        (end - start).as_secs_f64() / 60.0,
        settle_start.elapsed().as_secs_f64()
    );
    println!(
        "soak: acknowledged writes {}, failed (unacknowledged) writes {}, worker kcnode kill -9 {}, worker power cuts {}, member kcnode kill -9 {} (of which the leader {})",
        ledger.acked,
        ledger.failed,
        kills.worker_crashes,
        kills.power_cuts,
        kills.member_crashes + kills.leader_crashes,
        kills.leader_crashes
    );
    println!(
        "soak: deployments expected {}, deleted {}",
        ledger.want.len(),
        ledger.gone.len()
    );
    println!("soak: lost acknowledged writes {lost}, stuck pods/deployments {stuck}");
    if lost + stuck > 0 {
        for n in &notes {
            println!("soak:   {n}");
        }
        println!("soak: FAILED\n{}", cluster.logs());
        let out = cluster.kubectl(&["get", "pods", "-o", "wide"]);
        println!("{}{}", kc_tests::container::stdout(&out), stderr(&out));
        drop(cluster);
        std::process::exit(1);
    }
    println!("soak: OK");
}
