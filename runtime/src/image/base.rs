//! Base images made on this host, without any registry: `busybox:latest`
//! from Debian's busybox-static binary, so `FROM busybox` works on a fresh
//! machine.
//!
//! The image is one layer: `/bin/busybox`, a symlink for every applet it
//! lists (`busybox --list-full`), a minimal `/etc` (passwd, group with root
//! and nobody) and the usual empty top-level directories.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::digest::Digest;
use super::error::{ImageError, IoContext, Result};
use super::layer::PackOptions;
use super::oci::{self, History, OciConfig};
use super::reference::TaggedName;
use super::store::ImageStore;

/// The base images kc knows how to make.
pub const KNOWN_BASES: &[&str] = &["busybox"];

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n";

/// Makes base image `base` (one of `KNOWN_BASES`) and tags it `tag`.
/// Returns the manifest digest.
pub fn make_base(store: &ImageStore, base: &str, tag: &TaggedName) -> Result<Digest> {
    match base {
        "busybox" => make_busybox(store, tag),
        other => Err(ImageError::invalid(format!(
            "unknown base image {other:?}: kc can make {KNOWN_BASES:?}"
        ))),
    }
}

fn make_busybox(store: &ImageStore, tag: &TaggedName) -> Result<Digest> {
    let busybox = find_static_busybox()?;
    let applets = list_applets(&busybox)?;
    let mut tx = store.begin()?;
    let root = tx.scratch_dir("busybox-")?;
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "var", "home",
        "root", "tmp",
    ] {
        fs::create_dir_all(root.join(dir)).ctx_path("create", &root.join(dir))?;
    }
    set_mode(&root.join("tmp"), 0o1777)?;
    set_mode(&root.join("root"), 0o700)?;
    let target = root.join("bin/busybox");
    fs::copy(&busybox, &target).ctx(|| format!("cannot copy {}", busybox.display()))?;
    set_mode(&target, 0o755)?;
    for applet in &applets {
        let link = root.join(applet);
        if link == target || link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).ctx_path("create", parent)?;
        }
        symlink("/bin/busybox", &link).ctx_path("create symlink", &link)?;
    }
    fs::write(root.join("etc/passwd"), PASSWD).ctx_path("write", &root.join("etc/passwd"))?;
    fs::write(root.join("etc/group"), GROUP).ctx_path("write", &root.join("etc/group"))?;
    // Fixed owner and times: the same busybox always makes the same layer.
    let pack = PackOptions {
        owner: Some((0, 0)),
        mtime: Some(0),
    };
    let layer = tx.add_layer_dir(&root, pack)?;

    let mut config = OciConfig::new_for_host();
    config.created = Some(oci::now_rfc3339());
    config.config.env = Some(vec![PATH_ENV.to_string()]);
    config.config.cmd = Some(vec!["sh".to_string()]);
    config.rootfs.diff_ids = vec![layer.digest.clone()];
    config.history = vec![History {
        created: config.created.clone(),
        created_by: Some(format!(
            "kcnode image base busybox (from {})",
            busybox.display()
        )),
        empty_layer: false,
    }];
    let manifest = tx.add_image(&config, vec![layer])?;
    tx.tag(tag.clone(), manifest.clone());
    tx.commit()?;
    Ok(manifest)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx_path("chmod", path)
}

/// The host's busybox, which must be statically linked (Debian's
/// busybox-static) to run inside an image with no libraries.
fn find_static_busybox() -> Result<PathBuf> {
    let candidates = ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"];
    let path = candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ImageError::invalid(
                "busybox is not installed on this host: apt-get install busybox-static",
            )
        })?;
    let mut data = Vec::new();
    fs::File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .ctx_path("read", &path)?;
    match elf_has_interpreter(&data) {
        Some(false) => Ok(path),
        Some(true) => Err(ImageError::invalid(format!(
            "{} is dynamically linked and would not run in an image without libraries: apt-get install busybox-static",
            path.display()
        ))),
        None => Err(ImageError::invalid(format!(
            "{} is not a 64-bit ELF executable",
            path.display()
        ))),
    }
}

/// Whether a 64-bit little-endian ELF has a PT_INTERP program header
/// (i.e. is dynamically linked); `None` if it is not such an ELF.
fn elf_has_interpreter(data: &[u8]) -> Option<bool> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(
            data.get(phoff + i * phentsize..phoff + i * phentsize + 4)?
                .try_into()
                .ok()?,
        );
        if p_type == 3 {
            return Some(true);
        }
    }
    Some(false)
}

/// The applet paths (`bin/ls`, `usr/bin/awk`, ...) busybox installs.
fn list_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .ctx(|| format!("cannot run {} --list-full", busybox.display()))?;
    if !out.status.success() {
        return Err(ImageError::invalid(format!(
            "{} --list-full failed ({}): is it a full busybox build?",
            busybox.display(),
            out.status
        )));
    }
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.contains(".."))
        .collect();
    Ok(applets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic_elf() {
        let bb = fs::read("/bin/busybox").or_else(|_| fs::read("/usr/bin/busybox"));
        if let Ok(bb) = bb {
            assert_eq!(
                elf_has_interpreter(&bb),
                Some(false),
                "Debian's busybox-static is static"
            );
        }
        let ls = fs::read("/bin/ls").expect("/bin/ls exists on Debian");
        assert_eq!(elf_has_interpreter(&ls), Some(true));
        assert_eq!(elf_has_interpreter(b"#!/bin/sh\n"), None);
    }
}
