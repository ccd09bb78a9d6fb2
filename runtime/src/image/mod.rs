//! Images: a content-addressed OCI store with tags, import/export, and build.
//!
//! The contract with `container`: an image resolves to its config (what to
//! run, env, workdir, user) and its layers unpacked as directories, bottom
//! first, ready to be overlayfs lower dirs.

use std::path::PathBuf;

/// The runnable part of an OCI image config (`config` in the OCI image
/// config JSON).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// An image ready to run: its id (the config digest), the reference it was
/// asked by, its config, and its unpacked layers, bottom first.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub id: String,
    pub reference: String,
    pub config: ImageConfig,
    pub layers: Vec<PathBuf>,
}
