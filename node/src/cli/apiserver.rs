//! `kcnode serve-api` (hidden, for development and tests): a single-member
//! control plane — store and API server — on this host, writing an admin
//! kubeconfig that the real kubectl can use. `kcnode init` will run the same
//! code (`kc_member::single`) plus the node agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::GlobalOpts;

#[derive(Debug, clap::Subcommand)]
pub enum ApiServerCommand {
    /// Run a single-member store and the Kubernetes API server (HTTPS).
    #[command(hide = true)]
    ServeApi(ServeApiArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeApiArgs {
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Where to write the admin kubeconfig [default: <data-dir>/admin.kubeconfig]
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// The cluster's name (in the CA and the kubeconfig).
    #[arg(long, default_value = "kc")]
    pub cluster_name: String,
    /// Another control-plane member (HOST:PORT of its API server) to fetch registry blobs this one lacks from (repeatable)
    #[arg(long = "registry-peer")]
    pub registry_peers: Vec<String>,
    /// Also run this many simulated ("hollow") nodes in process: they
    /// register, heartbeat and report their pods Running without containers
    /// (for scheduler and controller tests with the real kubectl).
    #[arg(long, default_value_t = 0, hide = true)]
    pub hollow_nodes: usize,
    /// Most read-only requests served at once; more get 429 TooManyRequests
    /// with Retry-After (like kube-apiserver's flag; 0: no limit). Watches,
    /// exec, port-forward and followed logs are not counted.
    #[arg(long, default_value_t = kc_member::apiserver::inflight::DEFAULT_READONLY)]
    pub max_requests_inflight: usize,
    /// Most mutating requests (POST, PUT, PATCH, DELETE) served at once;
    /// more get 429 TooManyRequests (0: no limit).
    #[arg(long, default_value_t = kc_member::apiserver::inflight::DEFAULT_MUTATING)]
    pub max_mutating_requests_inflight: usize,
}

pub fn run(global: &GlobalOpts, cmd: ApiServerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiServerCommand::ServeApi(args) => serve_api(global, args),
    }
}

fn serve_api(global: &GlobalOpts, args: ServeApiArgs) -> anyhow::Result<ExitCode> {
    use kc_member::single::{self, SingleConfig};
    let data_dir = global.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let config = SingleConfig {
        kubeconfig_out: args
            .kubeconfig_out
            .unwrap_or_else(|| data_dir.join("admin.kubeconfig")),
        data_dir,
        listen: args.listen,
        cluster_name: args.cluster_name,
        advertise: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let peers = args.registry_peers;
    runtime.block_on(async move {
        let cp = single::start(&config).await?;
        cp.api.state.inflight.set_limits(
            args.max_requests_inflight,
            args.max_mutating_requests_inflight,
        );
        if !peers.is_empty() {
            cp.set_registry_peers(&config.data_dir, peers)?;
        }
        let _hollow = if args.hollow_nodes > 0 {
            use kc_member::hollow::{Fleet, HollowConfig};
            let client = kc_member::apiserver::local::client(cp.kv.clone(), "hollow-kubelet");
            let names = (0..args.hollow_nodes)
                .map(|i| format!("hollow-{i}"))
                .collect();
            Some(
                Fleet::start(client, names, HollowConfig::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot register the hollow nodes: {e}"))?,
            )
        } else {
            None
        };
        eprintln!(
            "kcnode: API server listening on https://{}; kubeconfig written to {}",
            cp.api.local_addr,
            config.kubeconfig_out.display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = cp.api.wait() => r?,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
