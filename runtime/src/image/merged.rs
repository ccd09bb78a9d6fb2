//! Reading paths out of an image's stack of layer dirs without mounting
//! it: what overlayfs would show, for `COPY --from` in multi-stage builds.
//!
//! Symlinks met on the way are resolved inside the image (never on the
//! host: `layer/bin` may be a link to `/usr/bin`), whiteouts hide what is
//! below them and opaque directories hide the lower directories' entries.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::error::{ImageError, IoContext, Result};

const MAX_LINKS: usize = 40;

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid NUL-terminated strings and a writable buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// The topmost layer's entry for `rel` (components already free of
/// symlinks), or `None` if absent or whited out.
fn top_entry(layers: &[PathBuf], rel: &str) -> Option<(PathBuf, fs::Metadata)> {
    for layer in layers.iter().rev() {
        let p = layer.join(rel);
        if let Ok(meta) = fs::symlink_metadata(&p) {
            return (!is_whiteout(&meta)).then_some((p, meta));
        }
        // An opaque parent dir in this layer hides the lower layers.
        let parent = Path::new(rel)
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|parent| is_opaque(&layer.join(parent))) {
            return None;
        }
    }
    None
}

/// Resolves `path` (absolute in the image) to a path free of symlinks in
/// its directory components, following links inside the image.
pub fn resolve(layers: &[PathBuf], path: &str) -> Result<String> {
    let mut pending: Vec<String> = split(path);
    pending.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(comp) = pending.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(comp);
        let is_last = pending.is_empty();
        let rel = done.join("/");
        let Some((p, meta)) = top_entry(layers, &rel) else {
            continue;
        };
        if meta.file_type().is_symlink() && !is_last {
            hops += 1;
            if hops > MAX_LINKS {
                return Err(ImageError::invalid(format!(
                    "too many levels of symbolic links in {path}"
                )));
            }
            let target = fs::read_link(&p).ctx_path("read link", &p)?;
            let target = target.to_string_lossy();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for c in split(&target).into_iter().rev() {
                pending.push(c);
            }
        }
    }
    Ok(done.join("/"))
}

fn split(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Copies what the image shows at `rel` (resolved) to `dest`; returns
/// false if the image has nothing there.
pub fn copy_out(layers: &[PathBuf], rel: &str, dest: &Path) -> Result<bool> {
    let mut found = false;
    for layer in layers {
        let p = layer.join(rel);
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if is_whiteout(&meta) {
            remove(dest)?;
            found = false;
        } else if meta.is_dir() {
            let dest_is_dir = fs::symlink_metadata(dest)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if !dest_is_dir || is_opaque(&p) {
                remove(dest)?;
            }
            fs::create_dir_all(dest).ctx_path("create", dest)?;
            fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .ctx_path("chmod", dest)?;
            merge_dir(&p, dest)?;
            found = true;
        } else {
            remove(dest)?;
            copy_node(&p, &meta, dest)?;
            found = true;
        }
    }
    Ok(found)
}

/// Applies one layer's directory `src` onto `dest`.
fn merge_dir(src: &Path, dest: &Path) -> Result<()> {
    for entry in fs::read_dir(src).ctx_path("read", src)? {
        let entry = entry.ctx_path("read", src)?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).ctx_path("stat", &from)?;
        if is_whiteout(&meta) {
            remove(&to)?;
        } else if meta.is_dir() {
            let to_is_dir = fs::symlink_metadata(&to)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if !to_is_dir || is_opaque(&from) {
                remove(&to)?;
            }
            fs::create_dir_all(&to).ctx_path("create", &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .ctx_path("chmod", &to)?;
            merge_dir(&from, &to)?;
        } else {
            remove(&to)?;
            copy_node(&from, &meta, &to)?;
        }
    }
    Ok(())
}

fn copy_node(from: &Path, meta: &fs::Metadata, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).ctx_path("create", parent)?;
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).ctx_path("read link", from)?;
        symlink(target, to).ctx_path("create symlink", to)?;
    } else if meta.is_file() {
        fs::copy(from, to).ctx(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx_path("chmod", to)?;
    }
    // Device nodes, fifos and sockets are not copied (as Docker's COPY).
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).ctx_path("remove", path),
        Ok(_) => fs::remove_file(path).ctx_path("remove", path),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_links_inside_the_image_and_merges_layers() {
        let root = tempfile::tempdir().unwrap();
        let l0 = root.path().join("l0");
        let l1 = root.path().join("l1");
        fs::create_dir_all(l0.join("usr/bin")).unwrap();
        fs::write(l0.join("usr/bin/app"), "v0").unwrap();
        fs::write(l0.join("usr/bin/old"), "old").unwrap();
        symlink("/usr/bin", l0.join("bin")).unwrap();
        fs::create_dir_all(l1.join("usr/bin")).unwrap();
        fs::write(l1.join("usr/bin/app"), "v1").unwrap();
        let layers = vec![l0, l1];

        // /bin is a link to /usr/bin in the image, not the host's /usr/bin.
        assert_eq!(resolve(&layers, "/bin/app").unwrap(), "usr/bin/app");
        assert_eq!(
            resolve(&layers, "/usr/../bin/./app").unwrap(),
            "usr/bin/app"
        );

        let out = root.path().join("out");
        assert!(copy_out(&layers, "usr/bin", &out).unwrap());
        assert_eq!(fs::read_to_string(out.join("app")).unwrap(), "v1");
        assert_eq!(fs::read_to_string(out.join("old")).unwrap(), "old");
        assert!(!copy_out(&layers, "nothing/here", &root.path().join("none")).unwrap());
    }
}
