//! `kcnode store ...`: hidden developer commands for kc's replicated store.
//!
//! `member` runs one store member as a real process (what `kcnode init` and
//! `join --control-plane` will embed); the other commands are a small
//! network client (put/get/del/watch/status/membership) used by the tests,
//! and `bench` is the load generator of `bench/store.sh`. TLS: `ca` creates
//! a throwaway cluster CA in `--pki-dir`; members and clients issue
//! themselves certificates from it (a dev shortcut; `kcnode init` hands out
//! real ones).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use kc_member::pki::{CertRequest, ClusterCa};
use kc_member::store::client::StoreClient;
use kc_member::store::member::Member;
use kc_member::store::membership;
use kc_member::store::raft_node::StoreConfig;
use kc_member::store::transport::{MemberTls, certificate_ips};
use kc_member::store::wire::{ClientRequest, ClientResponse};
use kc_member::store::*;

use super::GlobalOpts;

#[path = "store_bench.rs"]
mod bench;

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// Options of every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// Members to talk to, comma-separated host:port; the first that answers is used
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7000")]
    pub endpoints: Vec<String>,
    /// Directory holding the cluster CA (ca.crt, ca.key)
    #[arg(long)]
    pub pki_dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Create a throwaway cluster CA in --pki-dir (development only)
    Ca {
        #[arg(long)]
        pki_dir: PathBuf,
    },
    /// Run one store member in the foreground until SIGTERM/Ctrl-C
    Member {
        /// This member's id (non-zero, unique in the cluster)
        #[arg(long)]
        id: u64,
        /// UDP address to listen on for QUIC
        #[arg(long, default_value = "127.0.0.1:7000")]
        listen: SocketAddr,
        /// The members, id=host:port comma-separated (this one included)
        #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
        peers: Vec<(u64, String)>,
        /// Join an existing cluster (wait to be added with `member-add`)
        #[arg(long)]
        join: bool,
        /// Directory holding the cluster CA (ca.crt, ca.key)
        #[arg(long)]
        pki_dir: PathBuf,
        /// Snapshot and compact the log every this many entries (etcd's default)
        #[arg(long, default_value_t = 100_000)]
        snapshot_every: u64,
        /// Revisions of history kept for watches and old reads
        #[arg(long, default_value_t = 100_000)]
        revision_window: i64,
    },
    /// Write a key
    Put {
        #[command(flatten)]
        client: ClientOpts,
        key: String,
        value: String,
        /// Attach the key to this lease
        #[arg(long, default_value_t = 0)]
        lease: i64,
    },
    /// Read a key (or every key under a prefix); prints key=value lines
    Get {
        #[command(flatten)]
        client: ClientOpts,
        key: String,
        #[arg(long)]
        prefix: bool,
        /// Serve from the member's own state without a quorum check
        #[arg(long)]
        serializable: bool,
        /// Print the range response as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a key (or every key under a prefix)
    Del {
        #[command(flatten)]
        client: ClientOpts,
        key: String,
        #[arg(long)]
        prefix: bool,
    },
    /// Watch a key or prefix and print events as JSON lines
    Watch {
        #[command(flatten)]
        client: ClientOpts,
        key: String,
        #[arg(long)]
        prefix: bool,
        /// Start from this revision (0: from now)
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
    /// Forget revisions older than REV
    Compact {
        #[command(flatten)]
        client: ClientOpts,
        rev: i64,
    },
    /// Grant a lease; prints its id
    LeaseGrant {
        #[command(flatten)]
        client: ClientOpts,
        ttl: i64,
    },
    /// Print a member's status as JSON
    Status {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Add a member: as a learner, then (after it caught up) as a voter
    MemberAdd {
        #[command(flatten)]
        client: ClientOpts,
        #[arg(long)]
        id: u64,
        /// The new member's host:port
        #[arg(long)]
        address: String,
    },
    /// Remove a member
    MemberRemove {
        #[command(flatten)]
        client: ClientOpts,
        #[arg(long)]
        id: u64,
    },
    /// Ask the leader to hand leadership to member TO
    TransferLeader {
        #[command(flatten)]
        client: ClientOpts,
        #[arg(long)]
        to: u64,
    },
    /// Test hook: cut (on) or restore (off) a member's Raft traffic
    Isolate {
        #[command(flatten)]
        client: ClientOpts,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Load generator: sequential and concurrent puts against kc or etcd
    Bench(bench::BenchArgs),
}

fn parse_peer(s: &str) -> Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected id=host:port, got {s:?}"))?;
    let id = id.parse().map_err(|_| format!("bad member id in {s:?}"))?;
    Ok((id, addr.to_string()))
}

/// A certificate for this process from the dev CA in `pki_dir`.
pub fn dev_tls(pki_dir: &Path, request: CertRequest) -> anyhow::Result<MemberTls> {
    let ca = ClusterCa::load(pki_dir).with_context(|| {
        format!(
            "no cluster CA in {} (create one with `kcnode store ca`)",
            pki_dir.display()
        )
    })?;
    let cert = ca.issue(&request)?;
    Ok(MemberTls {
        ca_pem: ca.cert_pem().to_string(),
        cert,
    })
}

pub fn client_tls(pki_dir: &Path) -> anyhow::Result<MemberTls> {
    dev_tls(
        pki_dir,
        CertRequest::client("kubernetes-admin", &["system:masters"]),
    )
}

/// Connect to the first endpoint that answers.
pub async fn connect(opts: &ClientOpts) -> anyhow::Result<StoreClient> {
    let tls = client_tls(&opts.pki_dir)?;
    let mut last = None;
    for e in &opts.endpoints {
        match StoreClient::connect(e, &tls).await {
            Ok(c) => return Ok(c),
            Err(err) => last = Some(err),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("no --endpoints given"),
    }
}

fn range_of(key: &str, prefix: bool) -> KeyRange {
    if prefix {
        KeyRange::prefix(key)
    } else {
        KeyRange::key(key)
    }
}

pub fn run(global: &GlobalOpts, args: StoreArgs) -> anyhow::Result<ExitCode> {
    // A member's network side runs on one thread (the store actor has its
    // own): fewer cross-thread wake-ups per request, a shorter latency tail.
    let rt = match &args.command {
        StoreCommand::Member { .. } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    rt.block_on(run_async(global, args.command))
}

async fn run_async(global: &GlobalOpts, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Ca { pki_dir } => {
            std::fs::create_dir_all(&pki_dir)
                .with_context(|| format!("cannot create {}", pki_dir.display()))?;
            ClusterCa::generate("kc")?.save(&pki_dir)?;
            println!("cluster CA written to {}", pki_dir.display());
        }
        StoreCommand::Member {
            id,
            listen,
            peers,
            join,
            pki_dir,
            snapshot_every,
            revision_window,
        } => {
            let name = format!("store-{id}");
            let tls = dev_tls(
                &pki_dir,
                CertRequest::member(&name, &["localhost".into()], &certificate_ips(&listen)),
            )?;
            let mut peers: BTreeMap<u64, String> = peers.into_iter().collect();
            peers.entry(id).or_insert_with(|| listen.to_string());
            let mut config = StoreConfig::new(id, global.data_dir(), peers);
            config.join = join;
            config.snapshot_every = snapshot_every;
            config.revision_window = revision_window;
            let member = Member::start(config, listen, &tls)
                .with_context(|| format!("store member {id} cannot start"))?;
            eprintln!(
                "store member {id} listening on {listen} (data in {})",
                global.data_dir().display()
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            member.shutdown().await;
        }
        StoreCommand::Put {
            client,
            key,
            value,
            lease,
        } => {
            let c = connect(&client).await?;
            let mut req = PutRequest::new(key, value);
            req.lease = lease;
            let r = c.put(req).await?;
            println!("{}", r.revision);
        }
        StoreCommand::Get {
            client,
            key,
            prefix,
            serializable,
            json,
        } => {
            let c = connect(&client).await?;
            let mut req = RangeRequest::new(range_of(&key, prefix));
            req.serializable = serializable;
            let r = c.range(req).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for kv in r.kvs {
                    println!(
                        "{}={}",
                        String::from_utf8_lossy(&kv.key),
                        String::from_utf8_lossy(&kv.value)
                    );
                }
            }
        }
        StoreCommand::Del {
            client,
            key,
            prefix,
        } => {
            let c = connect(&client).await?;
            let r = c.delete(DeleteRequest::new(range_of(&key, prefix))).await?;
            println!("{}", r.deleted);
        }
        StoreCommand::Watch {
            client,
            key,
            prefix,
            rev,
        } => {
            let c = connect(&client).await?;
            let mut w = c
                .watch(WatchRequest {
                    range: range_of(&key, prefix),
                    start_revision: rev,
                    prev_kv: false,
                })
                .await?;
            while let Some(resp) = w.next().await? {
                println!("{}", serde_json::to_string(&resp)?);
                if let WatchResponse::Cancelled(reason) = resp {
                    bail!("watch cancelled: {reason:?}");
                }
            }
        }
        StoreCommand::Compact { client, rev } => {
            connect(&client)
                .await?
                .call(ClientRequest::Compact(rev))
                .await?;
        }
        StoreCommand::LeaseGrant { client, ttl } => {
            match connect(&client)
                .await?
                .call(ClientRequest::LeaseGrant { ttl_seconds: ttl })
                .await?
            {
                ClientResponse::LeaseGranted(l) => println!("{}", l.id),
                other => bail!("unexpected answer {other:?}"),
            }
        }
        StoreCommand::Status { client } => {
            let s = connect(&client).await?.status().await?;
            println!("{}", serde_json::to_string(&s)?);
        }
        StoreCommand::MemberAdd {
            client,
            id,
            address,
        } => {
            let tls = client_tls(&client.pki_dir)?;
            let catch_up = Duration::from_secs(60);
            let s = membership::add_member(&client.endpoints, &tls, id, &address, catch_up).await?;
            println!("{}", serde_json::to_string(&s)?);
        }
        StoreCommand::MemberRemove { client, id } => {
            let tls = client_tls(&client.pki_dir)?;
            let s = membership::remove_member(&client.endpoints, &tls, id).await?;
            println!("{}", serde_json::to_string(&s)?);
        }
        StoreCommand::TransferLeader { client, to } => {
            let c = leader_client(&client).await?;
            c.call(ClientRequest::TransferLeader(to)).await?;
        }
        StoreCommand::Isolate { client, state } => {
            connect(&client)
                .await?
                .call(ClientRequest::SetIsolated(state == "on"))
                .await?;
        }
        StoreCommand::Bench(args) => return bench::run(args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// A client connected to the current leader.
async fn leader_client(opts: &ClientOpts) -> anyhow::Result<StoreClient> {
    let tls = client_tls(&opts.pki_dir)?;
    Ok(membership::leader_client(&opts.endpoints, &tls).await?)
}
