//! `kcctl image load` (like `minikube image load` / `kind load
//! docker-image`): sends images to the cluster registry that the kubeconfig
//! names (the API server serves `/v2/`), so pods on any node can run them by
//! short name.
//!
//! The images come from this host's kcnode image store (`--data-dir`,
//! as `kcnode images` lists them) or from an archive (`-i`: a `docker
//! save` tar or an OCI layout, dir or tar, imported into a scratch store
//! first). The push is the runtime's registry client (`kc_runtime::image::
//! push`): blobs the registry has are skipped, each upload is verified by
//! the registry, the manifest goes last; a progress bar shows on a terminal.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kc_runtime::image::ImageStore;
use kc_runtime::image::distribution::RegistryConfig;
use kc_runtime::image::import::{self, ImportOptions};
use kc_runtime::image::push;

use crate::kubeconfig::Target;

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Load images into the cluster registry (from this host's kcnode image store or an archive).
    Load(LoadArgs),
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The images, NAME[:TAG] (with -i: which of the archive's images; default all of them)
    pub images: Vec<String>,
    /// Load from an image archive instead: a `docker save` tar or an OCI layout (directory or tar)
    #[arg(short = 'i', long = "from-archive", alias = "input")]
    pub archive: Option<PathBuf>,
    /// The kcnode data directory whose image store holds the images [default: $KC_DATA_DIR or /var/lib/kc/<hostname>]
    #[arg(long, env = "KC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(target: &Target, cmd: &ImageCmd) -> Result<i32> {
    match cmd {
        ImageCmd::Load(a) => load(target, a),
    }
}

/// The cluster registry: the API server of the kubeconfig's context, with
/// its CA and credentials.
pub fn registry_config(target: &Target) -> Result<RegistryConfig> {
    let mut config = RegistryConfig::from_url(&target.server)?;
    config.ca_pem = target.ca_pem.clone();
    config.client_cert = target
        .client_cert_pem
        .clone()
        .zip(target.client_key_pem.clone());
    config.token = target.token.clone();
    Ok(config)
}

/// kcnode's default: `/var/lib/kc/<node name>`, the node name being
/// `$KC_NODE_NAME` or the hostname.
fn default_data_dir() -> PathBuf {
    let host = std::env::var("KC_NODE_NAME")
        .ok()
        .or_else(|| {
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
            Some(name.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "local".to_string());
    PathBuf::from("/var/lib/kc").join(host)
}

fn load(target: &Target, args: &LoadArgs) -> Result<i32> {
    let registry = registry_config(target)?;
    // An archive is imported into a scratch store that goes away after.
    let scratch;
    let (store, images) = match &args.archive {
        Some(path) => {
            scratch = tempfile::Builder::new()
                .prefix("kcctl-image-load-")
                .tempdir()
                .context("cannot create a scratch directory for the archive")?;
            let store = ImageStore::open(scratch.path())?;
            let imported = import::import(&store, path, &ImportOptions::default())
                .with_context(|| format!("cannot read the image archive {}", path.display()))?;
            let images = if args.images.is_empty() {
                let names: Vec<String> = imported
                    .iter()
                    .flat_map(|i| i.tags.iter().map(|t| t.to_string()))
                    .collect();
                if names.is_empty() {
                    bail!(
                        "the archive {} names no image: pass NAME:TAG to push it under",
                        path.display()
                    );
                }
                names
            } else {
                args.images.clone()
            };
            (store, images)
        }
        None => {
            if args.images.is_empty() {
                bail!("name the images to load: kcctl image load NAME[:TAG]... (or -i ARCHIVE)");
            }
            let dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
            if !dir.join("images").is_dir() {
                bail!(
                    "no kcnode image store in {}: pass --data-dir (kcnode's), or -i ARCHIVE",
                    dir.display()
                );
            }
            (ImageStore::open(&dir)?, args.images.clone())
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    for image in &images {
        let pushed = rt
            .block_on(push::push(&store, image, None, &registry))
            .with_context(|| format!("cannot load image {image}"))?;
        println!(
            "Loaded image {image} into the cluster registry as {} ({}; {} blobs uploaded, {} already there)",
            pushed.remote, pushed.digest, pushed.uploaded, pushed.skipped
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_contexts_api_server_with_its_credentials() {
        let target = Target {
            server: "https://10.0.0.1:6443".into(),
            ca_pem: Some(b"ca".to_vec()),
            client_cert_pem: Some(b"cert".to_vec()),
            client_key_pem: Some(b"key".to_vec()),
            token: Some("t".into()),
            ..Default::default()
        };
        let c = registry_config(&target).unwrap();
        assert_eq!(c.host, "10.0.0.1:6443");
        assert!(!c.insecure_http);
        assert_eq!(c.ca_pem.as_deref(), Some(&b"ca"[..]));
        assert_eq!(c.client_cert, Some((b"cert".to_vec(), b"key".to_vec())));
        assert_eq!(c.token.as_deref(), Some("t"));
    }
}
