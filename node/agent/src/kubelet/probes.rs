//! Liveness, readiness and startup probes: exec (through the runtime's
//! Exec), httpGet and tcpSocket (connecting to 127.0.0.1 inside the pod's
//! network namespace, from a helper thread that entered it, as the port
//! proxy does). `Prober` keeps the per-run counters and timing
//! (initialDelaySeconds, periodSeconds, failureThreshold,
//! successThreshold) and says what a run of probes means for the container.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use actix::Addr;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kc_runtime::container::ExecSpec;
use kc_runtime::container::actor::{Exec, Runtime};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// The counters of one probe during one run of a container.
#[derive(Debug, Clone, Default)]
struct Counter {
    last: Option<Instant>,
    failures: i32,
    successes: i32,
}

/// The probes' memory for one run of one container.
#[derive(Debug, Clone)]
pub struct Prober {
    run_started: Instant,
    counters: [Counter; 3],
}

/// What a probe result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changes.
    Unchanged,
    /// Startup passed; readiness (for the readiness probe) became this.
    Started,
    Ready(bool),
    /// Liveness or startup failed failureThreshold times: kill the container.
    Kill(String),
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

impl Prober {
    pub fn new(run_started: Instant) -> Prober {
        Prober {
            run_started,
            counters: Default::default(),
        }
    }

    /// Is `probe` due at `now`?
    pub fn due(&self, kind: Kind, probe: &Probe, now: Instant) -> bool {
        if now < self.run_started + secs(probe.initial_delay_seconds, 0) {
            return false;
        }
        match self.counters[kind.index()].last {
            None => true,
            Some(t) => now >= t + secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
        }
    }

    /// Records a result; answers what it means.
    pub fn record(
        &mut self,
        kind: Kind,
        probe: &Probe,
        now: Instant,
        result: Result<(), String>,
    ) -> Outcome {
        let c = &mut self.counters[kind.index()];
        c.last = Some(now);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        match result {
            Ok(()) => {
                c.failures = 0;
                c.successes += 1;
                match kind {
                    Kind::Startup => Outcome::Started,
                    Kind::Readiness if c.successes >= success_threshold => Outcome::Ready(true),
                    _ => Outcome::Unchanged,
                }
            }
            Err(msg) => {
                c.successes = 0;
                c.failures += 1;
                match kind {
                    Kind::Readiness => Outcome::Ready(false),
                    _ if c.failures >= failure_threshold => Outcome::Kill(format!(
                        "{} probe failed {} times: {msg}",
                        kind.name(),
                        c.failures
                    )),
                    _ => Outcome::Unchanged,
                }
            }
        }
    }
}

/// Where to probe.
pub struct Target<'a> {
    pub runtime: &'a Addr<Runtime>,
    pub container_id: &'a str,
    /// The sandbox holder whose network namespace to probe in (None: the
    /// kubelet's own, for hostNetwork pods).
    pub netns_pid: Option<i32>,
    pub container: &'a Container,
}

/// Runs `probe` once; `Err` says why it failed.
pub async fn run(probe: &Probe, t: &Target<'_>) -> Result<(), String> {
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    if let Some(e) = &probe.exec {
        let argv = e.command.clone().unwrap_or_default();
        let msg = Exec {
            id: t.container_id.to_string(),
            spec: ExecSpec {
                argv: argv.clone(),
                ..ExecSpec::default()
            },
        };
        let out = tokio::time::timeout(timeout, t.runtime.send(msg))
            .await
            .map_err(|_| format!("command {argv:?} timed out after {timeout:?}"))?
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if out.exit_code == 0 {
            return Ok(());
        }
        return Err(format!(
            "command {argv:?} exited with {}: {}",
            out.exit_code,
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    if let Some(h) = &probe.http_get {
        let port = port(&h.port, t.container)?;
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        return in_netns(t.netns_pid, move || http_get(port, &path, timeout)).await;
    }
    if let Some(s) = &probe.tcp_socket {
        let port = port(&s.port, t.container)?;
        return in_netns(t.netns_pid, move || {
            connect(port, timeout)
                .map(|_| ())
                .map_err(|e| format!("dial tcp 127.0.0.1:{port}: {e}"))
        })
        .await;
    }
    Err("the probe has no handler (exec, httpGet, tcpSocket)".into())
}

/// A probe port: a number or the name of one of the container's ports.
pub fn port(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("bad port {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("the container has no port named {name:?}")),
    }
}

/// Runs `f` on a fresh thread inside the network namespace of `pid` (or
/// the kubelet's own if None).
async fn in_netns(
    pid: Option<i32>,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            if let Some(pid) = pid {
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                    .map_err(|e| format!("the pod's network namespace is gone: {e}"))?;
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("cannot enter the pod's network namespace: {e}"))?;
            }
            f()
        })();
        let _ = tx.send(r);
    });
    rx.await
        .unwrap_or_else(|_| Err("probe thread failed".into()))
}

fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// GET `path`; a 2xx or 3xx status passes.
fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut s = connect(port, timeout).map_err(|e| format!("Get {url:?}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("Get {url:?}: {e}"))?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("Get {url:?}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get {url:?}: not an HTTP response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(period: i32, delay: i32, failures: i32) -> Probe {
        Probe {
            period_seconds: Some(period),
            initial_delay_seconds: Some(delay),
            failure_threshold: Some(failures),
            ..Default::default()
        }
    }

    #[test]
    fn probes_wait_for_initial_delay_and_period() {
        let t0 = Instant::now();
        let mut p = Prober::new(t0);
        let pr = probe(5, 2, 3);
        assert!(!p.due(Kind::Liveness, &pr, t0 + Duration::from_secs(1)));
        assert!(p.due(Kind::Liveness, &pr, t0 + Duration::from_secs(2)));
        p.record(Kind::Liveness, &pr, t0 + Duration::from_secs(2), Ok(()));
        assert!(!p.due(Kind::Liveness, &pr, t0 + Duration::from_secs(6)));
        assert!(p.due(Kind::Liveness, &pr, t0 + Duration::from_secs(7)));
    }

    #[test]
    fn liveness_kills_after_failure_threshold() {
        let t0 = Instant::now();
        let mut p = Prober::new(t0);
        let pr = probe(1, 0, 2);
        assert_eq!(
            p.record(Kind::Liveness, &pr, t0, Err("x".into())),
            Outcome::Unchanged
        );
        assert_eq!(
            p.record(Kind::Liveness, &pr, t0, Ok(())),
            Outcome::Unchanged
        );
        assert_eq!(
            p.record(Kind::Liveness, &pr, t0, Err("x".into())),
            Outcome::Unchanged
        );
        assert!(matches!(
            p.record(Kind::Liveness, &pr, t0, Err("x".into())),
            Outcome::Kill(_)
        ));
    }

    #[test]
    fn readiness_and_startup_outcomes() {
        let t0 = Instant::now();
        let mut p = Prober::new(t0);
        let pr = probe(1, 0, 3);
        assert_eq!(
            p.record(Kind::Readiness, &pr, t0, Ok(())),
            Outcome::Ready(true)
        );
        assert_eq!(
            p.record(Kind::Readiness, &pr, t0, Err("x".into())),
            Outcome::Ready(false)
        );
        assert_eq!(p.record(Kind::Startup, &pr, t0, Ok(())), Outcome::Started);
    }

    #[test]
    fn named_ports_resolve() {
        let c = Container {
            ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert!(port(&IntOrString::String("x".into()), &c).is_err());
        assert_eq!(port(&IntOrString::Int(80), &c), Ok(80));
    }
}
