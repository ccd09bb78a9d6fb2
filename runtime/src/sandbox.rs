//! Pod sandboxes: network, IPC and UTS namespaces shared by the containers
//! of one pod (they talk over one localhost and share a hostname), while
//! each container keeps its own PID and mount namespaces.
//!
//! A sandbox is a holder process (`kcnode shim pause`, like Kubernetes'
//! pause container) that owns the namespaces; containers join them through
//! `/proc/<holder>/ns/{net,ipc,uts}`. Its record is
//! `<data-dir>/sandboxes/<id>/sandbox.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::container::monitor::Started;
use crate::container::ops::{Containers, Error};
use crate::container::shim::Shim;
use crate::container::spec::{NamespaceMode, SharedNamespaces};
use crate::container::state::{new_id, now_rfc3339};
use crate::container::zygote::Request;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: String,
    pub name: String,
    pub hostname: String,
    /// The holder process.
    pub pid: i32,
    pub created_at: String,
}

impl Sandbox {
    /// The namespaces a container of this sandbox joins.
    pub fn namespaces(&self) -> SharedNamespaces {
        let ns = |kind: &str| {
            NamespaceMode::Join(PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid)))
        };
        SharedNamespaces {
            network: ns("net"),
            ipc: ns("ipc"),
            uts: ns("uts"),
        }
    }
}

pub use crate::container::shim_process::HOLDER_NAME;

/// Whether `pid` is (still) a sandbox holder, not a process that reused
/// its PID: named `HOLDER_NAME`, or an exec'd `kcnode shim pause` of an
/// older kcnode.
pub fn is_holder(pid: i32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim_end() == HOLDER_NAME {
        return true;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains("shim\0pause")
}

fn sandboxes_dir(c: &Containers) -> PathBuf {
    c.data_dir.join("sandboxes")
}

fn record(c: &Containers, id: &str) -> PathBuf {
    sandboxes_dir(c).join(id).join("sandbox.json")
}

fn io(id: &str, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let (id, what) = (id.to_string(), what.to_string());
    move |source| Error::Io { id, what, source }
}

impl Containers {
    /// Starts a sandbox's holder through `shim` (forked by the zygote or
    /// an exec of the kcnode binary).
    pub fn create_sandbox(
        &self,
        shim: &Shim,
        name: &str,
        hostname: &str,
    ) -> Result<Sandbox, Error> {
        let id = new_id();
        let req = Request::Pause {
            hostname: hostname.to_string(),
        };
        let pid = match shim.start(self, &req)? {
            Started::Running { pid } => pid,
            Started::Failed { exit_code, message } => {
                return Err(Error::Start {
                    id,
                    exit_code,
                    message,
                });
            }
        };
        let sb = Sandbox {
            id: id.clone(),
            name: name.to_string(),
            hostname: hostname.to_string(),
            pid,
            created_at: now_rfc3339(),
        };
        let path = record(self, &id);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&sb).map_err(std::io::Error::other)?,
            )
        };
        if let Err(e) = write() {
            // SAFETY: kill of the holder we just started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err(io(&id, "write the sandbox record")(e));
        }
        Ok(sb)
    }

    pub fn sandbox(&self, id: &str) -> Result<Sandbox, Error> {
        let bytes = std::fs::read(record(self, id))
            .map_err(|_| Error::NotFound(format!("sandbox {id}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io(id, "read the sandbox record")(std::io::Error::other(e)))
    }

    /// Kills the holder (the namespaces go with it once no container uses
    /// them) and removes the record.
    pub fn remove_sandbox(&self, id: &str) -> Result<(), Error> {
        let sb = self.sandbox(id)?;
        if is_holder(sb.pid) {
            // SAFETY: kill of the holder whose identity we just checked.
            unsafe { libc::kill(sb.pid, libc::SIGKILL) };
        }
        std::fs::remove_dir_all(sandboxes_dir(self).join(id))
            .map_err(io(id, "remove the sandbox record"))
    }
}
