//! The API client of the scheduler, the controllers and hollow nodes:
//! typed helpers over an `Api` (in a member, the API server's own REST
//! verbs, without HTTP).
//!
//! Objects are `serde_json::Value`s, as `Rest` speaks them; callers decode
//! into k8s-openapi types where they need structure. `informer` lists a
//! collection and then follows the store's changes from the list's revision,
//! re-listing after a compaction or a lost stream, so a consumer sees every
//! object at least once and every change after.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{Api, Change};
use crate::binding::Binding;
use crate::registry::{self, Resource};
use crate::request::{Outcome, PatchType, Query, Target};
use crate::status::ApiError;

/// A handle on the API, cheap to clone.
#[derive(Clone)]
pub struct Client {
    api: Arc<dyn Api>,
    /// Recorded in managedFields of writes, like a client's user agent.
    manager: Arc<str>,
}

/// The resource for `group/version/plural`; a typo here is a programming error.
pub fn resource(group: &str, version: &str, plural: &str) -> &'static Resource {
    registry::lookup(group, version, plural)
        .unwrap_or_else(|| panic!("{group}/{version}/{plural} is not a registered resource"))
}

/// One change seen by an informer.
#[derive(Debug, Clone)]
pub enum Event {
    /// Created or changed (or present at a (re)list).
    Applied(Value),
    /// Deleted: the last state.
    Deleted(Value),
    /// A (re)list is complete: everything present was sent as `Applied`.
    Synced,
}

fn query(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Client {
    pub fn new(api: Arc<dyn Api>, manager: &str) -> Self {
        Self {
            api,
            manager: manager.into(),
        }
    }

    /// The same API as another manager (shares the `Rest`).
    pub fn as_manager(&self, manager: &str) -> Self {
        Self {
            api: self.api.clone(),
            manager: manager.into(),
        }
    }

    pub fn api(&self) -> &dyn Api {
        &*self.api
    }

    fn manager_query(&self) -> Query {
        query(&[("fieldManager", &self.manager)])
    }

    fn target(r: &'static Resource, ns: &str, name: &str, sub: &str) -> Target {
        Target::object(r, ns, name, sub)
    }

    pub async fn get(&self, r: &'static Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.api.get(&Self::target(r, ns, name, "")).await
    }

    /// Every object of a collection (all namespaces when `ns` is None) and
    /// the revision of the read.
    pub async fn list(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
    ) -> Result<(Vec<Value>, i64), ApiError> {
        self.api.list(r, ns).await
    }

    pub async fn create(
        &self,
        r: &'static Resource,
        ns: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        Ok(self
            .api
            .create(r, ns, obj, &self.manager_query())
            .await?
            .object)
    }

    /// `PUT`, compare-and-swap on the object's resourceVersion.
    pub async fn update(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        self.put(r, obj, "").await
    }

    /// `PUT` of the status subresource.
    pub async fn update_status(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        self.put(r, obj, "status").await
    }

    /// `PUT namespaces/<name>/finalize`: writes only `spec.finalizers`.
    pub async fn finalize_namespace(&self, namespace: Value) -> Result<Value, ApiError> {
        self.put(resource("", "v1", "namespaces"), namespace, "finalize")
            .await
    }

    async fn put(&self, r: &'static Resource, obj: Value, sub: &str) -> Result<Value, ApiError> {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let t = Self::target(r, &ns, &name, sub);
        Ok(self
            .api
            .update(&t, obj, &self.manager_query())
            .await?
            .object)
    }

    /// A JSON merge patch (of the status subresource when `sub` is "status").
    pub async fn merge_patch(
        &self,
        r: &'static Resource,
        ns: &str,
        name: &str,
        sub: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(patch).map_err(|e| ApiError::internal(e.to_string()))?;
        let t = Self::target(r, ns, name, sub);
        Ok(self
            .api
            .patch(&t, PatchType::Merge, &body, &self.manager_query())
            .await?
            .object)
    }

    /// Deletes with a propagation policy ("Background", "Foreground",
    /// "Orphan") or the default.
    pub async fn delete(
        &self,
        r: &'static Resource,
        ns: &str,
        name: &str,
        options: Value,
    ) -> Result<Outcome, ApiError> {
        self.api
            .delete(&Self::target(r, ns, name, ""), &options, &Query::new())
            .await
    }

    /// `POST pods/<name>/binding`. A 409 means the pod is already bound.
    pub async fn bind(&self, ns: &str, pod: &str, node: &str) -> Result<(), ApiError> {
        let pods = resource("", "v1", "pods");
        let t = Self::target(pods, ns, pod, "binding");
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        self.api.bind(&t, &binding).await
    }

    /// Many `pods/<name>/binding`s at once (`Rest::bind_all`): each judged
    /// alone, their writes batched into as few store transactions as fit.
    pub async fn bind_all(&self, bindings: &[Binding]) -> Vec<Result<(), ApiError>> {
        self.api.bind_all(bindings).await
    }

    /// Records an Event about `object` (best effort: events are advisory).
    pub async fn event(
        &self,
        object: &Value,
        kind: &str,
        reason: &str,
        message: &str,
        source: &str,
    ) {
        let events = resource("", "v1", "events");
        let meta = &object["metadata"];
        let ns = meta["namespace"].as_str().unwrap_or("default").to_string();
        let now = crate::clock::rfc3339_in(0);
        let ev = json!({
            "metadata": {
                "generateName": format!("{}.", meta["name"].as_str().unwrap_or("object")),
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": object["apiVersion"], "kind": object["kind"],
                "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason, "message": message, "type": kind,
            "source": {"component": source},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": source,
        });
        if let Err(e) = self.create(events, &ns, ev).await {
            tracing::debug!(reason, error = %e, "cannot record an event");
        }
    }

    /// Lists `r` and follows its changes: a channel of events that ends only
    /// when the receiver is dropped. Re-lists (sending `Applied` for all and
    /// `Synced`) after a compaction or a broken stream; deletions missed
    /// during such a gap are not replayed, so consumers reconcile on `Synced`.
    pub fn informer(&self, r: &'static Resource) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(4096);
        let client = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = client.list_watch(r, &tx).await {
                    tracing::debug!(resource = r.plural, error = %e, "informer restarts");
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        rx
    }

    async fn list_watch(
        &self,
        r: &'static Resource,
        tx: &mpsc::Sender<Event>,
    ) -> Result<(), ApiError> {
        let (items, revision) = self.list(r, None).await?;
        for item in items {
            if tx.send(Event::Applied(item)).await.is_err() {
                return Ok(());
            }
        }
        if tx.send(Event::Synced).await.is_err() {
            return Ok(());
        }
        let mut changes = self.api.watch(r, revision).await?;
        while let Some(change) = changes.recv().await {
            let event = match change {
                Change::Applied(obj) => Event::Applied(obj),
                Change::Deleted(obj) => Event::Deleted(obj),
                Change::Ended(e) => return Err(e),
            };
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The API server's defaulting of an object of `r`.
    pub fn apply_defaults(&self, r: &'static Resource, object: &mut Value) {
        self.api.apply_defaults(r, object)
    }
}

/// `namespace/name` of an object.
pub fn key_of(obj: &Value) -> String {
    let meta = &obj["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}
