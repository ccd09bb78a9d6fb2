//! Image commands: `build`, `images`, `rmi`, `image import|save|base|ls|rm`.
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
        /// Set a build-time variable NAME=value (repeatable)
        #[arg(long = "build-arg")]
        build_arg: Vec<String>,
        /// Do not use the step cache
        #[arg(long)]
        no_cache: bool,
        /// The build context directory
        context: PathBuf,
    },
    /// List the images in the local store (like `docker images`)
    Images,
    /// Remove image tags, and the blobs and layers no tag needs any more
    Rmi {
        /// Images to remove (name[:tag] or image id)
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Manage images: import, save, make base images
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
        /// The archive file or layout directory
        path: PathBuf,
        /// Tag the imported image NAME[:TAG] (the archive must hold one image)
        #[arg(short, long)]
        tag: Option<String>,
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
    /// List the images in the local store
    #[command(alias = "list")]
    Ls,
    /// Remove images (same as `kcnode rmi`)
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
}

pub fn run(global: &GlobalOpts, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = ImageStore::open(&global.data_dir())?;
    match cmd {
        ImageCommand::Images | ImageCommand::Image(ImageSub::Ls) => list(&store),
        ImageCommand::Rmi { images } | ImageCommand::Image(ImageSub::Rm { images }) => {
            remove(&store, &images)
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
                let (k, v) = a
                    .split_once('=')
                    .with_context(|| format!("--build-arg {a:?}: want NAME=value"))?;
                build_args.insert(k.to_string(), v.to_string());
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

fn list(store: &ImageStore) -> anyhow::Result<ExitCode> {
    let rows: Vec<[String; 5]> = store
        .list()?
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

fn remove(store: &ImageStore, images: &[String]) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for image in images {
        match store.remove(image) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("kcnode: cannot remove {image}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
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
