//! GarbageCollector: ownerReferences and deletion propagation.
//!
//! - Background (the default): an object all of whose owners are gone is
//!   deleted. Owners are confirmed gone by a live GET (name and uid) before
//!   anything is deleted, so a list that raced a creation never kills a
//!   fresh object.
//! - Orphan: the API server gave the deleted owner the `orphan` finalizer;
//!   the collector removes the owner's reference from every dependent, then
//!   the finalizer, and the owner goes.
//! - Foreground: the owner got `foregroundDeletion`; its dependents are
//!   deleted (foreground too, so chains wait), and once none is left the
//!   finalizer goes.
//!
//! It scans the owning/owned kinds every `PERIOD` (level-triggered: one
//! pass computes everything from the current objects). Event-driven
//! indexing would scale better; this is the simple, correct first version.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use kc_client::client::{Client, resource};
use kc_client::registry::{self, Resource};
use kc_client::status::ApiError;

pub const PERIOD: Duration = Duration::from_secs(1);

/// The kinds that own or are owned (group, version, plural).
const KINDS: &[(&str, &str, &str)] = &[
    ("apps", "v1", "deployments"),
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "daemonsets"),
    ("", "v1", "pods"),
    ("", "v1", "services"),
    ("discovery.k8s.io", "v1", "endpointslices"),
];

pub async fn run(client: Client) {
    loop {
        if let Err(e) = collect(&client).await {
            tracing::debug!(error = %e, "garbage collection pass failed");
        }
        tokio::time::sleep(PERIOD).await;
    }
}

struct Object {
    resource: &'static Resource,
    value: Value,
}

fn uid(v: &Value) -> &str {
    v["metadata"]["uid"].as_str().unwrap_or("")
}

fn owner_uids(v: &Value) -> Vec<&str> {
    v["metadata"]["ownerReferences"]
        .as_array()
        .map(|l| l.iter().filter_map(|o| o["uid"].as_str()).collect())
        .unwrap_or_default()
}

fn has_finalizer(v: &Value, f: &str) -> bool {
    v["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

fn ns_name(v: &Value) -> (&str, &str) {
    (
        v["metadata"]["namespace"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or(""),
    )
}

/// Whether the owner `reference` (in namespace `ns`) still exists, live.
async fn owner_exists(client: &Client, ns: &str, reference: &Value) -> Result<bool, ApiError> {
    let Some(r) = registry::by_kind(
        reference["apiVersion"].as_str().unwrap_or(""),
        reference["kind"].as_str().unwrap_or(""),
    ) else {
        return Ok(true); // an unknown kind: never collect on its account
    };
    match client
        .get(r, ns, reference["name"].as_str().unwrap_or(""))
        .await
    {
        Ok(o) => Ok(uid(&o) == reference["uid"].as_str().unwrap_or("")),
        Err(e) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn remove_finalizer(client: &Client, obj: &Object, finalizer: &str) -> Result<(), ApiError> {
    // Re-read and retry on conflicts: kubelets and controllers write too.
    let (ns, name) = ns_name(&obj.value);
    for _ in 0..5 {
        let mut v = match client.get(obj.resource, ns, name).await {
            Ok(v) if uid(&v) == uid(&obj.value) => v,
            Ok(_) => return Ok(()),
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(l) = v["metadata"]["finalizers"].as_array_mut() {
            l.retain(|f| f != finalizer);
        }
        match client.update(obj.resource, v).await {
            Err(e) if e.code == 409 => continue,
            Err(e) if e.code == 404 => return Ok(()),
            other => return other.map(|_| ()),
        }
    }
    Ok(())
}

async fn delete(client: &Client, obj: &Object, policy: &str) -> Result<(), ApiError> {
    let (ns, name) = ns_name(&obj.value);
    let options = json!({"propagationPolicy": policy, "preconditions": {"uid": uid(&obj.value)}});
    match client.delete(obj.resource, ns, name, options).await {
        Err(e) if e.code != 404 && e.code != 409 => Err(e),
        _ => Ok(()),
    }
}

/// One pass over every owning and owned object.
pub async fn collect(client: &Client) -> Result<(), ApiError> {
    let mut objects = Vec::new();
    for (g, v, p) in KINDS {
        let r = resource(g, v, p);
        for value in client.list(r, None).await?.0 {
            objects.push(Object { resource: r, value });
        }
    }
    let present: HashSet<&str> = objects.iter().map(|o| uid(&o.value)).collect();
    let mut dependents: HashMap<&str, Vec<&Object>> = HashMap::new();
    for o in &objects {
        for owner in owner_uids(&o.value) {
            dependents.entry(owner).or_default().push(o);
        }
    }
    for o in &objects {
        let deleting = o.value["metadata"]["deletionTimestamp"].is_string();
        let mine = dependents
            .get(uid(&o.value))
            .map(Vec::as_slice)
            .unwrap_or_default();
        if deleting && has_finalizer(&o.value, "orphan") {
            for d in mine {
                let refs: Vec<Value> = d.value["metadata"]["ownerReferences"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter(|r| r["uid"] != uid(&o.value))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let (ns, name) = ns_name(&d.value);
                let patch = json!({"metadata": {"ownerReferences": refs}});
                match client.merge_patch(d.resource, ns, name, "", &patch).await {
                    Err(e) if e.code != 404 => return Err(e),
                    _ => {}
                }
            }
            remove_finalizer(client, o, "orphan").await?;
        } else if deleting && has_finalizer(&o.value, "foregroundDeletion") {
            if mine.is_empty() {
                remove_finalizer(client, o, "foregroundDeletion").await?;
            } else {
                for d in mine {
                    if !d.value["metadata"]["deletionTimestamp"].is_string() {
                        delete(client, d, "Foreground").await?;
                    }
                }
            }
        }
        // Background: every owner gone?
        let owners = owner_uids(&o.value);
        if owners.is_empty() || deleting || owners.iter().any(|u| present.contains(u)) {
            continue;
        }
        let ns = o.value["metadata"]["namespace"].as_str().unwrap_or("");
        let mut all_gone = true;
        for reference in o.value["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if owner_exists(client, ns, reference).await? {
                all_gone = false;
                break;
            }
        }
        if all_gone {
            tracing::info!(object = %format!("{}/{}/{}", o.resource.plural, ns, ns_name(&o.value).1),
                "owners gone: collecting");
            delete(client, o, "Background").await?;
        }
    }
    Ok(())
}
