//! Image commands: `build`, `images`, `rmi`, `image import|save|base`.

use std::process::ExitCode;

use super::GlobalOpts;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {}

pub fn run(_global: &GlobalOpts, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
