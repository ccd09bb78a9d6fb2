//! The node's end of the stream tunnel: serves one [`StreamRequest`] that
//! the API server sent on a stream it opened on this node's connection
//! (`kubectl logs`, `exec`, `port-forward`), with the local runtime.
//!
//! Which container a pod's container is, and which network namespace the
//! pod has, is the kubelet's knowledge: it is asked through [`PodLookup`].
//! Everything else is here: logs read (and followed) from the runtime's
//! CRI log file, exec as a `kcnode exec` child whose stdio is pumped as
//! [`ExecFrame`]s, port-forward as a TCP connection made from a thread that
//! entered the pod's network namespace. Generic over the byte streams so
//! tests drive it over in-memory pipes and production over QUIC.

use std::future::Future;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kc_protocol::frame::Hello;
use kc_protocol::frame_io::{read_frame, write_frame};
use kc_protocol::streams::{ExecFrame, StreamAccept, StreamRequest};
use kc_runtime::container::{Containers, Status, logs};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where a pod's container lives on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// The runtime's id of the container's current instance.
    pub container_id: String,
    /// The previous (terminated) instance, kept for `logs --previous`.
    pub previous_container_id: Option<String>,
    /// The pod sandbox's network namespace (`/proc/<pid>/ns/net` or a bind
    /// mount of it).
    pub netns: Option<PathBuf>,
}

/// Why a lookup failed: an HTTP status for the API server and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub code: u16,
    pub message: String,
}

pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<PodTarget, LookupError>> + Send + 'a>>;

/// Resolves a pod's container on this node (implemented by the kubelet).
pub trait PodLookup: Send + Sync {
    /// `container` is empty for port-forward (any container: the pod's
    /// network namespace is what matters).
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
    ) -> LookupFuture<'a>;
}

/// What serving streams needs from this node.
#[derive(Clone)]
pub struct StreamServer {
    pub data_dir: PathBuf,
    pub node_name: String,
    /// The `kcnode` binary (exec runs `kcnode exec`).
    pub kcnode: PathBuf,
    pub lookup: Arc<dyn PodLookup>,
}

fn failed(code: u16, message: impl Into<String>) -> StreamAccept {
    StreamAccept::Failed {
        code,
        message: message.into(),
    }
}

impl StreamServer {
    fn containers(&self) -> Containers {
        Containers::new(&self.data_dir, &self.node_name)
    }

