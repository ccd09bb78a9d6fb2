//! Deployment: rolls a pod template out through ReplicaSets, one per
//! template version, as Kubernetes does, so `kubectl rollout
//! status/history/undo` work on kc unchanged.
//!
//! - The ReplicaSet for the current template is `<name>-<hash>`, where the
//!   hash (also the `pod-template-hash` label in its selector and template)
//!   is taken over the Deployment's template. Each gets the annotation
//!   `deployment.kubernetes.io/revision`; a template that comes back (undo)
//!   reuses its old ReplicaSet with the next revision number.
//! - RollingUpdate: the new set grows while the total stays within
//!   `replicas + maxSurge`; old sets shrink while at least
//!   `replicas - maxUnavailable` pods stay available (Kubernetes' formulas).
//!   Recreate: old sets go to zero, then the new set scales up.
//! - Paused deployments only report status. Sets beyond
//!   `revisionHistoryLimit` (default 10) that are scaled to zero are deleted.
//!
//! Every step is computed from the current objects, so a controller restart
//! or leader change in the middle of a rollout continues it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::replicaset::{controller_of, owner_ref};
use super::split_key;
use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, key_of, resource};
use kc_client::status::ApiError;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// The template hash of a Deployment's pod template: taken over the template
/// as the API server defaults it inside a ReplicaSet (without any
/// pod-template-hash label), so a template copied back from a ReplicaSet
/// (`kubectl rollout undo`) hashes to that ReplicaSet again.
pub fn template_hash(client: &Client, template: &Value) -> String {
    let mut rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "hash", "namespace": "hash"},
        "spec": {"selector": {}, "template": template}});
    client.apply_defaults(resource("apps", "v1", "replicasets"), &mut rs);
    hash_of(rs["spec"]["template"].take())
}

/// The hash of a defaulted template, without its pod-template-hash label.
fn hash_of(mut t: Value) -> String {
    strip_nulls(&mut t);
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    let digest = Sha256::digest(serde_json::to_vec(&t).unwrap_or_default());
    hex::encode(&digest[..5])
}

/// Removes null fields (kubectl's undo sends `creationTimestamp: null`).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// An int-or-percent of `total`; `round_up` for maxSurge.
pub fn scaled(value: &Value, total: i64, round_up: bool, default: &str) -> i64 {
    let text = match value {
        Value::Number(n) => return n.as_i64().unwrap_or(0).max(0),
        Value::String(s) => s.as_str(),
        _ => default,
    };
    match text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(p) if round_up => (p * total + 99) / 100,
        Some(p) => p * total / 100,
        None => text.parse().unwrap_or(0),
    }
}

