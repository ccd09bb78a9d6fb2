//! COPY and ADD: files from the build context (respecting .dockerignore,
//! globs, `--chown`, ADD's local archives) or, in multi-stage builds, from
//! an earlier stage or an image (`--from`), staged as the next layer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::context::{
    clean_relative, context_files, copy_entry, copy_tree, extract_local_archive, hash_tree,
    is_archive,
};
use super::{Builder, Change, join_abs};
use crate::image::dockerfile::{CopyArgs, Instruction};
use crate::image::error::{IoContext, Result};
use crate::image::layer::PackOptions;
use crate::image::merged;
use crate::image::oci::OciConfig;

impl Builder<'_> {
    /// What `COPY --from=X` copies from: a stage or an image; its
    /// manifest (for the cache key) and layer dirs.
    fn copy_source(&self, ins: &Instruction, from: &str) -> Result<(String, Vec<PathBuf>)> {
        let from = self.expand(ins, from)?;
        let manifest = match self.stage(&from) {
            Some(stage) => stage.manifest.clone(),
            None => Some(self.store.lookup(&from).map_err(|e| {
                Self::err(
                    ins,
                    format!("--from={from} is neither an earlier stage nor an image: {e}"),
                )
            })?),
        };
        let layers = match &manifest {
            Some(m) => self.store.layer_dirs(&self.store.image(m)?)?,
            None => Vec::new(),
        };
        Ok((manifest.map(|m| m.to_string()).unwrap_or_default(), layers))
    }

    /// The sources of a COPY/ADD: `(path in the context, relative name)`.
    fn sources(&self, ins: &Instruction, args: &CopyArgs) -> Result<Vec<(PathBuf, String)>> {
        if args.from.is_some() {
            return Err(Self::err(
                ins,
                "COPY --from (multi-stage builds) is not supported yet",
            ));
        }
        let mut out = Vec::new();
        for src in &args.sources {
            let src = self.expand(ins, src)?;
            if src.starts_with("http://") || src.starts_with("https://") {
                return Err(Self::err(
                    ins,
                    format!(
                        "{src}: ADD from a URL is not supported (builds have no network): download it and COPY it"
                    ),
                ));
            }
            let rel = clean_relative(&src)
                .ok_or_else(|| Self::err(ins, format!("{src:?} is outside the build context")))?;
            if rel.contains(['*', '?', '[']) {
                let glob = globset::GlobBuilder::new(&rel)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Self::err(ins, format!("bad pattern {src:?}: {e}")))?
                    .compile_matcher();
                let mut matched = context_files(&self.opts.context, "", &self.ignore)?
                    .into_iter()
                    .filter(|r| glob.is_match(r))
                    .collect::<Vec<_>>();
                matched.sort();
                if matched.is_empty() {
                    return Err(Self::err(
                        ins,
                        format!("no file in the build context matches {src:?}"),
                    ));
                }
                out.extend(matched.into_iter().map(|r| (self.opts.context.join(&r), r)));
                continue;
            }
            let path = self.opts.context.join(&rel);
            if (!rel.is_empty() && self.ignore.is_excluded(&rel))
                || fs::symlink_metadata(&path).is_err()
            {
                return Err(Self::err(
                    ins,
                    format!("{src}: file not found in build context or excluded by .dockerignore"),
                ));
            }
            out.push((path, rel));
        }
        Ok(out)
    }

    /// A hash of the sources' names, modes and contents (the cache key part).
    pub(super) fn sources_hash(&self, ins: &Instruction, args: &CopyArgs) -> Result<String> {
        if let Some(from) = &args.from {
            // The stage's (or image's) manifest pins its whole content.
            return Ok(format!("from:{}", self.copy_source(ins, from)?.0));
        }
        let mut h = Sha256::new();
        for (path, rel) in self.sources(ins, args)? {
            h.update(rel.as_bytes());
            hash_tree(&mut h, &path, &rel, &self.ignore)?;
        }
        Ok(hex::encode(h.finalize()))
    }

    pub(super) fn copy(
        &mut self,
        ins: &Instruction,
        args: &CopyArgs,
        config: &OciConfig,
        add: bool,
    ) -> Result<Change> {
        if let Some(from) = &args.from {
            return self.copy_from(ins, from, args, config);
        }
        let sources = self.sources(ins, args)?;
        let dest_word = self.expand(ins, &args.dest)?;
        let workdir = config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string());
        let dest = join_abs(&workdir, &dest_word);
        let dest_is_dir = dest_word.ends_with('/')
            || self.is_dir_in_image(&dest)?
            || sources.len() > 1
            || sources.iter().any(|(p, _)| p.is_dir())
            || dest_word == ".";
        let owner = match &args.chown {
            Some(spec) => Some(self.owner(ins, &self.expand(ins, spec)?)?),
            None => Some((0, 0)),
        };
        let stage = self.staging("copy-")?;
        let root = stage.path().join("root");
        let dest_path = root.join(dest.trim_start_matches('/'));
        for (src, rel) in &sources {
            let meta = fs::metadata(src).ctx_path("stat", src)?;
            if meta.is_dir() {
                fs::create_dir_all(&dest_path).ctx_path("create", &dest_path)?;
                copy_tree(src, &dest_path, rel, &self.ignore)?;
            } else if add && is_archive(src)? {
                fs::create_dir_all(&dest_path).ctx_path("create", &dest_path)?;
                extract_local_archive(src, &dest_path).map_err(|e| Self::err(ins, e))?;
            } else {
                let target = if dest_is_dir {
                    let name = src.file_name().unwrap_or_default();
                    dest_path.join(name)
                } else {
                    dest_path.clone()
                };
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).ctx_path("create", parent)?;
                }
                copy_entry(src, &target)?;
            }
        }
        finish(stage, root, &dest_path, owner, args.chmod)
    }

    /// `COPY --from=stage|image SRC... DEST`: sources are paths in that
    /// stage's or image's filesystem.
    fn copy_from(
        &mut self,
        ins: &Instruction,
        from: &str,
        args: &CopyArgs,
        config: &OciConfig,
    ) -> Result<Change> {
        let (_, layers) = self.copy_source(ins, from)?;
        let dest_word = self.expand(ins, &args.dest)?;
        let workdir = config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string());
        let dest = join_abs(&workdir, &dest_word);
        let owner = match &args.chown {
            Some(spec) => Some(self.owner(ins, &self.expand(ins, spec)?)?),
            None => None,
        };
        let stage = self.staging("copy-")?;
        let root = stage.path().join("root");
        let dest_path = root.join(dest.trim_start_matches('/'));
        let many = args.sources.len() > 1;
        let dest_dir = dest_word.ends_with('/') || many || self.is_dir_in_image(&dest)?;
        for (i, src) in args.sources.iter().enumerate() {
            let src = self.expand(ins, src)?;
            if src.contains(['*', '?', '[']) {
                return Err(Self::err(
                    ins,
                    "wildcards in COPY --from sources are not supported",
                ));
            }
            let rel = merged::resolve(&layers, &join_abs("/", &src))?;
            let probe = stage.path().join(format!("src-{i}"));
            if !merged::copy_out(&layers, &rel, &probe)? {
                return Err(Self::err(ins, format!("{src}: not found in --from={from}")));
            }
            if probe.is_dir() {
                fs::create_dir_all(&dest_path).ctx_path("create", &dest_path)?;
                for entry in fs::read_dir(&probe).ctx_path("read", &probe)? {
                    let entry = entry.ctx_path("read", &probe)?;
                    let to = dest_path.join(entry.file_name());
                    if to.is_dir() {
                        fs::remove_dir_all(&to).ctx_path("replace", &to)?;
                    }
                    fs::rename(entry.path(), &to).ctx_path("move", &to)?;
                }
            } else {
                let target = if dest_dir {
                    dest_path.join(Path::new(&rel).file_name().unwrap_or_default())
                } else {
                    dest_path.clone()
                };
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).ctx_path("create", parent)?;
                }
                fs::rename(&probe, &target).ctx_path("move", &target)?;
            }
        }
        finish(stage, root, &dest_path, owner, args.chmod)
    }
}

/// The staged COPY as the step's layer, after `--chmod` (on the copied
/// file, or on everything inside the destination directory, as Docker).
fn finish(
    stage: tempfile::TempDir,
    root: PathBuf,
    dest_path: &Path,
    owner: Option<(u64, u64)>,
    chmod: Option<u32>,
) -> Result<Change> {
    fs::create_dir_all(&root).ctx_path("create", &root)?;
    if let Some(mode) = chmod {
        if dest_path.is_dir() {
            chmod_inside(dest_path, mode)?;
        } else {
            fs::set_permissions(dest_path, fs::Permissions::from_mode(mode))
                .ctx_path("chmod", dest_path)?;
        }
    }
    Ok(Change::Layer {
        _staging: stage,
        root,
        pack: PackOptions { owner, mtime: None },
    })
}

fn chmod_inside(dir: &Path, mode: u32) -> Result<()> {
    for entry in fs::read_dir(dir).ctx_path("read", dir)? {
        let path = entry.ctx_path("read", dir)?.path();
        let meta = fs::symlink_metadata(&path).ctx_path("stat", &path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            chmod_inside(&path, mode)?;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).ctx_path("chmod", &path)?;
    }
    Ok(())
}
