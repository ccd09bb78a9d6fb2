//! `kcnode build`: a Dockerfile and a context directory -> an image.
//!
//! The builder keeps an image state (a committed image in the store: its
//! manifest, config and layers) and runs the instructions in order, each
//! producing the next state: metadata steps (ENV, CMD, ...) only a new
//! config, COPY/ADD a layer made from the context, RUN a layer made from
//! the upper dir of the container that ran it (via [`StepRunner`]). Every
//! step after FROM is cached by (parent image, instruction after variable
//! expansion, build args, and for COPY/ADD a hash of the source files), so
//! rebuilding with nothing changed reuses every step and yields the same id.
//!
//! `copy.rs` has COPY/ADD (from the context or, multi-stage, from a stage),
//! `context.rs` the build context's files (ignore rules, hashing, copying).

mod context;
mod copy;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;
use crate::image::dockerfile::{self, CommandForm, Instruction, Kind};
use crate::image::dockerignore::DockerIgnore;
use crate::image::error::{ImageError, IoContext, Result};
use crate::image::layer::PackOptions;
use crate::image::oci::{self, History, OciConfig};
use crate::image::reference::TaggedName;
use crate::image::store::ImageStore;
use crate::image::{BuildRun, StepRunner};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile [default: `<context>/Dockerfile`].
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<TaggedName>,
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// Ignore the step cache.
    pub no_cache: bool,
}

/// The result: the image id and its manifest digest.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    pub manifest: Digest,
}

/// Builds the image; progress goes to `out` like `docker build`'s.
pub fn build(
    store: &ImageStore,
    runner: Option<&dyn StepRunner>,
    opts: &BuildOptions,
    out: &mut dyn Write,
) -> Result<Built> {
    let dockerfile_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = fs::read_to_string(&dockerfile_path)
        .ctx(|| format!("cannot read the Dockerfile {}", dockerfile_path.display()))?;
    let instructions = dockerfile::parse(&text)?;
    let ignore_path = opts.context.join(".dockerignore");
    let ignore = match fs::read_to_string(&ignore_path) {
        Ok(t) => DockerIgnore::parse(&t)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(e).ctx_path("read", &ignore_path),
    };
    if !opts.context.is_dir() {
        return Err(ImageError::invalid(format!(
            "build context {} is not a directory",
            opts.context.display()
        )));
    }
    let mut b = Builder {
        store,
        runner,
        opts,
        ignore,
        state: None,
        stages: Vec::new(),
        alias: None,
        args: BTreeMap::new(),
        out,
    };
    let total = instructions.len();
    for (i, ins) in instructions.iter().enumerate() {
        b.say(format_args!("Step {}/{total} : {}", i + 1, ins.text))?;
        b.step(ins)?;
    }
    let state = b
        .state
        .take()
        .ok_or_else(|| ImageError::invalid("the Dockerfile has no FROM"))?;
    let manifest = state.manifest.ok_or_else(|| {
        ImageError::invalid(
            "the Dockerfile only has FROM scratch: there is nothing to make an image of",
        )
    })?;
    let id = store.image(&manifest)?.id;
    if !opts.tags.is_empty() {
        let mut tx = store.begin()?;
        for t in &opts.tags {
            tx.tag(t.clone(), manifest.clone());
        }
        tx.commit()?;
    }
    b.say(format_args!("Successfully built {}", id.short()))?;
    for t in &opts.tags {
        b.say(format_args!("Successfully tagged {t}"))?;
    }
    Ok(Built { id, manifest })
}

/// The image being built: the last committed step (`None` for `FROM scratch`
/// before any step), its config and layers.
#[derive(Debug, Clone)]
struct State {
    manifest: Option<Digest>,
    config: OciConfig,
    layers: Vec<oci::Descriptor>,
}

struct Builder<'a> {
    store: &'a ImageStore,
    runner: Option<&'a dyn StepRunner>,
    opts: &'a BuildOptions,
    ignore: DockerIgnore,
    state: Option<State>,
    /// Finished stages of a multi-stage build, with their `AS` names.
    stages: Vec<(Option<String>, State)>,
    /// The current stage's `AS` name.
    alias: Option<String>,
    /// ARGs declared so far, with their values.
    args: BTreeMap<String, String>,
    out: &'a mut dyn Write,
}

