//! One pod's worker: a task that, every second and on every update, makes
//! the node match the pod (level-triggered and idempotent): sandbox,
//! volumes, init containers in order, then app containers, each restarted
//! by the restart policy with back-off and watched by its probes. It
//! reports the pod's status when it changes, persists its record (for
//! adoption after a kcnode restart) and, on deletion, stops the containers
//! gracefully (SIGTERM, grace, SIGKILL) and removes everything.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kc_runtime::container::actor::{
    ContainerStatus, CreateContainer, CreateSandbox, RemoveContainer, RemoveSandbox, RuntimeError,
    StartContainer, StopContainer,
};
use kc_runtime::container::{Error as ContainerError, State, Status};
use kc_runtime::image::ResolvedImage;
use tokio::sync::mpsc;

use super::etc_files;
use super::events::{self, Kind, Subject};
use super::probes::{self, Outcome, Prober};
use super::record::{self, ContainerRecord, Observed, PodRecord, SandboxRef, Termination};
use super::status::{self, RestartPolicy};
use super::{
    KubeletConfig, KubeletReport, Lookup, PodContainers, backoff, container_spec, env, volumes,
};

/// What every worker shares.
#[derive(Clone)]
pub struct WorkerContext {
    pub config: Arc<KubeletConfig>,
    pub reports: mpsc::UnboundedSender<KubeletReport>,
    pub(super) lookup: Lookup,
}

enum WorkerMsg {
    Update(Box<Pod>),
    Delete(Option<i64>),
}

/// The dispatcher's handle on a worker.
pub struct WorkerHandle {
    tx: mpsc::UnboundedSender<WorkerMsg>,
    task: tokio::task::JoinHandle<()>,
    deleting: bool,
}

impl WorkerHandle {
    pub fn update(&self, pod: Pod) {
        let _ = self.tx.send(WorkerMsg::Update(Box::new(pod)));
    }
    pub fn delete(&mut self, grace: Option<i64>) {
        self.deleting = true;
        let _ = self.tx.send(WorkerMsg::Delete(grace));
    }
    /// The pod is being torn down.
    pub fn is_deleting(&self) -> bool {
        self.deleting
    }
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts the worker of `pod`, adopting `rec` (from before a restart) if
/// given.
pub fn spawn(ctx: WorkerContext, pod: Pod, rec: Option<PodRecord>) -> WorkerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let w = Worker::new(ctx, pod, rec);
    let task = tokio::spawn(w.run(rx));
    WorkerHandle {
        tx,
        task,
        deleting: false,
    }
}

/// Tears down a pod known only from its record (deleted while kcnode was
/// down, or no longer desired).
pub fn spawn_orphan_cleanup(
    ctx: WorkerContext,
    rec: PodRecord,
    grace: Option<i64>,
) -> WorkerHandle {
    let mut pod = Pod::default();
    pod.metadata.name = Some(rec.name.clone());
    pod.metadata.namespace = Some(rec.namespace.clone());
    pod.metadata.uid = Some(rec.uid.clone());
    let w = Worker::new(ctx, pod, Some(rec));
    let (tx, _) = mpsc::unbounded_channel();
    WorkerHandle {
        tx,
        task: tokio::spawn(w.terminate(grace)),
        deleting: true,
    }
}

/// What became of one container in this pass.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Exited for good (no restart due by the policy); success or not.
    Done(bool),
    /// Running, starting or waiting to (re)start.
    Pending,
}

struct Worker {
    ctx: WorkerContext,
    pod: Pod,
    rec: PodRecord,
    probers: HashMap<String, (String, Prober)>,
    volumes: BTreeMap<String, PathBuf>,
    /// The pod's /etc/resolv.conf, /etc/hosts and /etc/hostname (written
    /// at each sync).
    etc: Vec<kc_runtime::container::spec::Volume>,
    last_status: Option<String>,
    last_saved: Option<PodRecord>,
    /// Last warning per (container, reason), to report a repeated failure once.
    warned: HashMap<(String, String), String>,
}

