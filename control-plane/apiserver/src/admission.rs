//! Admission of pods that reads other objects, as kube-apiserver's
//! `Priority` and `RuntimeClass` plugins do on create:
//! - `spec.priorityClassName` becomes `spec.priority` (and
//!   `preemptionPolicy`) from that PriorityClass; without a name, the
//!   class marked `globalDefault` (else 0); an unknown class is refused;
//! - `spec.runtimeClassName` must name a RuntimeClass; its `overhead` and
//!   `scheduling` (node selector, tolerations) are added to the pod.
//!
//! PriorityClasses come from a cache this process keeps with a watch
//! (`start`), as Kubernetes' plugin reads its informer: a pod create costs
//! no store read for them. Until the cache has synced (or where no API
//! server started it), and for a class name the cache has not seen yet,
//! they are read from this member's copy of the store. RuntimeClasses
//! (rare in pods) are always read from it, so a deleted one is refused at
//! once.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use kc_client::{Client, Event};
use serde_json::{Value, json};

use crate::registry::{self, Resource};
use crate::status::ApiError;
use crate::storage::Storage;

/// The PriorityClasses seen by this process's watch; `synced` once listed.
#[derive(Default)]
struct Classes {
    synced: bool,
    by_name: HashMap<String, Value>,
}

static PRIORITY_CLASSES: RwLock<Option<Classes>> = RwLock::new(None);

/// Starts keeping the PriorityClass cache, watching through `client`.
pub fn start(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(follow(client))
}

async fn follow(client: Client) {
    let mut events = client.informer(resource("scheduling.k8s.io", "priorityclasses"));
    let mut listed: HashSet<String> = HashSet::new();
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("").to_string();
    while let Some(ev) = events.recv().await {
        let mut guard = PRIORITY_CLASSES.write().unwrap_or_else(|p| p.into_inner());
        let cache = guard.get_or_insert_with(Classes::default);
        match ev {
            Event::Applied(o) => {
                listed.insert(name(&o));
                cache.by_name.insert(name(&o), o);
            }
            Event::Deleted(o) => {
                cache.by_name.remove(&name(&o));
            }
            Event::Synced => {
                cache.by_name.retain(|n, _| listed.contains(n));
                listed.clear();
                cache.synced = true;
            }
        }
    }
}

/// The cached class `name` (None: not cached, or the cache is not synced).
fn cached(pick: impl Fn(&HashMap<String, Value>) -> Option<Value>) -> Option<Option<Value>> {
    let guard = PRIORITY_CLASSES.read().unwrap_or_else(|p| p.into_inner());
    let cache = guard.as_ref().filter(|c| c.synced)?;
    Some(pick(&cache.by_name))
}

fn resource(group: &str, plural: &str) -> &'static Resource {
    registry::lookup(group, "v1", plural).expect("a built-in resource")
}

fn forbidden(pod: &Value, why: String) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    ApiError::forbidden_by_admission("", "pods", name, &why)
}

/// Admits a pod about to be created (before its defaults).
pub async fn admit_pod(storage: &Storage, pod: &mut Value) -> Result<(), ApiError> {
    priority(storage, pod).await?;
    runtime_class(storage, pod).await
}

async fn priority(storage: &Storage, pod: &mut Value) -> Result<(), ApiError> {
    let classes = resource("scheduling.k8s.io", "priorityclasses");
    let class = match pod["spec"]["priorityClassName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    {
        Some(name) => {
            let hit = cached(|c| c.get(&name).cloned()).flatten();
            let found = match hit {
                Some(class) => Some(class),
                None => storage
                    .get_local(&Storage::key(classes, "", &name))
                    .await?
                    .map(|s| s.object),
            };
            match found {
                Some(class) => Some(class),
                None => {
                    return Err(forbidden(
                        pod,
                        format!("no PriorityClass with name {name} was found"),
                    ));
                }
            }
        }
        None => match cached(|c| c.values().find(|c| c["globalDefault"] == true).cloned()) {
            Some(default) => default,
            None => storage
                .list_local(&Storage::prefix(classes, None))
                .await?
                .into_iter()
                .find(|c| c["globalDefault"] == true),
        },
    };
    let Some(class) = class else { return Ok(()) };
    let value = class["value"].as_i64().unwrap_or(0);
    if let Some(given) = pod["spec"]["priority"].as_i64()
        && given != value
    {
        return Err(forbidden(
            pod,
            format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ),
        ));
    }
    let spec = &mut pod["spec"];
    spec["priority"] = json!(value);
    if spec["priorityClassName"].as_str().is_none_or(str::is_empty) {
        spec["priorityClassName"] = class["metadata"]["name"].clone();
    }
    if let Some(policy) = class["preemptionPolicy"].as_str() {
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

async fn runtime_class(storage: &Storage, pod: &mut Value) -> Result<(), ApiError> {
    let Some(name) = pod["spec"]["runtimeClassName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let classes = resource("node.k8s.io", "runtimeclasses");
    let Some(stored) = storage.get_local(&Storage::key(classes, "", &name)).await? else {
        return Err(forbidden(
            pod,
            format!("pod rejected: RuntimeClass \"{name}\" not found"),
        ));
    };
    let class = stored.object;
    if let Some(fixed) = class["overhead"]["podFixed"].as_object() {
        let given = &pod["spec"]["overhead"];
        if !given.is_null() && given != &class["overhead"]["podFixed"] {
            return Err(forbidden(
                pod,
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead".into(),
            ));
        }
        pod["spec"]["overhead"] = json!(fixed);
    }
    let scheduling = &class["scheduling"];
    if let Some(selector) = scheduling["nodeSelector"].as_object() {
        let pod_selector = &mut pod["spec"]["nodeSelector"];
        if !pod_selector.is_object() {
            *pod_selector = json!({});
        }
        for (k, v) in selector {
            match pod_selector.get(k) {
                Some(existing) if existing != v => {
                    return Err(forbidden(
                        pod,
                        format!("pod rejected: conflict with RuntimeClass nodeSelector {k}={v}"),
                    ));
                }
                _ => pod_selector[k] = v.clone(),
            }
        }
    }
    if let Some(tolerations) = scheduling["tolerations"].as_array() {
        let list = &mut pod["spec"]["tolerations"];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(l) = list.as_array_mut() {
            for t in tolerations {
                if !l.contains(t) {
                    l.push(t.clone());
                }
            }
        }
    }
    Ok(())
}
