//! Layers as tar streams and as directories, both ways.
//!
//! `unpack` turns a layer tar (plain or gzip) into a directory that can be
//! an overlayfs lower dir: OCI whiteouts (`.wh.name`, `.wh..wh..opq`) become
//! overlayfs whiteouts (a 0/0 character device, the xattr
//! `trusted.overlay.opaque=y`), and the uncompressed stream is hashed so its
//! diff id is checked against the image config. `pack` goes the other way,
//! from a directory (a build step's overlay upper dir or a staged COPY) to a
//! layer tar, turning overlayfs whiteouts back into OCI ones.

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, IoContext, Result, root_cause};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks a layer tar (gzip detected by its magic bytes) into `dest`,
/// which must exist and be empty. Returns the digest of the uncompressed
/// tar (the layer's diff id). `what` names the layer in errors.
pub fn unpack(reader: impl Read, dest: &Path, what: &str) -> Result<Digest> {
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let head = buffered.fill_buf().ctx(|| format!("cannot read {what}"))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let plain: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader::new(plain);
    unpack_entries(&mut hashing, dest, what)?;
    let (digest, _) = hashing
        .finish()
        .ctx(|| format!("{what} is corrupt or truncated"))?;
    Ok(digest)
}

fn unpack_entries(reader: &mut dyn Read, dest: &Path, what: &str) -> Result<()> {
    let corrupt = |e: io::Error| {
        ImageError::invalid(format!(
            "{what} is not a valid layer tar (corrupt or truncated?): {e}"
        ))
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let rel = safe_relative(&path).ok_or_else(|| {
            ImageError::invalid(format!(
                "{what}: entry {} escapes the layer root",
                path.display()
            ))
        })?;
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some(OPAQUE_MARKER) => {
                let dir = parent_inside(dest, &rel, what)?;
                set_xattr(&dir, OPAQUE_XATTR, b"y")?;
            }
            Some(n) if n.starts_with(WHITEOUT_PREFIX) => {
                let hidden = &n[WHITEOUT_PREFIX.len()..];
                if hidden.is_empty() || hidden == "." || hidden == ".." {
                    return Err(ImageError::invalid(format!(
                        "{what}: whiteout {} names no file",
                        rel.display()
                    )));
                }
                let parent = parent_inside(dest, &rel, what)?;
                make_whiteout(&parent.join(hidden))?;
            }
            _ if is_device(&entry) => {
                // Device nodes from an image could open the host's devices
                // (disks, memory) from inside a container: not unpacked.
                tracing::warn!("{what}: skipping device node {}", rel.display());
            }
            _ if entry.header().entry_type() == tar::EntryType::Char => {
                // 0/0: an overlay-style whiteout written as is.
                let parent = parent_inside(dest, &rel, what)?;
                match rel.file_name() {
                    Some(name) => make_whiteout(&parent.join(name))?,
                    None => {
                        return Err(ImageError::invalid(format!(
                            "{what}: device entry {} names no file",
                            rel.display()
                        )));
                    }
                }
            }
            _ => {
                let xattrs = kept_xattrs(&mut entry);
                let size = entry.header().entry_type().is_file().then(|| entry.size());
                // A hard link names its target: say which, since `tar`
                // refuses targets outside the layer with a bare EINVAL.
                let target = match entry.header().entry_type() {
                    tar::EntryType::Link => entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|t| format!(" (a hard link to {})", t.display())),
                    _ => None,
                };
                entry.unpack_in(dest).map_err(|e| {
                    ImageError::invalid(format!(
                        "{what}: cannot unpack {}{}: {}",
                        rel.display(),
                        target.as_deref().unwrap_or(""),
                        root_cause(&e)
                    ))
                })?;
                // `tar` stops quietly when the stream ends inside a file.
                if let Some(size) = size {
                    let got = fs::symlink_metadata(dest.join(&rel)).map_or(0, |m| m.len());
                    if got != size {
                        return Err(ImageError::invalid(format!(
                            "{what} is truncated: entry {} has {got} of its {size} bytes",
                            rel.display()
                        )));
                    }
                }
                for (name, value) in xattrs {
                    set_xattr(&dest.join(&rel), &name, &value)?;
                }
            }
        }
    }
    Ok(())
}

/// The directory of entry `rel` under `dest`, created if missing, refused
/// if any part of it is an earlier entry's symlink: whiteouts and opaque
/// markers are written by hand (not by `tar`, which checks this itself),
/// and a symlinked parent would put them outside the layer.
fn parent_inside(dest: &Path, rel: &Path, what: &str) -> Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ImageError::invalid(format!(
                    "{what}: entry {} escapes the layer root through the symlink {}",
                    rel.display(),
                    dir.strip_prefix(dest).unwrap_or(&dir).display()
                )));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(ImageError::invalid(format!(
                    "{what}: entry {} is under {}, which is not a directory",
                    rel.display(),
                    dir.strip_prefix(dest).unwrap_or(&dir).display()
                )));
            }
            Ok(_) => {}
            Err(_) => fs::create_dir(&dir).ctx_path("create", &dir)?,
        }
    }
    Ok(dir)
}

