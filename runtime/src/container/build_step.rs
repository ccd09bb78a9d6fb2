//! The build's RUN step in a container: `BuildStepRunner` implements
//! `image::StepRunner` so `kcnode build` runs each RUN instruction in a real
//! container whose root is overlay(lower_dirs, upper_dir): the step's file
//! changes land in `upper_dir` (whiteouts included), which the image side
//! turns into a layer. Output goes straight to the build's stdout/stderr.
//!
//! Runs in the foreground like `kcnode run --rm` (new namespaces, a cgroup
//! under `kc/<node>`, hardening) but with the build's own upper dir.

use std::path::{Path, PathBuf};

use super::ops::{Attach, Containers, Error};
use super::spec::{ContainerSpec, Resources, SharedNamespaces, merge_env};
use crate::image::{BuildRun, StepRunner};

/// Runs build steps as containers of the node whose data dir and name are
/// given (`BuildStepRunner::new(&global.data_dir(), &global.node_name())`).
#[derive(Debug, Clone)]
pub struct BuildStepRunner {
    containers: Containers,
}

impl BuildStepRunner {
    pub fn new(data_dir: &Path, node: &str) -> Self {
        BuildStepRunner {
            containers: Containers::new(data_dir, node),
        }
    }
}

impl StepRunner for BuildStepRunner {
    fn run_step(&self, step: &BuildRun) -> anyhow::Result<()> {
        let spec = ContainerSpec {
            name: String::new(),
            image: "(build step)".into(),
            layers: step.lower_dirs.clone(),
            argv: step.argv.clone(),
            env: merge_env(&step.env, &[]),
            working_dir: step.working_dir.clone(),
            user: step.user.clone(),
            hostname: "buildkit".into(),
            tty: false,
            stdin: false,
            ports: vec![],
            volumes: vec![],
            resources: Resources::default(),
            namespaces: SharedNamespaces::default(),
            auto_remove: true,
            stop_signal: None,
        };
        let code = self
            .containers
            .run_with_upper(spec, Some(step.upper_dir.clone()))
            .map_err(|e| match e {
                Error::Start { message, .. } => anyhow::anyhow!("RUN {:?}: {message}", step.argv),
                other => anyhow::Error::from(other).context(format!("RUN {:?}", step.argv)),
            })?;
        if code != 0 {
            anyhow::bail!("RUN {:?} exited with code {code}", step.argv);
        }
        Ok(())
    }
}

impl Containers {
    /// Runs `spec` in the foreground to completion and returns its exit
    /// code; with `upper`, that directory receives the container's changes
    /// instead of one inside the container's directory.
    pub fn run_with_upper(
        &self,
        spec: ContainerSpec,
        upper: Option<PathBuf>,
    ) -> Result<i32, Error> {
        let r = self.run_opts(spec, Attach::Foreground, upper)?;
        Ok(self.wait_monitor(&r))
    }
}
