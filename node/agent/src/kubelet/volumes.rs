//! Pod volumes on the node: emptyDir (a directory under the pod's dir, or a
//! tmpfs for `medium: Memory`, removed with the pod), hostPath (the host's
//! path, created for DirectoryOrCreate), configMap and secret (the object's
//! keys written as files into the pod's dir, mounted read-only). Each
//! container's `volumeMounts` become bind mounts of the runtime spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod};
use kc_runtime::container::spec::Volume as Bind;

use super::ConfigSource;
use super::env::object_data;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {what} {name:?} not found")]
    Missing {
        volume: String,
        what: &'static str,
        name: String,
    },
    #[error("volume {volume:?}: {message}")]
    Other { volume: String, message: String },
    #[error("volumeMount {0:?} names no volume of the pod")]
    NoSuchVolume(String),
    #[error("volumeMount {mount:?}: {message}")]
    Mount { mount: String, message: String },
}

/// `<data-dir>/kubelet/pod-dirs/<uid>`: the pod's files on the node.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("kubelet").join("pod-dirs").join(uid)
}

fn other(volume: &str, e: impl std::fmt::Display) -> VolumeError {
    VolumeError::Other {
        volume: volume.to_string(),
        message: e.to_string(),
    }
}

/// Makes every volume of the pod exist on the node (idempotent; configMap
/// and secret contents are rewritten each call so updates show); answers
/// volume name -> host path.
pub async fn prepare(
    pod: &Pod,
    dir: &Path,
    src: &dyn ConfigSource,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = BTreeMap::new();
    let vols = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in vols {
        let path = dir.join("volumes").join(&v.name);
        if let Some(e) = &v.empty_dir {
            std::fs::create_dir_all(&path).map_err(|e| other(&v.name, e))?;
            if e.medium.as_deref() == Some("Memory") && !is_mountpoint(&path) {
                nix::mount::mount(
                    Some("tmpfs"),
                    &path,
                    Some("tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    None::<&str>,
                )
                .map_err(|e| other(&v.name, format!("mount tmpfs: {e}")))?;
            }
            out.insert(v.name.clone(), path);
        } else if let Some(h) = &v.host_path {
            let p = PathBuf::from(&h.path);
            if !p.is_absolute() {
                return Err(other(&v.name, "hostPath must be absolute"));
            }
            match h.type_.as_deref() {
                Some("DirectoryOrCreate") => {
                    std::fs::create_dir_all(&p).map_err(|e| other(&v.name, e))?
                }
                Some("Directory") if !p.is_dir() => {
                    return Err(other(&v.name, format!("{} is not a directory", h.path)));
                }
                Some("File") if !p.is_file() => {
                    return Err(other(&v.name, format!("{} is not a file", h.path)));
                }
                _ => {}
            }
            out.insert(v.name.clone(), p);
        } else if let Some(c) = &v.config_map {
            let data = object_data(src, ns, &c.name, false)
                .await
                .map_err(|e| other(&v.name, e))?;
            let data = match (data, c.optional) {
                (Some(d), _) => d,
                (None, Some(true)) => BTreeMap::new(),
                (None, _) => {
                    return Err(VolumeError::Missing {
                        volume: v.name.clone(),
                        what: "configmap",
                        name: c.name.clone(),
                    });
                }
            };
            write_files(&path, &data, c.items.as_deref()).map_err(|e| other(&v.name, e))?;
            out.insert(v.name.clone(), path);
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let data = object_data(src, ns, &name, true)
                .await
                .map_err(|e| other(&v.name, e))?;
            let data = match (data, s.optional) {
                (Some(d), _) => d,
                (None, Some(true)) => BTreeMap::new(),
                (None, _) => {
                    return Err(VolumeError::Missing {
                        volume: v.name.clone(),
                        what: "secret",
                        name,
                    });
                }
            };
            write_files(&path, &data, s.items.as_deref()).map_err(|e| other(&v.name, e))?;
            out.insert(v.name.clone(), path);
        } else {
            return Err(other(
                &v.name,
                "unsupported volume type (kc supports emptyDir, hostPath, configMap, secret)",
            ));
        }
    }
    Ok(out)
}

/// Writes `data` as files (all keys, or only `items` at their paths).
pub fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files: Vec<(String, &Vec<u8>)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| data.get(&i.key).map(|d| (i.path.clone(), d)))
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    for (rel, bytes) in files {
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return Err(std::io::Error::other(format!("bad item path {rel:?}")));
        }
        let p = dir.join(&rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, bytes)?;
    }
    Ok(())
}

