//! `kcctl cordon|uncordon|drain`: mark nodes (un)schedulable, and evict a
//! node's pods (through `pods/eviction`, so disruption budgets apply; a
//! plain delete when the server has no eviction subresource).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::{Ctx, encode, with_query};

/// Mark a node (un)schedulable.
#[derive(Debug, Args)]
pub struct CordonArgs {
    /// Node name(s).
    #[arg(required = true)]
    pub nodes: Vec<String>,
}

/// Drain a node: cordon it and evict its pods.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Node name.
    pub node: String,
    /// Skip DaemonSet-managed pods instead of refusing.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Also delete pods no controller manages.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the pods to go (0 = forever).
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
    /// Delete pods instead of evicting them.
    #[arg(long)]
    pub disable_eviction: bool,
    /// Seconds each pod gets to stop (-1 = the pod's own; 0 = at once).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub grace_period: i64,
}

/// Sets `spec.unschedulable`; prints kubectl's message.
pub fn cordon(ctx: &Ctx, nodes: &[String], unschedulable: bool) -> Result<i32> {
    for n in nodes {
        set_unschedulable(ctx, n, unschedulable)?;
    }
    Ok(0)
}

fn set_unschedulable(ctx: &Ctx, node: &str, unschedulable: bool) -> Result<()> {
    let path = format!("/api/v1/nodes/{node}");
    let current = ctx.client.get(&path)?;
    let verb = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    if current["spec"]["unschedulable"].as_bool().unwrap_or(false) == unschedulable {
        println!("node/{node} already {verb}");
        return Ok(());
    }
    let value = if unschedulable {
        json!(true)
    } else {
        Value::Null
    };
    ctx.client.patch(
        &path,
        "application/merge-patch+json",
        &json!({"spec": {"unschedulable": value}}),
    )?;
    println!("node/{node} {verb}");
    Ok(())
}

/// The kind of the pod's controller, if any.
fn controller(pod: &Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
        .and_then(|o| o["kind"].as_str().map(str::to_string))
}

/// Which of the node's pods to evict, or kubectl's refusal.
pub fn plan(
    pods: &[Value],
    ignore_daemonsets: bool,
    force: bool,
) -> Result<(Vec<Value>, Vec<String>)> {
    let mut evict = Vec::new();
    let mut ignored = Vec::new();
    let mut errors = Vec::new();
    for p in pods {
        let id = format!(
            "{}/{}",
            p["metadata"]["namespace"].as_str().unwrap_or(""),
            p["metadata"]["name"].as_str().unwrap_or("")
        );
        match controller(p).as_deref() {
            Some("DaemonSet") if ignore_daemonsets => ignored.push(id),
            Some("DaemonSet") => errors.push(format!(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {id}"
            )),
            None if !force => errors.push(format!(
                "cannot delete Pods that declare no controller (use --force to override): {id}"
            )),
            _ => evict.push(p.clone()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "unable to drain node due to error: {}, continuing command...\nThere are pending nodes to be drained",
            errors.join(", ")
        );
    }
    Ok((evict, ignored))
}

pub fn drain(ctx: &Ctx, a: &DrainArgs) -> Result<i32> {
    set_unschedulable(ctx, &a.node, true)?;
    let path = with_query(
        "/api/v1/pods",
        &[&format!(
            "fieldSelector={}",
            encode(&format!("spec.nodeName={}", a.node))
        )],
    );
    let list = ctx.client.get(&path)?;
    let pods = list["items"].as_array().cloned().unwrap_or_default();
    let (evict, ignored) = plan(&pods, a.ignore_daemonsets, a.force)?;
    if !ignored.is_empty() {
        eprintln!(
            "Warning: ignoring DaemonSet-managed Pods: {}",
            ignored.join(", ")
        );
    }
    let mut paths = Vec::new();
    for p in &evict {
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        println!("evicting pod {ns}/{name}");
        let pod_path = format!("/api/v1/namespaces/{ns}/pods/{name}");
        let mut eviction = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns},
        });
        let grace = (a.grace_period >= 0).then_some(a.grace_period);
        if let Some(g) = grace {
            eviction["deleteOptions"] = json!({ "gracePeriodSeconds": g });
        }
        let delete_path = super::delete::with_grace(&pod_path, grace);
        let result = if a.disable_eviction {
            ctx.client.delete(&delete_path)
        } else {
            match ctx.client.post(&format!("{pod_path}/eviction"), &eviction) {
                Err(e) if matches!(e.code(), Some(404 | 405)) && !e.to_string().contains(name) => {
                    ctx.client.delete(&delete_path)
                }
                other => other,
            }
        };
        match result {
            Ok(_) => paths.push((pod_path, format!("pod/{name}"))),
            Err(e) if e.is_not_found() => {}
            Err(e) => bail!("error when evicting pods/{name:?} -n {ns:?}: {e}"),
        }
    }
    let deadline = if a.timeout == 0 {
        Instant::now() + Duration::from_secs(365 * 24 * 3600)
    } else {
        Instant::now() + Duration::from_secs(a.timeout)
    };
    for (path, id) in paths {
        super::delete::wait_gone(ctx, &path, deadline)?;
        println!("{id} evicted");
    }
    println!("node/{} drained", a.node);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, owner: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "default"}});
        if let Some(kind) = owner {
            p["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": "x", "controller": true}]);
        }
        p
    }

    #[test]
    fn daemonset_pods_need_the_flag_and_bare_pods_need_force() {
        let pods = [pod("a", Some("ReplicaSet")), pod("b", Some("DaemonSet"))];
        assert!(plan(&pods, false, false).is_err());
        let (evict, ignored) = plan(&pods, true, false).unwrap();
        assert_eq!(evict.len(), 1);
        assert_eq!(ignored, ["default/b"]);
        assert!(plan(&[pod("c", None)], true, false).is_err());
        assert_eq!(plan(&[pod("c", None)], true, true).unwrap().0.len(), 1);
    }
}
