//! `kcctl port-forward POD [LOCAL:]REMOTE...`: listens on loopback and
//! carries each accepted connection over one SPDY/3.1 session inside a
//! WebSocket (`SPDY/3.1+portforward.k8s.io`), as kubectl does: per
//! connection an `error` stream and a `data` stream sharing a `requestid`.
//! One thread owns the socket; acceptors and per-connection readers feed
//! it through a channel, so any number of connections share the session.
//! The socket is non-blocking and the owner sleeps in poll(2) on it and on
//! a wake-up socket the feeders write to, so a new connection or local data
//! is sent at once (no polling interval) and an idle forward costs nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result, bail};
use clap::Args;
use tungstenite::Message;

use crate::ctx::Ctx;
use crate::spdy::{self, Decoder, Encoder, Frame};
use crate::websocket::would_block;

const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Forward one or more local ports to a pod.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// POD or pod/POD.
    pub pod: String,
    /// [LOCAL:]REMOTE port pairs (LOCAL empty or 0 = any free port).
    #[arg(required = true)]
    pub ports: Vec<String>,
}

/// Parses `8080:80`, `:80`, `80` into (local, remote).
pub fn parse_port(spec: &str) -> Result<(u16, u16)> {
    let (local, remote) = match spec.split_once(':') {
        Some((l, r)) => (l, r),
        None => (spec, spec),
    };
    let remote: u16 = remote
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| format!("invalid port {spec:?}: the remote port must be 1-65535"))?;
    let local: u16 = if local.is_empty() {
        0
    } else {
        local
            .parse()
            .with_context(|| format!("invalid port {spec:?}: the local port must be 0-65535"))?
    };
    Ok((local, remote))
}

enum Event {
    /// A local connection accepted on local port `.1` for remote port `.2`.
    New(TcpStream, u16, u16),
    Data(u32, Vec<u8>),
    Eof(u32),
}

/// The feeders' side of the channel: each event also wakes the socket's
/// owner out of poll(2).
#[derive(Clone)]
struct Feed {
    tx: mpsc::Sender<Event>,
    wake: Arc<UnixStream>,
}

impl Feed {
    fn send(&self, ev: Event) -> bool {
        let ok = self.tx.send(ev).is_ok();
        // A full wake-up socket already means "wake up": ignore WouldBlock.
        let _ = (&*self.wake).write(&[1]);
        ok
    }
}

