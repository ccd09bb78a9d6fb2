//! ReplicaSet (and ReplicationController, its older form: the same loop on
//! another resource): keeps `spec.replicas` pods of the template alive,
//! owned by the set (controller ownerReference), and reports counts in
//! status.
//!
//! reconcile(rs) lists the namespace's pods *live* through the API (reads
//! after our own writes are consistent in kc's store), so no expectations
//! bookkeeping is needed: a reconcile that raced a previous one only sees
//! more truth. Creates and deletes go out in parallel batches. Pods that
//! match the selector but have no controller are not adopted (kc does not
//! adopt yet).

use futures::future::join_all;
use serde_json::{Value, json};

use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::status::ApiError;

/// Pods created or deleted per batch.
const BATCH: usize = 500;

/// The controller ownerReference of `obj`, if any: (kind, name, uid).
pub fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or(""),
                o["name"].as_str().unwrap_or(""),
                o["uid"].as_str().unwrap_or(""),
            )
        })
}

/// An ownerReference to `owner` marking it the controller.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// A pod from `owner`'s `spec.template`.
pub fn pod_from_template(owner: &Value) -> Value {
    let template = &owner["spec"]["template"];
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["generateName"] = json!(format!(
        "{}-",
        owner["metadata"]["name"].as_str().unwrap_or("pod")
    ));
    meta["namespace"] = owner["metadata"]["namespace"].clone();
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    if let Some(m) = meta.as_object_mut() {
        m.remove("name");
        m.remove("creationTimestamp");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

fn is_active(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_string()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded") | Some("Failed")
        )
}

pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Which pods to delete first: unbound, then not running, then not ready.
fn deletion_rank(pod: &Value) -> u8 {
    if pod["spec"]["nodeName"].is_null() {
        0
    } else if pod["status"]["phase"] != "Running" {
        1
    } else if !is_ready(pod) {
        2
    } else {
        3
    }
}

/// A kind of replicated pod set this controller keeps.
#[derive(Debug, Clone, Copy)]
pub struct SetKind {
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
}

pub const REPLICA_SETS: SetKind = SetKind {
    group: "apps",
    plural: "replicasets",
    kind: "ReplicaSet",
};

pub const REPLICATION_CONTROLLERS: SetKind = SetKind {
    group: "",
    plural: "replicationcontrollers",
    kind: "ReplicationController",
};

pub async fn run(client: Client, set: SetKind) {
    let queue = WorkQueue::default();
    let mut sets = client.informer(resource(set.group, "v1", set.plural));
    let mut pods = client.informer(resource("", "v1", "pods"));
    let _worker = spawn_worker(
        client.clone(),
        queue.clone(),
        set.plural,
        move |c, k| async move { reconcile(&c, set, &k).await },
    );
    loop {
        tokio::select! {
            Some(ev) = sets.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev {
                queue.add(&key_of(&o));
            },
            Some(ev) = pods.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev
                && let Some((kind, name, _)) = controller_of(&o)
                && kind == set.kind
            {
                queue.add(&format!("{}/{name}", o["metadata"]["namespace"].as_str().unwrap_or("")));
            },
            else => return,
        }
    }
}

/// One step toward `spec.replicas` pods for the set `key`.
pub async fn reconcile(client: &Client, set: SetKind, key: &str) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let sets = resource(set.group, "v1", set.plural);
    let pods = resource("", "v1", "pods");
    let rs = match client.get(sets, ns, name).await {
        Ok(rs) => rs,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let uid = rs["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let (all, _) = client.list(pods, Some(ns)).await?;
    let owned: Vec<Value> = all
        .into_iter()
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        .collect();
    let mut active: Vec<&Value> = owned.iter().filter(|p| is_active(p)).collect();
    if rs["metadata"]["deletionTimestamp"].is_string() {
        // Being deleted: its pods are the garbage collector's (orphaned or
        // collected per the propagation policy), not ours to scale.
        return Ok(());
    }
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let mut first_error = None;
    if active.len() < want {
        let template = pod_from_template(&rs);
        let mut missing = want - active.len();
        while missing > 0 {
            let n = missing.min(BATCH);
            let results = join_all((0..n).map(|_| client.create(pods, ns, template.clone()))).await;
            for r in results {
                if let Err(e) = r {
                    first_error.get_or_insert(e);
                }
            }
            if first_error.is_some() {
                break;
            }
            missing -= n;
        }
    } else if active.len() > want {
        active.sort_by_key(|p| deletion_rank(p));
        let extra = &active[..active.len() - want];
        let results = join_all(extra.iter().map(|p| {
            let pname = p["metadata"]["name"].as_str().unwrap_or("");
            client.delete(pods, ns, pname, json!({}))
        }))
        .await;
        for r in results {
            match r {
                Err(e) if e.code != 404 => {
                    first_error.get_or_insert(e);
                }
                _ => {}
            }
        }
    }
    // Status from what exists now (the next reconcile corrects it further).
    let (all, _) = client.list(pods, Some(ns)).await?;
    let owned: Vec<Value> = all
        .into_iter()
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid) && is_active(p))
        .collect();
    let ready = owned.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "replicas": owned.len(),
        "fullyLabeledReplicas": owned.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    if rs["status"] != status {
        match client
            .merge_patch(sets, ns, name, "status", &json!({"status": status}))
            .await
        {
            Err(e) if e.code != 404 => {
                first_error.get_or_insert(e);
            }
            _ => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_from_templates_are_owned_and_named_after_the_owner() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "d", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
        let p = pod_from_template(&rs);
        assert_eq!(p["metadata"]["generateName"], "web-abc-");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(controller_of(&p), Some(("ReplicaSet", "web-abc", "u1")));
    }

    #[test]
    fn unbound_and_unready_pods_go_first() {
        let unbound = json!({"spec": {}});
        let pending = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Pending"}});
        let ready = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(deletion_rank(&unbound) < deletion_rank(&pending));
        assert!(deletion_rank(&pending) < deletion_rank(&ready));
    }
}
