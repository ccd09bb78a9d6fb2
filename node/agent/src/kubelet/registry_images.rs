//! The kubelet's image source on cluster nodes: an image missing from the
//! node's store is pulled from the cluster registry (the API server's `/v2/`,
//! reached with the node's own certificate) or, for a reference naming a
//! registry (`host:port/name:tag`), from that registry.
//!
//! The cluster registry is every control-plane member (each serves every
//! image: blobs are replicated, metadata is in Raft): a short name is
//! pulled from the member the node's session is connected to, then from
//! the others in turn (`Mirrors`, read fresh for each pull, so members that
//! joined later count and a dead member is skipped). Registries named in
//! `--insecure-registry` are spoken to over plain HTTP.
//!
//! Pulls are verified blob by blob and committed to the node's image store
//! in one transaction (runtime/src/image/pull.rs), so a failed or
//! interrupted pull leaves nothing half-imported. Before a pull, the
//! node's image garbage collector gets a chance to make room.

use std::sync::Arc;

use futures::future::BoxFuture;
use kc_runtime::image::distribution::{RegistryConfig, RemoteRef};
use kc_runtime::image::pull;
use kc_runtime::image::store::ImageStore;

use super::ImageSource;
use crate::image_gc::ImageGc;

/// The cluster registry's `host:port`s, in the order to try them.
pub type Mirrors = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// Pulls from the cluster registry described by `config`.
pub struct RegistryImages {
    store: ImageStore,
    /// The cluster registry's trust and credentials (its host is set per member).
    config: RegistryConfig,
    mirrors: Mirrors,
    /// `host:port`s of registries that speak plain HTTP.
    insecure: Vec<String>,
    gc: Option<Arc<ImageGc>>,
}

impl RegistryImages {
    pub fn new(store: ImageStore, config: RegistryConfig) -> Self {
        let host = config.host.clone();
        RegistryImages {
            store,
            config,
            mirrors: Box::new(move || vec![host.clone()]),
            insecure: Vec::new(),
            gc: None,
        }
    }

    /// Pulls short names from these members' registries, in order.
    pub fn with_mirrors(mut self, mirrors: Mirrors) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// Speaks plain HTTP to these registries (`host:port`).
    pub fn with_insecure(mut self, insecure: Vec<String>) -> Self {
        self.insecure = insecure;
        self
    }

    /// Runs `gc` before every pull.
    pub fn with_gc(mut self, gc: Arc<ImageGc>) -> Self {
        self.gc = Some(gc);
        self
    }

    /// The registries to try for `reference`, each with its config.
    fn targets(&self, reference: &str) -> Result<Vec<RegistryConfig>, String> {
        let remote = RemoteRef::parse(reference).map_err(|e| e.to_string())?;
        Ok(match remote.host {
            Some(host) if self.insecure.contains(&host) => vec![RegistryConfig {
                host,
                insecure_http: true,
                ..RegistryConfig::default()
            }],
            Some(host) => vec![self.config.for_host(&host)],
            None => {
                let mut hosts = (self.mirrors)();
                if hosts.is_empty() {
                    hosts.push(self.config.host.clone());
                }
                hosts
                    .into_iter()
                    .map(|host| RegistryConfig {
                        host,
                        ..self.config.clone()
                    })
                    .collect()
            }
        })
    }
}

impl ImageSource for RegistryImages {
    fn pull<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Some(gc) = &self.gc {
                gc.before_pull().await;
            }
            let mut failures = Vec::new();
            for config in self.targets(reference)? {
                let host = config.host.clone();
                // A short name is pulled through the first member that answers.
                let short = RemoteRef::parse(reference).is_ok_and(|r| r.host.is_none());
                match pull::pull(&self.store, reference, &config).await {
                    Ok(_) => {
                        if !failures.is_empty() {
                            tracing::info!(%reference, registry = %host, "pulled from another member after: {}", failures.join("; "));
                        }
                        return Ok(());
                    }
                    Err(e) if short => failures.push(format!("{host}: {e}")),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            Err(format!("pulling {reference:?}: {}", failures.join("; ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(dir: &std::path::Path) -> RegistryImages {
        let store = ImageStore::open(dir).unwrap();
        let config = RegistryConfig {
            host: "10.0.0.1:6443".into(),
            token: Some("t".into()),
            ..RegistryConfig::default()
        };
        RegistryImages::new(store, config)
    }

    #[test]
    fn short_names_go_to_every_member_in_order_and_named_registries_alone() {
        let dir = tempfile::tempdir().unwrap();
        let reg = images(dir.path())
            .with_mirrors(Box::new(|| {
                vec!["10.0.0.2:6443".into(), "10.0.0.3:6443".into()]
            }))
            .with_insecure(vec!["10.9.9.9:5000".into()]);
        let hosts = |r: &str| -> Vec<(String, bool, bool)> {
            reg.targets(r)
                .unwrap()
                .into_iter()
                .map(|c| (c.host, c.insecure_http, c.token.is_some()))
                .collect()
        };
        assert_eq!(
            hosts("web:1"),
            [
                ("10.0.0.2:6443".to_string(), false, true),
                ("10.0.0.3:6443".to_string(), false, true)
            ]
        );
        // Another registry gets no cluster credentials; a listed one plain HTTP.
        assert_eq!(
            hosts("reg.example:443/web:1"),
            [("reg.example:443".to_string(), false, false)]
        );
        assert_eq!(
            hosts("10.9.9.9:5000/web:1"),
            [("10.9.9.9:5000".to_string(), true, false)]
        );
    }

    #[test]
    fn without_known_members_the_configured_registry_serves() {
        let dir = tempfile::tempdir().unwrap();
        let reg = images(dir.path()).with_mirrors(Box::new(Vec::new));
        let hosts: Vec<String> = reg
            .targets("web:1")
            .unwrap()
            .into_iter()
            .map(|c| c.host)
            .collect();
        assert_eq!(hosts, ["10.0.0.1:6443"]);
    }
}
