//! `kcnode`: the one binary of a kc host.
//!
//! Local commands work like Docker's (`build`, `run`, `ps`, `images`, ...);
//! cluster commands (`init`, `join`) start the node agent and, on
//! control-plane hosts, the control plane. `main` stays synchronous so that
//! the container monitor (a hidden mode of this binary) starts without any
//! async runtime and keeps a small footprint.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing();
    // Test hook for rolling upgrades: pose as a newer minor wire version.
    if let Some(minor) = std::env::var("KC_WIRE_MINOR")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        kc_protocol::frame::announce_minor(minor);
    }
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kcnode: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
