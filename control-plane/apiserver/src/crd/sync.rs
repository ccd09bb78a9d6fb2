//! Follows the CustomResourceDefinitions in the store on every API server:
//! registers what each serves in this process (so a member serves a CRD
//! moments after any member stored it), writes its `NamesAccepted` and
//! `Established` conditions, `acceptedNames` and `storedVersions`, and,
//! for a CRD being deleted, deletes its custom resources, then lets the
//! CRD go (removing the cleanup finalizer). Several members may write the
//! same status; resourceVersion conflicts make all but one retry, and a
//! status already right is not written again.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kc_client::{Client, Event, resource};
use serde_json::{Value, json};

use super::definition::{self, CLEANUP_FINALIZER};
use super::serve;
use crate::clock;
use crate::status::ApiError;

/// Starts following the CRDs, watching and writing through `client`.
pub fn start(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(client))
}

fn key(crd: &Value) -> (String, String) {
    (
        crd["spec"]["group"].as_str().unwrap_or("").to_string(),
        crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

async fn run(client: Client) {
    let crds = resource("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let mut events = client.informer(crds);
    // What is served, by CRD name, and the spec it was made from.
    let mut serving: BTreeMap<String, (String, String, Value)> = BTreeMap::new();
    let mut seen_in_list: HashSet<String> = HashSet::new();
    let cleaning: Arc<Mutex<HashSet<String>>> = Arc::default();
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Applied(crd) => {
                let name = crd["metadata"]["name"].as_str().unwrap_or("").to_string();
                seen_in_list.insert(name.clone());
                let terminating = crd["metadata"]["deletionTimestamp"].is_string();
                let wanted = json!({"spec": crd["spec"], "terminating": terminating});
                if serving
                    .get(&name)
                    .is_none_or(|(_, _, spec)| *spec != wanted)
                {
                    let (group, plural) = key(&crd);
                    serve(&group, &plural, definition::served(&crd), terminating);
                    tracing::info!(crd = %name, terminating, "serving custom resources");
                    serving.insert(name.clone(), (group, plural, wanted));
                }
                if terminating {
                    let fresh = cleaning
                        .lock()
                        .map(|mut c| c.insert(name.clone()))
                        .unwrap_or(false);
                    if fresh {
                        let (client, cleaning) = (client.clone(), cleaning.clone());
                        tokio::spawn(async move {
                            clean_up(&client, &name).await;
                            if let Ok(mut c) = cleaning.lock() {
                                c.remove(&name);
                            }
                        });
                    }
                } else if let Err(e) = write_status(&client, &crd).await
                    && e.code != 409
                {
                    tracing::warn!(crd = %name, error = %e, "cannot write the CRD's status");
                }
            }
            Event::Deleted(crd) => {
                let name = crd["metadata"]["name"].as_str().unwrap_or("").to_string();
                if let Some((group, plural, _)) = serving.remove(&name) {
                    serve(&group, &plural, Vec::new(), false);
                    tracing::info!(crd = %name, "stopped serving custom resources");
                }
            }
            Event::Synced => {
                // A re-list: what was not listed is gone.
                let gone: Vec<String> = serving
                    .keys()
                    .filter(|n| !seen_in_list.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some((group, plural, _)) = serving.remove(&name) {
                        serve(&group, &plural, Vec::new(), false);
                    }
                }
                seen_in_list.clear();
            }
        }
    }
}

fn condition(kind: &str, reason: &str, message: &str, since: &Value) -> Value {
    json!({"type": kind, "status": "True", "lastTransitionTime": since,
        "reason": reason, "message": message})
}

/// The status a served CRD has (its other conditions and fields kept);
/// None when it already has it.
fn wanted_status(crd: &Value) -> Option<Value> {
    let spec = &crd["spec"];
    let status = &crd["status"];
    let mut new = if status.is_object() {
        status.clone()
    } else {
        json!({})
    };
    let mut stored: Vec<Value> = status["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        && !stored.contains(&v)
    {
        stored.push(v);
    }
    let mut accepted = spec["names"].clone();
    if let Some(m) = accepted.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    for (kind, reason, message) in [
        ("NamesAccepted", "NoConflicts", "no conflicts found"),
        (
            "Established",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
    ] {
        match conditions.iter_mut().find(|c| c["type"] == kind) {
            Some(c) if c["status"] == "True" => {}
            Some(c) => *c = condition(kind, reason, message, &json!(clock::rfc3339_in(0))),
            None => conditions.push(condition(
                kind,
                reason,
                message,
                &json!(clock::rfc3339_in(0)),
            )),
        }
    }
    new["conditions"] = json!(conditions);
    new["acceptedNames"] = accepted;
    new["storedVersions"] = json!(stored);
    (new != *status).then_some(new)
}

async fn write_status(client: &Client, crd: &Value) -> Result<(), ApiError> {
    let Some(status) = wanted_status(crd) else {
        return Ok(());
    };
    let mut new = crd.clone();
    new["status"] = status;
    client
        .update_status(
            resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            new,
        )
        .await
        .map(|_| ())
}

/// Deletes every custom resource of the CRD `name`, then its cleanup
/// finalizer, retrying until both are done (or the CRD is gone).
async fn clean_up(client: &Client, name: &str) {
    let crds = resource("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let mut pause = Duration::from_millis(200);
    loop {
        match clean_up_once(client, name).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) if e.code == 404 => return,
            Err(e) => tracing::debug!(crd = %name, error = %e, "CRD clean-up retries"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        if client
            .get(crds, "", name)
            .await
            .is_err_and(|e| e.code == 404)
        {
            return;
        }
    }
}

/// One pass: true when the CRD was let go.
async fn clean_up_once(client: &Client, name: &str) -> Result<bool, ApiError> {
    let crds = resource("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let crd = client.get(crds, "", name).await?;
    let (group, plural) = key(&crd);
    // Any served version reads the same stored objects.
    if let Some(r) = crate::registry::all()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
    {
        let (items, _) = client.list(r, None).await?;
        if !items.is_empty() {
            for item in items {
                let ns = item["metadata"]["namespace"].as_str().unwrap_or("");
                let n = item["metadata"]["name"].as_str().unwrap_or("");
                if let Err(e) = client.delete(r, ns, n, json!({})).await
                    && e.code != 404
                {
                    return Err(e);
                }
            }
            return Ok(false);
        }
    }
    let finalizers: Vec<Value> = crd["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| *f != CLEANUP_FINALIZER)
        .cloned()
        .collect();
    client
        .merge_patch(
            crds,
            "",
            name,
            "",
            &json!({"metadata": {"finalizers": finalizers, "resourceVersion": crd["metadata"]["resourceVersion"]}}),
        )
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_written_once() {
        let crd = json!({"spec": {"names": {"plural": "as", "kind": "A"},
            "versions": [{"name": "v1", "storage": true}]}});
        let status = wanted_status(&crd).expect("a new CRD needs a status");
        assert_eq!(status["storedVersions"], json!(["v1"]));
        assert_eq!(status["conditions"][1]["type"], "Established");
        let done = json!({"spec": crd["spec"], "status": status});
        assert_eq!(wanted_status(&done), None);
    }
}
