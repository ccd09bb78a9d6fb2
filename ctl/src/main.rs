//! `kcctl`: the user's CLI for a kc cluster (kubectl-like verbs over the
//! Kubernetes REST API). Its verbs arrive with the API server.

use clap::Parser;

/// kcctl: control a kc cluster (kubectl-like).
#[derive(Debug, Parser)]
#[command(name = "kcctl", version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