/// Sleeps until the socket is readable (or writable, if `want_write`) or
/// a feeder wrote to `wake`; drains `wake`.
fn wait(socket_fd: i32, wake: &UnixStream, want_write: bool) -> Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: socket_fd,
            events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
            revents: 0,
        },
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    crate::websocket::poll(&mut fds)?;
    let mut buf = [0u8; 256];
    while matches!((&*wake).read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

/// Sends a message; a full socket keeps it queued in tungstenite (flushed
/// by the loop), which is not an error.
fn send(socket: &mut crate::websocket::Socket, frame: Vec<u8>) -> Result<()> {
    match socket.send(Message::binary(frame)) {
        Err(e) if !would_block(&e) => Err(e).context("lost connection to pod"),
        _ => Ok(()),
    }
}

struct Conn {
    stream: TcpStream,
    remote: u16,
    /// We sent FIN (the local side reached EOF).
    local_done: bool,
    /// The server sent FIN (the pod's side is done).
    remote_done: bool,
}

/// Forgets a connection once both directions are finished, closing its
/// socket, so long sessions with many connections hold no stale state.
fn reap(conns: &mut HashMap<u32, Conn>, error_of: &mut HashMap<u32, u32>, id: u32) {
    if conns
        .get(&id)
        .is_some_and(|c| c.local_done && c.remote_done)
    {
        conns.remove(&id);
        error_of.retain(|_, data| *data != id);
    }
}

pub fn run(ctx: &Ctx, a: &PortForwardArgs) -> Result<i32> {
    let name = match a.pod.split_once('/') {
        Some(("pod" | "pods" | "po", n)) => n,
        Some((ty, _)) => bail!("kcctl port-forward supports pods only, not {ty:?}"),
        None => a.pod.as_str(),
    };
    let ports: Vec<(u16, u16)> = a
        .ports
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<_>>()?;
    // Like kubectl: the pod must exist and run before anything listens.
    let pod = ctx
        .client
        .get(&format!("/api/v1/namespaces/{}/pods/{name}", ctx.namespace))?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase != "Running" {
        bail!("unable to forward port because pod is not running. Current status={phase}");
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{name}/portforward",
        ctx.namespace
    );
    let mut socket = crate::websocket::connect(&ctx.target, &path, &[PROTOCOL])?;
    socket.get_ref().sock.set_nonblocking(true)?;
    let socket_fd = socket.get_ref().sock.as_raw_fd();
    let (wake, wake_tx) = UnixStream::pair().context("cannot create a wake-up socket")?;
    wake.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let feed = Feed {
        tx,
        wake: Arc::new(wake_tx),
    };
    for (local, remote) in ports {
        // Like kubectl's default --address localhost: IPv4 and IPv6
        // loopback, the same port on both; one of them is enough.
        let v4 = TcpListener::bind(("127.0.0.1", local));
        let bound = match &v4 {
            Ok(l) => l.local_addr()?.port(),
            Err(_) => local,
        };
        let v6 = TcpListener::bind(("::1", bound));
        let (v4, v6) = match (v4, v6) {
            (Err(e), Err(_)) => {
                return Err(e).with_context(|| format!("unable to listen on port {local}"));
            }
            (v4, v6) => (v4.ok(), v6.ok()),
        };
        for (listener, shown) in [(v4, "127.0.0.1"), (v6, "[::1]")] {
            let Some(listener) = listener else { continue };
            println!("Forwarding from {shown}:{bound} -> {remote}");
            let feed = feed.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    if !feed.send(Event::New(conn, bound, remote)) {
                        return;
                    }
                }
            });
        }
    }
    std::io::stdout().flush()?;
    let mut encoder = Encoder::default();
    let mut decoder = Decoder::default();
    let mut next_stream = 1u32;
    let mut next_request = 0u32;
    let mut conns: HashMap<u32, Conn> = HashMap::new();
    let mut error_of: HashMap<u32, u32> = HashMap::new();
    loop {
        while let Ok(ev) = rx.try_recv() {
            match ev {
                Event::New(stream, local, remote) => {
                    println!("Handling connection for {local}");
                    std::io::stdout().flush()?;
                    let request = next_request.to_string();
                    let port = remote.to_string();
                    let (err_id, data_id) = (next_stream, next_stream + 2);
                    next_stream += 4;
                    next_request += 1;
                    let headers = |t: &'static str| {
                        [
                            ("streamtype", t),
                            ("port", port.as_str()),
                            ("requestid", request.as_str()),
                        ]
                    };
                    send(
                        &mut socket,
                        encoder.syn_stream(err_id, &headers("error"), true),
                    )?;
                    send(
                        &mut socket,
                        encoder.syn_stream(data_id, &headers("data"), false),
                    )?;
                    let mut reader = stream.try_clone()?;
                    let feed = feed.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 32 * 1024];
                        loop {
                            match reader.read(&mut buf) {
                                Ok(0) | Err(_) => {
                                    feed.send(Event::Eof(data_id));
                                    return;
                                }
                                Ok(n) => {
                                    if !feed.send(Event::Data(data_id, buf[..n].to_vec())) {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                    error_of.insert(err_id, data_id);
                    conns.insert(
                        data_id,
                        Conn {
                            stream,
                            remote,
                            local_done: false,
                            remote_done: false,
                        },
                    );
                }
                Event::Data(id, bytes) => {
                    if conns.contains_key(&id) {
                        send(&mut socket, spdy::data(id, false, &bytes))?;
                    }
                }
                Event::Eof(id) => {
                    if let Some(conn) = conns.get_mut(&id) {
                        conn.local_done = true;
                        send(&mut socket, spdy::data(id, true, &[]))?;
                    }
                    reap(&mut conns, &mut error_of, id);
                }
            }
        }
        // Everything the server sent so far, then sleep until more comes
        // or a feeder has something.
        let mut got = false;
        loop {
            match socket.read() {
                Ok(Message::Binary(bytes)) => {
                    decoder.push(&bytes);
                    got = true;
                }
                Ok(Message::Close(_)) => bail!("lost connection to pod"),
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => bail!("lost connection to pod: {e}"),
            }
        }
        let pending_write = match socket.flush() {
            Ok(()) => false,
            Err(e) if would_block(&e) => true,
            Err(e) => bail!("lost connection to pod: {e}"),
        };
        if !got {
            wait(socket_fd, &wake, pending_write)?;
        }
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Frame::Data { stream, fin, data } => {
                    if let Some(conn) = conns.get_mut(&stream) {
                        if conn.stream.write_all(&data).is_err() || fin {
                            let _ = conn.stream.shutdown(Shutdown::Write);
                            conn.remote_done = true;
                        }
                        if !data.is_empty() {
                            // Give the bytes back to the sender's window.
                            send(&mut socket, spdy::window_update(stream, data.len() as u32))?;
                        }
                        reap(&mut conns, &mut error_of, stream);
                    } else if let Some(data_id) = error_of.get(&stream) {
                        if !data.is_empty() {
                            let remote = conns.get(data_id).map(|c| c.remote).unwrap_or(0);
                            eprintln!(
                                "error: an error occurred forwarding {remote}: {}",
                                String::from_utf8_lossy(&data).trim()
                            );
                        }
                        if fin {
                            error_of.remove(&stream);
                        }
                    }
                }
                Frame::Control {
                    kind: spdy::PING,
                    flags,
                    body,
                } => {
                    send(&mut socket, spdy::control(spdy::PING, flags, &body))?;
                }
                Frame::Control {
                    kind: spdy::RST_STREAM,
                    body,
                    ..
                } => {
                    if let Some(conn) = conns.remove(&spdy::control_stream(&body)) {
                        let _ = conn.stream.shutdown(Shutdown::Both);
                    }
                }
                Frame::Control {
                    kind: spdy::GOAWAY, ..
                } => bail!("lost connection to pod"),
                Frame::Control { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_like_kubectl() {
        assert_eq!(parse_port("8080:80").unwrap(), (8080, 80));
        assert_eq!(parse_port(":80").unwrap(), (0, 80));
        assert_eq!(parse_port("5000").unwrap(), (5000, 5000));
        assert!(parse_port("x:80").is_err());
        assert!(parse_port("80:0").is_err());
    }
}