/// Writes the pod's resolv.conf (`dns::resolv::for_pod`, from the node's
/// /etc/resolv.conf and `cluster_dns`) into its directory; answers the bind
/// that puts it at /etc/resolv.conf in each container.
pub fn resolv_conf(
    pod: &Pod,
    dir: &Path,
    cluster_dns: Option<std::net::IpAddr>,
) -> std::io::Result<Bind> {
    let node = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = crate::dns::resolv::for_pod(pod, cluster_dns, &node);
    std::fs::create_dir_all(dir)?;
    let host = dir.join("resolv.conf");
    std::fs::write(&host, text)?;
    Ok(Bind {
        host,
        container: "/etc/resolv.conf".into(),
        read_only: false,
    })
}

/// The container's bind mounts for its `volumeMounts`.
pub fn binds(
    c: &Container,
    vols: &BTreeMap<String, PathBuf>,
    pod: &Pod,
) -> Result<Vec<Bind>, VolumeError> {
    let read_only_kind = |name: &str| {
        pod.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == name))
            .is_some_and(|v| v.config_map.is_some() || v.secret.is_some())
    };
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let host = vols
                .get(&m.name)
                .ok_or_else(|| VolumeError::NoSuchVolume(m.name.clone()))?;
            let sub = m.sub_path.clone().unwrap_or_default();
            if sub.starts_with('/') || sub.split('/').any(|c| c == "..") {
                return Err(VolumeError::Mount {
                    mount: m.mount_path.clone(),
                    message: "subPath must be relative and stay inside the volume".into(),
                });
            }
            if !m.mount_path.starts_with('/') {
                return Err(VolumeError::Mount {
                    mount: m.mount_path.clone(),
                    message: "mountPath must be absolute".into(),
                });
            }
            let host = if sub.is_empty() {
                host.clone()
            } else {
                let p = host.join(&sub);
                if !p.exists() {
                    let _ = std::fs::create_dir_all(&p);
                }
                p
            };
            Ok(Bind {
                host,
                container: m.mount_path.clone().into(),
                read_only: m.read_only == Some(true) || read_only_kind(&m.name),
            })
        })
        .collect()
}

fn is_mountpoint(p: &Path) -> bool {
    let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = p.to_string_lossy();
    m.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == p))
}

/// Removes the pod's files (unmounting memory emptyDirs first).
pub fn teardown(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir.join("volumes")) {
        for e in entries.flatten() {
            if is_mountpoint(&e.path()) {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_for_keys_or_items() {
        let dir = tempfile::tempdir().unwrap();
        let data: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]
        .into_iter()
        .collect();
        write_files(dir.path(), &data, None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"2");
        let items = [KeyToPath {
            key: "a".into(),
            path: "sub/x.txt".into(),
            ..Default::default()
        }];
        write_files(&dir.path().join("i"), &data, Some(&items)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("i/sub/x.txt")).unwrap(), b"1");
        assert!(!dir.path().join("i/b").exists());
        let bad = [KeyToPath {
            key: "a".into(),
            path: "../x".into(),
            ..Default::default()
        }];
        assert!(write_files(&dir.path().join("j"), &data, Some(&bad)).is_err());
    }
}
