//! `kcnode init`, `kcnode join`, `kcnode token create`, `kcnode leave`:
//! making a cluster of hosts, like kubeadm (a control-plane member's
//! leave and `kcnode member` are in `member.rs`).
//!
//! `init` starts the first control-plane member (CA, store, API server, the
//! node API on UDP 7000) and the node side in the same process; `join`
//! verifies the control plane's CA by its hash, trades a bootstrap token
//! for a node certificate and runs the node side. Both keep their files in
//! the data directory, so running the same command again after a restart
//! reuses the identity instead of joining anew.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use kc_agent::node_client::{self as client, NodeClient};
use kc_member::member::{self, MemberConfig, MemberFile};
use kc_member::pki::{self, ClusterCa, IssuedCert};
use kc_member::single::SingleConfig;
use kc_protocol::node_api::{DEFAULT_PORT, JoinRequest, JoinResponse, NodeRequest, NodeResponse};

use super::GlobalOpts;
use super::leave::LeaveArgs;
use kc_agent::agent::{self, AgentConfig};
use kc_agent::duration::parse_duration;
use kc_agent::host::{HostFacts, NodeRole};
use kc_agent::mirror;
use kc_agent::session::{self, SessionConfig};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start the first control-plane member on this host (and, by default, run pods here too).
    Init(InitArgs),
    /// Join this host to a cluster as a worker, or with --control-plane as a control-plane member.
    Join(JoinArgs),
    /// Bootstrap tokens for `kcnode join`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remove this node from its cluster: drain it, stop its agent, delete its Node
    /// (on a control-plane member: also hand over and leave the store's membership).
    Leave(LeaveArgs),
    /// The control plane's members: list them, remove a dead one (run on a member).
    #[command(subcommand)]
    Member(super::member::MemberCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token and print the join command that uses it.
    Create(TokenCreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct NodeOpts {
    /// The address this host is reached at [default: its first non-loopback IPv4]
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// How often the node renews its Lease (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// How pods reach pods on other nodes: `direct` routes (nodes on one
    /// segment) or a `vxlan` overlay; every node of a cluster must use the same.
    #[arg(long, value_enum, default_value = "direct")]
    pub pod_network: kc_agent::network::routes::Mode,
    #[command(flatten)]
    pub image_gc: kc_agent::image_gc::ImageGcArgs,
    /// A registry (HOST:PORT) that pods' images are pulled from over plain HTTP (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub node: NodeOpts,
    #[command(flatten)]
    pub member: MemberOpts,
    /// Lifetime of the bootstrap tokens printed in the join commands.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub token_ttl: Duration,
}

/// What a control-plane member (`init`, `join --control-plane`) runs.
#[derive(Debug, clap::Args)]
pub struct MemberOpts {
    /// Where the API server listens (HTTPS).
    #[arg(long, default_value = "0.0.0.0:6443")]
    pub apiserver_listen: SocketAddr,
    /// Where the node API and the store's member transport listen (QUIC, UDP; one port, told apart by ALPN).
    #[arg(long, default_value = "0.0.0.0:7000")]
    pub node_api_listen: SocketAddr,
    /// Where to write the admin kubeconfig [default: <data-dir>/admin.kubeconfig]
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// The cluster's name (in the CA and the kubeconfig).
    #[arg(long, default_value = "kc")]
    pub cluster_name: String,
    /// Run no pods here: taint this node node-role.kubernetes.io/control-plane:NoSchedule.
    #[arg(long)]
    pub no_workloads: bool,
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub node: NodeOpts,
    /// A control-plane member's node API, host[:port] (port 7000 if omitted).
    #[arg(long)]
    pub master: String,
    /// The bootstrap token (from `kcnode init` or `kcnode token create`).
    #[arg(long)]
    pub token: Option<String>,
    /// The CA's hash from the join command (sha256:<hex>).
    #[arg(long)]
    pub discovery_token_ca_cert_hash: Option<String>,
    /// Trust whatever CA the master shows (unsafe: only on a trusted network).
    #[arg(long)]
    pub discovery_token_unsafe_skip_ca_verification: bool,
    /// Join as a control-plane member: a store member with its own API server, node API,
    /// registry, scheduler and controllers (needs a control-plane token).
    #[arg(long)]
    pub control_plane: bool,
    #[command(flatten, next_help_heading = "With --control-plane")]
    pub member: MemberOpts,
}

#[derive(Debug, clap::Args)]
pub struct TokenCreateArgs {
    /// How long the token is valid (e.g. 24h, 30m, 1s).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// A token that may also join control-plane members (`kcnode join --control-plane`).
    #[arg(long)]
    pub control_plane: bool,
    /// The local control plane's node API.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub server: String,
}

pub fn run(global: &GlobalOpts, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    kc_agent::memory::limit_malloc_arenas();
    // A worker's agent needs no more than two threads, whatever the cores.
    let workers = matches!(cmd, ClusterCommand::Join(_)).then_some(2);
    let runtime =
        kc_agent::memory::agent_runtime(workers).context("cannot start the async runtime")?;
    runtime.block_on(async move {
        kc_agent::memory::spawn_trimmer();
        match cmd {
            ClusterCommand::Init(args) => init(global, args).await,
            ClusterCommand::Join(args) => join(global, args).await,
            ClusterCommand::Token(TokenCommand::Create(args)) => token_create(global, args).await,
            ClusterCommand::Leave(args) => leave(global, args).await,
            ClusterCommand::Member(cmd) => super::member::run(global, cmd).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn data_dir(global: &GlobalOpts) -> anyhow::Result<PathBuf> {
    let dir = global.data_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    Ok(dir)
}

fn with_port(addr: &str) -> String {
    if addr.parse::<SocketAddr>().is_ok()
        || addr
            .rsplit_once(':')
            .is_some_and(|(h, _)| !h.contains(':') || h.ends_with(']'))
    {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

/// Runs until SIGTERM or Ctrl-C, or until `work` ends.
async fn until_signal(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
    }
}

async fn init(global: &GlobalOpts, args: InitArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(global)?;
    let advertise = advertise_of(&data_dir, &args.node);
    let member = start_member(global, &data_dir, &args.member, advertise).await?;
    let shared = &member.node_api.shared;
    let rest = &member.control_plane.api.state.rest;
    let ttl = args.token_ttl.as_secs().max(1);
    let token = kc_member::nodeapi::tokens::create(rest, ttl)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the bootstrap token: {}", e.message))?;
    let cp_token = kc_member::nodeapi::tokens::create_with(rest, ttl, true)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the control-plane token: {}", e.message))?;
    println!("To add a worker, run on it:");
    println!("  {}", shared.join_command(&token.to_string()));
    println!("To add a control-plane member (store, API server), run on it:");
    println!(
        "  {} --control-plane",
        shared.join_command(&cp_token.to_string())
    );
    std::io::Write::flush(&mut std::io::stdout()).ok();
    run_member(
        global,
        data_dir,
        member,
        &args.node,
        args.member.no_workloads,
    )
    .await
}

/// The address this host advertises: the flag, or its first non-loopback IPv4.
fn advertise_of(data_dir: &Path, node: &NodeOpts) -> IpAddr {
    node.advertise_address
        .unwrap_or_else(|| HostFacts::read(data_dir).primary_ip())
}

/// Starts this host's control-plane member (`init`, or a joined member's
/// restart) and prints where it is.
async fn start_member(
    global: &GlobalOpts,
    data_dir: &Path,
    opts: &MemberOpts,
    advertise: IpAddr,
) -> anyhow::Result<member::Member> {
    let node_name = global.node_name();
    let kubeconfig_out = opts
        .kubeconfig_out
        .clone()
        .unwrap_or_else(|| data_dir.join("admin.kubeconfig"));
    let member = member::start(&MemberConfig {
        api: SingleConfig {
            data_dir: data_dir.to_path_buf(),
            listen: opts.apiserver_listen,
            kubeconfig_out: kubeconfig_out.clone(),
            cluster_name: opts.cluster_name.clone(),
            advertise: vec![advertise],
        },
        listen: opts.node_api_listen,
        node_name: node_name.clone(),
        advertise,
    })
    .await?;
    println!(
        "kcnode: control plane of {node_name} is up (store member {})",
        member.id
    );
    println!(
        "  API server: https://{}:{}",
        advertise,
        member.control_plane.api.local_addr.port()
    );
    println!("  admin kubeconfig: {}", kubeconfig_out.display());
    println!("    export KUBECONFIG={}", kubeconfig_out.display());
    std::io::Write::flush(&mut std::io::stdout()).ok();
    Ok(member)
}

/// Runs a started member's node side until a signal or until its API
/// server or agent stops.
async fn run_member(
    global: &GlobalOpts,
    data_dir: PathBuf,
    member: member::Member,
    node: &NodeOpts,
    no_workloads: bool,
) -> anyhow::Result<()> {
    let advertise = advertise_of(&data_dir, node);
    let mut parts = mirror::control_plane_parts();
    parts.extend(mirror::node_parts());
    let local = format!("127.0.0.1:{}", member.node_api.local_addr.port());
    let agent = agent::run(AgentConfig {
        node_name: global.node_name(),
        data_dir: data_dir.clone(),
        role: NodeRole {
            control_plane: true,
            no_workloads,
        },
        parts,
        advertise: Some(advertise),
        session: SessionConfig {
            ca_pem: member.control_plane.ca.cert_pem().to_string(),
            cert: member.node_cert.clone(),
            members: vec![local],
            members_file: data_dir.join("members.local"),
            heartbeat: node.heartbeat,
            lease_seconds: lease_seconds(node.heartbeat),
            status_every: 6,
        },
        pod_network: node.pod_network,
        image_gc: node.image_gc.clone(),
        insecure_registries: node.insecure_registries.clone(),
    });
    let member::Member {
        control_plane,
        node_api,
        ..
    } = member;
    let api = control_plane.api;
    until_signal(async move {
        tokio::select! {
            r = api.wait() => r,
            r = agent => r,
        }
    })
    .await?;
    node_api.close();
    Ok(())
}

/// Kubernetes' default: a lease lasts four heartbeats (40 s for 10 s).
fn lease_seconds(heartbeat: Duration) -> i32 {
    i32::try_from((heartbeat.as_secs() * 4).max(4)).unwrap_or(i32::MAX)
}

/// The node identity files a joined host keeps.
struct Joined {
    ca_pem: String,
    cert: IssuedCert,
    members: Vec<String>,
}

fn load_joined(pki_dir: &Path, members_file: &Path) -> Option<Joined> {
    let cert = IssuedCert::load(pki_dir, "node").ok()?;
    let ca_pem = std::fs::read_to_string(pki_dir.join("ca.crt")).ok()?;
    Some(Joined {
        ca_pem,
        cert,
        members: session::load_members(members_file),
    })
}

async fn join(global: &GlobalOpts, args: JoinArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(global)?;
    if args.control_plane || MemberFile::load(&data_dir).is_some() {
        return join_member(global, &data_dir, args).await;
    }
    let node_name = global.node_name();
    let pki_dir = data_dir.join("pki");
    let members_file = data_dir.join("members");
    let master = with_port(&args.master);
    let facts = HostFacts::read(&data_dir);
    let advertise = args
        .node
        .advertise_address
        .unwrap_or_else(|| facts.primary_ip());
    let joined = match load_joined(&pki_dir, &members_file) {
        Some(j) => {
            eprintln!(
                "kcnode: {node_name} already joined (identity in {}); reconnecting",
                pki_dir.display()
            );
            j
        }
        None => {
            let token = args
                .token
                .clone()
                .context("--token is required to join (create one with `kcnode token create` on a control-plane host)")?;
            let j = match join_exchange(&args, &master, &node_name, advertise, &token).await? {
                JoinResponse::Accepted {
                    ca_pem,
                    cert_pem,
                    key_pem,
                    members,
                } => Joined {
                    ca_pem,
                    cert: IssuedCert { cert_pem, key_pem },
                    members,
                },
                other => bail!("unexpected answer to a worker's join: {other:?}"),
            };
            j.cert.save(&pki_dir, "node")?;
            std::fs::write(pki_dir.join("ca.crt"), &j.ca_pem)
                .with_context(|| format!("cannot write {}", pki_dir.join("ca.crt").display()))?;
            std::fs::write(&members_file, j.members.join("\n") + "\n").ok();
            eprintln!("kcnode: {node_name} joined the cluster through {master}");
            j
        }
    };
    let mut members = joined.members;
    if members.is_empty() {
        members.push(master);
    }
    until_signal(agent::run(AgentConfig {
        node_name,
        data_dir,
        role: NodeRole {
            control_plane: false,
            no_workloads: false,
        },
        parts: mirror::node_parts(),
        advertise: Some(advertise),
        session: SessionConfig {
            ca_pem: joined.ca_pem,
            cert: joined.cert,
            members,
            members_file,
            heartbeat: args.node.heartbeat,
            lease_seconds: lease_seconds(args.node.heartbeat),
            status_every: 6,
        },
        pod_network: args.node.pod_network,
        image_gc: args.node.image_gc,
        insecure_registries: args.node.insecure_registries,
    }))
    .await
}

/// `join --control-plane`: the first time, trade the control-plane token
/// for the CA and a Raft id and add this host to the store; after, restart
/// the member from its data (no second join). Then run it like `init`.
async fn join_member(global: &GlobalOpts, data_dir: &Path, args: JoinArgs) -> anyhow::Result<()> {
    let node_name = global.node_name();
    let advertise = advertise_of(data_dir, &args.node);
    if let Some(m) = MemberFile::load(data_dir) {
        eprintln!(
            "kcnode: {node_name} is already control-plane member {} (in {}); restarting it",
            m.id,
            MemberFile::path(data_dir).display()
        );
    } else {
        let master = with_port(&args.master);
        let token = args.token.clone().context(
            "--token is required to join (a control-plane token: `kcnode token create --control-plane` on a member)",
        )?;
        match join_exchange(&args, &master, &node_name, advertise, &token).await? {
            JoinResponse::MemberAccepted {
                ca_pem,
                ca_key_pem,
                member_id,
                members,
            } => {
                let pki_dir = data_dir.join("pki");
                std::fs::create_dir_all(&pki_dir)
                    .with_context(|| format!("cannot create {}", pki_dir.display()))?;
                ClusterCa::from_pem(&ca_pem, &ca_key_pem)
                    .context("the control plane sent an unusable CA")?
                    .save(&pki_dir)
                    .context("cannot save the cluster CA")?;
                MemberFile {
                    id: member_id,
                    founder: false,
                    peers: members.into_iter().collect(),
                }
                .save(data_dir)?;
                eprintln!(
                    "kcnode: {node_name} admitted as control-plane member {member_id} through {master}; joining the store"
                );
            }
            other => bail!("unexpected answer to a control-plane join: {other:?}"),
        }
    }
    let member = start_member(global, data_dir, &args.member, advertise).await?;
    run_member(
        global,
        data_dir.to_path_buf(),
        member,
        &args.node,
        args.member.no_workloads,
    )
    .await
}

/// Checks the control plane's CA against the discovery hash, then presents
/// the token; the answer is the control plane's (refusals are errors).
async fn join_exchange(
    args: &JoinArgs,
    master: &str,
    node_name: &str,
    advertise: IpAddr,
    token: &str,
) -> anyhow::Result<JoinResponse> {
    let ca_pem = client::fetch_ca(master).await?;
    match (
        &args.discovery_token_ca_cert_hash,
        args.discovery_token_unsafe_skip_ca_verification,
    ) {
        (Some(expected), _) => {
            let actual = pki::discovery_hash_of_pem(&ca_pem)?;
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                bail!(
                    "the control plane at {master} shows a CA with hash {actual}, not {expected}: refusing to join (wrong cluster, or someone in between)"
                );
            }
        }
        (None, true) => eprintln!(
            "kcnode: warning: not verifying the control plane's CA (--discovery-token-unsafe-skip-ca-verification)"
        ),
        (None, false) => bail!(
            "--discovery-token-ca-cert-hash is required (it is in the join command `kcnode init` printed), or pass --discovery-token-unsafe-skip-ca-verification"
        ),
    }
    let request = JoinRequest {
        token: token.to_string(),
        node_name: node_name.to_string(),
        addresses: vec![advertise.to_string()],
        control_plane: args.control_plane,
    };
    match client::join(master, &ca_pem, request).await? {
        JoinResponse::Refused(why) => {
            bail!("the control plane refused to let {node_name} join: {why}")
        }
        JoinResponse::Ca { .. } => bail!("the control plane answered the join with its CA only"),
        answer => Ok(answer),
    }
}

async fn token_create(global: &GlobalOpts, args: TokenCreateArgs) -> anyhow::Result<()> {
    let pki_dir = global.data_dir().join("pki");
    let admin = IssuedCert::load(&pki_dir, "admin").with_context(|| {
        format!(
            "no admin certificate in {}: run `kcnode token create` on a control-plane host, with its --data-dir",
            pki_dir.display()
        )
    })?;
    let ca_pem = std::fs::read_to_string(pki_dir.join("ca.crt"))
        .with_context(|| format!("cannot read {}", pki_dir.join("ca.crt").display()))?;
    let client = NodeClient::connect(&args.server, &ca_pem, &admin).await?;
    let ttl_seconds = args.ttl.as_secs().max(1);
    let request = if args.control_plane {
        NodeRequest::CreateControlPlaneToken { ttl_seconds }
    } else {
        NodeRequest::CreateToken { ttl_seconds }
    };
    match client.call(&request).await? {
        NodeResponse::Token { join_command, .. } => {
            println!("{join_command}");
            Ok(())
        }
        other => bail!("unexpected answer to token create: {other:?}"),
    }
}

async fn leave(global: &GlobalOpts, args: LeaveArgs) -> anyhow::Result<()> {
    if MemberFile::load(&global.data_dir()).is_some() {
        return super::member::leave(global, &args).await;
    }
    super::leave::worker(global, &args).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_without_port_gets_7000() {
        assert_eq!(with_port("10.0.0.1"), "10.0.0.1:7000");
        assert_eq!(with_port("10.0.0.1:7001"), "10.0.0.1:7001");
        assert_eq!(with_port("cp1"), "cp1:7000");
        assert_eq!(with_port("cp1:7000"), "cp1:7000");
    }
}
