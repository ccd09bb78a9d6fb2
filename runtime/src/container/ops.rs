//! The container operations of one node: create+start (`run`), list,
//! inspect, stop, kill, remove, logs. This is the library behind both the
//! `kcnode` container commands and the `Runtime` actor.
//!
//! State lives only on disk (`<data-dir>/containers/<id>/`); a `Containers`
//! value is just the node's paths and cgroup layout, so any number of
//! callers (a CLI call, a restarted agent) see the same containers.

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup::{self, Cgroup, Hierarchy};
use super::monitor::{self, Launch, Started};
use super::spec::ContainerSpec;
use super::state::{ContainerDir, State, Status, new_id, now_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0} (see `kcnode ps -a`)")]
    NotFound(String),
    #[error("{0:?} matches several containers: give more of the id")]
    Ambiguous(String),
    #[error(
        "the name {name:?} is already used by container {id}: remove it (`kcnode rm {name}`) or choose another --name"
    )]
    NameInUse { name: String, id: String },
    #[error("container {0} is running: stop it first or use `rm -f`")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(
        "cannot publish port {port}: {source} (is another program using it? choose another HOST port in -p HOST:CTR)"
    )]
    Port { port: u16, source: std::io::Error },
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("container {id}: {what}: {source}")]
    Io {
        id: String,
        what: String,
        source: std::io::Error,
    },
    #[error("container {id} failed to start: {message}")]
    Start {
        id: String,
        exit_code: i32,
        message: String,
    },
}

fn io(id: &str, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let (id, what) = (id.to_string(), what.into());
    move |source| Error::Io { id, what, source }
}

/// How `start` hands the container over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Our stdio becomes the container's terminal/output; the caller waits
    /// for the monitor (its child) to get the exit code.
    Foreground,
    /// The monitor detaches (double fork); the caller returns at once.
    Detached,
}

/// A started container.
#[derive(Debug)]
pub struct Running {
    pub id: String,
    pub pid: i32,
    /// Set for `Attach::Foreground`: our child, to wait for.
    pub monitor: Option<i32>,
}

/// The containers of one node.
#[derive(Debug, Clone)]
pub struct Containers {
    pub data_dir: PathBuf,
    pub node: String,
}

