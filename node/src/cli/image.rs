//! Image commands: `build`, `images`, `rmi`, `pull`, `image import|save|push|base|ls|rm`.
//!
//! Thin: parse arguments, call `kc_runtime::image`, print like Docker.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use kc_runtime::image::ImageStore;
use kc_runtime::image::build::{self, BuildOptions};
use kc_runtime::image::import::{self, ImportOptions};
use kc_runtime::image::reference::TaggedName;
use kc_runtime::image::{base, save};

use super::GlobalOpts;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile and a context directory (like `docker build`)
    Build {
        /// Name and tag the image NAME[:TAG] (repeatable)
        #[arg(short, long = "tag")]
        tag: Vec<String>,
        /// The Dockerfile [default: <CONTEXT>/Dockerfile]
        #[arg(short, long = "file")]
        file: Option<PathBuf>,
        /// Set a build-time variable: NAME=value, or NAME to take it from the environment (repeatable)
        #[arg(long = "build-arg")]
        build_arg: Vec<String>,
        /// Do not use the step cache
        #[arg(long)]
        no_cache: bool,
        /// The build context directory
        context: PathBuf,
    },
    /// List the images in the local store (like `docker images`)
    Images(ListArgs),
    /// Remove image tags, and the blobs and layers no tag needs any more
    Rmi {
        /// Remove even if containers use the image (their layers are kept)
        #[arg(short, long)]
        force: bool,
        /// Images to remove (name[:tag] or image id)
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name: kcnode tag SOURCE TARGET
    Tag {
        /// The image (name[:tag] or id)
        source: String,
        /// The new NAME[:TAG]
        target: String,
    },
    /// Pull an image from a registry: NAME[:TAG] from the cluster registry, or HOST:PORT/NAME[:TAG]
    Pull {
        /// The image reference
        reference: String,
        #[command(flatten)]
        registry: super::registry::RegistryArgs,
    },
    /// Manage images: import, save, push, make base images
    #[command(subcommand)]
    Image(ImageSub),
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageSub {
    /// Make a base image on this host without any registry (busybox from Debian's busybox-static)
    Base {
        /// Which base image: busybox
        base: String,
        /// Tag it as NAME[:TAG] [default: <base>:latest]
        #[arg(short, long)]
        tag: Option<String>,
    },
    /// Import an OCI image layout (directory or tar) or a docker-archive tar (`docker save` format)
    #[command(alias = "load")]
    Import {
        /// The archive file or layout directory (`-`: a tar on stdin)
        path: PathBuf,
        /// Tag the imported image NAME[:TAG] (the archive must hold one image)
        #[arg(short, long)]
        tag: Option<String>,
    },
    /// Send a local image to a registry (the cluster registry for short names)
    Push {
        /// The local image NAME[:TAG]
        image: String,
        /// Push under this name instead: NAME[:TAG] or HOST:PORT/NAME[:TAG]
        target: Option<String>,
        #[command(flatten)]
        registry: super::registry::RegistryArgs,
    },
    /// Pull an image from a registry (same as `kcnode pull`)
    Pull {
        /// The image reference
        reference: String,
        #[command(flatten)]
        registry: super::registry::RegistryArgs,
    },
    /// Save images as a tar that is both an OCI layout and a docker-archive
    Save {
        /// Images to save (name[:tag] or image id)
        #[arg(required = true)]
        images: Vec<String>,
        /// Write to this file [default: stdout]
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show how an image was made: one line per step, newest first
    History {
        /// The image (name[:tag] or id)
        image: String,
    },
    /// Show images' details as JSON (id, tags, config, layers)
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List the images in the local store
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Drop the build cache and delete every blob and layer no tag needs
    Prune,
    /// Free disk space like the kubelet's image GC: above --high percent used, remove images no container uses, oldest first, down to --low
    Gc {
        /// Start when the store's filesystem is more than this full (percent)
        #[arg(long, default_value_t = 85)]
        high: u8,
        /// Remove until it is at most this full (percent)
        #[arg(long, default_value_t = 80)]
        low: u8,
    },
    /// Remove images (same as `kcnode rmi`)
    Rm {
        /// Remove even if containers use the image (their layers are kept)
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
}

pub fn run(global: &GlobalOpts, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = ImageStore::open(&global.data_dir())?;
    match cmd {
        ImageCommand::Images(args) | ImageCommand::Image(ImageSub::Ls(args)) => list(&store, &args),
        ImageCommand::Rmi { images, force }
        | ImageCommand::Image(ImageSub::Rm { images, force }) => {
            remove(global, &store, &images, force)
        }
        ImageCommand::Build {
            tag,
            file,
            build_arg,
            no_cache,
            context,
        } => {
            let mut build_args = std::collections::BTreeMap::new();
            for a in &build_arg {
                match a.split_once('=') {
                    Some((k, v)) => {
                        build_args.insert(k.to_string(), v.to_string());
                    }
                    // `--build-arg NAME`: the value of NAME in this environment, as Docker.
                    None => {
                        if let Ok(v) = std::env::var(a) {
                            build_args.insert(a.clone(), v);
                        }
                    }
                }
            }
            let opts = BuildOptions {
                context,
                dockerfile: file,
                tags: tag
                    .iter()
                    .map(|t| TaggedName::parse(t))
                    .collect::<Result<_, _>>()?,
                build_args,
                no_cache,
            };
            let runner = step_runner(global);
            build::build(&store, Some(&runner), &opts, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::Import { path, tag }) => {
            let opts = ImportOptions {
                tag: tag.as_deref().map(TaggedName::parse).transpose()?,
            };
            for img in import::import(&store, &path, &opts)? {
                if img.tags.is_empty() {
                    println!("Loaded image ID: {}", img.id);
                }
                for t in &img.tags {
                    println!("Loaded image: {t}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::Save { images, output }) => {
            match output {
                Some(path) => save_to_file(&store, &images, &path)?,
                None => {
                    let stdout = std::io::stdout();
                    anyhow::ensure!(
                        !stdout.is_terminal(),
                        "refusing to write an image archive to a terminal: use -o FILE or redirect stdout"
                    );
                    save::save(&store, &images, stdout.lock())?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Pull {
            reference,
            registry,
        }
        | ImageCommand::Image(ImageSub::Pull {
            reference,
            registry,
        }) => super::registry::pull(&store, &reference, &registry),
        ImageCommand::Image(ImageSub::Push {
            image,
            target,
            registry,
        }) => super::registry::push(&store, &image, target.as_deref(), &registry),
        ImageCommand::Image(ImageSub::Gc { high, low }) => {
            anyhow::ensure!(
                low <= high && high <= 100,
                "--low ({low}) must not exceed --high ({high}), and both are percentages"
            );
            let in_use: Vec<Vec<PathBuf>> = containers(global)
                .into_iter()
                .map(|c| c.spec.layers)
                .collect();
            let thresholds = kc_runtime::image::disk_pressure::Thresholds {
                high_percent: high,
                low_percent: low,
            };
            let done = kc_runtime::image::disk_pressure::collect(&store, thresholds, &in_use)?;
            for tag in &done.removed {
                println!("Removed: {tag}");
            }
            println!(
                "Disk: {} of {} used ({} freed)",
                human_size(done.used_after),
                human_size(done.total),
                human_size(done.used_before.saturating_sub(done.used_after))
            );
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Tag { source, target } => {
            store.tag(&source, &TaggedName::parse(&target)?)?;
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::Inspect { images }) => {
            let mut out = Vec::new();
            for image in &images {
                let manifest = store.lookup(image)?;
                let img = store.image(&manifest)?;
                out.push(serde_json::json!({
                    "Id": img.id.to_string(),
                    "Manifest": manifest.to_string(),
                    "RepoTags": store.tags_of(&manifest)?,
                    "Created": img.config.created,
                    "Architecture": img.config.architecture,
                    "Os": img.config.os,
                    "Config": img.config.config,
                    "RootFS": img.config.rootfs,
                    "Size": img.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
                    "History": img.config.history,
                }));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::History { image }) => {
            let img = store.image(&store.lookup(&image)?)?;
            let mut sizes = img.manifest.layers.iter().map(|l| l.size);
            let mut rows: Vec<[String; 3]> = img
                .config
                .history
                .iter()
                .map(|h| {
                    let size = if h.empty_layer {
                        0
                    } else {
                        sizes.next().unwrap_or(0)
                    };
                    [
                        h.created
                            .as_deref()
                            .map(ago)
                            .unwrap_or_else(|| "N/A".to_string()),
                        h.created_by.clone().unwrap_or_default(),
                        human_size(size),
                    ]
                })
                .collect();
            rows.reverse();
            print_table(&["CREATED", "CREATED BY", "SIZE"], &rows);
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::Prune) => {
            let in_use: Vec<PathBuf> = containers(global)
                .into_iter()
                .flat_map(|c| c.spec.layers)
                .collect();
            let freed = store.prune(&in_use)?;
            println!("Total reclaimed space: {}", human_size(freed));
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Image(ImageSub::Base { base, tag }) => {
            let tag = TaggedName::parse(tag.as_deref().unwrap_or(&base))?;
            let manifest = base::make_base(&store, &base, &tag)?;
            let id = store.image(&manifest)?.id;
            println!("{tag} {}", id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// RUN steps run as containers of this node.
fn step_runner(global: &GlobalOpts) -> kc_runtime::container::BuildStepRunner {
    kc_runtime::container::BuildStepRunner::new(&global.data_dir(), &global.node_name())
}

/// Saves to a temp file beside `path`, renamed into place on success.
fn save_to_file(
    store: &ImageStore,
    images: &[String],
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    save::save(store, images, std::io::BufWriter::new(tmp.as_file()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Arguments of `images` / `image ls`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only image ids
    #[arg(short, long)]
    quiet: bool,
    /// Only this repository (NAME) or image (NAME:TAG)
    reference: Option<String>,
}

fn list(store: &ImageStore, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let wanted = |img: &kc_runtime::image::store::ImageSummary| match &args.reference {
        None => true,
        Some(r) if r.contains(':') => TaggedName::parse(r).is_ok_and(|t| t == img.name),
        Some(r) => TaggedName::parse(r).is_ok_and(|t| t.name == img.name.name),
    };
    let images: Vec<_> = store.list()?.into_iter().filter(wanted).collect();
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for img in &images {
            if seen.insert(img.id.clone()) {
                println!("{}", img.id.short());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = images
        .into_iter()
        .map(|img| {
            [
                img.name.name,
                img.name.tag,
                img.id.short().to_string(),
                img.created
                    .as_deref()
                    .map(ago)
                    .unwrap_or_else(|| "N/A".to_string()),
                human_size(img.size),
            ]
        })
        .collect();
    print_table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// This node's containers (any state).
fn containers(global: &GlobalOpts) -> Vec<kc_runtime::container::State> {
    kc_runtime::container::Containers::new(&global.data_dir(), &global.node_name()).list()
}

fn remove(
    global: &GlobalOpts,
    store: &ImageStore,
    images: &[String],
    force: bool,
) -> anyhow::Result<ExitCode> {
    let containers = containers(global);
    let in_use: Vec<PathBuf> = containers
        .iter()
        .flat_map(|c| c.spec.layers.clone())
        .collect();
    let mut code = ExitCode::SUCCESS;
    for image in images {
        if !force {
            let users = users_of(store, image, &containers);
            if !users.is_empty() {
                eprintln!(
                    "kcnode: cannot remove {image}: it is used by container(s) {}: remove them first (kcnode rm) or use --force",
                    users.join(", ")
                );
                code = ExitCode::FAILURE;
                continue;
            }
        }
        match store.remove(image, &in_use) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("kcnode: cannot remove {image}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// Short ids of the containers whose rootfs is this image's layers.
fn users_of(
    store: &ImageStore,
    image: &str,
    containers: &[kc_runtime::container::State],
) -> Vec<String> {
    let Ok(img) = store.lookup(image).and_then(|m| store.image(&m)) else {
        return Vec::new();
    };
    let layers = store.layer_paths(&img);
    containers
        .iter()
        .filter(|c| c.spec.layers == layers)
        .map(|c| c.id.chars().take(12).collect())
        .collect()
}

/// Prints rows in aligned columns, three spaces apart, like Docker.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// "5 minutes ago" from an RFC 3339 time.
fn ago(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return "N/A".to_string();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (n, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86400 => (secs / 3600, "hour"),
        86400..2_592_000 => (secs / 86400, "day"),
        2_592_000..31_536_000 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Sizes like Docker: 4.26MB (powers of 1000).
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}
