//! `kcnode pull` and `kcnode image push`: moving images between the local
//! store and a registry (the cluster's, by default).
//!
//! Which registry and how to log in come from the admin kubeconfig
//! (`--kubeconfig`, `$KUBECONFIG`, or `/etc/kc/admin.kubeconfig`): the API
//! server serves the registry, so its URL, CA and credentials are the
//! registry's. Flags override each part.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use kc_runtime::image::ImageStore;
use kc_runtime::image::distribution::RegistryConfig;
use kc_runtime::image::{pull, push};

/// The admin kubeconfig `kcnode init` writes.
const DEFAULT_KUBECONFIG: &str = "/etc/kc/admin.kubeconfig";

/// Where the registry is and how to log in.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// The cluster's kubeconfig: registry URL, CA and credentials [default: $KUBECONFIG or /etc/kc/admin.kubeconfig]
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The registry for short names: https://host:port (or http:// for a local test registry)
    #[arg(long)]
    pub registry: Option<String>,
    /// A bearer token for the registry (the cluster's API tokens work)
    #[arg(long, env = "KC_REGISTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of the CA the registry's certificate is signed by
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Talk plain HTTP to registries named in references (HOST:PORT/NAME), for local test registries
    #[arg(long)]
    pub insecure: bool,
}

impl RegistryArgs {
    /// The registry config these flags describe.
    pub fn config(&self) -> anyhow::Result<RegistryConfig> {
        let kubeconfig = self
            .kubeconfig
            .clone()
            .or_else(|| Some(PathBuf::from(DEFAULT_KUBECONFIG)).filter(|p| p.exists()));
        let mut config = match (&kubeconfig, &self.registry) {
            (Some(path), _) => RegistryConfig::from_kubeconfig(path)?,
            (None, Some(url)) => RegistryConfig::from_url(url)?,
            // Only references naming their registry (HOST:PORT/NAME) can work.
            (None, None) => RegistryConfig::default(),
        };
        if self.insecure {
            config.insecure_http = true;
        }
        if let Some(url) = &self.registry {
            let named = RegistryConfig::from_url(url)?;
            config.host = named.host;
            config.insecure_http = named.insecure_http;
        }
        if let Some(token) = &self.token {
            config.token = Some(token.clone());
        }
        if let Some(ca) = &self.ca {
            config.ca_pem =
                Some(std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?);
        }
        Ok(config)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `kcnode pull REF`.
pub fn pull(store: &ImageStore, reference: &str, args: &RegistryArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let image = runtime()?.block_on(pull::pull(store, reference, &config))?;
    println!("Pulled {} ({})", image.reference, image.id);
    Ok(ExitCode::SUCCESS)
}

/// `kcnode image push NAME[:TAG] [TARGET]`.
pub fn push(
    store: &ImageStore,
    image: &str,
    target: Option<&str>,
    args: &RegistryArgs,
) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let pushed = runtime()?.block_on(push::push(store, image, target, &config))?;
    println!(
        "Pushed {} ({}; {} blobs uploaded, {} already there)",
        pushed.remote, pushed.digest, pushed.uploaded, pushed.skipped
    );
    Ok(ExitCode::SUCCESS)
}
