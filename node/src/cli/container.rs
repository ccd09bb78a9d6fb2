//! Container commands: `run`, `ps`, `logs`, `stop`, `kill`, `rm`, `exec`,
//! `inspect` — Docker's verbs over `kc_runtime::container::Containers`.
//!
//! This file only turns flags into a `ContainerSpec` and results into
//! output and exit codes (Docker's: 125 when kcnode itself fails, 126 when
//! the command cannot be invoked, 127 when it is not found, else the
//! container's own). All container logic lives in the runtime crate.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context;
use kc_runtime::container::{
    self as ctr, Attach, ContainerSpec, Containers, ExecSpec, State, Status, spec,
};
use kc_runtime::image::{ImageConfig, ResolvedImage};

use super::GlobalOpts;

#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container (like `docker run`).
    Run(Box<RunArgs>),
    /// List containers (running ones; `-a` for all).
    Ps {
        /// Show all containers, not only running ones.
        #[arg(short, long)]
        all: bool,
        /// Only print container ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's output (stdout and stderr, as captured).
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Prefix each line with its RFC 3339 timestamp.
        #[arg(short, long)]
        timestamps: bool,
        /// Container name or id (prefix).
        container: String,
    },
    /// Stop containers: SIGTERM, then SIGKILL after the grace period.
    Stop {
        /// Seconds to wait after SIGTERM before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers (default SIGKILL).
    Kill {
        /// Signal name or number (KILL, TERM, HUP, 9, ...).
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers (their state, logs and files).
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Show a container's state and configuration as JSON.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Internal: the per-container monitor and the pod sandbox holder,
    /// started by the node agent (which must not fork).
    #[command(hide = true, subcommand)]
    Shim(ShimCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ShimCommand {
    /// Monitor a created container: start it, keep its logs and exit status.
    Monitor {
        /// The container's full id.
        id: String,
    },
    /// Hold a pod sandbox's network, IPC and UTS namespaces until killed.
    Pause {
        /// The sandbox's hostname.
        #[arg(long)]
        hostname: String,
    },
    /// Fork monitors and holders on requests from stdin (the node agent's
    /// zygote) until stdin closes.
    Zygote,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container (state, cgroup, files) when it exits.
    #[arg(long)]
    rm: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    interactive: bool,
    /// Give the container a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Publish a container port on the host: HOST:CONTAINER.
    #[arg(short, long = "publish", value_name = "HOST:CTR")]
    publish: Vec<String>,
    /// Set an environment variable: KEY=VALUE.
    #[arg(short, long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Bind-mount a host path: HOST:CTR[:ro].
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    volume: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// User to run as: name, uid, name:group or uid:gid.
    #[arg(short, long)]
    user: Option<String>,
    /// Container name (default: the first 12 digits of its id).
    #[arg(long)]
    name: Option<String>,
    /// Container hostname (default: the first 12 digits of its id).
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit, e.g. 100m (swap included).
    #[arg(short, long)]
    memory: Option<String>,
    /// CPU quota in CPUs, e.g. 0.5.
    #[arg(long)]
    cpus: Option<String>,
    /// Maximum number of processes and threads.
    #[arg(long)]
    pids_limit: Option<String>,
    /// Network: `private` (default: own namespace with loopback), `host` or `none`.
    #[arg(long, default_value = "private")]
    network: String,
    /// Use this directory as the (read-only) image instead of an image from the store.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Image to run (omit with --rootfs), then the command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [CMD]..."
    )]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    interactive: bool,
    /// Give the command a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable: KEY=VALUE.
    #[arg(short, long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// User to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short, long)]
    workdir: Option<String>,
    /// The terminal's size as COLUMNSxROWS (default: this terminal's).
    #[arg(long, value_name = "COLSxROWS", hide = true, value_parser = parse_tty_size)]
    tty_size: Option<(u16, u16)>,
    /// Read terminal resizes from this descriptor, one "COLUMNS ROWS" line
    /// each (how the node agent passes a client's resizes).
    #[arg(long, value_name = "FD", hide = true)]
    resize_fd: Option<i32>,
    /// Container name or id.
    container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn parse_tty_size(s: &str) -> Result<(u16, u16), String> {
    kc_runtime::container::tty::parse_size(s.as_bytes())
        .ok_or_else(|| format!("{s:?} is not COLUMNSxROWS (e.g. 100x40)"))
}

pub fn run(global: &GlobalOpts, cmd: ContainerCommand) -> anyhow::Result<ExitCode> {
    let containers = Containers::new(&global.data_dir(), &global.node_name());
    match cmd {
        ContainerCommand::Run(args) => run_container(global, &containers, *args),
        ContainerCommand::Ps { all, quiet } => {
            ps(&containers, all, quiet);
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Logs {
            follow,
            timestamps,
            container,
        } => logs(&containers, &container, follow, timestamps),
        ContainerCommand::Stop {
            time,
            containers: keys,
        } => each(&keys, |k| {
            containers.stop(k, Duration::from_secs(time)).map(|_| ())
        }),
        ContainerCommand::Kill {
            signal,
            containers: keys,
        } => {
            let sig = spec::parse_signal(&signal)?;
            each(&keys, |k| containers.kill(k, sig).map(|_| ()))
        }
        ContainerCommand::Rm {
            force,
            containers: keys,
        } => each(&keys, |k| containers.remove(k, force).map(|_| ())),
        ContainerCommand::Exec(args) => {
            let spec = ExecSpec {
                argv: args.command,
                env: args
                    .env
                    .iter()
                    .map(|e| spec::parse_env(e))
                    .collect::<Result<_, _>>()?,
                tty: args.tty,
                user: args.user,
                working_dir: args.workdir,
                winsize: args.tty_size,
                resize_fd: args.resize_fd,
            };
            let _ = args.interactive; // stdin is always passed through
            match containers.exec(&args.container, &spec) {
                Ok(code) => Ok(exit(code)),
                Err(ctr::Error::Start {
                    exit_code, message, ..
                }) => {
                    eprintln!("kcnode: {message}");
                    Ok(exit(exit_code))
                }
                Err(e) => Err(e.into()),
            }
        }
        ContainerCommand::Shim(ShimCommand::Monitor { id }) => {
            Ok(exit(ctr::shim_process::monitor_main(&containers, &id)))
        }
        ContainerCommand::Shim(ShimCommand::Pause { hostname }) => {
            Ok(exit(ctr::shim_process::pause_main(&hostname)))
        }
        ContainerCommand::Shim(ShimCommand::Zygote) => Ok(exit(ctr::zygote::serve(&containers))),
        ContainerCommand::Inspect { containers: keys } => {
            let mut out = Vec::new();
            for k in &keys {
                out.push(containers.find(k)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Applies `f` to every key, printing each (Docker prints what it acted on);
/// fails if any failed.
fn each(keys: &[String], f: impl Fn(&str) -> Result<(), ctr::Error>) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for k in keys {
        match f(k) {
            Ok(()) => println!("{k}"),
            Err(e) => {
                eprintln!("kcnode: {e}");
                ok = false;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The image to run: from the store, or a directory given with --rootfs.
fn resolve_image(
    global: &GlobalOpts,
    rootfs: Option<&PathBuf>,
    args: &mut Vec<String>,
) -> anyhow::Result<ResolvedImage> {
    if let Some(dir) = rootfs {
        anyhow::ensure!(dir.is_dir(), "--rootfs {}: not a directory", dir.display());
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--rootfs {}", dir.display()))?;
        return Ok(ResolvedImage {
            id: String::new(),
            reference: dir.display().to_string(),
            config: ImageConfig::default(),
            layers: vec![dir],
        });
    }
    anyhow::ensure!(
        !args.is_empty(),
        "no image given: `kcnode run [OPTIONS] IMAGE [CMD...]` (or --rootfs DIR)"
    );
    let image = args.remove(0);
    image_store_resolve(global, &image)
}

fn image_store_resolve(global: &GlobalOpts, image: &str) -> anyhow::Result<ResolvedImage> {
    let store = kc_runtime::image::ImageStore::open(&global.data_dir())?;
    Ok(store.resolve(image)?)
}

fn build_spec(global: &GlobalOpts, mut a: RunArgs) -> anyhow::Result<ContainerSpec> {
    let image = resolve_image(global, a.rootfs.as_ref(), &mut a.args)?;
    let cfg = &image.config;
    let argv = spec::command_line(&cfg.entrypoint, &cfg.cmd, &a.args)?;
    let user_env = a
        .env
        .iter()
        .map(|e| spec::parse_env(e))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = &a.name {
        spec::check_name(n)?;
    }
    let working_dir = a.workdir.clone().unwrap_or_else(|| cfg.working_dir.clone());
    if !working_dir.is_empty() && !working_dir.starts_with('/') {
        return Err(spec::SpecError::WorkDir(working_dir).into());
    }
    let network = match a.network.as_str() {
        "private" | "bridge" | "default" | "none" => spec::NamespaceMode::New,
        "host" => spec::NamespaceMode::Host,
        other => anyhow::bail!("unknown --network {other:?}: use private, host or none"),
    };
    anyhow::ensure!(
        a.publish.is_empty() || network == spec::NamespaceMode::New || a.network != "none",
        "-p needs the container's own network (not --network none)"
    );
    Ok(ContainerSpec {
        name: a.name.unwrap_or_default(),
        image: image.reference.clone(),
        layers: image.layers.clone(),
        argv,
        env: spec::merge_env(&cfg.env, &user_env),
        working_dir,
        user: a.user.unwrap_or_else(|| cfg.user.clone()),
        hostname: a.hostname.unwrap_or_default(),
        tty: a.tty,
        stdin: a.interactive,
        ports: a
            .publish
            .iter()
            .map(|p| spec::parse_port(p))
            .collect::<Result<_, _>>()?,
        volumes: a
            .volume
            .iter()
            .map(|v| spec::parse_volume(v))
            .collect::<Result<_, _>>()?,
        resources: spec::Resources {
            memory: a.memory.as_deref().map(spec::parse_memory).transpose()?,
            cpu_millis: a.cpus.as_deref().map(spec::parse_cpus).transpose()?,
            pids: a.pids_limit.as_deref().map(spec::parse_pids).transpose()?,
        },
        namespaces: spec::SharedNamespaces {
            network,
            ..Default::default()
        },
        auto_remove: a.rm,
        stop_signal: if cfg.stop_signal.is_empty() {
            None
        } else {
            Some(spec::parse_signal(&cfg.stop_signal)?)
        },
    })
}

/// The container a foreground `run` forwards SIGINT/SIGTERM/SIGHUP to.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn run_container(
    global: &GlobalOpts,
    containers: &Containers,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    let detach = args.detach;
    let spec = build_spec(global, args)?;
    let tty = spec.tty;
    if detach {
        let r = start_or_report(containers.run(spec, Attach::Detached))?;
        return Ok(match r {
            Ok(r) => {
                println!("{}", r.id);
                ExitCode::SUCCESS
            }
            Err(code) => exit(code),
        });
    }
    // SAFETY: isatty has no preconditions.
    let _raw = if tty && unsafe { libc::isatty(0) } == 1 {
        ctr::tty::RawMode::enter(0)
    } else {
        None
    };
    let r = match start_or_report(containers.run(spec, Attach::Foreground))? {
        Ok(r) => r,
        Err(code) => return Ok(exit(code)),
    };
    if !tty {
        FORWARD_TO.store(r.pid, Ordering::Relaxed);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installing a handler that only calls kill.
            unsafe { libc::signal(sig, forward_signal as *const () as libc::sighandler_t) };
        }
    }
    Ok(exit(containers.wait_monitor(&r)))
}

/// A start failure of the container's command becomes its exit code (with
/// the reason on stderr); other errors stay errors.
fn start_or_report(
    r: Result<ctr::Running, ctr::Error>,
) -> anyhow::Result<Result<ctr::Running, i32>> {
    match r {
        Ok(r) => Ok(Ok(r)),
        Err(ctr::Error::Start {
            id,
            exit_code,
            message,
        }) => {
            eprintln!(
                "kcnode: container {} failed to start: {message}",
                &id[..12.min(id.len())]
            );
            Ok(Err(exit_code))
        }
        Err(e) => Err(e.into()),
    }
}

fn ps(containers: &Containers, all: bool, quiet: bool) {
    let list: Vec<State> = containers
        .list()
        .into_iter()
        .filter(|s| all || s.status == Status::Running)
        .collect();
    if quiet {
        for s in &list {
            println!("{}", &s.id[..12]);
        }
        return;
    }
    println!(
        "{:<14}{:<22}{:<24}{:<30}{:<20}NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "PORTS"
    );
    for s in &list {
        let ago = |t: &Option<String>| {
            t.as_deref()
                .and_then(ctr::state::seconds_since)
                .map(ctr::state::human_duration)
                .unwrap_or_else(|| "?".into())
        };
        let status = match s.status {
            Status::Running => format!("Up {}", ago(&s.started_at)),
            Status::Created => "Created".to_string(),
            Status::Exited => format!(
                "Exited ({}){} {} ago",
                s.exit_code.unwrap_or(-1),
                if s.oom_killed { " OOM" } else { "" },
                ago(&s.finished_at)
            ),
        };
        let ports: Vec<String> = s
            .spec
            .ports
            .iter()
            .map(|p| format!("{}->{}", p.host, p.container))
            .collect();
        let cmd = format!("\"{}\"", s.spec.argv.join(" "));
        println!(
            "{:<14}{:<22}{:<24}{:<30}{:<20}{}",
            &s.id[..12],
            truncate(&s.spec.image, 20),
            truncate(&cmd, 22),
            status,
            ports.join(","),
            s.spec.name
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn logs(
    containers: &Containers,
    key: &str,
    follow: bool,
    timestamps: bool,
) -> anyhow::Result<ExitCode> {
    let s = containers.find(key)?;
    let dir = containers.dir(&s.id);
    let mut file = std::fs::File::open(dir.log())
        .with_context(|| format!("container {}: no log file yet", s.spec.name))?;
    let mut pending: Vec<u8> = Vec::new();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    loop {
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        pending.extend_from_slice(&chunk);
        let mut consumed = 0;
        while let Some(nl) = pending[consumed..].iter().position(|&b| b == b'\n') {
            let line = &pending[consumed..consumed + nl];
            if let Some(rec) = ctr::logs::parse(line) {
                let bytes = ctr::logs::render(&rec, timestamps);
                match rec.stream {
                    ctr::logs::Stream::Stdout => out.write_all(&bytes)?,
                    ctr::logs::Stream::Stderr => err.write_all(&bytes)?,
                }
            }
            consumed += nl + 1;
        }
        pending.drain(..consumed);
        out.flush()?;
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        let running = dir
            .read()
            .map(|st| st.status == Status::Running)
            .unwrap_or(false);
        if !running && chunk.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        if chunk.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        file.stream_position()?;
    }
}