fn now_rfc3339() -> String {
    events::now().to_string()
}

fn unix(ts: &Option<String>) -> Option<i64> {
    ts.as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(|t| t.as_second())
}

fn not_found(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Container(ContainerError::NotFound(_)))
}

/// How a runtime container ended, in Kubernetes' words.
fn termination(st: &State) -> Termination {
    let start_error = st.error.is_some() && st.started_at.is_none();
    let exit_code = st.exit_code.unwrap_or(if start_error { 128 } else { 255 });
    let reason = if st.oom_killed {
        "OOMKilled"
    } else if start_error {
        "StartError"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Termination {
        container_id: st.id.clone(),
        exit_code,
        reason: reason.to_string(),
        message: st.error.clone(),
        started_at: st.started_at.clone(),
        finished_at: st.finished_at.clone(),
    }
}

/// A stable hash of a container's spec (FNV-1a of its JSON).
fn spec_hash(c: &Container) -> u64 {
    serde_json::to_vec(c)
        .unwrap_or_default()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x100000001b3)
        })
        .max(1)
}

impl Worker {
    fn new(ctx: WorkerContext, pod: Pod, rec: Option<PodRecord>) -> Worker {
        let m = &pod.metadata;
        let rec = rec.unwrap_or_else(|| PodRecord {
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_else(|| "default".into()),
            name: m.name.clone().unwrap_or_default(),
            ..Default::default()
        });
        Worker {
            ctx,
            pod,
            last_saved: Some(rec.clone()),
            rec,
            probers: HashMap::new(),
            volumes: BTreeMap::new(),
            etc: Vec::new(),
            last_status: None,
            warned: HashMap::new(),
        }
    }