/// (maxSurge, maxUnavailable) of a rolling update of `replicas`.
pub fn surge_and_unavailable(strategy: &Value, replicas: i64) -> (i64, i64) {
    let ru = &strategy["rollingUpdate"];
    let surge = scaled(&ru["maxSurge"], replicas, true, "25%");
    let unavailable = scaled(&ru["maxUnavailable"], replicas, false, "25%");
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The next replica counts of a rolling update: (new set, old sets in the
/// order given). `old` is (spec replicas, available) per old set; `new_*`
/// likewise for the new set.
pub fn rolling_step(
    replicas: i64,
    surge: i64,
    unavailable: i64,
    new_spec: i64,
    new_available: i64,
    old: &[(i64, i64)],
) -> (i64, Vec<i64>) {
    let old_total: i64 = old.iter().map(|o| o.0).sum();
    let total = new_spec + old_total;
    // Scale up the new set within the surge.
    let mut new_target = new_spec;
    if new_spec < replicas {
        let room = (replicas + surge - total).max(0);
        new_target = (new_spec + room).min(replicas);
    } else if new_spec > replicas {
        new_target = replicas;
    }
    // Scale down old sets while availability holds (Kubernetes'
    // reconcileOldReplicaSets): unhealthy old pods first, but never more
    // than `all - minAvailable - newUnavailable` in all (a stale status
    // saying an old set has nothing available must not cut it to zero),
    // then healthy ones down to minAvailable.
    let min_available = replicas - unavailable;
    let new_unavailable = (new_spec - new_available).max(0);
    let all = new_spec + old_total;
    let max_scaled_down = all - min_available - new_unavailable;
    let mut old_targets: Vec<i64> = old.iter().map(|o| o.0).collect();
    if max_scaled_down <= 0 {
        return (new_target, old_targets);
    }
    let mut cleanup = max_scaled_down;
    for (target, &(spec, available)) in old_targets.iter_mut().zip(old) {
        let cut = (spec - available).max(0).min(spec).min(cleanup);
        *target -= cut;
        cleanup -= cut;
    }
    // Healthy ones: within what the specs allow (the statuses may lag
    // behind a scale-down) and what the statuses say is available.
    let available_total = new_available + old.iter().map(|o| o.1).sum::<i64>();
    let mut scale_down = cleanup.min(available_total - min_available);
    for target in old_targets.iter_mut() {
        if scale_down <= 0 {
            break;
        }
        let cut = (*target).min(scale_down);
        *target -= cut;
        scale_down -= cut;
    }
    (new_target, old_targets)
}

pub async fn run(client: Client) {
    let queue = WorkQueue::default();
    let mut deployments = client.informer(resource("apps", "v1", "deployments"));
    let mut sets = client.informer(resource("apps", "v1", "replicasets"));
    let _worker = spawn_worker(
        client.clone(),
        queue.clone(),
        "deployment",
        |c, k| async move { reconcile(&c, &k).await },
    );
    loop {
        tokio::select! {
            Some(ev) = deployments.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev {
                queue.add(&key_of(&o));
            },
            Some(ev) = sets.recv() => if let Event::Applied(o) | Event::Deleted(o) = ev
                && let Some(("Deployment", name, _)) = controller_of(&o)
            {
                queue.add(&format!("{}/{name}", o["metadata"]["namespace"].as_str().unwrap_or("")));
            },
            else => return,
        }
    }
}

/// The new set's target, also bounded by the pods that exist now: a set
/// scaled down whose pods are not deleted yet (its ReplicaSet controller
/// lagging, or its leader just died) still counts with `status.replicas`,
/// so `replicas + maxSurge` holds for pods, not only for specs. Never below
/// the new set's current spec when growing; a smaller target (scaling
/// down) is never capped (found by the 3+3 chaos test: capping it kept
/// every scaled-down Deployment at its old size).
pub fn cap_by_existing_pods(
    new_target: i64,
    new_spec: i64,
    replicas: i64,
    surge: i64,
    existing: i64,
) -> i64 {
    if new_target <= new_spec {
        return new_target;
    }
    let room = (replicas + surge - existing).max(0);
    new_target.min(new_spec.max(0) + room).max(new_spec)
}

/// Pods a ReplicaSet has or is about to have: max(spec, status.replicas).
fn existing_pods(rs: &Value) -> i64 {
    spec_replicas(rs).max(rs["status"]["replicas"].as_i64().unwrap_or(0))
}

fn revision_of(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn available(rs: &Value) -> i64 {
    rs["status"]["availableReplicas"].as_i64().unwrap_or(0)
}

fn new_replicaset(d: &Value, hash: &str, revision: i64) -> Value {
    let name = d["metadata"]["name"].as_str().unwrap_or("");
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = json!({ REVISION: revision.to_string() });
    if let Some(cause) = d["metadata"]["annotations"]["kubernetes.io/change-cause"].as_str() {
        annotations["kubernetes.io/change-cause"] = json!(cause);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"), "namespace": d["metadata"]["namespace"],
            "labels": template["metadata"]["labels"], "annotations": annotations,
            "ownerReferences": [owner_ref(d)],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template,
                 "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0)},
    })
}

async fn scale(client: &Client, rs: &Value, replicas: i64) -> Result<(), ApiError> {
    if spec_replicas(rs) == replicas {
        return Ok(());
    }
    let sets = resource("apps", "v1", "replicasets");
    let (ns, name) = (
        rs["metadata"]["namespace"].as_str().unwrap_or(""),
        rs["metadata"]["name"].as_str().unwrap_or(""),
    );
    client
        .merge_patch(sets, ns, name, "", &json!({"spec": {"replicas": replicas}}))
        .await
        .map(|_| ())
}

/// One step of the Deployment `key` toward its template and replicas.
pub async fn reconcile(client: &Client, key: &str) -> Result<(), ApiError> {
    let (ns, name) = split_key(key);
    let deploys = resource("apps", "v1", "deployments");
    let sets = resource("apps", "v1", "replicasets");
    let d = match client.get(deploys, ns, name).await {
        Ok(d) => d,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    if d["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let (all, _) = client.list(sets, Some(ns)).await?;
    let mut owned: Vec<Value> = all
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid))
        .collect();
    owned.sort_by_key(revision_of);
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let paused = d["spec"]["paused"] == true;
    let hash = template_hash(client, &d["spec"]["template"]);
    let max_revision = owned.iter().map(revision_of).max().unwrap_or(0);
    let current = owned
        .iter()
        .position(|rs| rs["metadata"]["labels"][HASH_LABEL] == hash.as_str());

    if !paused {
        let new = match current {
            Some(i) if i == owned.len() - 1 || revision_of(&owned[i]) == max_revision => {
                owned[i].clone()
            }
            Some(i) => {
                // The template came back (undo): the old set becomes newest.
                let rs = &owned[i];
                client
                    .merge_patch(
                        sets,
                        ns,
                        rs["metadata"]["name"].as_str().unwrap_or(""),
                        "",
                        &json!({"metadata": {"annotations": {REVISION: (max_revision + 1).to_string()}}}),
                    )
                    .await?
            }
            None => match client
                .create(sets, ns, new_replicaset(&d, &hash, max_revision + 1))
                .await
            {
                Ok(rs) => rs,
                Err(e) if e.code == 409 => return Err(e), // seen next time round
                Err(e) => return Err(e),
            },
        };
        let new_name = new["metadata"]["name"].clone();
        let old: Vec<&Value> = owned
            .iter()
            .filter(|rs| rs["metadata"]["name"] != new_name)
            .collect();
        if d["spec"]["strategy"]["type"] == "Recreate" {
            for rs in &old {
                scale(client, rs, 0).await?;
            }
            let old_pods: i64 = old
                .iter()
                .map(|rs| rs["status"]["replicas"].as_i64().unwrap_or(0))
                .sum();
            if old_pods == 0 {
                scale(client, &new, replicas).await?;
            }
        } else {
            let (surge, unavailable) = surge_and_unavailable(&d["spec"]["strategy"], replicas);
            let olds: Vec<(i64, i64)> = old
                .iter()
                .map(|rs| (spec_replicas(rs), available(rs)))
                .collect();
            let (new_target, old_targets) = rolling_step(
                replicas,
                surge,
                unavailable,
                spec_replicas(&new),
                available(&new),
                &olds,
            );
            let existing =
                existing_pods(&new) + old.iter().map(|rs| existing_pods(rs)).sum::<i64>();
            let new_target =
                cap_by_existing_pods(new_target, spec_replicas(&new), replicas, surge, existing);
            for (rs, target) in old.iter().zip(old_targets) {
                scale(client, rs, target).await?;
            }
            scale(client, &new, new_target).await?;
        }
        // Keep the deployment's revision annotation in step.
        let revision = revision_of(&new).max(1).to_string();
        if d["metadata"]["annotations"][REVISION].as_str() != Some(revision.as_str()) {
            client
                .merge_patch(
                    deploys,
                    ns,
                    name,
                    "",
                    &json!({"metadata": {"annotations": {REVISION: revision}}}),
                )
                .await?;
        }
        // History limit: old sets at zero beyond the limit go.
        let limit = d["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0) as usize;
        let idle: Vec<&&Value> = old
            .iter()
            .filter(|rs| {
                spec_replicas(rs) == 0 && rs["status"]["replicas"].as_i64().unwrap_or(0) == 0
            })
            .collect();
        if idle.len() > limit {
            for rs in &idle[..idle.len() - limit] {
                let rname = rs["metadata"]["name"].as_str().unwrap_or("");
                match client.delete(sets, ns, rname, json!({})).await {
                    Err(e) if e.code != 404 => return Err(e),
                    _ => {}
                }
            }
        }
    }
    update_status(client, &d, &hash).await
}

async fn update_status(client: &Client, d: &Value, hash: &str) -> Result<(), ApiError> {
    let (ns, name) = (
        d["metadata"]["namespace"].as_str().unwrap_or(""),
        d["metadata"]["name"].as_str().unwrap_or(""),
    );
    let uid = d["metadata"]["uid"].as_str().unwrap_or("");
    let sets = resource("apps", "v1", "replicasets");
    let (all, _) = client.list(sets, Some(ns)).await?;
    let owned: Vec<Value> = all
        .into_iter()
        .filter(|rs| controller_of(rs).is_some_and(|(_, _, u)| u == uid))
        .collect();
    let sum = |f: &dyn Fn(&Value) -> i64| owned.iter().map(f).sum::<i64>();
    let replicas_total = sum(&|rs| rs["status"]["replicas"].as_i64().unwrap_or(0));
    let ready = sum(&|rs| rs["status"]["readyReplicas"].as_i64().unwrap_or(0));
    let avail = sum(&available);
    let updated = owned
        .iter()
        .find(|rs| rs["metadata"]["labels"][HASH_LABEL] == hash)
        .map_or(0, |rs| rs["status"]["replicas"].as_i64().unwrap_or(0));
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let (_, unavailable) = surge_and_unavailable(&d["spec"]["strategy"], replicas);
    let complete = updated == replicas && replicas_total == replicas && avail == replicas;
    let previous = |t: &str| {
        d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
    };
    let condition = |t: &str, status: &str, reason: &str, message: String| {
        let mut c = json!({"type": t, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": kc_client::clock::rfc3339_in(0)});
        let keep = previous(t).filter(|p| p["status"] == status);
        c["lastTransitionTime"] = keep
            .map(|p| p["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(kc_client::clock::rfc3339_in(0)));
        if previous(t).is_some_and(|p| {
            p["status"] == status && p["reason"] == reason && p["message"] == message
        }) {
            return previous(t).unwrap_or(c);
        }
        c
    };
    let available_cond = if avail >= replicas - unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let rs_name = format!("{name}-{hash}");
    let progressing = if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let status = json!({
        "observedGeneration": d["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": replicas_total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": avail,
        "unavailableReplicas": (replicas_total - avail).max(0),
        "conditions": [available_cond, progressing],
    });
    if d["status"] != status {
        let deploys = resource("apps", "v1", "deployments");
        client
            .merge_patch(deploys, ns, name, "status", &json!({"status": status}))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let s = json!({"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
        assert_eq!(surge_and_unavailable(&s, 10), (3, 2));
        assert_eq!(surge_and_unavailable(&json!({}), 4), (1, 1));
        let zero = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        assert_eq!(surge_and_unavailable(&zero, 4), (0, 1));
    }

    #[test]
    fn a_stale_status_never_cuts_old_sets_below_min_available() {
        // 12 replicas, surge 1, unavailable 1; the old set's status still
        // says 0 available (its pods became ready after its last status
        // write): only one old pod may go per step, like Kubernetes.
        let (new, old) = rolling_step(12, 1, 1, 0, 0, &[(12, 0)]);
        assert_eq!((new, old), (1, vec![11]));
        let (new, old) = rolling_step(12, 1, 1, 1, 0, &[(11, 0)]);
        assert_eq!((new, old), (2, vec![11]));
    }

    #[test]
    fn pods_not_yet_deleted_count_against_the_surge() {
        // 4 replicas, surge 1: old set scaled to 3 but still has 4 pods,
        // new set at 1: no room for a second new pod yet.
        assert_eq!(cap_by_existing_pods(2, 1, 4, 1, 5), 1);
        // The old pod went: room again.
        assert_eq!(cap_by_existing_pods(2, 1, 4, 1, 4), 2);
        // Never scales the new set down.
        assert_eq!(cap_by_existing_pods(3, 3, 4, 1, 9), 3);
        // Scaling down (one set, 6 -> 5; or to 0) is not held back.
        assert_eq!(cap_by_existing_pods(5, 6, 5, 2, 6), 5);
        assert_eq!(cap_by_existing_pods(0, 3, 0, 0, 3), 0);
    }

    #[test]
    fn rolling_steps_keep_availability_and_surge_bounds() {
        // 4 replicas, surge 1, unavailable 1: start with 4 old available.
        let (new, old) = rolling_step(4, 1, 1, 0, 0, &[(4, 4)]);
        assert_eq!((new, old.clone()), (1, vec![3]));
        // New pod not yet available: the surge allows one more new pod, but
        // old may not shrink below the 3 available.
        let (new, old) = rolling_step(4, 1, 1, 1, 0, &[(3, 3)]);
        assert_eq!((new, old), (2, vec![3]));
        // New pod available: another step.
        let (new, old) = rolling_step(4, 1, 1, 1, 1, &[(3, 3)]);
        assert_eq!((new, old), (2, vec![2]));
        // Finished.
        let (new, old) = rolling_step(4, 1, 1, 4, 4, &[(0, 0)]);
        assert_eq!((new, old), (4, vec![0]));
    }

    #[test]
    fn hashes_ignore_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "a"}]}});
        let mut b = a.clone();
        b["metadata"]["labels"][HASH_LABEL] = json!("x");
        assert_eq!(hash_of(a.clone()), hash_of(b));
        let mut c = a.clone();
        c["spec"]["containers"][0]["image"] = json!("b");
        assert_ne!(hash_of(a), hash_of(c));
    }
}
