//! The build context's files: path rules, `.dockerignore`-aware listing,
//! hashing (the COPY cache key) and copying into a layer's staging dir.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path};

use sha2::{Digest as _, Sha256};

use crate::image::dockerignore::DockerIgnore;
use crate::image::error::{IoContext, Result};
use crate::image::layer;

/// A context-relative path, normalised; `None` if it leaves the context.
pub(super) fn clean_relative(src: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Every non-ignored path under `context/rel`, relative to `context`.
pub(super) fn context_files(
    context: &Path,
    rel: &str,
    ignore: &DockerIgnore,
) -> Result<Vec<String>> {
    let dir = context.join(rel);
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).ctx_path("read", &dir)? {
        let entry = entry.ctx_path("read", &dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if ignore.is_excluded(&child) {
            continue;
        }
        if entry.file_type().ctx_path("stat", &entry.path())?.is_dir() {
            out.extend(context_files(context, &child, ignore)?);
        }
        out.push(child);
    }
    Ok(out)
}

pub(super) fn hash_tree(
    h: &mut Sha256,
    path: &Path,
    rel: &str,
    ignore: &DockerIgnore,
) -> Result<()> {
    let meta = fs::symlink_metadata(path).ctx_path("stat", path)?;
    h.update(format!("\0{rel}\0{:o}\0", meta.mode()).as_bytes());
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .ctx_path("read", path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()
            .ctx_path("read", path)?;
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if !ignore.is_excluded(&child) {
                hash_tree(h, &path.join(&name), &child, ignore)?;
            }
        }
    } else if meta.file_type().is_symlink() {
        h.update(
            fs::read_link(path)
                .ctx_path("read link", path)?
                .as_os_str()
                .as_encoded_bytes(),
        );
    } else {
        let mut f = fs::File::open(path).ctx_path("open", path)?;
        io::copy(&mut f, h).ctx_path("read", path)?;
    }
    Ok(())
}

/// Copies the contents of directory `src` into `dest`, skipping ignored paths.
pub(super) fn copy_tree(src: &Path, dest: &Path, rel: &str, ignore: &DockerIgnore) -> Result<()> {
    for entry in fs::read_dir(src).ctx_path("read", src)? {
        let entry = entry.ctx_path("read", src)?;
        let name = entry.file_name();
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        if ignore.is_excluded(&child_rel) {
            continue;
        }
        let from = entry.path();
        let to = dest.join(&name);
        if entry.file_type().ctx_path("stat", &from)?.is_dir() {
            fs::create_dir_all(&to).ctx_path("create", &to)?;
            let mode = fs::metadata(&from).ctx_path("stat", &from)?.permissions();
            fs::set_permissions(&to, mode).ctx_path("chmod", &to)?;
            copy_tree(&from, &to, &child_rel, ignore)?;
        } else {
            copy_entry(&from, &to)?;
        }
    }
    Ok(())
}

/// Copies one file or symlink (as a symlink), keeping its mode.
pub(super) fn copy_entry(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).ctx_path("stat", from)?;
    if to.exists() || to.is_symlink() {
        fs::remove_file(to).ctx_path("replace", to)?;
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).ctx_path("read link", from)?;
        symlink(target, to).ctx_path("create symlink", to)?;
    } else {
        fs::copy(from, to).ctx(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx_path("chmod", to)?;
    }
    Ok(())
}

/// Whether a file is a tar (plain or gzip) archive, which ADD extracts.
pub(super) fn is_archive(path: &Path) -> Result<bool> {
    let mut head = [0u8; 512];
    let mut f = fs::File::open(path).ctx_path("open", path)?;
    let n = read_up_to(&mut f, &mut head).ctx_path("read", path)?;
    Ok(head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar"))
}

pub(super) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub(super) fn extract_local_archive(src: &Path, dest: &Path) -> Result<()> {
    let f = fs::File::open(src).ctx_path("open", src)?;
    layer::unpack(f, dest, &format!("archive {}", src.display()))?;
    Ok(())
}