    /// Serves every stream the control plane opens on the node's session
    /// connection, each in its own task, until the connection ends.
    /// (Called by the node session once it is wired; see branch `cluster`.)
    pub async fn serve_connection(self: Arc<Self>, conn: quinn::Connection) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let me = self.clone();
            tokio::spawn(async move { me.serve(send, recv).await });
        }
    }

    /// Serves one stream: reads the hello and request, answers, streams.
    pub async fn serve<S, R>(&self, mut send: S, mut recv: R)
    where
        S: AsyncWrite + Unpin + Send,
        R: AsyncRead + Unpin + Send,
    {
        let Some(hello) = read_frame::<_, Hello>(&mut recv).await.ok().flatten() else {
            tracing::debug!("stream hello unreadable; dropping the stream");
            return;
        };
        if let Err(e) = hello.check() {
            // Say why, so the API server can tell the user.
            tracing::warn!("stream refused: {e}");
            let _ = write_frame(&mut send, &failed(500, e.to_string())).await;
            let _ = send.shutdown().await;
            return;
        }
        let request = read_frame::<_, StreamRequest>(&mut recv)
            .await
            .ok()
            .flatten();
        let Some(request) = request else {
            tracing::debug!("stream request unreadable; dropping the stream");
            return;
        };
        tracing::debug!(pod = %request.pod(), "stream request");
        if let Err(e) = self.serve_request(request, &mut send, &mut recv).await {
            tracing::debug!("stream ended: {e}");
        }
        let _ = send.shutdown().await;
    }

    async fn serve_request<S, R>(
        &self,
        request: StreamRequest,
        send: &mut S,
        recv: &mut R,
    ) -> std::io::Result<()>
    where
        S: AsyncWrite + Unpin + Send,
        R: AsyncRead + Unpin + Send,
    {
        let (namespace, pod, container) = match &request {
            StreamRequest::Logs {
                namespace,
                pod,
                container,
                ..
            }
            | StreamRequest::Exec {
                namespace,
                pod,
                container,
                ..
            } => (namespace, pod, container.as_str()),
            StreamRequest::PortForward { namespace, pod, .. } => (namespace, pod, ""),
        };
        if let StreamRequest::Logs {
            follow,
            tail_lines,
            timestamps,
            limit_bytes,
            previous,
            ..
        } = &request
            && let Some(component) = self.mirror_component(namespace, pod, container)
        {
            if *previous {
                let msg = format!(
                    "previous terminated container \"{component}\" in pod \"{pod}\" not found"
                );
                return accept(send, failed(400, msg)).await;
            }
            let opts = LogOptions {
                follow: *follow,
                tail_lines: *tail_lines,
                timestamps: *timestamps,
                limit_bytes: *limit_bytes,
            };
            return self_logs(component, opts, send).await;
        }
        let target = match self.lookup.resolve(namespace, pod, container).await {
            Ok(t) => t,
            Err(e) => return accept(send, failed(e.code, e.message)).await,
        };
        match request {
            StreamRequest::Logs {
                previous,
                follow,
                tail_lines,
                timestamps,
                limit_bytes,
                ..
            } => {
                let id = if previous {
                    match &target.previous_container_id {
                        Some(id) => id.clone(),
                        None => {
                            let msg = format!(
                                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                            );
                            return accept(send, failed(400, msg)).await;
                        }
                    }
                } else {
                    target.container_id.clone()
                };
                let opts = LogOptions {
                    follow: follow && !previous,
                    tail_lines,
                    timestamps,
                    limit_bytes,
                };
                self.logs(&id, opts, send).await
            }
            StreamRequest::Exec {
                command,
                stdin,
                tty,
                ..
            } => {
                self.exec(&target.container_id, command, stdin, tty, send, recv)
                    .await
            }
            StreamRequest::PortForward { port, .. } => {
                let Some(netns) = target.netns else {
                    return accept(
                        send,
                        failed(
                            500,
                            format!("pod {pod} has no network namespace on this node"),
                        ),
                    )
                    .await;
                };
                match connect_in_netns(netns, port).await {
                    Ok(tcp) => {
                        accept(send, StreamAccept::Ok).await?;
                        let (mut tr, mut tw) = tcp.into_split();
                        let up = async {
                            let _ = tokio::io::copy(recv, &mut tw).await;
                            let _ = tw.shutdown().await;
                        };
                        // The pod closing its side ends the stream's send
                        // half at once (the client sees EOF, as with
                        // kubelet), even while the client keeps its own
                        // side open waiting for it.
                        let down = async {
                            let _ = tokio::io::copy(&mut tr, send).await;
                            let _ = send.shutdown().await;
                        };
                        tokio::join!(up, down);
                        Ok(())
                    }
                    Err(e) => {
                        let msg = format!(
                            "failed to connect to localhost:{port} inside pod {pod}'s network namespace: {e}"
                        );
                        accept(send, failed(500, msg)).await
                    }
                }
            }
        }
    }

    /// The component whose mirror pod `pod` is on this node, if it is one
    /// (`kube-system/<component>-<node>`, container named after it).
    fn mirror_component(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<&'static str> {
        if namespace != "kube-system" {
            return None;
        }
        crate::mirror::control_plane_parts()
            .into_iter()
            .chain(crate::mirror::node_parts())
            .map(|p| p.component)
            .find(|c| {
                pod == format!("{c}-{}", self.node_name)
                    && (container.is_empty() || container == *c)
            })
    }

    async fn logs<S: AsyncWrite + Unpin + Send>(
        &self,
        id: &str,
        opts: LogOptions,
        send: &mut S,
    ) -> std::io::Result<()> {
        let containers = self.containers();
        let path = containers.dir(id).log();
        let raw = match tokio::fs::read(&path).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return accept(
                    send,
                    failed(500, format!("cannot read the log of container {id}: {e}")),
                )
                .await;
            }
        };
        accept(send, StreamAccept::Ok).await?;
        // Only whole lines are rendered; a partial last line waits for more.
        let whole = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut budget = opts.limit_bytes.map(|l| l.max(0) as u64);
        let rendered = render_lines(&raw[..whole], opts.timestamps, opts.tail_lines);
        if !write_limited(send, &rendered, &mut budget).await? || !opts.follow {
            return Ok(());
        }
        let mut offset = whole as u64;
        let mut pending = Vec::new();
        loop {
            let mut file = tokio::fs::File::open(&path).await?;
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut fresh = Vec::new();
            file.read_to_end(&mut fresh).await?;
            offset += fresh.len() as u64;
            pending.extend_from_slice(&fresh);
            if let Some(i) = pending.iter().rposition(|&b| b == b'\n') {
                let lines: Vec<u8> = pending.drain(..=i).collect();
                if !write_limited(
                    send,
                    &render_lines(&lines, opts.timestamps, None),
                    &mut budget,
                )
                .await?
                {
                    return Ok(());
                }
            }
            if fresh.is_empty() {
                let running = containers
                    .find(id)
                    .map(|s| s.status == Status::Running)
                    .unwrap_or(false);
                if !running {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn exec<S, R>(
        &self,
        id: &str,
        command: Vec<String>,
        stdin: bool,
        tty: bool,
        send: &mut S,
        recv: &mut R,
    ) -> std::io::Result<()>
    where
        S: AsyncWrite + Unpin + Send,
        R: AsyncRead + Unpin + Send,
    {
        // A terminal's size comes as the client's first resize, right after
        // it connects: wait a moment for it so the command starts with the
        // right size (stdin that comes first is kept for the command).
        // One read of the server's frames stays in flight across loop turns
        // (and across this wait): dropping a half-done read would lose bytes
        // of the stream.
        let mut reading = Some(next_read(recv));
        let mut early = Vec::new();
        let mut winsize = None;
        let mut resizer = None;
        if tty {
            let deadline = tokio::time::Instant::now() + FIRST_RESIZE_WAIT;
            while winsize.is_none()
                && let Some(pending) = reading.as_mut()
            {
                let Ok((incoming, r)) = tokio::time::timeout_at(deadline, pending).await else {
                    break;
                };
                match incoming {
                    Ok(Some(ExecFrame::Resize { width, height })) => {
                        winsize = Some((width, height));
                        reading = Some(next_read(r));
                    }
                    Ok(Some(frame)) => {
                        early.push(frame);
                        reading = Some(next_read(r));
                    }
                    Ok(None) | Err(_) => {
                        early.push(ExecFrame::StdinClosed);
                        reading = None;
                    }
                }
            }
            resizer = resize_pipe();
        }
        let mut cmd = tokio::process::Command::new(&self.kcnode);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--node-name")
            .arg(&self.node_name)
            .arg("exec");
        if tty {
            cmd.arg("-t");
            if let Some((w, h)) = winsize {
                cmd.arg(format!("--tty-size={w}x{h}"));
            }
        }
        if let Some((read_end, _)) = &resizer {
            let fd = read_end.as_raw_fd();
            cmd.arg(format!("--resize-fd={RESIZE_FD}"));
            // SAFETY: only dup2 between fork and exec (async-signal-safe).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(fd, RESIZE_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.arg(id).args(&command);
        cmd.stdin(if stdin {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return accept(
                    send,
                    failed(500, format!("cannot run {}: {e}", self.kcnode.display())),
                )
                .await;
            }
        };
        accept(send, StreamAccept::Ok).await?;
        let mut child_in = child.stdin.take();
        // The child has its copy of the read end; ours goes.
        let mut resize_tx = resizer.map(|(read_end, write_end)| {
            drop(read_end);
            std::fs::File::from(write_end)
        });
        for frame in early {
            match frame {
                ExecFrame::Stdin(data) => {
                    if let Some(w) = child_in.as_mut()
                        && w.write_all(&data).await.is_err()
                    {
                        child_in = None;
                    }
                }
                ExecFrame::StdinClosed => child_in = None,
                _ => {}
            }
        }
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return write_frame(send, &ExecFrame::Error("exec lost its output pipes".into()))
                .await
                .map_err(io);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ExecFrame>(16);
        let pump = |mut from: Box<dyn AsyncRead + Unpin + Send>,
                    tx: tokio::sync::mpsc::Sender<ExecFrame>,
                    stdout: bool| async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let data = buf[..n].to_vec();
                let frame = if stdout {
                    ExecFrame::Stdout(data)
                } else {
                    ExecFrame::Stderr(data)
                };
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        };
        let out_task = tokio::spawn(pump(Box::new(out), tx.clone(), true));
        let err_task = tokio::spawn(pump(Box::new(err), tx, false));
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(f) => write_frame(send, &f).await.map_err(io)?,
                    None => break,
                },
                (incoming, r) = poll_some(reading.as_mut()) => {
                    reading = None;
                    match incoming {
                        Ok(Some(ExecFrame::Stdin(data))) => {
                            if let Some(w) = child_in.as_mut()
                                && w.write_all(&data).await.is_err()
                            {
                                child_in = None;
                            }
                            reading = Some(next_read(r));
                        }
                        Ok(Some(ExecFrame::StdinClosed)) => {
                            child_in = None;
                            reading = Some(next_read(r));
                        }
                        Ok(Some(ExecFrame::Resize { width, height })) => {
                            use std::io::Write as _;
                            if let Some(w) = resize_tx.as_mut()
                                && w.write_all(format!("{width} {height}\n").as_bytes()).is_err()
                            {
                                resize_tx = None;
                            }
                            reading = Some(next_read(r));
                        }
                        Ok(Some(_)) => reading = Some(next_read(r)),
                        // The server went away: close stdin, let the process end.
                        Ok(None) | Err(_) => child_in = None,
                    }
                },
            }
        }
        let _ = (out_task.await, err_task.await);
        let code = match child.wait().await {
            Ok(s) => s.code().unwrap_or(255),
            Err(e) => {
                return write_frame(send, &ExecFrame::Error(format!("exec wait failed: {e}")))
                    .await
                    .map_err(io);
            }
        };
        write_frame(send, &ExecFrame::Exit { code })
            .await
            .map_err(io)
    }
}

