//! The log of this kcnode process, kept for `kubectl logs` of the host's
//! mirror pods (`kube-apiserver-<node>`, `kube-scheduler-<node>`, ...):
//! on Kubernetes those show the component's own log, and here every
//! component runs in this one process.
//!
//! A tracing layer formats every event at `info` and above (whatever
//! `RUST_LOG` lets through to stderr) into a ring of the last `CAPACITY`
//! lines, and a broadcast channel carries new lines to followers. A mirror
//! pod's log is the ring filtered to its component's targets (the API
//! server's modules for `kube-apiserver`, and so on).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

/// Lines kept.
const CAPACITY: usize = 10_000;

/// One formatted log line and when it was written.
#[derive(Debug, Clone)]
pub struct Line {
    /// RFC 3339 with nanoseconds, UTC (what `kubectl logs --timestamps` shows).
    pub time: String,
    /// The formatted event, without ANSI colours or the newline.
    pub text: String,
}

struct Ring {
    lines: Mutex<VecDeque<Arc<Line>>>,
    new: broadcast::Sender<Arc<Line>>,
}

fn ring() -> &'static Ring {
    static RING: OnceLock<Ring> = OnceLock::new();
    RING.get_or_init(|| Ring {
        lines: Mutex::new(VecDeque::with_capacity(1024)),
        new: broadcast::channel(1024).0,
    })
}

fn push(text: &str) {
    let line = Arc::new(Line {
        time: crate::kubelet::events::now().to_string(),
        text: strip_ansi(text),
    });
    let r = ring();
    {
        let mut lines = r.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == CAPACITY {
            lines.pop_front();
        }
        lines.push_back(line.clone());
    }
    let _ = r.new.send(line);
}

/// The writer the tracing layer formats each event into.
pub struct RingWriter(Vec<u8>);

impl Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        for line in text.lines().filter(|l| !l.is_empty()) {
            push(line);
        }
    }
}

/// `MakeWriter` for the ring layer.
pub fn make_writer() -> RingWriter {
    RingWriter(Vec::new())
}

/// The tracing targets of a mirror pod's component.
pub fn component_targets(component: &str) -> &'static [&'static str] {
    match component {
        "kube-apiserver" => &[
            "kc_apiserver",
            "kc_registry",
            "kc_nodeapi",
            "kc_member::single",
        ],
        "kube-scheduler" => &["kc_scheduler"],
        "kube-controller-manager" => &["kc_controllers", "kc_client::leader"],
        // The store is the kc-store crate; raft-rs logs under "raft".
        "kc-store" => &["kc_store", "kc_member::member", "raft"],
        "kube-proxy" => &["kc_agent::proxy", "kc_agent::dns", "kc_agent::network"],
        _ => &[],
    }
}

/// Whether `line` is from one of `targets` (the fmt layer writes the
/// target after the level: `... INFO kc_apiserver::handler: msg`).
fn from_targets(line: &Line, targets: &[&str]) -> bool {
    targets
        .iter()
        .any(|t| line.text.contains(&format!(" {t}::")) || line.text.contains(&format!(" {t}:")))
}

/// The kept lines of `component` (the last `tail` if asked), and a
/// receiver of the lines written after them.
pub fn snapshot(
    component: &str,
    tail: Option<usize>,
) -> (Vec<Arc<Line>>, broadcast::Receiver<Arc<Line>>) {
    let targets = component_targets(component);
    let r = ring();
    let lines = r.lines.lock().unwrap_or_else(|p| p.into_inner());
    let rx = r.new.subscribe();
    let mut kept: Vec<Arc<Line>> = lines
        .iter()
        .filter(|l| from_targets(l, targets))
        .cloned()
        .collect();
    if let Some(t) = tail {
        kept.drain(..kept.len().saturating_sub(t));
    }
    (kept, rx)
}

/// Whether `line` belongs to `component`'s log.
pub fn belongs(line: &Line, component: &str) -> bool {
    from_targets(line, component_targets(component))
}

/// `line` as `kubectl logs` prints it.
pub fn render(line: &Line, timestamps: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.text.len() + 40);
    if timestamps {
        out.extend_from_slice(line.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(line.text.as_bytes());
    out.push(b'\n');
    out
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped_and_lines_filtered_by_component() {
        assert_eq!(strip_ansi("\u{1b}[32m INFO\u{1b}[0m x"), " INFO x");
        let api = Line {
            time: "t".into(),
            text: "2026-12-07T00:00:00Z  INFO kc_apiserver::handler: request".into(),
        };
        let sched = Line {
            time: "t".into(),
            text: "2026-12-07T00:00:00Z  INFO kc_scheduler: bound".into(),
        };
        assert!(belongs(&api, "kube-apiserver") && !belongs(&api, "kube-scheduler"));
        assert!(belongs(&sched, "kube-scheduler") && !belongs(&sched, "kube-apiserver"));
        assert_eq!(render(&api, false), format!("{}\n", api.text).into_bytes());
        assert!(render(&api, true).starts_with(b"t 2026"));
    }

    #[test]
    fn the_ring_keeps_written_lines_and_tells_followers() {
        let (_, mut rx) = snapshot("kube-scheduler", None);
        drop(RingWriter(
            b"2026-12-07T00:00:00Z  INFO kc_scheduler: ring test\n".to_vec(),
        ));
        let (kept, _) = snapshot("kube-scheduler", Some(1));
        assert_eq!(kept.len(), 1);
        assert!(kept[0].text.ends_with("ring test"));
        assert!(rx.try_recv().unwrap().text.ends_with("ring test"));
    }
}
