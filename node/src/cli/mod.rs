//! The `kcnode` command line: global options and dispatch to the command
//! groups (containers in `container.rs`, images in `image.rs`).

mod apiserver;
pub(crate) mod cluster;
mod container;
mod dns;
mod image;
mod kubelet;
mod leave;
mod member;
mod proxy;
mod registry;
mod store;
mod streams;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kcnode: run containers and images on this host, and (soon) join it to a kc cluster.
#[derive(Debug, Parser)]
#[command(name = "kcnode", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// Where this node keeps images and container state [default: /var/lib/kc/<node-name>]
    #[arg(long, global = true, env = "KC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// This node's name; also names its cgroup parent `kc/<node-name>` [default: the hostname]
    #[arg(long, global = true, env = "KC_NODE_NAME")]
    pub node_name: Option<String>,
}

impl GlobalOpts {
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "local".to_string())
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/kc").join(self.node_name()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Container(container::ContainerCommand),
    #[command(flatten)]
    Image(image::ImageCommand),
    /// Developer commands for the replicated store (members, client, benchmark)
    #[command(hide = true)]
    Store(store::StoreArgs),
    #[command(flatten)]
    ApiServer(apiserver::ApiServerCommand),
    #[command(flatten)]
    Cluster(cluster::ClusterCommand),
    #[command(flatten)]
    Kubelet(kubelet::KubeletCommand),
    #[command(flatten)]
    Proxy(proxy::ProxyCommand),
    #[command(flatten)]
    Dns(dns::DnsCommand),
    /// Serve one stream-tunnel request on stdin/stdout (tests, debugging)
    #[command(hide = true)]
    StreamStdio(streams::StreamStdioArgs),
}

/// Logs to stderr (`RUST_LOG`, default `warn`) and, at `info` and above,
/// into this process's own log ring (`self_log`: what `kubectl logs` of the
/// host's mirror pods shows).
pub fn init_tracing() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let ring = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(kc_agent::self_log::make_writer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(ring)
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Container(cmd) => container::run(&cli.global, cmd),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Store(args) => store::run(&cli.global, args),
        Command::ApiServer(cmd) => apiserver::run(&cli.global, cmd),
        Command::Cluster(cmd) => cluster::run(&cli.global, cmd),
        Command::Kubelet(cmd) => kubelet::run(&cli.global, cmd),
        Command::Proxy(cmd) => proxy::run(cmd),
        Command::Dns(cmd) => dns::run(cmd),
        Command::StreamStdio(args) => streams::run(&cli.global, args),
    }
}