impl Containers {
    pub fn new(data_dir: &Path, node: &str) -> Self {
        Containers {
            data_dir: data_dir.to_path_buf(),
            node: node.to_string(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    /// Where ephemeral (`--rm`) containers live: the node's runtime dir on
    /// tmpfs (`/run/kc/<node>/containers`, or under /dev/shm where /run is
    /// not tmpfs), like runc's and crun's state in /run. Such a container
    /// needs nothing to survive its exit, so its record, log and writable
    /// layer skip the data dir's disk (whose metadata journal a busy host
    /// makes slow); its file writes are charged to its memory cgroup.
    /// None if neither is tmpfs.
    pub fn ephemeral_root(&self) -> Option<PathBuf> {
        ["/run", "/dev/shm"]
            .iter()
            .find(|p| is_tmpfs(Path::new(p)))
            .map(|p| Path::new(p).join("kc").join(&self.node).join("containers"))
    }

    fn roots(&self) -> Vec<PathBuf> {
        let mut r = vec![self.root()];
        r.extend(self.ephemeral_root());
        r
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        for root in self.roots().iter().skip(1) {
            let d = ContainerDir::new(root, id);
            if d.root.exists() {
                return d;
            }
        }
        ContainerDir::new(&self.root(), id)
    }

    /// All containers, oldest first.
    pub fn list(&self) -> Vec<State> {
        let mut out: Vec<State> = self
            .roots()
            .into_iter()
            .flat_map(std::fs::read_dir)
            .flatten()
            .flatten()
            .filter_map(|e| ContainerDir { root: e.path() }.read().ok())
            .map(refresh)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        out
    }

    /// Finds a container by name, full id or unique id prefix.
    pub fn find(&self, key: &str) -> Result<State, Error> {
        let all = self.list();
        if let Some(s) = all.iter().find(|s| s.spec.name == key || s.id == key) {
            return Ok(s.clone());
        }
        let matches: Vec<&State> = all
            .iter()
            .filter(|s| !key.is_empty() && s.id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(key.to_string())),
            _ => Err(Error::Ambiguous(key.to_string())),
        }
    }

    /// Creates the container (state, cgroup, ports) and starts it under its
    /// monitor. Returns once the container's command has been exec'd, or
    /// with the reason it could not be.
    ///
    /// Forks without exec: call it from a single-threaded process (the CLI).
    /// Multi-threaded callers use `spawn_shim`.
    pub fn run(&self, spec: ContainerSpec, attach: Attach) -> Result<Running, Error> {
        self.run_opts(spec, attach, None)
    }

    /// `run`, with an upper dir for the overlay other than the container's own.
    pub fn run_opts(
        &self,
        mut spec: ContainerSpec,
        attach: Attach,
        upper: Option<PathBuf>,
    ) -> Result<Running, Error> {
        let id = new_id();
        if spec.name.is_empty() {
            spec.name = id[..12].to_string();
        }
        if spec.hostname.is_empty() {
            spec.hostname = id[..12].to_string();
        }
        let ephemeral = spec.auto_remove && upper.is_none();
        let (state, dir, cg) = self.prepare(&id, spec, ephemeral)?;
        let listeners = match bind_ports(&state.spec) {
            Ok(l) => l,
            Err(e) => {
                self.discard(&dir, cg.as_ref());
                return Err(e);
            }
        };
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io(&id, "pipe")(e.into()))?;
        let launch = Launch {
            dir: dir.clone(),
            state,
            cgroup: cg.clone(),
            listeners,
            attach: attach == Attach::Foreground,
            upper,
        };
        // SAFETY: the caller is single-threaded (documented above); the
        // children only run our own code and exit with _exit.
        let child = match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(ready_r);
                if attach == Attach::Detached {
                    // SAFETY: as above; the intermediate exits at once so the
                    // monitor is adopted by init (or the subreaper).
                    if let Ok(nix::unistd::ForkResult::Parent { .. }) =
                        unsafe { nix::unistd::fork() }
                    {
                        unsafe { libc::_exit(0) };
                    }
                }
                let code = monitor::run(launch, ready_w);
                // SAFETY: leaving the monitor without unwinding into the caller.
                unsafe { libc::_exit(code) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => child,
            Err(e) => {
                self.discard(&dir, cg.as_ref());
                return Err(io(&id, "fork the monitor")(e.into()));
            }
        };
        drop(launch);
        drop(ready_w);
        if attach == Attach::Detached {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        let started = read_ready(ready_r);
        match started {
            Started::Running { pid } => Ok(Running {
                id,
                pid,
                monitor: (attach == Attach::Foreground).then_some(child.as_raw()),
            }),
            Started::Failed { exit_code, message } => {
                if attach == Attach::Foreground {
                    let _ = nix::sys::wait::waitpid(child, None);
                }
                Err(Error::Start {
                    id,
                    exit_code,
                    message,
                })
            }
        }
    }

    /// Creates a container (state and cgroup) without starting it; returns
    /// its id. Start it with `Shim::start_created`.
    pub fn create(&self, mut spec: ContainerSpec) -> Result<String, Error> {
        let id = new_id();
        if spec.name.is_empty() {
            spec.name = id[..12].to_string();
        }
        if spec.hostname.is_empty() {
            spec.hostname = id[..12].to_string();
        }
        self.prepare(&id, spec, false)?;
        Ok(id)
    }

    /// Waits for a foreground container's monitor; returns the exit code.
    pub fn wait_monitor(&self, r: &Running) -> i32 {
        let Some(m) = r.monitor else { return 0 };
        loop {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(m), None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => return c,
                Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
                Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                Err(_) => return 255,
            }
        }
    }

    /// Creates the container's directory, state and cgroup.
    fn prepare(
        &self,
        id: &str,
        spec: ContainerSpec,
        ephemeral: bool,
    ) -> Result<(State, ContainerDir, Option<Cgroup>), Error> {
        // A generated name (the id's prefix) cannot collide: skip the scan.
        let generated = id.starts_with(&spec.name) && spec.name.len() == 12;
        if let Some(other) = (!generated)
            .then(|| self.list())
            .into_iter()
            .flatten()
            .find(|s| s.spec.name == spec.name)
        {
            return Err(Error::NameInUse {
                name: spec.name,
                id: other.id,
            });
        }
        let dir = match self.ephemeral_root().filter(|_| ephemeral) {
            Some(root) => ContainerDir::new(&root, id),
            None => ContainerDir::new(&self.root(), id),
        };
        for d in [dir.upper(), dir.work(), dir.rootfs()] {
            std::fs::create_dir_all(&d).map_err(io(id, format!("create {}", d.display())))?;
        }
        let state = State {
            id: id.to_string(),
            spec,
            status: Status::Created,
            pid: None,
            monitor_pid: None,
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
        };
        let cg =
            match cgroup::detect().and_then(|h| h.create(&self.node, id, &state.spec.resources)) {
                Ok(cg) => cg,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir.root);
                    return Err(e.into());
                }
            };
        // The log exists from the start, so `logs` of a container that has
        // not printed yet shows nothing rather than an error.
        if let Err(e) = std::fs::File::create(dir.log()).and_then(|_| dir.write(&state)) {
            self.discard(&dir, Some(&cg));
            return Err(io(id, "write state")(e));
        }
        Ok((state, dir, Some(cg)))
    }

    fn discard(&self, dir: &ContainerDir, cg: Option<&Cgroup>) {
        if let Some(cg) = cg {
            let _ = cg.remove();
        }
        let _ = std::fs::remove_dir_all(&dir.root);
    }

    /// The cgroup a container has (or had).
    pub fn cgroup(&self, id: &str) -> Option<Cgroup> {
        cgroup::detect()
            .ok()
            .map(|h: Hierarchy| h.cgroup(&self.node, id))
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, key: &str, signal: i32) -> Result<State, Error> {
        let s = self.find(key)?;
        let pid = match (s.status, s.pid) {
            (Status::Running, Some(pid)) if self.owns(&s.id, pid) => pid,
            _ => return Err(Error::NotRunning(s.spec.name.clone())),
        };
        // SAFETY: kill has no memory-safety preconditions; pid was checked
        // to be in this container's cgroup just above.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io(&s.id, format!("send signal {signal}"))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(s)
    }

    /// The stop signal (the image's STOPSIGNAL, else SIGTERM), wait up to
    /// `grace`, then SIGKILL; waits for the monitor to
    /// record the exit.
    pub fn stop(&self, key: &str, grace: Duration) -> Result<State, Error> {
        let s = self.find(key)?;
        if s.status != Status::Running {
            return Ok(s);
        }
        let _ = self.kill(&s.id, s.spec.stop_signal.unwrap_or(libc::SIGTERM));
        if let Some(done) = self.wait_exit(&s.id, grace) {
            return Ok(done);
        }
        let _ = self.kill(&s.id, libc::SIGKILL);
        Ok(self.wait_exit(&s.id, Duration::from_secs(10)).unwrap_or(s))
    }

    /// Waits until the container is recorded as exited (or gone).
    pub fn wait_exit(&self, id: &str, timeout: Duration) -> Option<State> {
        let start = Instant::now();
        loop {
            match self.dir(id).read().map(refresh) {
                Ok(s) if s.status == Status::Exited => return Some(s),
                Err(_) => return None,
                _ => {}
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Removes a stopped container (or, with `force`, kills it first).
    pub fn remove(&self, key: &str, force: bool) -> Result<State, Error> {
        let s = self.find(key)?;
        if s.status == Status::Running {
            if !force {
                return Err(Error::Running(s.spec.name.clone()));
            }
            let _ = self.kill(&s.id, libc::SIGKILL);
            let _ = self.wait_exit(&s.id, Duration::from_secs(10));
        }
        if let Some(cg) = self.cgroup(&s.id) {
            cg.remove()?;
        }
        // A `--rm` container's monitor removes the directory itself when the
        // container exits: racing it is no failure (Docker's `rm -f` of a
        // `--rm` container succeeds quietly too).
        let root = self.dir(&s.id).root;
        if let Err(e) = std::fs::remove_dir_all(&root)
            && root.exists()
        {
            return Err(io(&s.id, "remove its directory")(e));
        }
        Ok(s)
    }

    /// Is `pid` the live init of container `id` (guards against PID reuse)?
    fn owns(&self, id: &str, pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|t| t.contains(&format!("/kc/{}/{id}", self.node)))
            .unwrap_or(false)
    }
}

/// A state that says running but whose monitor is gone is reported exited
/// (the host rebooted or someone killed the monitor).
fn refresh(mut s: State) -> State {
    if s.status == Status::Running {
        let alive = |p: Option<i32>| p.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive(s.monitor_pid) && !alive(s.pid) {
            s.status = Status::Exited;
            s.error
                .get_or_insert_with(|| "its monitor disappeared; exit code unknown".to_string());
        }
    }
    s
}

fn is_tmpfs(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false)
}

pub(crate) fn bind_ports(spec: &ContainerSpec) -> Result<Vec<(TcpListener, u16)>, Error> {
    spec.ports
        .iter()
        .map(|p| {
            TcpListener::bind(("0.0.0.0", p.host))
                .map(|l| (l, p.container))
                .map_err(|source| Error::Port {
                    port: p.host,
                    source,
                })
        })
        .collect()
}

fn read_ready(fd: OwnedFd) -> Started {
    let mut s = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut s);
    Started::decode(&s)
}
