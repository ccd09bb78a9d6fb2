//! `kcnode proxy …`: hidden developer commands driving the service proxy by
//! hand (apply a snapshot file, print the rules, remove the table). The node
//! agent runs the same `Proxy::sync_if_changed` from its watch of the API server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use kc_agent::proxy::cache::{Kind, ObjectCache};
use kc_agent::proxy::{Proxy, ProxyConfig, Snapshot, rules};

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Service proxy developer commands (nftables rules from Services + EndpointSlices)
    #[command(hide = true, subcommand)]
    Proxy(ProxyAction),
}

#[derive(Debug, Subcommand)]
pub enum ProxyAction {
    /// Apply the rules for a snapshot file to this network namespace, atomically
    Sync(SnapshotArgs),
    /// Print the nftables table a snapshot file renders to
    Render(SnapshotArgs),
    /// Remove kc's nftables table from this network namespace
    Remove,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// JSON file `{"services": [...], "endpointSlices": [...]}` (Kubernetes objects or lists)
    #[arg(long)]
    pub snapshot: PathBuf,
    /// The cluster's pod CIDR (traffic from outside it is masqueraded)
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// Keep running: re-sync whenever the snapshot file changes (sync only)
    #[arg(long)]
    pub follow: bool,
}

impl SnapshotArgs {
    fn load(&self) -> anyhow::Result<(ProxyConfig, Snapshot)> {
        let text = std::fs::read_to_string(&self.snapshot)
            .with_context(|| format!("reading snapshot {}", self.snapshot.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("snapshot {} is not JSON", self.snapshot.display()))?;
        let snap = Snapshot::from_json(&doc)?;
        let config = ProxyConfig {
            cluster_cidr: self.cluster_cidr.clone(),
        };
        Ok((config, snap))
    }
}

/// One sync, or (`--follow`) a sync each time the file changes, through
/// the same cache and skip-if-unchanged path the node agent uses.
fn sync(args: &SnapshotArgs) -> anyhow::Result<()> {
    let (config, _) = args.load()?;
    let mut proxy = Proxy::new(config);
    let mut cache = ObjectCache::default();
    let mut seen = None;
    loop {
        let modified = std::fs::metadata(&args.snapshot)
            .and_then(|m| m.modified())
            .ok();
        if modified != seen {
            seen = modified;
            let text = std::fs::read_to_string(&args.snapshot)
                .with_context(|| format!("reading snapshot {}", args.snapshot.display()))?;
            match serde_json::from_str(&text) {
                Ok(doc) => {
                    let (services, slices) = Snapshot::lists(&doc);
                    cache.replace_all(Kind::Service, services);
                    cache.replace_all(Kind::EndpointSlice, slices);
                    let started = std::time::Instant::now();
                    let changed = proxy.sync_if_changed(&cache.snapshot()?)?;
                    tracing::info!(changed, elapsed = ?started.elapsed(), "proxy sync");
                }
                Err(err) if args.follow => tracing::warn!("snapshot is not JSON yet: {err}"),
                Err(err) => {
                    anyhow::bail!("snapshot {} is not JSON: {err}", args.snapshot.display())
                }
            }
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub fn run(cmd: ProxyCommand) -> anyhow::Result<ExitCode> {
    let ProxyCommand::Proxy(action) = cmd;
    match action {
        ProxyAction::Sync(args) => sync(&args)?,
        ProxyAction::Render(args) => {
            let (config, snap) = args.load()?;
            print!("{}", rules::render(&config, &snap));
        }
        ProxyAction::Remove => Proxy::new(ProxyConfig::default()).remove()?,
    }
    Ok(ExitCode::SUCCESS)
}
