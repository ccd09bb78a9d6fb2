//! The kubelet's bookkeeping of one pod, persisted as
//! `<data-dir>/kubelet/pods/<uid>.json`: its sandbox, the runtime id of each
//! container, restart counts, last terminations and back-off. A restarted
//! kcnode reads these records back and adopts the running containers (the
//! container monitors keep them alive meanwhile) instead of starting anew.
//! Writes go through a temporary file renamed over the old one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A sandbox the pod owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRef {
    pub id: String,
    /// Its holder process (whose namespaces the containers join).
    pub pid: i32,
}

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    pub container_id: String,
    pub exit_code: i32,
    /// OOMKilled, Completed or Error.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Where a container is now, as last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Option<String>,
    },
    Terminated(Termination),
}

impl Default for Observed {
    fn default() -> Self {
        Observed::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        }
    }
}

/// One container of the pod (init or app).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The current runtime container, if one was created.
    pub id: Option<String>,
    /// The run before it, kept (exited) for `logs --previous`.
    #[serde(default)]
    pub previous_id: Option<String>,
    /// Hash of the container's spec the current run was made from: a
    /// changed spec (e.g. a new image) restarts the container.
    #[serde(default)]
    pub spec_hash: u64,
    pub image: String,
    pub image_id: String,
    pub state: Observed,
    pub last_state: Option<Termination>,
    pub restart_count: i32,
    /// Restarts in the current crash streak (see `backoff`).
    pub streak: u32,
    /// Unix seconds before which the next restart must not happen.
    pub not_before: Option<i64>,
    /// The startup probe passed (or there is none) for the current run.
    pub started: bool,
    /// The readiness probe passes (or there is none) for the current run.
    pub ready: bool,
}

/// Everything the kubelet remembers about one pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub sandbox: Option<SandboxRef>,
    /// The sandbox's address on the pod network.
    #[serde(default)]
    pub pod_ip: Option<String>,
    pub start_time: Option<String>,
    pub init: BTreeMap<String, ContainerRecord>,
    pub containers: BTreeMap<String, ContainerRecord>,
    /// The pod was deleted; it is being torn down.
    #[serde(default)]
    pub deleting: bool,
}

pub fn pods_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("kubelet").join("pods")
}

fn path(data_dir: &Path, uid: &str) -> PathBuf {
    pods_dir(data_dir).join(format!("{uid}.json"))
}

/// The record of pod `uid`, if one was saved and can be read.
pub fn load(data_dir: &Path, uid: &str) -> Option<PodRecord> {
    let bytes = std::fs::read(path(data_dir, uid)).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("pod record {uid}: unreadable ({e}); starting afresh");
            None
        }
    }
}

/// Every saved record.
pub fn load_all(data_dir: &Path) -> Vec<PodRecord> {
    let Ok(entries) = std::fs::read_dir(pods_dir(data_dir)) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            load(data_dir, name.strip_suffix(".json")?)
        })
        .collect()
}

pub fn save(data_dir: &Path, rec: &PodRecord) -> std::io::Result<()> {
    let dir = pods_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{}.json.tmp", rec.uid));
    std::fs::write(&tmp, serde_json::to_vec_pretty(rec)?)?;
    std::fs::rename(&tmp, path(data_dir, &rec.uid))
}

pub fn remove(data_dir: &Path, uid: &str) {
    let _ = std::fs::remove_file(path(data_dir, uid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = PodRecord {
            uid: "u1".into(),
            name: "p".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        rec.containers.insert(
            "c".into(),
            ContainerRecord {
                id: Some("abc".into()),
                restart_count: 3,
                ..Default::default()
            },
        );
        save(dir.path(), &rec).unwrap();
        assert_eq!(load(dir.path(), "u1"), Some(rec.clone()));
        assert_eq!(load_all(dir.path()), vec![rec]);
        remove(dir.path(), "u1");
        assert_eq!(load(dir.path(), "u1"), None);
    }
}