/// A step's outcome before it is committed.
enum Change {
    Config,
    /// A directory to pack as a new layer (COPY staging, RUN upper),
    /// inside a staging dir that is removed when this is dropped.
    Layer {
        _staging: tempfile::TempDir,
        root: PathBuf,
        pack: PackOptions,
    },
}

impl Builder<'_> {
    fn say(&mut self, args: std::fmt::Arguments<'_>) -> Result<()> {
        writeln!(self.out, "{args}").ctx(|| "cannot write build output".to_string())
    }

    fn err(ins: &Instruction, msg: impl std::fmt::Display) -> ImageError {
        ImageError::Build(format!(
            "Dockerfile line {} ({}): {msg}",
            ins.line, ins.text
        ))
    }

    /// Variables visible to expansion: ARGs, then ENV over them.
    fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        if let Some(s) = &self.state {
            for e in s.config.config.env.iter().flatten() {
                if let Some((k, val)) = e.split_once('=') {
                    v.insert(k.to_string(), val.to_string());
                }
            }
        }
        v
    }

    fn expand(&self, ins: &Instruction, word: &str) -> Result<String> {
        dockerfile::expand(word, &self.vars(), ins.line)
    }

    fn step(&mut self, ins: &Instruction) -> Result<()> {
        match &ins.kind {
            Kind::From { image, alias } => return self.from(ins, image, alias.clone()),
            Kind::Arg { name, default } => {
                let value = match self.opts.build_args.get(name) {
                    Some(v) => Some(v.clone()),
                    None => default
                        .as_deref()
                        .map(|d| self.expand(ins, d))
                        .transpose()?,
                };
                self.args.insert(name.clone(), value.unwrap_or_default());
                if self.state.is_none() {
                    return Ok(());
                }
            }
            _ => {}
        }
        if self.state.is_none() {
            return Err(Self::err(ins, "comes before FROM"));
        }
        let content = match &ins.kind {
            Kind::Copy(a) | Kind::Add(a) => Some(self.sources_hash(ins, a)?),
            _ => None,
        };
        let key = self.cache_key(ins, content.as_deref())?;
        let cached = if self.opts.no_cache {
            None
        } else {
            self.store.cache_get(&key)?
        };
        if let Some(m) = cached {
            let img = self.store.image(&m)?;
            self.say(format_args!(" ---> Using cache"))?;
            self.say(format_args!(" ---> {}", img.id.short()))?;
            self.state = Some(State {
                manifest: Some(m),
                config: img.config,
                layers: img.manifest.layers,
            });
            return Ok(());
        }
        let mut next = self.state.clone().expect("checked above");
        let change = self.execute(ins, &mut next.config)?;
        self.commit(ins, next, change, key)
    }

    fn from(&mut self, ins: &Instruction, image: &str, alias: Option<String>) -> Result<()> {
        let image = self.expand(ins, image)?;
        if let Some(done) = self.state.take() {
            self.stages.push((self.alias.take(), done));
        }
        self.alias = alias;
        if let Some(stage) = self.stage(&image) {
            self.state = Some(stage.clone());
            self.say(format_args!(" ---> stage {image}"))?;
            return Ok(());
        }
        if image == "scratch" {
            self.state = Some(State {
                manifest: None,
                config: OciConfig::new_for_host(),
                layers: Vec::new(),
            });
            self.say(format_args!(" ---> scratch"))?;
            return Ok(());
        }
        let m = self.store.lookup(&image).map_err(|e| Self::err(ins, e))?;
        let img = self.store.image(&m)?;
        self.say(format_args!(" ---> {}", img.id.short()))?;
        self.state = Some(State {
            manifest: Some(m),
            config: img.config,
            layers: img.manifest.layers,
        });
        Ok(())
    }

    /// A finished stage by `AS` name or index.
    fn stage(&self, name: &str) -> Option<&State> {
        let name = name.to_ascii_lowercase();
        if let Ok(i) = name.parse::<usize>() {
            return self.stages.get(i).map(|(_, s)| s);
        }
        self.stages
            .iter()
            .rev()
            .find(|(a, _)| a.as_deref() == Some(name.as_str()))
            .map(|(_, s)| s)
    }

    fn cache_key(&self, ins: &Instruction, content: Option<&str>) -> Result<String> {
        let state = self.state.as_ref().expect("cache_key runs after FROM");
        let mut h = Sha256::new();
        match &state.manifest {
            Some(m) => h.update(m.as_str()),
            None => h.update(serde_json::to_vec(&state.config).unwrap_or_default()),
        }
        h.update(b"\0");
        h.update(ins.text.as_bytes());
        h.update(b"\0");
        h.update(serde_json::to_vec(&self.args).unwrap_or_default());
        h.update(b"\0");
        h.update(content.unwrap_or("").as_bytes());
        Ok(hex::encode(h.finalize()))
    }

    /// Applies the instruction to `config`; returns the layer it makes, if any.
    fn execute(&mut self, ins: &Instruction, config: &mut OciConfig) -> Result<Change> {
        let c = &mut config.config;
        match &ins.kind {
            Kind::From { .. } => unreachable!("FROM is handled by `from`"),
            Kind::Arg { .. } => {}
            Kind::Env(pairs) => {
                let mut env = c.env.take().unwrap_or_default();
                for (k, v) in pairs {
                    let v = self.expand(ins, v)?;
                    env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                c.env = Some(env);
            }
            Kind::Label(pairs) => {
                let labels = c.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    labels.insert(self.expand(ins, k)?, self.expand(ins, v)?);
                }
            }
            Kind::Workdir(dir) => {
                let dir = self.expand(ins, dir)?;
                let base = c.working_dir.clone().unwrap_or_else(|| "/".to_string());
                c.working_dir = Some(join_abs(&base, &dir));
            }
            Kind::User(user) => c.user = Some(self.expand(ins, user)?),
            Kind::Expose(ports) => {
                let exposed = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    let p = self.expand(ins, p)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(Self::err(
                            ins,
                            format!("invalid port {p:?}: want PORT[/tcp|udp|sctp]"),
                        ));
                    }
                    exposed.insert(p, serde_json::json!({}));
                }
            }
            Kind::StopSignal(s) => c.stop_signal = Some(self.expand(ins, s)?),
            Kind::Volume(paths) => {
                let volumes = c.volumes.get_or_insert_with(BTreeMap::new);
                for p in paths {
                    volumes.insert(self.expand(ins, p)?, serde_json::json!({}));
                }
            }
            Kind::Shell(shell) => c.shell = Some(shell.clone()),
            Kind::Maintainer(name) => config.author = Some(name.clone()),
            Kind::Healthcheck(hc) => c.healthcheck = Some(hc.clone()),
            Kind::Cmd(form) => c.cmd = Some(form.argv(c.shell.as_deref())),
            Kind::Entrypoint(form) => {
                c.entrypoint = Some(form.argv(c.shell.as_deref()));
                // As Docker: a new ENTRYPOINT drops the CMD inherited from the base.
                c.cmd = None;
            }
            Kind::Copy(args) => return self.copy(ins, args, config, false),
            Kind::Add(args) => return self.copy(ins, args, config, true),
            Kind::Run(form) => return self.run(ins, form, config),
        }
        Ok(Change::Config)
    }

    fn commit(
        &mut self,
        ins: &Instruction,
        mut next: State,
        change: Change,
        key: String,
    ) -> Result<()> {
        let mut tx = self.store.begin()?;
        let now = oci::now_rfc3339();
        let empty_layer = matches!(change, Change::Config);
        if let Change::Layer { root, pack, .. } = &change {
            let desc = tx.add_layer_dir(root, *pack)?;
            next.config.rootfs.diff_ids.push(desc.digest.clone());
            next.layers.push(desc);
        }
        next.config.created = Some(now.clone());
        next.config.history.push(History {
            created: Some(now),
            created_by: Some(ins.text.clone()),
            empty_layer,
        });
        let m = tx.add_image(&next.config, next.layers.clone())?;
        tx.cache_put(key, m.clone());
        tx.commit()?;
        let id = self.store.image(&m)?.id;
        self.say(format_args!(" ---> {}", id.short()))?;
        next.manifest = Some(m);
        self.state = Some(next);
        Ok(())
    }

    /// A staging dir on the store's filesystem.
    fn staging(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.store.root().join("tmp"))
            .ctx(|| "cannot create a build staging directory".to_string())
    }

    fn run(&mut self, ins: &Instruction, form: &CommandForm, config: &OciConfig) -> Result<Change> {
        let runner = self.runner.ok_or_else(|| {
            Self::err(
                ins,
                "RUN needs the container runtime, which this build has not got",
            )
        })?;
        let lower_dirs = self.layer_dirs()?;
        if lower_dirs.is_empty() {
            return Err(Self::err(
                ins,
                "RUN needs a base image with a shell (FROM scratch has nothing to run)",
            ));
        }
        // ARGs are in RUN's environment (not in the image); ENV wins.
        let c = &config.config;
        let mut env: Vec<String> = c.env.clone().unwrap_or_default();
        for (k, v) in &self.args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        let upper = self.staging("run-")?;
        let step = BuildRun {
            lower_dirs,
            upper_dir: upper.path().join("upper"),
            argv: form.argv(c.shell.as_deref()),
            env,
            working_dir: c.working_dir.clone().unwrap_or_else(|| "/".to_string()),
            user: c.user.clone().unwrap_or_default(),
        };
        fs::create_dir(&step.upper_dir).ctx_path("create", &step.upper_dir)?;
        runner
            .run_step(&step)
            .map_err(|e| Self::err(ins, format!("{e:#}")))?;
        Ok(Change::Layer {
            _staging: upper,
            root: step.upper_dir,
            pack: PackOptions::default(),
        })
    }

    /// The current image's layer dirs, bottom first.
    fn layer_dirs(&self) -> Result<Vec<PathBuf>> {
        match self.state.as_ref().and_then(|s| s.manifest.as_ref()) {
            Some(m) => self.store.layer_dirs(&self.store.image(m)?),
            None => Ok(Vec::new()),
        }
    }

    /// Whether `path` is a directory in the current image (the topmost
    /// layer that has the path decides).
    fn is_dir_in_image(&self, path: &str) -> Result<bool> {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return Ok(true);
        }
        for dir in self.layer_dirs()?.iter().rev() {
            if let Ok(meta) = fs::symlink_metadata(dir.join(rel)) {
                return Ok(meta.is_dir());
            }
        }
        Ok(false)
    }

    /// `--chown=user[:group]`: numbers, or names from the image's
    /// /etc/passwd and /etc/group.
    fn owner(&self, ins: &Instruction, spec: &str) -> Result<(u64, u64)> {
        let (user, group) = spec
            .split_once(':')
            .map_or((spec, None), |(u, g)| (u, Some(g)));
        let lookup = |file: &str, name: &str| -> Result<(u64, Option<u64>)> {
            if let Ok(n) = name.parse::<u64>() {
                return Ok((n, None));
            }
            for dir in self.layer_dirs()?.iter().rev() {
                if let Ok(text) = fs::read_to_string(dir.join(file)) {
                    for line in text.lines() {
                        let f: Vec<&str> = line.split(':').collect();
                        if f.len() >= 3 && f[0] == name {
                            let id = f[2].parse().ok();
                            let gid = f.get(3).and_then(|g| g.parse().ok());
                            if let Some(id) = id {
                                return Ok((id, gid));
                            }
                        }
                    }
                    break;
                }
            }
            Err(Self::err(
                ins,
                format!("--chown: no {name:?} in the image's /{file}"),
            ))
        };
        let (uid, primary_gid) = lookup("etc/passwd", user)?;
        let gid = match group {
            Some(g) => lookup("etc/group", g)?.0,
            None => primary_gid.unwrap_or(uid),
        };
        Ok((uid, gid))
    }
}

/// `base` joined with `path` (absolute paths replace it), normalised.
fn join_abs(base: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests_builder;

#[cfg(test)]
mod tests {
    use super::context::clean_relative;
    use super::join_abs;

    #[test]
    fn paths_join_like_docker() {
        assert_eq!(join_abs("/", "www/"), "/www");
        assert_eq!(join_abs("/app", "sub/../x"), "/app/x");
        assert_eq!(join_abs("/app", "/abs"), "/abs");
        assert_eq!(clean_relative("./a/b"), Some("a/b".to_string()));
        assert_eq!(clean_relative("../etc/passwd"), None);
        assert_eq!(clean_relative("."), Some(String::new()));
    }
}
