//! `kcnode dns …`: hidden developer command serving cluster DNS from a
//! snapshot file (re-read when it changes). The node agent serves the same
//! `dns::server` from its watch of the API server.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, Subcommand};

use kc_agent::dns::server;
use kc_agent::proxy::Snapshot;

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Cluster DNS developer commands
    #[command(hide = true, subcommand)]
    Dns(DnsAction),
}

#[derive(Debug, Subcommand)]
pub enum DnsAction {
    /// Answer <svc>.<ns>.svc.cluster.local from a snapshot file
    Serve(ServeArgs),
    /// Print the resolv.conf a ClusterFirst pod in NAMESPACE gets
    ResolvConf {
        /// The pod's namespace
        #[arg(long, default_value = "default")]
        namespace: String,
        /// The cluster DNS address
        #[arg(long, default_value = "10.96.0.10")]
        server: std::net::IpAddr,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (UDP)
    #[arg(long, default_value = "10.96.0.10:53")]
    pub listen: SocketAddr,
    /// JSON file `{"services": [...], "endpointSlices": [...]}`, re-read when it changes
    #[arg(long)]
    pub snapshot: PathBuf,
}

fn load(path: &PathBuf) -> anyhow::Result<Snapshot> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading snapshot {}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("snapshot {} is not JSON", path.display()))?;
    Ok(Snapshot::from_json(&doc)?)
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

pub fn run(cmd: DnsCommand) -> anyhow::Result<ExitCode> {
    let args = match cmd {
        DnsCommand::Dns(DnsAction::Serve(args)) => args,
        DnsCommand::Dns(DnsAction::ResolvConf { namespace, server }) => {
            print!("{}", kc_agent::dns::resolv::render(server, &namespace));
            return Ok(ExitCode::SUCCESS);
        }
    };
    let view = Arc::new(RwLock::new(load(&args.snapshot)?));
    let socket = UdpSocket::bind(args.listen)
        .with_context(|| format!("cannot listen on {} (UDP)", args.listen))?;
    tracing::info!(listen = %args.listen, "cluster DNS serving");
    let mut seen = modified(&args.snapshot);
    server::serve(&socket, &view, |view| {
        let now = modified(&args.snapshot);
        if now != seen {
            seen = now;
            match load(&args.snapshot) {
                Ok(snap) => *view.write().unwrap_or_else(|p| p.into_inner()) = snap,
                Err(err) => tracing::warn!("keeping the previous DNS view: {err:#}"),
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
