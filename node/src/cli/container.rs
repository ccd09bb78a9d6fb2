//! Container commands: `run`, `ps`, `logs`, `stop`, `kill`, `rm`, `exec`, `inspect`.

use std::process::ExitCode;

use super::GlobalOpts;

#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {}

pub fn run(_global: &GlobalOpts, cmd: ContainerCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
