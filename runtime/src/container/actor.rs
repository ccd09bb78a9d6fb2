//! The `Runtime` actor: the node agent's (kubelet's) handle on containers
//! and pod sandboxes. It owns nothing but the node's paths; every message
//! runs its blocking work (forks, execs, cgroup files, waits) on tokio's
//! blocking pool, never on the actor's thread, and answers asynchronously.
//!
//! Processes are started through the `kcnode shim` modes, because the agent
//! is multi-threaded and must not fork without exec.

use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;

use super::exec::ExecSpec;
use super::logs;
use super::ops::{Containers, Error};
use super::shim::Shim;
use super::spec::ContainerSpec;
use super::state::State;
use crate::sandbox::Sandbox;

/// What went wrong with a runtime request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Container(#[from] Error),
    #[error("runtime worker failed: {0}")]
    Worker(String),
}

pub type Reply<T> = Result<T, RuntimeError>;

/// Containers and sandboxes of one node.
pub struct Runtime {
    containers: Containers,
    /// The `kcnode` binary (for its `shim` modes and `exec`), with the
    /// zygote that forks holders and monitors.
    shim: Shim,
}

impl Runtime {
    pub fn new(containers: Containers, shim: PathBuf) -> Self {
        let shim = Shim::with_zygote(shim, &containers);
        Runtime { containers, shim }
    }

    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Containers, Shim) -> Result<T, Error> + Send + 'static,
    ) -> ResponseFuture<Reply<T>> {
        let (c, shim) = (self.containers.clone(), self.shim.clone());
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || f(c, shim)).await {
                Ok(r) => r.map_err(RuntimeError::from),
                Err(e) => Err(RuntimeError::Worker(e.to_string())),
            }
        })
    }
}

impl Actor for Runtime {
    type Context = Context<Self>;
}

/// Starts a pod sandbox (shared network, IPC, UTS namespaces).
#[derive(Message)]
#[rtype(result = "Reply<Sandbox>")]
pub struct CreateSandbox {
    pub name: String,
    pub hostname: String,
}

/// Stops a sandbox's holder and forgets it.
#[derive(Message)]
#[rtype(result = "Reply<()>")]
pub struct RemoveSandbox {
    pub id: String,
}

/// Creates a container, in a sandbox if given (its namespaces are joined;
/// a spec asking for the host's network keeps it).
#[derive(Message)]
#[rtype(result = "Reply<String>")]
pub struct CreateContainer {
    pub sandbox: Option<String>,
    pub spec: ContainerSpec,
}

/// Starts a created container; answers its init's PID.
#[derive(Message)]
#[rtype(result = "Reply<i32>")]
pub struct StartContainer {
    pub id: String,
}

/// SIGTERM, grace, SIGKILL.
#[derive(Message)]
#[rtype(result = "Reply<State>")]
pub struct StopContainer {
    pub id: String,
    pub grace: Duration,
}

#[derive(Message)]
#[rtype(result = "Reply<State>")]
pub struct RemoveContainer {
    pub id: String,
    pub force: bool,
}

#[derive(Message)]
#[rtype(result = "Reply<State>")]
pub struct ContainerStatus {
    pub id: String,
}

/// The container's output so far (both streams, in order, as text).
#[derive(Message)]
#[rtype(result = "Reply<LogChunk>")]
pub struct Logs {
    pub id: String,
    /// Where to start in the log (0, or a previous chunk's `next_offset`):
    /// polling with it follows the log like `logs -f`.
    pub offset: u64,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
}

/// Complete log lines from `offset` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub text: String,
    pub next_offset: u64,
    /// The container has exited: nothing will follow `next_offset`.
    pub finished: bool,
}

/// Runs a command in a running container; answers its output.
#[derive(Message)]
#[rtype(result = "Reply<ExecOutput>")]
pub struct Exec {
    pub id: String,
    pub spec: ExecSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Handler<CreateSandbox> for Runtime {
    type Result = ResponseFuture<Reply<Sandbox>>;
    fn handle(&mut self, m: CreateSandbox, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, shim| c.create_sandbox(&shim, &m.name, &m.hostname))
    }
}

