//! `kcnode member list|remove` and `kcnode leave` on a control-plane
//! member: the control plane's membership seen and changed from a member
//! host, like `etcdctl member list|remove` and `kubeadm reset`.
//!
//! These commands run beside the member's kcnode (same `--data-dir`) and
//! talk to the store over the members' port with an admin certificate
//! issued from the cluster CA in `<data-dir>/pki`. A member is also a node:
//! its name is the Node whose InternalIP is the member's address (read from
//! the store's Node records). Health: the member's store answers its status.
//!
//! Leaving (`leave`): refuse when this is the last member or the others
//! could not keep a quorum (`store::membership::check_removal`); drain the
//! node side; hand the Raft leadership to another live member if this one
//! holds it; remove this member through the leader (a Raft configuration
//! change, so the others count a quorum of the new size); stop the local
//! kcnode; delete the Node, its Lease and its mirror pods through another
//! member; remove the network rules and the member's files (everything with
//! `--purge`). Workers learn the new member list from their next refresh.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use kc_agent::node_client::NodeClient;
use kc_member::member::MemberFile;
use kc_member::pki::IssuedCert;
use kc_member::store::api::{KeyRange, MemberStatus, RangeRequest};
use kc_member::store::client::StoreClient;
use kc_member::store::membership::{self, check_removal};
use kc_member::store::transport::MemberTls;
use kc_member::store::wire::ClientRequest;
use kc_protocol::node_api::NodeRequest;
use serde_json::Value;

use super::GlobalOpts;
use super::leave::{LeaveArgs, drain, stop_agent};

#[derive(Debug, clap::Subcommand)]
pub enum MemberCommand {
    /// List the control plane's members: id, name, address, role (leader/follower/learner), health.
    List(ListArgs),
    /// Remove a member that is gone for good (a dead host); run on a live member.
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The member to remove: its node name or its id (see `kcnode member list`).
    pub member: String,
    /// Remove it although it still answers (stop its kcnode yourself; better: run `kcnode leave` on it).
    #[arg(long)]
    pub force: bool,
}

/// One member, as `kcnode member list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberRow {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub role: &'static str,
    pub healthy: bool,
}

/// How long a member may take to answer before it counts as down.
const PROBE: Duration = Duration::from_secs(2);
/// Where the local member listens when its own address is not known yet.
const LOCAL_MEMBER: &str = "127.0.0.1:7000";

pub async fn run(global: &GlobalOpts, cmd: MemberCommand) -> anyhow::Result<()> {
    let cp = ControlPlane::load(&global.data_dir()).await?;
    match cmd {
        MemberCommand::List(args) => {
            let rows = cp.rows();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", table(&rows));
            }
            Ok(())
        }
        MemberCommand::Remove(args) => cp.remove(&args).await,
    }
}

/// What a member host knows of its control plane.
struct ControlPlane {
    /// This host's member id.
    me: u64,
    tls: MemberTls,
    /// The view of a member that answered (members, voters, learners, leader).
    status: MemberStatus,
    /// The members whose store answered.
    live: BTreeSet<u64>,
    /// Member host address -> node name.
    names: BTreeMap<IpAddr, String>,
}

impl ControlPlane {
    async fn load(data_dir: &Path) -> anyhow::Result<ControlPlane> {
        let file = MemberFile::load(data_dir).with_context(|| {
            format!(
                "{} names no control-plane member: run this on a control-plane host, with its --data-dir",
                MemberFile::path(data_dir).display()
            )
        })?;
        let tls = super::store::client_tls(&data_dir.join("pki"))?;
        let mut endpoints = vec![LOCAL_MEMBER.to_string()];
        endpoints.extend(file.peers.values().cloned());
        let mut status: Option<MemberStatus> = None;
        for e in &endpoints {
            if let Some(s) = probe(e, &tls).await {
                let knows_leader = s.leader != 0;
                if status.is_none() || knows_leader {
                    status = Some(s);
                }
                if knows_leader {
                    break;
                }
            }
        }
        let status = status.with_context(|| {
            format!(
                "no control-plane member answers at {}: is kcnode running on this host?",
                endpoints.join(", ")
            )
        })?;
        let probes = status.members.iter().map(|(id, address)| {
            let tls = &tls;
            async move { probe(address, tls).await.map(|_| *id) }
        });
        let live: BTreeSet<u64> = futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut names = BTreeMap::new();
        for id in &live {
            if let Some(n) = node_names(&status.members[id], &tls).await {
                names = n;
                break;
            }
        }
        Ok(ControlPlane {
            me: file.id,
            tls,
            status,
            live,
            names,
        })
    }

    fn rows(&self) -> Vec<MemberRow> {
        member_rows(&self.status, &self.live, &self.names)
    }