/// A block or character device other than 0/0 (an overlay whiteout).
fn is_device<R: Read>(entry: &tar::Entry<'_, R>) -> bool {
    let h = entry.header();
    match h.entry_type() {
        tar::EntryType::Block => true,
        tar::EntryType::Char => {
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            (major, minor) != (0, 0)
        }
        _ => false,
    }
}

/// The path with a leading `/` or `./` removed; `None` if it has `..`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn make_whiteout(path: &Path) -> Result<()> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod has no other preconditions.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::AlreadyExists {
            return Err(err)
                .ctx(|| format!("cannot make whiteout {} (needs root)", path.display()));
        }
    }
    Ok(())
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let c = cstring(path)?;
    let n = CString::new(name).expect("xattr names have no NUL");
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .ctx(|| format!("cannot set {name} on {} (needs root)", path.display()));
    }
    Ok(())
}

/// The xattrs a layer may carry onto files (PAX `SCHILY.xattr.*` records):
/// file capabilities and `user.*`. Others (`trusted.*` such as overlayfs'
/// own, `security.selinux`, ...) are not taken from images.
const PAX_XATTR: &str = "SCHILY.xattr.";
const CAPABILITY_XATTR: &str = "security.capability";

fn xattr_is_kept(name: &str) -> bool {
    name == CAPABILITY_XATTR || name.starts_with("user.")
}

fn kept_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Vec::new();
    };
    exts.flatten()
        .filter_map(|ext| {
            let name = ext.key().ok()?.strip_prefix(PAX_XATTR)?.to_string();
            xattr_is_kept(&name).then(|| (name, ext.value_bytes().to_vec()))
        })
        .collect()
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c = cstring(path).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: valid NUL-terminated strings and a writable buffer of the given length.
    let rc = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ImageError::invalid(format!("path {} contains a NUL byte", path.display())))
}

/// Options for `pack`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Force this owner on every entry (COPY's default root, or `--chown`).
    pub owner: Option<(u64, u64)>,
    /// Force this modification time on every entry (reproducible layers).
    pub mtime: Option<u64>,
}

/// Writes the tree under `dir` as a layer tar to `out`, entries sorted by
/// name, overlayfs whiteouts turned into OCI ones.
pub fn pack(dir: &Path, out: impl Write, opts: PackOptions) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    pack_dir(&mut builder, dir, Path::new(""), opts)?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .ctx(|| format!("cannot write the layer tar of {}", dir.display()))?;
    Ok(())
}

fn pack_dir<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    opts: PackOptions,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .ctx_path("read directory", &dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx_path("read directory", &dir)?;
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        let path = root.join(&rel_path);
        let meta = fs::symlink_metadata(&path).ctx_path("stat", &path)?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut wh_name = std::ffi::OsString::from(WHITEOUT_PREFIX);
            wh_name.push(&name);
            append_empty(b, &rel.join(wh_name), &path)?;
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        if let Some((uid, gid)) = opts.owner {
            header.set_uid(uid);
            header.set_gid(gid);
        }
        if let Some(mtime) = opts.mtime {
            header.set_mtime(mtime);
        }
        let fail = |e: io::Error| ImageError::Io {
            context: format!("cannot add {} to the layer", path.display()),
            cause: e,
        };
        if ft.is_dir() {
            header.set_size(0);
            b.append_data(&mut header, &rel_path, io::empty())
                .map_err(fail)?;
            if get_xattr(&path, OPAQUE_XATTR).as_deref() == Some(b"y") {
                append_empty(b, &rel_path.join(OPAQUE_MARKER), &path)?;
            }
            pack_dir(b, root, &rel_path, opts)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).ctx_path("read link", &path)?;
            header.set_size(0);
            b.append_link(&mut header, &rel_path, &target)
                .map_err(fail)?;
        } else if ft.is_file() {
            if let Some(cap) = get_xattr(&path, CAPABILITY_XATTR) {
                let key = format!("{PAX_XATTR}{CAPABILITY_XATTR}");
                b.append_pax_extensions([(key.as_str(), cap.as_slice())])
                    .map_err(fail)?;
            }
            let f = fs::File::open(&path).ctx_path("open", &path)?;
            b.append_data(&mut header, &rel_path, f).map_err(fail)?;
        } else {
            header.set_size(0);
            b.append_data(&mut header, &rel_path, io::empty())
                .map_err(fail)?;
        }
    }
    Ok(())
}

