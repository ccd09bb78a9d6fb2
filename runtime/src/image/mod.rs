//! Images: a content-addressed OCI store with tags, import/export, and build.
//!
//! The contract with `container`: an image resolves to its config (what to
//! run, env, workdir, user) and its layers unpacked as directories, bottom
//! first, ready to be overlayfs lower dirs (`ImageStore::resolve`). The
//! other direction: a build's RUN step is run by the container side through
//! `StepRunner`.
//!
//! Map: `store` (blobs, tags, unpacked layers, transactions, lock, GC) on
//! `digest` (sha256 while streaming), `oci` (the JSON documents), `layer`
//! (tar <-> directory, whiteouts) and `reference` (name:tag). `import` and
//! `save` move images in and out (OCI layout, docker-archive); `base` makes
//! busybox from the host's busybox-static. `build` runs a Dockerfile parsed
//! by `dockerfile`, filtered by `dockerignore`. `pull` and `push` move
//! images to and from OCI registries over `distribution` (the HTTP client). Invariant: only `store`
//! changes the store's content (blobs, tags, layers, cache), and only by
//! committing a transaction; others merely stage files in its `tmp/`.

pub mod base;
pub mod build;
pub mod digest;
pub mod disk_pressure;
pub mod distribution;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod import;
pub mod layer;
pub mod merged;
pub mod oci;
pub mod progress;
pub mod pull;
pub mod pull_lock;
pub mod push;
pub mod reference;
pub mod save;
pub mod store;

pub use error::{ImageError, Result};
pub use store::ImageStore;

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
    /// The signal `stop` sends first (`STOPSIGNAL`, e.g. `SIGQUIT`); empty = SIGTERM.
    #[serde(default)]
    pub stop_signal: String,
    /// Paths the image declares as volumes (`VOLUME`).
    #[serde(default)]
    pub volumes: Vec<String>,
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

/// A RUN instruction of a build, as a container executes it: the image's
/// layers so far (overlayfs lower dirs, bottom first), an empty upper dir
/// that receives the step's changes (the build turns it into a layer,
/// overlay whiteouts included), and what to run.
#[derive(Debug, Clone)]
pub struct BuildRun {
    pub lower_dirs: Vec<PathBuf>,
    pub upper_dir: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// Runs build steps in containers. `image::build` depends only on this
/// trait; the container side implements it.
pub trait StepRunner {
    /// Runs the step with stdout/stderr going to the build's output; an exit
    /// code other than 0 is an error naming the command and the code.
    fn run_step(&self, step: &BuildRun) -> anyhow::Result<()>;
}
