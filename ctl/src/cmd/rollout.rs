//! `kcctl rollout status|history|undo` for deployments. Status reads the
//! deployment's status the way kubectl's status viewer does (same
//! messages), history and undo read the deployment's ReplicaSets and their
//! `deployment.kubernetes.io/revision` annotations.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::ctx::{Ctx, encode, parse_args, with_query};
use crate::discovery::ApiResource;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// Manage the rollout of a deployment.
#[derive(Debug, Subcommand)]
pub enum RolloutCmd {
    /// Show the status of the rollout.
    Status {
        /// deployment/NAME or deployment NAME.
        #[arg(required = true)]
        args: Vec<String>,
        /// Keep watching until the rollout finishes.
        #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        watch: bool,
        /// Give up after this many seconds (0 = never).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// View previous rollout revisions.
    History {
        #[arg(required = true)]
        args: Vec<String>,
        /// Show the pod template of this revision.
        #[arg(long)]
        revision: Option<i64>,
    },
    /// Roll back to a previous rollout.
    Undo {
        #[arg(required = true)]
        args: Vec<String>,
        /// The revision to roll back to (0 = the previous one).
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub cmd: RolloutCmd,
}

fn deployment(ctx: &Ctx, args: &[String]) -> Result<(ApiResource, String)> {
    let mut named = parse_args(ctx, args)?;
    if named.len() != 1 {
        bail!("rollout takes exactly one deployment");
    }
    let (r, name) = named.remove(0);
    if r.kind != "Deployment" {
        bail!("no status viewer has been implemented for {}", r.kind);
    }
    let name = name.ok_or_else(|| anyhow!("required resource not specified"))?;
    Ok((r, name))
}

/// kubectl's status message; `true` when the rollout is done.
pub fn status_message(d: &Value) -> Result<(String, bool)> {
    let name = d["metadata"]["name"].as_str().unwrap_or("");
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = n(&d["metadata"]["generation"]);
    let st = &d["status"];
    if generation > n(&st["observedGeneration"]) {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    }
    if let Some(c) = st["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        && c["reason"] == "ProgressDeadlineExceeded"
    {
        bail!("deployment {name:?} exceeded its progress deadline");
    }
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = n(&st["updatedReplicas"]);
    let total = n(&st["replicas"]);
    let available = n(&st["availableReplicas"]);
    if updated < replicas {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {updated} out of {replicas} new replicas have been updated..."
            ),
            false,
        ));
    }
    if total > updated {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
                total - updated
            ),
            false,
        ));
    }
    if available < updated {
        return Ok((
            format!(
                "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            false,
        ));
    }
    Ok((format!("deployment {name:?} successfully rolled out"), true))
}

/// The deployment's ReplicaSets with their revision, oldest first.
fn replica_sets(ctx: &Ctx, d: &Value) -> Result<Vec<(i64, Value)>> {
    let ns = d["metadata"]["namespace"].as_str().unwrap_or("default");
    let uid = d["metadata"]["uid"].as_str().unwrap_or("");
    let sel: Vec<String> = d["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let path = with_query(
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
        &[&format!("labelSelector={}", encode(&sel.join(",")))],
    );
    let list = ctx.client.get(&path)?;
    let mut out: Vec<(i64, Value)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["uid"] == uid))
        })
        .map(|rs| {
            let rev = rs["metadata"]["annotations"][REVISION]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (rev, rs.clone())
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

pub fn run(ctx: &Ctx, a: &RolloutArgs) -> Result<i32> {
    match &a.cmd {
        RolloutCmd::Status {
            args,
            watch,
            timeout,
        } => {
            let (r, name) = deployment(ctx, args)?;
            let path = r.object_path(&ctx.namespace, &name);
            let deadline = (*timeout > 0).then(|| Instant::now() + Duration::from_secs(*timeout));
            let mut last = String::new();
            loop {
                let d = ctx.client.get(&path)?;
                let (msg, done) = status_message(&d)?;
                if msg != last {
                    println!("{msg}");
                    std::io::stdout().flush()?;
                    last = msg;
                }
                if done || !watch {
                    return Ok(0);
                }
                if deadline.is_some_and(|t| Instant::now() >= t) {
                    bail!("timed out waiting for the condition");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        RolloutCmd::History { args, revision } => {
            let (r, name) = deployment(ctx, args)?;
            let d = ctx.client.get(&r.object_path(&ctx.namespace, &name))?;
            let sets = replica_sets(ctx, &d)?;
            if let Some(rev) = revision {
                let (_, rs) = sets
                    .iter()
                    .find(|(r, _)| r == rev)
                    .ok_or_else(|| anyhow!("unable to find the specified revision"))?;
                println!("deployment.apps/{name} with revision #{rev}");
                print!(
                    "{}",
                    crate::printer::to_yaml(&json!({"Pod Template": rs["spec"]["template"]}))
                );
                return Ok(0);
            }
            println!("deployment.apps/{name} ");
            if sets.is_empty() {
                println!("No rollout history found.");
                return Ok(0);
            }
            let mut rows = vec![vec!["REVISION".to_string(), "CHANGE-CAUSE".to_string()]];
            for (rev, rs) in &sets {
                let cause = rs["metadata"]["annotations"]["kubernetes.io/change-cause"]
                    .as_str()
                    .unwrap_or("<none>");
                rows.push(vec![rev.to_string(), cause.to_string()]);
            }
            print!("{}", crate::printer::tabwriter(&rows, 2));
            println!();
            Ok(0)
        }
        RolloutCmd::Undo { args, to_revision } => {
            let (r, name) = deployment(ctx, args)?;
            let path = r.object_path(&ctx.namespace, &name);
            let d = ctx.client.get(&path)?;
            let sets = replica_sets(ctx, &d)?;
            let target = if *to_revision > 0 {
                sets.iter().find(|(r, _)| r == to_revision)
            } else {
                // The newest revision but the current one.
                sets.len().checked_sub(2).and_then(|i| sets.get(i))
            };
            let Some((rev, rs)) = target else {
                if *to_revision > 0 {
                    bail!("unable to find specified revision {to_revision} in history");
                }
                bail!("no rollout history found for deployment {name:?}");
            };
            let mut template = rs["spec"]["template"].clone();
            if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
                labels.remove("pod-template-hash");
            }
            let _ = rev;
            let patch = json!({ "spec": { "template": template } });
            ctx.client
                .patch(&path, "application/merge-patch+json", &patch)?;
            println!("deployment.apps/{name} rolled back");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_follow_kubectl() {
        let mut d = json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1},
        });
        assert_eq!(
            status_message(&d).unwrap().0,
            "Waiting for deployment spec update to be observed..."
        );
        d["status"] = json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 2});
        assert_eq!(
            status_message(&d).unwrap().0,
            "Waiting for deployment \"web\" rollout to finish: 1 out of 2 new replicas have been updated..."
        );
        d["status"] = json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 3});
        assert!(
            status_message(&d)
                .unwrap()
                .0
                .contains("1 old replicas are pending termination")
        );
        d["status"] = json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1});
        assert!(
            status_message(&d)
                .unwrap()
                .0
                .contains("1 of 2 updated replicas are available")
        );
        d["status"]["availableReplicas"] = json!(2);
        assert_eq!(
            status_message(&d).unwrap(),
            ("deployment \"web\" successfully rolled out".into(), true)
        );
    }
}
