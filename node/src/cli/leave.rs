//! `kcnode leave` of a worker, and what a member's leave (`member.rs`)
//! shares with it: draining this node's pods and stopping the running
//! agent. `cluster.rs` decides which leave a host gets.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use kc_agent::node_client::NodeClient;
use kc_member::pki::IssuedCert;
use kc_protocol::node_api::{NodeRequest, NodeResponse};

use super::GlobalOpts;
use kc_agent::agent;
use kc_agent::session;

#[derive(Debug, clap::Args)]
pub struct LeaveArgs {
    /// Also delete the whole data directory (images, logs), not only the cluster identity.
    #[arg(long)]
    pub purge: bool,
}

/// A worker's leave: drain through any member, stop the agent, tear the
/// cluster network down, delete the Node, forget the identity.
pub async fn worker(global: &GlobalOpts, args: &LeaveArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir();
    let pki_dir = data_dir.join("pki");
    let node = IssuedCert::load(&pki_dir, "node").with_context(|| {
        format!(
            "{} holds no node identity: this host is in no cluster",
            pki_dir.display()
        )
    })?;
    let ca_pem = std::fs::read_to_string(pki_dir.join("ca.crt"))?;
    let mut members = session::load_members(&data_dir.join("members"));
    members.extend(session::load_members(&data_dir.join("members.local")));
    let mut last = None;
    for m in &members {
        match NodeClient::connect(m, &ca_pem, &node).await {
            Ok(c) => {
                drain(&c).await?;
                stop_agent(&data_dir).await;
                // Service rules, routes to the other nodes, cluster DNS address.
                kc_agent::cluster_network::teardown();
                c.call(&NodeRequest::Leave).await?;
                std::fs::remove_dir_all(&pki_dir).ok();
                std::fs::remove_file(data_dir.join("members")).ok();
                if args.purge {
                    std::fs::remove_dir_all(&data_dir).ok();
                }
                eprintln!("kcnode: left the cluster (Node deleted)");
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("no control-plane member known in {}", data_dir.display()),
    }
}

/// Stops the running agent, so it does not register again.
pub async fn stop_agent(data_dir: &Path) {
    if let Some(pid) = std::fs::read_to_string(agent::pid_file(data_dir))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        && pid != std::process::id() as i32
    {
        let pid = nix::unistd::Pid::from_raw(pid);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            eprintln!("kcnode: stopped the node agent (pid {pid})");
            for _ in 0..50 {
                if nix::sys::signal::kill(pid, None).is_err() || is_zombie(pid.as_raw()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Whether `pid` has exited and only waits for its parent to reap it.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses.
            let (_, rest) = stat.rsplit_once(") ")?;
            rest.chars().next()
        })
        == Some('Z')
}

/// Evicts this node's pods (the running agent stops them) and waits until
/// they are gone, for up to two minutes.
pub async fn drain(client: &NodeClient) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match client.call(&NodeRequest::Drain).await? {
            NodeResponse::Count(0) => return Ok(()),
            NodeResponse::Count(n) => {
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "{n} pods of this node are still stopping after 2 minutes; run `kcnode leave` again"
                    );
                }
                eprintln!("kcnode: draining: {n} pods still stopping");
            }
            other => bail!("unexpected answer to drain: {other:?}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
