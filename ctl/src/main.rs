//! `kcctl`: the user's CLI for a kc cluster — kubectl's verbs over the same
//! Kubernetes REST API and kubeconfig, with kubectl's output and errors, so
//! anyone who knows kubectl needs no manual.
//!
//! This file owns the command line (clap) and the error edge (kubectl's
//! `Error from server (Reason): ...` / `error: ...` and exit code 1); each
//! verb lives in `cmd/`.

mod client;
mod cmd;
mod ctx;
mod discovery;
mod kubeconfig;
mod manifest;
mod printer;
mod spdy;
mod terminal;
mod websocket;
mod yaml;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::ApiError;
use crate::cmd::{
    apply, config, delete, describe, exec, get, image, info, logs, metadata, node, portforward,
    rollout, run, top,
};
use crate::ctx::Ctx;

/// kcctl controls a kc cluster, the way kubectl controls Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "kcctl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    cmd: Command,
}

/// Flags every verb takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else "default").
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The API server URL, overriding the kubeconfig's.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Bearer token, overriding the kubeconfig's credentials.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Do not verify the server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Display one or many resources.
    Get(get::GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(describe::DescribeArgs),
    /// Apply a configuration to resources by file or stdin (server-side apply).
    Apply(apply::ApplyArgs),
    /// Create resources from a file or stdin.
    Create(apply::CreateArgs),
    /// Update fields of a resource with a strategic merge, merge or JSON patch.
    Patch(apply::PatchArgs),
    /// Delete resources by file, type and name, or label selector.
    Delete(delete::DeleteArgs),
    /// Run a particular image in a pod.
    Run(run::RunArgs),
    /// Print the logs of a container in a pod.
    Logs(logs::LogsArgs),
    /// Execute a command in a container.
    Exec(exec::ExecArgs),
    /// Forward local ports to a pod.
    PortForward(portforward::PortForwardArgs),
    /// Set a new size for a deployment or replica set.
    Scale(metadata::ScaleArgs),
    /// Manage the rollout of a deployment.
    Rollout(rollout::RolloutArgs),
    /// Update the labels on resources.
    Label(metadata::MetaArgs),
    /// Update the annotations on resources.
    Annotate(metadata::MetaArgs),
    /// Mark a node as unschedulable.
    Cordon(node::CordonArgs),
    /// Mark a node as schedulable.
    Uncordon(node::CordonArgs),
    /// Drain a node in preparation for maintenance.
    Drain(node::DrainArgs),
    /// Load images into the cluster registry (from this host's kcnode store or an archive).
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Display resource (CPU/memory) usage.
    #[command(subcommand)]
    Top(top::TopCmd),
    /// Modify kubeconfig files.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Print the client and server version information.
    Version(info::VersionArgs),
    /// Print the supported API resources on the server.
    ApiResources(info::ApiResourcesArgs),
    /// Output shell completion code for bash, zsh or fish.
    Completion(info::CompletionArgs),
}

/// Prints an error the way kubectl does.
pub fn print_error(e: &anyhow::Error) {
    match e.downcast_ref::<ApiError>() {
        Some(api) => eprintln!("{api}"),
        None => eprintln!("error: {e:#}"),
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match &cli.cmd {
        Command::Config(c) => return config::run(g, c),
        Command::Completion(a) => return info::completion(a),
        Command::Version(a) if a.client => return info::version(None, a),
        _ => {}
    }
    let ctx = Ctx::new(g)?;
    match &cli.cmd {
        Command::Get(a) => get::run(&ctx, a),
        Command::Describe(a) => describe::run(&ctx, a),
        Command::Apply(a) => apply::apply(&ctx, a),
        Command::Create(a) => apply::create(&ctx, a),
        Command::Delete(a) => delete::run(&ctx, a),
        Command::Patch(a) => apply::patch(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Exec(a) => exec::run(&ctx, a),
        Command::PortForward(a) => portforward::run(&ctx, a),
        Command::Scale(a) => metadata::scale(&ctx, a),
        Command::Rollout(a) => rollout::run(&ctx, a),
        Command::Label(a) => metadata::run(&ctx, a, "labels"),
        Command::Annotate(a) => metadata::run(&ctx, a, "annotations"),
        Command::Cordon(a) => node::cordon(&ctx, &a.nodes, true),
        Command::Uncordon(a) => node::cordon(&ctx, &a.nodes, false),
        Command::Drain(a) => node::drain(&ctx, a),
        Command::Top(a) => top::run(&ctx, a),
        Command::Image(c) => image::run(&ctx.target, c),
        Command::Version(a) => info::version(Some(&ctx), a),
        Command::ApiResources(a) => info::api_resources(&ctx, a),
        // Handled above, before connecting.
        Command::Config(_) | Command::Completion(_) => Ok(0),
    }
}

fn main() {
    // Die quietly on a closed pipe (`kcctl get pods | head`) like kubectl,
    // instead of panicking in println!.
    // SAFETY: restoring the default disposition of SIGPIPE at startup,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KCCTL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            1
        }
    };
    std::process::exit(code);
}