impl Handler<RemoveSandbox> for Runtime {
    type Result = ResponseFuture<Reply<()>>;
    fn handle(&mut self, m: RemoveSandbox, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| c.remove_sandbox(&m.id))
    }
}

impl Handler<CreateContainer> for Runtime {
    type Result = ResponseFuture<Reply<String>>;
    fn handle(&mut self, m: CreateContainer, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| {
            let mut spec = m.spec;
            if let Some(sb) = &m.sandbox {
                let sb = c.sandbox(sb)?;
                // A pod with hostNetwork keeps the node's network and
                // shares the sandbox's IPC and UTS namespaces only.
                let host_network = spec.namespaces.network == super::spec::NamespaceMode::Host;
                spec.namespaces = sb.namespaces();
                if host_network {
                    spec.namespaces.network = super::spec::NamespaceMode::Host;
                }
                spec.hostname = sb.hostname.clone();
            }
            c.create(spec)
        })
    }
}

impl Handler<StartContainer> for Runtime {
    type Result = ResponseFuture<Reply<i32>>;
    fn handle(&mut self, m: StartContainer, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, shim| shim.start_created(&c, &m.id))
    }
}

impl Handler<StopContainer> for Runtime {
    type Result = ResponseFuture<Reply<State>>;
    fn handle(&mut self, m: StopContainer, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| c.stop(&m.id, m.grace))
    }
}

impl Handler<RemoveContainer> for Runtime {
    type Result = ResponseFuture<Reply<State>>;
    fn handle(&mut self, m: RemoveContainer, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| c.remove(&m.id, m.force))
    }
}

impl Handler<ContainerStatus> for Runtime {
    type Result = ResponseFuture<Reply<State>>;
    fn handle(&mut self, m: ContainerStatus, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| c.find(&m.id))
    }
}

impl Handler<Logs> for Runtime {
    type Result = ResponseFuture<Reply<LogChunk>>;
    fn handle(&mut self, m: Logs, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, _| {
            use std::io::{Read, Seek, SeekFrom};
            let s = c.find(&m.id)?;
            // Read the status first: output written before the exit is in
            // the file by the time the state says exited.
            let finished = s.status == super::state::Status::Exited;
            let mut raw = Vec::new();
            if let Ok(mut f) = std::fs::File::open(c.dir(&s.id).log()) {
                let _ = f
                    .seek(SeekFrom::Start(m.offset))
                    .and_then(|_| f.read_to_end(&mut raw));
            }
            // Only whole lines: a partial last line waits for the next poll.
            let whole = raw
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|p| p + 1)
                .unwrap_or(0);
            let mut out = Vec::new();
            for line in raw[..whole].split(|&b| b == b'\n') {
                if let Some(rec) = logs::parse(line) {
                    out.extend(logs::render(&rec, m.timestamps));
                }
            }
            Ok(LogChunk {
                text: String::from_utf8_lossy(&out).into_owned(),
                next_offset: m.offset + whole as u64,
                finished: finished && whole == raw.len(),
            })
        })
    }
}

impl Handler<Exec> for Runtime {
    type Result = ResponseFuture<Reply<ExecOutput>>;
    fn handle(&mut self, m: Exec, _: &mut Context<Self>) -> Self::Result {
        self.blocking(move |c, shim| {
            let s = c.find(&m.id)?;
            let mut cmd = std::process::Command::new(shim.path());
            cmd.arg("--data-dir")
                .arg(&c.data_dir)
                .arg("--node-name")
                .arg(&c.node)
                .arg("exec");
            for e in &m.spec.env {
                cmd.arg("-e").arg(e);
            }
            if let Some(u) = &m.spec.user {
                cmd.arg("-u").arg(u);
            }
            if let Some(w) = &m.spec.working_dir {
                cmd.arg("-w").arg(w);
            }
            let out = cmd
                .arg(&s.id)
                .args(&m.spec.argv)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|source| Error::Io {
                    id: s.id.clone(),
                    what: "run exec".into(),
                    source,
                })?;
            Ok(ExecOutput {
                exit_code: out.status.code().unwrap_or(255),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }
}