    fn cfg(&self) -> &KubeletConfig {
        &self.ctx.config
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<WorkerMsg>) {
        loop {
            self.sync().await;
            self.publish();
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            };
            match msg {
                Some(WorkerMsg::Update(p)) => self.pod = *p,
                Some(WorkerMsg::Delete(grace)) => return self.terminate(grace).await,
                // The kubelet stopped: leave the pod running for the next one.
                None => return,
            }
        }
    }

    fn event(&self, kind: Kind, reason: &str, message: String, container: Option<&str>) {
        let s = Subject {
            namespace: &self.rec.namespace,
            name: &self.rec.name,
            uid: &self.rec.uid,
            container,
        };
        match kind {
            Kind::Normal => tracing::info!(pod = %self.rec.name, reason, "{message}"),
            Kind::Warning => tracing::warn!(pod = %self.rec.name, reason, "{message}"),
        }
        let ev = events::build(&self.cfg().node_name, &s, kind, reason, message);
        let _ = self.ctx.reports.send(KubeletReport::Event(ev));
    }

    /// A warning event, unless the same one was the last for this subject.
    fn warn_once(&mut self, container: &str, reason: &str, message: String) {
        let key = (container.to_string(), reason.to_string());
        if self.warned.get(&key) != Some(&message) {
            self.warned.insert(key, message.clone());
            let c = (!container.is_empty()).then_some(container);
            self.event(Kind::Warning, reason, message, c);
        }
    }

    fn spec_containers(&self, init: bool) -> Vec<Container> {
        let Some(spec) = &self.pod.spec else {
            return vec![];
        };
        if init {
            spec.init_containers.clone().unwrap_or_default()
        } else {
            spec.containers.clone()
        }
    }

    fn grace(&self) -> Duration {
        let s = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        Duration::from_secs(s.max(0) as u64)
    }

    /// One reconciliation pass.
    async fn sync(&mut self) {
        if self.pod.spec.is_none() {
            return;
        }
        self.rec.start_time.get_or_insert_with(now_rfc3339);
        let Some(sandbox) = self.ensure_sandbox().await else {
            return;
        };
        let dir = volumes::pod_dir(&self.cfg().data_dir, &self.rec.uid);
        match volumes::prepare(&self.pod, &dir, self.cfg().config.as_ref()).await {
            Ok(v) => self.volumes = v,
            Err(e) => {
                self.warn_once("", "FailedMount", format!("MountVolume.SetUp failed: {e}"));
                return;
            }
        }
        match volumes::resolv_conf(&self.pod, &dir, self.cfg().cluster_dns) {
            Ok(b) => self.etc = vec![b],
            Err(e) => {
                let msg = format!("cannot write the pod's resolv.conf: {e}");
                self.warn_once("", "DNSConfigForming", msg);
                return;
            }
        }
        let pod_ip = self.rec.pod_ip.clone().unwrap_or_default();
        match etc_files::write(&self.pod, &dir, &pod_ip) {
            Ok(b) => self.etc.extend(b),
            Err(e) => {
                let msg = format!("cannot write the pod's /etc/hosts and /etc/hostname: {e}");
                self.warn_once("", "FailedMount", msg);
                return;
            }
        }
        for c in self.spec_containers(true) {
            if self.sync_container(&c, true, &sandbox).await != Progress::Done(true) {
                return;
            }
        }
        for c in self.spec_containers(false) {
            self.sync_container(&c, false, &sandbox).await;
        }
    }

    /// The pod's sandbox, created if missing or if its holder died (then
    /// the old containers, cut off from their namespaces' owner, go too).
    async fn ensure_sandbox(&mut self) -> Option<SandboxRef> {
        if let Some(sb) = &self.rec.sandbox {
            if kc_runtime::sandbox::is_holder(sb.pid) {
                return Some(sb.clone());
            }
            self.event(
                Kind::Normal,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.".into(),
                None,
            );
            let sb = sb.clone();
            self.remove_all_containers().await;
            let _ = self
                .cfg()
                .runtime
                .send(RemoveSandbox { id: sb.id.clone() })
                .await;
            self.rec.sandbox = None;
        }
        let hostname = etc_files::hostname(&self.pod);
        let name = format!("{}_{}_{}", self.rec.namespace, self.rec.name, self.rec.uid);
        let t0 = Instant::now();
        match self
            .cfg()
            .runtime
            .send(CreateSandbox { name, hostname })
            .await
        {
            Ok(Ok(sb)) => {
                let holder_ms = t0.elapsed().as_millis() as u64;
                let r = SandboxRef {
                    id: sb.id,
                    pid: sb.pid,
                };
                if container_spec::host_network(&self.pod) {
                    self.rec.pod_ip = Some(self.cfg().host_ip.clone()).filter(|ip| !ip.is_empty());
                } else if let Some(net) = self.cfg().network.clone() {
                    let (uid, pid) = (self.rec.uid.clone(), r.pid);
                    let res = tokio::task::spawn_blocking(move || net.attach(&uid, pid))
                        .await
                        .unwrap_or_else(|e| {
                            Err(crate::network::NetworkError::Command(e.to_string()))
                        });
                    match res {
                        Ok(ip) => self.rec.pod_ip = Some(ip),
                        Err(e) => {
                            self.warn_once(
                                "",
                                "FailedCreatePodSandBox",
                                format!("Failed to set up the pod network: {e}"),
                            );
                            let _ = self.cfg().runtime.send(RemoveSandbox { id: r.id }).await;
                            return None;
                        }
                    }
                }
                tracing::debug!(
                    pod = %self.rec.name,
                    holder_ms,
                    ms = t0.elapsed().as_millis() as u64,
                    "sandbox ready (holder and network)"
                );
                self.rec.sandbox = Some(r.clone());
                self.save();
                Some(r)
            }
            Ok(Err(e)) => {
                self.warn_once(
                    "",
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                None
            }
            Err(e) => {
                tracing::error!("runtime unavailable: {e}");
                None
            }
        }
    }

    async fn remove_all_containers(&mut self) {
        let ids: Vec<String> = self
            .rec
            .init
            .values_mut()
            .chain(self.rec.containers.values_mut())
            .flat_map(|c| [c.id.take(), c.previous_id.take()])
            .flatten()
            .collect();
        for id in ids {
            let _ = self
                .cfg()
                .runtime
                .send(RemoveContainer { id, force: true })
                .await;
        }
        self.probers.clear();
    }

    async fn sync_container(&mut self, c: &Container, init: bool, sb: &SandboxRef) -> Progress {
        fn map(r: &mut PodRecord, init: bool) -> &mut BTreeMap<String, ContainerRecord> {
            if init { &mut r.init } else { &mut r.containers }
        }
        let mut cr = map(&mut self.rec, init)
            .get(&c.name)
            .cloned()
            .unwrap_or_default();
        cr.image = c.image.clone().unwrap_or_default();
        let p = self.sync_one(c, init, sb, &mut cr).await;
        map(&mut self.rec, init).insert(c.name.clone(), cr);
        p
    }

    async fn sync_one(
        &mut self,
        c: &Container,
        init: bool,
        sb: &SandboxRef,
        cr: &mut ContainerRecord,
    ) -> Progress {
        let mut policy = RestartPolicy::of(&self.pod);
        if init && policy == RestartPolicy::Always {
            policy = RestartPolicy::OnFailure;
        }
        // Observe the current run.
        let mut exited = None;
        if let Some(id) = cr.id.clone() {
            match self
                .cfg()
                .runtime
                .send(ContainerStatus { id: id.clone() })
                .await
            {
                Ok(Ok(st)) => match st.status {
                    Status::Running if cr.spec_hash != 0 && cr.spec_hash != spec_hash(c) => {
                        self.replace_changed(c, cr, &id, sb).await;
                        return Progress::Pending;
                    }
                    Status::Running => {
                        cr.state = Observed::Running {
                            started_at: st.started_at.clone(),
                        };
                        self.probe(c, cr, &id, sb).await;
                        return Progress::Pending;
                    }
                    Status::Created => {
                        self.start(c, cr, &id).await;
                        return Progress::Pending;
                    }
                    Status::Exited => exited = Some(termination(&st)),
                },
                Ok(Err(e)) if not_found(&e) => cr.id = None,
                Ok(Err(e)) => {
                    tracing::warn!("container {id}: status unavailable: {e}");
                    return Progress::Pending;
                }
                Err(e) => {
                    tracing::error!("runtime unavailable: {e}");
                    return Progress::Pending;
                }
            }
        }
        let now = events::now().as_second();
        if let Some(t) = exited {
            let seen = cr.last_state.as_ref().map(|l| &l.container_id) == Some(&t.container_id)
                || cr.state == Observed::Terminated(t.clone());
            if !seen {
                cr.ready = false;
                cr.started = false;
                self.probers.remove(&c.name);
                let ran = unix(&t.finished_at)
                    .zip(unix(&t.started_at))
                    .map(|(f, s)| Duration::from_secs((f - s).max(0) as u64))
                    .unwrap_or_default();
                cr.streak = backoff::streak_after_run(cr.streak, ran);
                if t.reason == "OOMKilled" {
                    self.warn_once(
                        &c.name,
                        "OOMKilled",
                        format!(
                            "Container {} was killed by the OOM killer (memory limit)",
                            c.name
                        ),
                    );
                }
                cr.state = Observed::Terminated(t.clone());
            }
            if !policy.restarts(t.exit_code) {
                cr.state = Observed::Terminated(t.clone());
                return Progress::Done(t.exit_code == 0);
            }
            let delay = backoff::delay(cr.streak);
            let not_before = unix(&t.finished_at).unwrap_or(now) + delay.as_secs() as i64;
            if now < not_before {
                cr.last_state = Some(t);
                let message = format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    delay.as_secs(),
                    c.name,
                    self.rec.name,
                    self.rec.namespace,
                    self.rec.uid
                );
                if cr.not_before != Some(not_before) {
                    cr.not_before = Some(not_before);
                    self.event(
                        Kind::Warning,
                        "BackOff",
                        "Back-off restarting failed container".into(),
                        Some(&c.name),
                    );
                }
                cr.state = Observed::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(message),
                };
                return Progress::Pending;
            }
            // Restart now: the old run becomes lastState.
            cr.last_state = Some(t);
            self.retire(cr).await;
            cr.restart_count += 1;
            cr.streak += 1;
        } else if cr.not_before.is_some_and(|t| now < t) && cr.id.is_none() {
            // Waiting after a failed creation (image, config): retry later.
            if let Observed::Waiting { reason, message } = &mut cr.state
                && reason == "ErrImagePull"
            {
                *reason = "ImagePullBackOff".into();
                *message = Some(format!(
                    "Back-off pulling image {:?}",
                    c.image.as_deref().unwrap_or("")
                ));
            }
            return Progress::Pending;
        }
        self.create_and_start(c, sb, cr).await;
        Progress::Pending
    }

    /// The current run becomes the previous one (kept for its logs); the
    /// one before goes.
    async fn retire(&mut self, cr: &mut ContainerRecord) {
        let Some(old) = cr.id.take() else { return };
        if let Some(prev) = cr.previous_id.replace(old) {
            let _ = self
                .cfg()
                .runtime
                .send(RemoveContainer {
                    id: prev,
                    force: true,
                })
                .await;
        }
    }

    /// A running container whose spec changed (e.g. its image) is stopped
    /// and started anew from the new spec.
    async fn replace_changed(
        &mut self,
        c: &Container,
        cr: &mut ContainerRecord,
        id: &str,
        sb: &SandboxRef,
    ) {
        self.event(
            Kind::Normal,
            "Killing",
            format!("Container {} definition changed, will be restarted", c.name),
            Some(&c.name),
        );
        let grace = self.grace();
        let stopped = self
            .cfg()
            .runtime
            .send(StopContainer {
                id: id.to_string(),
                grace,
            })
            .await;
        if let Ok(Ok(st)) = stopped {
            cr.last_state = Some(termination(&st));
        }
        self.probers.remove(&c.name);
        self.retire(cr).await;
        cr.restart_count += 1;
        cr.streak = 0;
        self.create_and_start(c, sb, cr).await;
    }

    /// Resolves the image by the pull policy, pulling through the node's
    /// `ImageSource` when needed.
    async fn image(&mut self, c: &Container) -> Result<ResolvedImage, (String, String)> {
        let reference = c.image.clone().unwrap_or_default();
        if reference.is_empty() {
            return Err((
                "InvalidImageName".into(),
                "the container has no image".into(),
            ));
        }
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let tag = reference.rsplit('/').next().unwrap_or("");
            if !tag.contains(':') || tag.ends_with(":latest") {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let data_dir = self.cfg().data_dir.clone();
        let resolve = |r: String, d: PathBuf| async move {
            tokio::task::spawn_blocking(move || {
                kc_runtime::image::ImageStore::open(&d)
                    .and_then(|s| s.resolve(&r))
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let local = resolve(reference.clone(), data_dir.clone()).await;
        match (policy.as_str(), local) {
            ("Never", Ok(img)) | ("IfNotPresent", Ok(img)) => {
                self.event(
                    Kind::Normal,
                    "Pulled",
                    format!("Container image {reference:?} already present on machine"),
                    Some(&c.name),
                );
                Ok(img)
            }
            ("Never", Err(e)) => Err((
                "ErrImageNeverPull".into(),
                format!(
                    "Container image {reference:?} is not present with pull policy of Never: {e}"
                ),
            )),
            (_, local) => match self.cfg().images.pull(&reference).await {
                Ok(()) => {
                    self.event(
                        Kind::Normal,
                        "Pulled",
                        format!("Successfully pulled image {reference:?}"),
                        Some(&c.name),
                    );
                    resolve(reference.clone(), data_dir)
                        .await
                        .map_err(|e| ("ErrImagePull".into(), e))
                }
                // Policy Always without a registry: the local image serves.
                Err(_) if local.is_ok() => local.map_err(|e| ("ErrImagePull".into(), e)),
                Err(e) => Err(("ErrImagePull".into(), e)),
            },
        }
    }

    /// Builds the spec of a new run of `c`, creates and starts it.
    async fn create_and_start(&mut self, c: &Container, sb: &SandboxRef, cr: &mut ContainerRecord) {
        let retry_after = |cr: &mut ContainerRecord, reason: &str, message: String| {
            cr.not_before = Some(events::now().as_second() + 10);
            cr.state = Observed::Waiting {
                reason: reason.to_string(),
                message: Some(message),
            };
        };
        let image = match self.image(c).await {
            Ok(i) => i,
            Err((reason, message)) => {
                self.warn_once(&c.name, "Failed", format!("{reason}: {message}"));
                return retry_after(cr, &reason, message);
            }
        };
        cr.image_id = image.id.clone();
        let downward = env::Downward {
            pod: &self.pod,
            node_name: &self.ctx.config.node_name,
            host_ip: &self.ctx.config.host_ip,
            pod_ip: self.rec.pod_ip.as_deref().unwrap_or(""),
        };
        let env =
            match env::build(c, &image.config.env, &downward, self.cfg().config.as_ref()).await {
                Ok(e) => e,
                Err(e) => {
                    let msg = e.to_string();
                    self.warn_once(&c.name, "Failed", format!("Error: {msg}"));
                    return retry_after(cr, "CreateContainerConfigError", msg);
                }
            };
        let binds = match volumes::binds(c, &self.volumes, &self.pod) {
            Ok(mut b) => {
                b.extend(self.etc.iter().cloned());
                b
            }
            Err(e) => {
                let msg = e.to_string();
                self.warn_once(&c.name, "Failed", format!("Error: {msg}"));
                return retry_after(cr, "CreateContainerConfigError", msg);
            }
        };
        let name = container_spec::runtime_name(
            &self.rec.namespace,
            &self.rec.name,
            &self.rec.uid,
            &c.name,
            cr.restart_count,
        );
        let spec = match container_spec::build(&self.pod, c, &image, env, binds, name) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                self.warn_once(&c.name, "Failed", format!("Error: {msg}"));
                return retry_after(cr, "CreateContainerError", msg);
            }
        };
        let t0 = Instant::now();
        let created = self
            .cfg()
            .runtime
            .send(CreateContainer {
                sandbox: Some(sb.id.clone()),
                spec,
            })
            .await;
        let id = match created {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => {
                let msg = e.to_string();
                self.warn_once(&c.name, "Failed", format!("Error: {msg}"));
                return retry_after(cr, "CreateContainerError", msg);
            }
            Err(e) => return tracing::error!("runtime unavailable: {e}"),
        };
        cr.not_before = None;
        cr.id = Some(id.clone());
        cr.spec_hash = spec_hash(c);
        self.event(
            Kind::Normal,
            "Created",
            format!("Created container {}", c.name),
            Some(&c.name),
        );
        self.save();
        let t1 = Instant::now();
        self.start(c, cr, &id).await;
        tracing::debug!(
            pod = %self.rec.name,
            create_ms = (t1 - t0).as_millis() as u64,
            start_ms = t1.elapsed().as_millis() as u64,
            "container created and started"
        );
    }

    async fn start(&mut self, c: &Container, cr: &mut ContainerRecord, id: &str) {
        match self
            .cfg()
            .runtime
            .send(StartContainer { id: id.to_string() })
            .await
        {
            Ok(Ok(_pid)) => {
                self.event(
                    Kind::Normal,
                    "Started",
                    format!("Started container {}", c.name),
                    Some(&c.name),
                );
                cr.state = Observed::Running {
                    started_at: Some(now_rfc3339()),
                };
                cr.started = c.startup_probe.is_none();
                cr.ready = false;
                self.probers.insert(
                    c.name.clone(),
                    (id.to_string(), Prober::new(Instant::now())),
                );
            }
            Ok(Err(e)) => {
                // The runtime records the failed start as an exit; the next
                // pass sees it and applies the restart policy.
                self.warn_once(&c.name, "Failed", format!("Error: {e}"));
            }
            Err(e) => tracing::error!("runtime unavailable: {e}"),
        }
    }

    /// Runs the due probes of a running container.
    async fn probe(&mut self, c: &Container, cr: &mut ContainerRecord, id: &str, sb: &SandboxRef) {
        let now = Instant::now();
        let entry = self
            .probers
            .entry(c.name.clone())
            .or_insert_with(|| (id.to_string(), Prober::new(now)));
        if entry.0 != id {
            *entry = (id.to_string(), Prober::new(now));
        }
        let mut prober = entry.1.clone();
        let runtime = self.cfg().runtime.clone();
        let target = probes::Target {
            runtime: &runtime,
            container_id: id,
            // hostNetwork pods listen in the node's network: probe there.
            netns_pid: if container_spec::host_network(&self.pod) {
                None
            } else {
                Some(sb.pid)
            },
            container: c,
        };
        let mut kill = None;
        if !cr.started {
            match &c.startup_probe {
                None => cr.started = true,
                Some(p) if prober.due(probes::Kind::Startup, p, now) => {
                    let r = probes::run(p, &target).await;
                    if let Err(e) = &r {
                        self.event(
                            Kind::Warning,
                            "Unhealthy",
                            format!("Startup probe failed: {e}"),
                            Some(&c.name),
                        );
                    }
                    match prober.record(probes::Kind::Startup, p, now, r) {
                        Outcome::Started => cr.started = true,
                        Outcome::Kill(m) => kill = Some(("startup", m)),
                        _ => {}
                    }
                }
                Some(_) => {}
            }
        }
        if cr.started && kill.is_none() {
            if let Some(p) = &c.liveness_probe
                && prober.due(probes::Kind::Liveness, p, now)
            {
                let r = probes::run(p, &target).await;
                if let Err(e) = &r {
                    self.event(
                        Kind::Warning,
                        "Unhealthy",
                        format!("Liveness probe failed: {e}"),
                        Some(&c.name),
                    );
                }
                if let Outcome::Kill(m) = prober.record(probes::Kind::Liveness, p, now, r) {
                    kill = Some(("liveness", m));
                }
            }
            match &c.readiness_probe {
                None => cr.ready = true,
                Some(p) if kill.is_none() && prober.due(probes::Kind::Readiness, p, now) => {
                    let r = probes::run(p, &target).await;
                    if let Err(e) = &r {
                        self.event(
                            Kind::Warning,
                            "Unhealthy",
                            format!("Readiness probe failed: {e}"),
                            Some(&c.name),
                        );
                    }
                    if let Outcome::Ready(b) = prober.record(probes::Kind::Readiness, p, now, r) {
                        cr.ready = b;
                    }
                }
                Some(_) => {}
            }
        }
        self.probers
            .insert(c.name.clone(), (id.to_string(), prober));
        if let Some((which, why)) = kill {
            cr.ready = false;
            self.event(
                Kind::Normal,
                "Killing",
                format!(
                    "Container {} failed {which} probe, will be restarted ({why})",
                    c.name
                ),
                Some(&c.name),
            );
            let grace = self.grace();
            let _ = runtime
                .send(StopContainer {
                    id: id.to_string(),
                    grace,
                })
                .await;
        }
    }

    /// Reports the status if it changed, saves the record, updates the
    /// lookup for logs/exec.
    fn publish(&mut self) {
        let pod_ip = self.rec.pod_ip.clone().unwrap_or_default();
        let status = status::compute(&self.pod, &self.rec, &self.cfg().host_ip, &pod_ip);
        let json = serde_json::to_string(&status).unwrap_or_default();
        if self.last_status.as_ref() != Some(&json) {
            self.last_status = Some(json);
            let _ = self.ctx.reports.send(KubeletReport::PodStatus {
                namespace: self.rec.namespace.clone(),
                name: self.rec.name.clone(),
                uid: self.rec.uid.clone(),
                status,
            });
        }
        self.save();
        let pc = PodContainers {
            uid: self.rec.uid.clone(),
            sandbox_id: self.rec.sandbox.as_ref().map(|s| s.id.clone()),
            netns: self.rec.sandbox.as_ref().map(|s| {
                // hostNetwork pods live in the kubelet's network namespace.
                let pid = if container_spec::host_network(&self.pod) {
                    std::process::id() as i32
                } else {
                    s.pid
                };
                PathBuf::from(format!("/proc/{pid}/ns/net"))
            }),
            containers: self
                .rec
                .init
                .iter()
                .chain(&self.rec.containers)
                .filter_map(|(n, c)| c.id.clone().map(|id| (n.clone(), id)))
                .collect(),
            previous: self
                .rec
                .init
                .iter()
                .chain(&self.rec.containers)
                .filter_map(|(n, c)| c.previous_id.clone().map(|id| (n.clone(), id)))
                .collect(),
        };
        if let Ok(mut l) = self.ctx.lookup.write() {
            l.insert((self.rec.namespace.clone(), self.rec.name.clone()), pc);
        }
    }

    fn save(&mut self) {
        if self.last_saved.as_ref() == Some(&self.rec) {
            return;
        }
        match record::save(&self.cfg().data_dir, &self.rec) {
            Ok(()) => self.last_saved = Some(self.rec.clone()),
            Err(e) => tracing::error!("cannot save the record of pod {}: {e}", self.rec.name),
        }
    }

    /// Graceful deletion: SIGTERM to every running container, up to `grace`
    /// seconds (default: the pod's terminationGracePeriodSeconds), SIGKILL;
    /// then containers, sandbox and files go, and the final status and
    /// PodTerminated are reported.
    async fn terminate(mut self, grace: Option<i64>) {
        self.rec.deleting = true;
        self.save();
        let grace = grace
            .map(|g| Duration::from_secs(g.max(0) as u64))
            .unwrap_or_else(|| self.grace());
        let runtime = self.cfg().runtime.clone();
        let running: Vec<(bool, String, String)> = self
            .rec
            .init
            .iter()
            .map(|(n, c)| (true, n, c))
            .chain(self.rec.containers.iter().map(|(n, c)| (false, n, c)))
            .filter(|(_, _, c)| matches!(c.state, Observed::Running { .. }))
            .filter_map(|(i, n, c)| c.id.clone().map(|id| (i, n.clone(), id)))
            .collect();
        for (_, name, _) in &running {
            self.event(
                Kind::Normal,
                "Killing",
                format!("Stopping container {name}"),
                Some(name),
            );
        }
        let stops = running.iter().map(|(init, name, id)| {
            let runtime = runtime.clone();
            let (init, name, id) = (*init, name.clone(), id.clone());
            async move {
                let st = runtime.send(StopContainer { id, grace }).await;
                (init, name, st)
            }
        });
        for (init, name, st) in futures::future::join_all(stops).await {
            if let Ok(Ok(st)) = st {
                let map = if init {
                    &mut self.rec.init
                } else {
                    &mut self.rec.containers
                };
                if let Some(cr) = map.get_mut(&name) {
                    cr.state = Observed::Terminated(termination(&st));
                    cr.ready = false;
                }
            }
        }
        self.remove_all_containers().await;
        if let Some(sb) = self.rec.sandbox.take() {
            let _ = runtime.send(RemoveSandbox { id: sb.id }).await;
        }
        if let Some(net) = self.cfg().network.clone() {
            let uid = self.rec.uid.clone();
            let _ = tokio::task::spawn_blocking(move || net.detach(&uid)).await;
        }
        volumes::teardown(&volumes::pod_dir(&self.cfg().data_dir, &self.rec.uid));
        self.publish();
        record::remove(&self.cfg().data_dir, &self.rec.uid);
        if let Ok(mut l) = self.ctx.lookup.write() {
            l.remove(&(self.rec.namespace.clone(), self.rec.name.clone()));
        }
        let _ = self.ctx.reports.send(KubeletReport::PodTerminated {
            namespace: self.rec.namespace.clone(),
            name: self.rec.name.clone(),
            uid: self.rec.uid.clone(),
        });
    }
}
