//! `kcnode shim ...`: the monitor and the sandbox holder as processes of
//! their own, for callers that must not fork (the node agent is
//! multi-threaded: after fork only async-signal-safe calls are allowed, and
//! a monitor allocates). The caller execs `kcnode shim monitor <id>` or
//! `kcnode shim pause`; the shim detaches (double fork) and reports on its
//! stdout with the monitor's ready line ("R <pid>" or "F <code> <msg>").
//!
//! `Shim` is how the runtime starts them: through the node's zygote
//! (`zygote.rs`, a fork of a small pre-started process) when it has one,
//! else by exec'ing `kcnode shim ...`. What the started process then does
//! (become the monitor or the holder) is `shim_process.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::monitor::Started;
use super::ops::{Containers, Error};
use super::state::Status;
use super::zygote::{Request, Zygote};

/// Starts holders and monitors: the kcnode binary, and optionally a zygote
/// of it that forks them.
#[derive(Clone)]
pub struct Shim {
    path: PathBuf,
    zygote: Option<Arc<Zygote>>,
}

impl Shim {
    /// Exec `path` (the kcnode binary) for every holder and monitor.
    pub fn exec(path: PathBuf) -> Shim {
        Shim { path, zygote: None }
    }

    /// Fork them from a zygote of `path` for `containers` (started on first
    /// use), falling back to exec if it cannot be reached.
    pub fn with_zygote(path: PathBuf, containers: &Containers) -> Shim {
        let zygote = Arc::new(Zygote::new(path.clone(), containers.clone()));
        Shim {
            path,
            zygote: Some(zygote),
        }
    }

    /// The kcnode binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts created container `id` under its monitor (safe from
    /// multi-threaded callers); returns its init's PID.
    pub fn start_created(&self, containers: &Containers, id: &str) -> Result<i32, Error> {
        let s = containers.find(id)?;
        if s.status != Status::Created {
            return Err(Error::Io {
                id: s.id.clone(),
                what: format!("start (it is {})", s.status),
                source: std::io::Error::other("only a created container can be started"),
            });
        }
        match self.start(containers, &Request::Monitor { id: s.id.clone() })? {
            Started::Running { pid } => Ok(pid),
            Started::Failed { exit_code, message } => Err(Error::Start {
                id: s.id,
                exit_code,
                message,
            }),
        }
    }

    /// Starts what `req` asks for and answers its ready line.
    pub fn start(&self, containers: &Containers, req: &Request) -> Result<Started, Error> {
        if let Some(z) = &self.zygote {
            match z.spawn(req) {
                Ok(started) => return Ok(started),
                Err(e) => tracing::warn!("shim zygote unavailable ({e}): exec'ing the shim"),
            }
        }
        match req {
            Request::Monitor { id } => spawn(&self.path, containers, &["monitor", id]),
            Request::Pause { hostname } => {
                spawn(&self.path, containers, &["pause", "--hostname", hostname])
            }
        }
    }
}

/// Runs `shim` with `args` and reads its ready line.
pub fn spawn(shim: &Path, containers: &Containers, args: &[&str]) -> Result<Started, Error> {
    let mut child = Command::new(shim)
        .arg("--data-dir")
        .arg(&containers.data_dir)
        .arg("--node-name")
        .arg(&containers.node)
        .arg("shim")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Io {
            id: args.join(" "),
            what: format!("start {}", shim.display()),
            source,
        })?;
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let _ = child.wait();
    Ok(Started::decode(&out))
}