fn append_empty<W: Write>(b: &mut tar::Builder<W>, name: &Path, source: &Path) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(0);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    b.append_data(&mut header, name, io::empty()).ctx(|| {
        format!(
            "cannot add the whiteout for {} to the layer",
            source.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_reports_the_diff_id_of_the_uncompressed_tar() {
        let data = tar_of(&[("etc/hello", b"hi\n")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = unpack(&gz[..], dir.path(), "test layer").unwrap();
        assert_eq!(d, Digest::of_bytes(&data));
        assert_eq!(fs::read(dir.path().join("etc/hello")).unwrap(), b"hi\n");
    }

    #[test]
    fn unpack_refuses_escaping_paths() {
        let mut data = tar_of(&[("x", b"")]);
        // Rewrite the name in the header to "../x" (tar::Builder refuses to write it).
        data[..4].copy_from_slice(b"../x");
        let mut h = tar::Header::from_byte_slice(&data[..512]).clone();
        h.set_cksum();
        data[..512].copy_from_slice(h.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&data[..], dir.path(), "evil layer").unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
    }

    /// A symlink entry, then `entries` whose names go through it.
    fn through_symlink(target: &Path, entries: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "link", target).unwrap();
        for name in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, &b""[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_and_markers_never_go_through_a_symlink_or_up() {
        let outside = tempfile::tempdir().unwrap();
        for entry in [
            "link/.wh.victim",
            "link/.wh..wh..opq",
            "link/sub/file",
            ".wh...",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let data = through_symlink(outside.path(), &[entry]);
            let res = unpack(&data[..], dir.path(), "evil layer");
            assert!(res.is_err(), "{entry} unpacked");
            assert_eq!(
                fs::read_dir(outside.path()).unwrap().count(),
                0,
                "{entry} wrote outside the layer"
            );
        }
    }

    #[test]
    fn a_file_cut_short_is_an_error() {
        // A header claiming 8 GiB, one block of data, no end-of-archive marker.
        let mut data = tar_of(&[("big", &[7u8; 512])]);
        data.truncate(1024);
        let mut h = tar::Header::from_byte_slice(&data[..512]).clone();
        h.set_size(8 << 30);
        h.set_cksum();
        data[..512].copy_from_slice(h.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&data[..], dir.path(), "short layer").unwrap_err();
        assert!(err.to_string().contains("short layer"), "{err}");
    }

    #[test]
    fn truncated_layer_is_an_error() {
        let data = tar_of(&[("big", &[7u8; 4096])]);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&data[..1200], dir.path(), "short layer").is_err());
    }

    #[test]
    fn whiteouts_round_trip_between_oci_and_overlay() {
        // Needs root for mknod and trusted.* xattrs; CI runs as root.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (mknod, trusted.* xattrs): run it as root, as CI does");
        }
        let data = tar_of(&[
            ("a/.wh.gone", b""),
            ("b/.wh..wh..opq", b""),
            ("b/kept", b"k"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack(&data[..], dir.path(), "layer").unwrap();
        let wh = fs::symlink_metadata(dir.path().join("a/gone")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert_eq!(
            get_xattr(&dir.path().join("b"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );

        let mut out = Vec::new();
        pack(dir.path(), &mut out, PackOptions::default()).unwrap();
        let names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a", "a/.wh.gone", "b", "b/.wh..wh..opq", "b/kept"]);
    }

    #[test]
    fn device_nodes_are_not_unpacked_but_overlay_whiteouts_are() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, major, minor) in [("sda", 8, 0), ("gone", 0, 0)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Char);
            h.set_size(0);
            h.set_mode(0o600);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            b.append_data(&mut h, name, io::empty()).unwrap();
        }
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack(&data[..], dir.path(), "layer").unwrap();
        assert!(fs::symlink_metadata(dir.path().join("sda")).is_err());
        let wh = fs::symlink_metadata(dir.path().join("gone")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    }

    #[test]
    fn file_capabilities_survive_pack_and_unpack() {
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (security.* xattrs): run it as root, as CI does");
        }
        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("ping");
        fs::write(&file, b"#!").unwrap();
        // vfs_cap_data v2: effective, permitted = CAP_NET_RAW (13).
        let mut cap = Vec::new();
        for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            cap.extend_from_slice(&word.to_le_bytes());
        }
        set_xattr(&file, CAPABILITY_XATTR, &cap).unwrap();
        let mut out = Vec::new();
        pack(src.path(), &mut out, PackOptions::default()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&out[..], dest.path(), "layer").unwrap();
        assert_eq!(
            get_xattr(&dest.path().join("ping"), CAPABILITY_XATTR),
            Some(cap)
        );
    }
}