/// How long a tty exec waits for the client's first resize.
const FIRST_RESIZE_WAIT: Duration = Duration::from_millis(300);

/// The descriptor `kcnode exec` reads resizes from.
const RESIZE_FD: i32 = 3;

/// A pipe for resizes: (read end for the child, write end), both
/// close-on-exec (the child gets the read end through dup2).
fn resize_pipe() -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()
}

type ReadFrame<'a, R> = Pin<
    Box<
        dyn Future<
                Output = (
                    Result<Option<ExecFrame>, kc_protocol::frame_io::WireError>,
                    &'a mut R,
                ),
            > + Send
            + 'a,
    >,
>;

/// A read of the next exec frame that hands the stream back when done.
fn next_read<'a, R: AsyncRead + Unpin + Send>(r: &'a mut R) -> ReadFrame<'a, R> {
    Box::pin(async move {
        let res = read_frame(r).await;
        (res, r)
    })
}

/// Awaits the future if there is one, else never completes.
async fn poll_some<F: Future + Unpin>(f: Option<&mut F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn io(e: kc_protocol::frame_io::WireError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

async fn accept<S: AsyncWrite + Unpin + Send>(
    send: &mut S,
    answer: StreamAccept,
) -> std::io::Result<()> {
    write_frame(send, &answer).await.map_err(io)
}

#[derive(Debug, Clone, Copy)]
struct LogOptions {
    follow: bool,
    tail_lines: Option<i64>,
    timestamps: bool,
    limit_bytes: Option<i64>,
}

/// A mirror pod's log: this process's own lines of `component`
/// (`self_log`), followed while the client stays.
async fn self_logs<S: AsyncWrite + Unpin + Send>(
    component: &str,
    opts: LogOptions,
    send: &mut S,
) -> std::io::Result<()> {
    let tail = opts.tail_lines.map(|t| t.max(0) as usize);
    let (kept, mut newer) = crate::self_log::snapshot(component, tail);
    accept(send, StreamAccept::Ok).await?;
    let mut budget = opts.limit_bytes.map(|l| l.max(0) as u64);
    let rendered: Vec<u8> = kept
        .iter()
        .flat_map(|l| crate::self_log::render(l, opts.timestamps))
        .collect();
    if !write_limited(send, &rendered, &mut budget).await? || !opts.follow {
        return Ok(());
    }
    loop {
        match newer.recv().await {
            Ok(line) if crate::self_log::belongs(&line, component) => {
                let bytes = crate::self_log::render(&line, opts.timestamps);
                if !write_limited(send, &bytes, &mut budget).await? {
                    return Ok(());
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Renders CRI log lines as the user sees them, keeping the last
/// `tail_lines` records if asked. Pure.
pub fn render_lines(raw: &[u8], timestamps: bool, tail_lines: Option<i64>) -> Vec<u8> {
    let records: Vec<_> = raw.split(|&b| b == b'\n').filter_map(logs::parse).collect();
    let skip = match tail_lines {
        Some(t) => records.len().saturating_sub(t.max(0) as usize),
        None => 0,
    };
    records[skip..]
        .iter()
        .flat_map(|r| logs::render(r, timestamps))
        .collect()
}

/// Writes `data` within the remaining byte budget; false once it is spent.
async fn write_limited<S: AsyncWrite + Unpin + Send>(
    send: &mut S,
    data: &[u8],
    budget: &mut Option<u64>,
) -> std::io::Result<bool> {
    let data = match budget {
        Some(b) => {
            let n = (*b).min(data.len() as u64) as usize;
            *b -= n as u64;
            &data[..n]
        }
        None => data,
    };
    send.write_all(data).await?;
    send.flush().await?;
    Ok(budget.is_none_or(|b| b > 0))
}

/// Connects to 127.0.0.1:`port` from inside the network namespace `netns`
/// (on a throwaway thread: `setns` changes only the calling thread).
async fn connect_in_netns(netns: PathBuf, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let std_stream = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> std::io::Result<std::net::TcpStream> {
            let ns = std::fs::File::open(&netns)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            std::net::TcpStream::connect(("127.0.0.1", port))
        })
        .join()
        .map_err(|_| std::io::Error::other("the connecting thread panicked"))?
    })
    .await
    .map_err(std::io::Error::other)??;
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_rendered_and_tailed() {
        let raw = b"2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:01Z stderr F two\n2026-01-01T00:00:02Z stdout P thr\n2026-01-01T00:00:02Z stdout F ee\n";
        assert_eq!(
            render_lines(raw, false, None),
            b"one\ntwo\nthree\n".to_vec()
        );
        assert_eq!(render_lines(raw, false, Some(2)), b"three\n".to_vec());
        assert_eq!(render_lines(raw, false, Some(0)), b"".to_vec());
        assert_eq!(
            render_lines(raw, true, Some(3)),
            b"2026-01-01T00:00:01Z two\n2026-01-01T00:00:02Z thr2026-01-01T00:00:02Z ee\n".to_vec()
        );
    }
}
