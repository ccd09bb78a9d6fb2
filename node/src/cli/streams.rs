//! `kcnode stream-stdio` (hidden, for tests and debugging): serves one
//! stream-tunnel request (`kubectl logs`/`exec`/`port-forward` as the API
//! server sends it to the node) on stdin/stdout, for one local container,
//! so the node's side of the tunnel can be driven without a control plane.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kc_runtime::container::Containers;

use super::GlobalOpts;
use kc_agent::streams::{LookupError, LookupFuture, PodLookup, PodTarget, StreamServer};

#[derive(Debug, clap::Args)]
pub struct StreamStdioArgs {
    /// The container (name or id) every pod and container name resolves to.
    #[arg(long)]
    container: String,
    /// The container that `logs --previous` reads.
    #[arg(long)]
    previous: Option<String>,
    /// The network namespace port-forward connects in [default: the container's].
    #[arg(long)]
    netns: Option<PathBuf>,
}

/// Resolves every pod to one container.
struct OneContainer {
    target: Result<PodTarget, LookupError>,
}

impl PodLookup for OneContainer {
    fn resolve<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> LookupFuture<'a> {
        let t = self.target.clone();
        Box::pin(async move { t })
    }
}

pub fn run(global: &GlobalOpts, args: StreamStdioArgs) -> anyhow::Result<ExitCode> {
    let containers = Containers::new(&global.data_dir(), &global.node_name());
    let target = containers
        .find(&args.container)
        .map(|s| PodTarget {
            netns: args
                .netns
                .clone()
                .or_else(|| s.pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/net")))),
            container_id: s.id,
            previous_container_id: args
                .previous
                .as_deref()
                .and_then(|p| containers.find(p).ok())
                .map(|p| p.id),
        })
        .map_err(|e| LookupError {
            code: 404,
            message: e.to_string(),
        });
    let server = StreamServer {
        data_dir: global.data_dir(),
        node_name: global.node_name(),
        kcnode: std::env::current_exe()?,
        lookup: Arc::new(OneContainer { target }),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The standard streams as tokio files (no `io-std` feature needed).
    let fd = |f: std::os::fd::BorrowedFd| -> anyhow::Result<tokio::fs::File> {
        Ok(tokio::fs::File::from_std(std::fs::File::from(
            f.try_clone_to_owned()?,
        )))
    };
    let (out, inp) = (
        fd(std::io::stdout().as_fd())?,
        fd(std::io::stdin().as_fd())?,
    );
    rt.block_on(server.serve(out, inp));
    // A read of stdin may still be blocked in a helper thread: don't wait.
    rt.shutdown_background();
    Ok(ExitCode::SUCCESS)
}