    /// The member named by `text`: an id or a node name.
    fn resolve(&self, text: &str) -> anyhow::Result<MemberRow> {
        let rows = self.rows();
        rows.iter()
            .find(|r| r.name == text || r.id.to_string() == text)
            .cloned()
            .with_context(|| {
                let known: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{} ({})", r.name, r.id))
                    .collect();
                format!(
                    "no control-plane member is named {text:?}; the members are: {}",
                    known.join(", ")
                )
            })
    }

    /// The addresses of the live members other than `id`.
    fn others_live(&self, id: u64) -> Vec<String> {
        self.status
            .members
            .iter()
            .filter(|(m, _)| **m != id && self.live.contains(m))
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// `kcnode member remove`: a dead member out of the membership.
    async fn remove(&self, args: &RemoveArgs) -> anyhow::Result<()> {
        let target = self.resolve(&args.member)?;
        if target.id == self.me {
            bail!(
                "member {} ({}) is this host: run `kcnode leave` to take it out (it drains and hands over its work first)",
                target.id,
                target.name
            );
        }
        if target.healthy && !args.force {
            bail!(
                "member {} ({}) still answers: run `kcnode leave` on it, which drains and stops it cleanly (or pass --force and stop its kcnode yourself)",
                target.id,
                target.name
            );
        }
        check_removal(
            &self.status.voters,
            &self.status.learners,
            target.id,
            &self.live,
        )
        .with_context(|| format!("cannot remove member {} ({})", target.id, target.name))?;
        let left = membership::remove_member(&self.others_live(target.id), &self.tls, target.id)
            .await
            .with_context(|| format!("cannot remove member {}", target.id))?;
        println!(
            "kcnode: removed member {} ({}, {}) from the control plane; {} members left",
            target.id,
            target.name,
            target.address,
            left.voters.len() + left.learners.len()
        );
        println!(
            "  its Node stays until you delete it: kubectl delete node {}",
            target.name
        );
        Ok(())
    }

    /// Makes sure this member does not lead: asks it to hand the
    /// leadership to another live voter (raft-rs lets it catch up first).
    async fn hand_over(&self, local: &str) -> anyhow::Result<()> {
        for _ in 0..5 {
            let Some(s) = probe(local, &self.tls).await else {
                bail!("this member's store at {local} stopped answering");
            };
            if s.leader != 0 && s.leader != self.me {
                return Ok(());
            }
            if s.leader == self.me {
                let target = self
                    .successor()
                    .context("no other live voting member to hand the Raft leadership to")?;
                eprintln!("kcnode: handing the control plane's leadership to member {target}");
                let c = StoreClient::connect(local, &self.tls).await?;
                c.call(ClientRequest::TransferLeader(target)).await?;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        bail!(
            "this member still leads the control plane after asking to hand over; run `kcnode leave` again"
        )
    }

    /// A live voter other than this one.
    fn successor(&self) -> Option<u64> {
        self.status
            .voters
            .iter()
            .copied()
            .find(|v| *v != self.me && self.live.contains(v))
    }
}

/// A member's status if it answers within `PROBE`.
async fn probe(address: &str, tls: &MemberTls) -> Option<MemberStatus> {
    tokio::time::timeout(PROBE, async {
        StoreClient::connect(address, tls)
            .await
            .ok()?
            .status()
            .await
            .ok()
    })
    .await
    .ok()
    .flatten()
}

/// Node names by InternalIP, from the Node records of the store at `address`.
async fn node_names(address: &str, tls: &MemberTls) -> Option<BTreeMap<IpAddr, String>> {
    let c = StoreClient::connect(address, tls).await.ok()?;
    let mut req = RangeRequest::new(KeyRange::prefix("/registry/core/nodes/"));
    req.serializable = true;
    let r = c.range(req).await.ok()?;
    Some(
        r.kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
            .flat_map(|n| internal_ips(&n))
            .collect(),
    )
}

/// A Node's (InternalIP, name) pairs.
fn internal_ips(node: &Value) -> Vec<(IpAddr, String)> {
    let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str()?.parse().ok())
        .map(|ip| (ip, name.clone()))
        .collect()
}

/// The rows of `kcnode member list`, by id.
pub fn member_rows(
    status: &MemberStatus,
    live: &BTreeSet<u64>,
    names: &BTreeMap<IpAddr, String>,
) -> Vec<MemberRow> {
    status
        .members
        .iter()
        .map(|(id, address)| {
            let ip = address.parse::<SocketAddr>().ok().map(|a| a.ip());
            let role = if status.learners.contains(id) {
                "learner"
            } else if status.leader == *id {
                "leader"
            } else {
                "follower"
            };
            MemberRow {
                id: *id,
                name: ip
                    .and_then(|ip| names.get(&ip).cloned())
                    .unwrap_or_else(|| "<unknown>".into()),
                address: address.clone(),
                role,
                healthy: live.contains(id),
            }
        })
        .collect()
}

/// The rows as an aligned table.
pub fn table(rows: &[MemberRow]) -> String {
    let mut lines = vec![[
        "ID".to_string(),
        "NAME".into(),
        "ADDRESS".into(),
        "ROLE".into(),
        "HEALTH".into(),
    ]];
    for r in rows {
        lines.push([
            r.id.to_string(),
            r.name.clone(),
            r.address.clone(),
            r.role.to_string(),
            if r.healthy { "healthy" } else { "unreachable" }.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// `kcnode leave` on a control-plane member (see the module doc).
pub async fn leave(global: &GlobalOpts, args: &LeaveArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir();
    let cp = ControlPlane::load(&data_dir).await?;
    let me = cp.me;
    check_removal(&cp.status.voters, &cp.status.learners, me, &cp.live)
        .with_context(|| format!("{} cannot leave the control plane", global.node_name()))?;
    let local = cp
        .status
        .members
        .get(&me)
        .cloned()
        .unwrap_or_else(|| LOCAL_MEMBER.to_string());
    let pki_dir = data_dir.join("pki");
    let node = IssuedCert::load(&pki_dir, "node")
        .with_context(|| format!("no node identity in {}", pki_dir.display()))?;
    let ca_pem = std::fs::read_to_string(pki_dir.join("ca.crt"))
        .with_context(|| format!("cannot read {}", pki_dir.join("ca.crt").display()))?;

    let node_api = NodeClient::connect(&local, &ca_pem, &node)
        .await
        .with_context(|| format!("cannot reach this member's node API at {local}"))?;
    drain(&node_api).await?;
    cp.hand_over(&local).await?;
    let others = cp.others_live(me);
    let left = membership::remove_member(&others, &cp.tls, me)
        .await
        .context("cannot remove this member from the control plane's store")?;
    eprintln!(
        "kcnode: member {me} removed from the control plane; {} members left",
        left.voters.len() + left.learners.len()
    );
    stop_agent(&data_dir).await;
    kc_agent::cluster_network::teardown();
    let mut deleted = false;
    for o in &others {
        let Ok(c) = NodeClient::connect(o, &ca_pem, &node).await else {
            continue;
        };
        if c.call(&NodeRequest::Leave).await.is_ok() {
            deleted = true;
            break;
        }
    }
    if !deleted {
        eprintln!(
            "kcnode: warning: could not delete the Node {} through {}: delete it with kubectl",
            global.node_name(),
            others.join(", ")
        );
    }
    clean_member_files(&data_dir, args.purge);
    eprintln!("kcnode: left the cluster (Node deleted, member files removed)");
    Ok(())
}

/// What a member made in its data dir (kubeadm reset's share), or the
/// whole data dir with `purge`.
fn clean_member_files(data_dir: &Path, purge: bool) {
    if purge {
        std::fs::remove_dir_all(data_dir).ok();
        return;
    }
    for dir in ["pki", "store", "registry"] {
        std::fs::remove_dir_all(data_dir.join(dir)).ok();
    }
    for file in [
        "member.json",
        "members",
        "members.local",
        "tokens.csv",
        "admin.kubeconfig",
    ] {
        std::fs::remove_file(data_dir.join(file)).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status() -> MemberStatus {
        MemberStatus {
            id: 1,
            leader: 7,
            term: 3,
            commit_index: 10,
            applied_index: 10,
            revision: 5,
            compact_revision: 0,
            voters: vec![1, 7],
            learners: vec![9],
            members: BTreeMap::from([
                (1, "10.0.0.1:7000".to_string()),
                (7, "10.0.0.2:7000".to_string()),
                (9, "10.0.0.3:7000".to_string()),
            ]),
        }
    }

    #[test]
    fn rows_name_members_by_their_node_and_tell_roles_and_health() {
        let names = BTreeMap::from([
            ("10.0.0.1".parse().unwrap(), "cp1".to_string()),
            ("10.0.0.2".parse().unwrap(), "cp2".to_string()),
        ]);
        let rows = member_rows(&status(), &BTreeSet::from([1, 7]), &names);
        let brief: Vec<(u64, &str, &str, bool)> = rows
            .iter()
            .map(|r| (r.id, r.name.as_str(), r.role, r.healthy))
            .collect();
        assert_eq!(
            brief,
            vec![
                (1, "cp1", "follower", true),
                (7, "cp2", "leader", true),
                (9, "<unknown>", "learner", false),
            ]
        );
        let text = table(&rows);
        assert!(text.starts_with("ID   NAME"), "{text}");
        assert!(
            text.contains("cp2         10.0.0.2:7000   leader     healthy"),
            "{text}"
        );
        assert!(text.contains("unreachable"), "{text}");
    }

    #[test]
    fn node_internal_ips_name_the_node() {
        let node = json!({"metadata": {"name": "cp1"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.1"},
            {"type": "Hostname", "address": "cp1"},
        ]}});
        assert_eq!(
            internal_ips(&node),
            vec![("10.0.0.1".parse().unwrap(), "cp1".to_string())]
        );
    }
}
