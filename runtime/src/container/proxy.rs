//! Published ports (`-p HOST:CTR`) without touching the host's network: a
//! userland proxy in the monitor accepts on HOST in the caller's network
//! namespace and, per connection, connects to 127.0.0.1:CTR from a thread
//! that has entered the container's network namespace, then copies bytes
//! both ways. No bridge, veth, NAT or firewall rule is needed.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

/// Serves `listener` for the container whose network namespace is `netns`,
/// on background threads, for the life of the process.
pub fn serve(listener: TcpListener, container_port: u16, netns: Arc<OwnedFd>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let netns = netns.clone();
            std::thread::spawn(move || {
                if let Err(e) = forward(client, container_port, &netns) {
                    tracing::debug!("port {container_port}: {e}");
                }
            });
        }
    });
}

fn forward(client: TcpStream, port: u16, netns: &OwnedFd) -> std::io::Result<()> {
    // This thread stays in the container's network namespace; it only ever
    // serves this one connection.
    nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)?;
    let upstream = TcpStream::connect(("127.0.0.1", port))?;
    let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
    let t = std::thread::spawn(move || pipe(c2, u2));
    pipe(upstream, client);
    let _ = t.join();
    Ok(())
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
