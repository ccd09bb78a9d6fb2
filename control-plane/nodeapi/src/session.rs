//! The control-plane side of a node session (`kc-node/1`): each request is
//! carried out through the API server's `Rest` layer as the node's
//! `Identity`, so the NodeRestriction rules of `apiserver::auth` apply
//! exactly as they do to the node's HTTPS requests.

use std::time::{SystemTime, UNIX_EPOCH};

use kc_protocol::node_api::{NodeRequest, NodeResponse, PodEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use kc_apiserver::auth::{self, Attributes, Decision};
use kc_apiserver::negotiate::Rendering;
use kc_apiserver::registry::{self, Resource};
use kc_apiserver::rest::{self, Query, Rest, Target};
use kc_apiserver::status::ApiError;
use kc_apiserver::{clock, resource_metrics, watch};
use kc_pki::Identity;

use super::{Shared, cidr, tokens};

fn resource(group: &str, version: &str, plural: &str) -> &'static Resource {
    registry::lookup(group, version, plural).expect("built-in resource is registered")
}

fn target(r: &'static Resource, namespace: &str, name: &str, sub: &str) -> Target {
    Target {
        resource: r,
        namespace: namespace.to_string(),
        name: name.to_string(),
        subresource: sub.to_string(),
    }
}

fn parse(bytes: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

fn api(e: ApiError) -> String {
    e.message
}

/// A Kubernetes MicroTime for now (`2026-11-24T22:50:01.123456Z`).
pub fn micro_time_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = clock::rfc3339_in(0);
    let base = seconds.trim_end_matches('Z');
    format!("{base}.{:06}Z", since.subsec_micros())
}

/// May `id` do `verb` on the target? For pods, the pod (as stored, or as
/// given for a create) must be bound to the node.
async fn authorize(
    rest: &Rest,
    id: &Identity,
    verb: &str,
    t: &Target,
    new_pod: Option<&Value>,
) -> Result<(), String> {
    let attrs = Attributes {
        verb,
        group: t.resource.group,
        resource: t.resource.plural,
        subresource: &t.subresource,
        namespace: &t.namespace,
        name: &t.name,
    };
    match auth::authorize(id, &attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => Err(auth::forbidden(id, &attrs, &why).message),
        Decision::AllowIfPodOnNode(node) => {
            let on_node = match new_pod {
                Some(pod) => rest::pod_on_node(pod, &node),
                None => {
                    let stored = rest
                        .get(&target(t.resource, &t.namespace, &t.name, ""))
                        .await;
                    stored.is_ok_and(|p| rest::pod_on_node(&p, &node))
                }
            };
            if on_node {
                Ok(())
            } else {
                let why = format!("node \"{node}\" may only modify pods bound to it");
                Err(auth::forbidden(id, &attrs, &why).message)
            }
        }
    }
}

fn node_of(id: &Identity) -> Result<&str, String> {
    id.node_name()
        .ok_or_else(|| format!("{} is not a node: only nodes hold sessions", id.user))
}

/// Carries out one request (all but `WatchPods`, which streams).
pub async fn handle(shared: &Shared, id: &Identity, req: NodeRequest) -> NodeResponse {
    let r = match req {
        NodeRequest::Register { node } => register(shared, id, &node).await,
        NodeRequest::Heartbeat {
            lease_duration_seconds,
        } => heartbeat(&shared.rest, id, lease_duration_seconds).await,
        NodeRequest::PodStatus {
            namespace,
            name,
            status,
        } => pod_status(&shared.rest, id, &namespace, &name, &status).await,
        NodeRequest::DeletePod {
            namespace,
            name,
            uid,
        } => delete_pod(&shared.rest, id, &namespace, &name, &uid).await,
        NodeRequest::Get {
            resource,
            namespace,
            name,
        } => get(&shared.rest, id, &resource, &namespace, &name).await,
        NodeRequest::Event { event } => record_event(&shared.rest, id, &event).await,
        NodeRequest::MirrorPod { pod } => mirror_pod(&shared.rest, id, &pod).await,
        NodeRequest::Members => Ok(NodeResponse::Members(shared.members())),
        NodeRequest::Drain => drain(&shared.rest, id).await,
        NodeRequest::Leave => leave(shared, id).await,
        NodeRequest::CreateToken { ttl_seconds } => {
            create_token(shared, id, ttl_seconds, false).await
        }
        NodeRequest::CreateControlPlaneToken { ttl_seconds } => {
            create_token(shared, id, ttl_seconds, true).await
        }
        NodeRequest::Usage(usage) => match node_of(id) {
            Ok(node) => resource_metrics::record(&shared.rest.storage, node, &usage)
                .await
                .map(|()| NodeResponse::Done)
                .map_err(api),
            Err(e) => Err(e),
        },
        NodeRequest::WatchPods | NodeRequest::Watch { .. } => {
            Err("watches stream: open them with NodeClient::watch".into())
        }
    };
    r.unwrap_or_else(NodeResponse::Error)
}

async fn register(shared: &Shared, id: &Identity, body: &[u8]) -> Result<NodeResponse, String> {
    let rest = &shared.rest;
    let me = node_of(id)?;
    let mut node = parse(body, "the Node")?;
    if node["metadata"]["name"].as_str() != Some(me) {
        return Err(format!("node {me} may only register a Node named {me}"));
    }
    let nodes = resource("", "v1", "nodes");
    let t = target(nodes, "", me, "");
    let cidr = cidr::allocate(&rest.storage, me).await.map_err(api)?;
    let status = node["status"].take();
    let stored = match rest.get(&t).await {
        Ok(mut current) => {
            // Keep what others own (taints, unschedulable); refresh labels.
            if let Some(labels) = node["metadata"]["labels"].as_object() {
                for (k, v) in labels {
                    current["metadata"]["labels"][k] = v.clone();
                }
            }
            current["spec"]["podCIDR"] = json!(cidr);
            current["spec"]["podCIDRs"] = json!([cidr]);
            authorize(rest, id, "update", &t, None).await?;
            rest.update(&t, current, &Query::new())
                .await
                .map_err(api)?
                .object
        }
        Err(e) if e.code == 404 => {
            node["spec"]["podCIDR"] = json!(cidr);
            node["spec"]["podCIDRs"] = json!([cidr]);
            authorize(rest, id, "create", &target(nodes, "", "", ""), None).await?;
            rest.create(nodes, "", node, &Query::new())
                .await
                .map_err(api)?
                .object
        }
        Err(e) => return Err(api(e)),
    };
    let mut with_status = stored;
    with_status["status"] = status;
    let st = target(nodes, "", me, "status");
    authorize(rest, id, "update", &st, None).await?;
    let out = rest
        .update(&st, with_status, &Query::new())
        .await
        .map_err(api)?;
    Ok(NodeResponse::Node(
        serde_json::to_vec(&out.object).map_err(|e| e.to_string())?,
    ))
}

async fn heartbeat(rest: &Rest, id: &Identity, duration: i32) -> Result<NodeResponse, String> {
    let me = node_of(id)?;
    let leases = resource("coordination.k8s.io", "v1", "leases");
    let t = target(leases, "kube-node-lease", me, "");
    let now = micro_time_now();
    match rest.get(&t).await {
        Ok(mut lease) => {
            lease["spec"]["renewTime"] = json!(now);
            lease["spec"]["leaseDurationSeconds"] = json!(duration);
            lease["spec"]["holderIdentity"] = json!(me);
            authorize(rest, id, "update", &t, None).await?;
            rest.update(&t, lease, &Query::new()).await.map_err(api)?;
        }
        Err(e) if e.code == 404 => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": { "name": me, "namespace": "kube-node-lease" },
                "spec": {
                    "holderIdentity": me,
                    "leaseDurationSeconds": duration,
                    "renewTime": now,
                }
            });
            authorize(rest, id, "update", &t, None).await?;
            rest.create(leases, "kube-node-lease", lease, &Query::new())
                .await
                .map_err(api)?;
        }
        Err(e) => return Err(api(e)),
    }
    Ok(NodeResponse::Done)
}

async fn pod_status(
    rest: &Rest,
    id: &Identity,
    namespace: &str,
    name: &str,
    status: &[u8],
) -> Result<NodeResponse, String> {
    let status = parse(status, "the pod status")?;
    let t = target(resource("", "v1", "pods"), namespace, name, "status");
    authorize(rest, id, "update", &t, None).await?;
    let mut pod = rest.get(&t).await.map_err(api)?;
    pod["status"] = status;
    rest.update(&t, pod, &Query::new()).await.map_err(api)?;
    Ok(NodeResponse::Done)
}

async fn delete_pod(
    rest: &Rest,
    id: &Identity,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<NodeResponse, String> {
    let t = target(resource("", "v1", "pods"), namespace, name, "");
    if matches!(rest.get(&t).await, Err(e) if e.code == 404) {
        // Deleted with no grace period: already gone, nothing to remove
        // (the binding check below would find no pod and refuse).
        return Ok(NodeResponse::Done);
    }
    authorize(rest, id, "delete", &t, None).await?;
    let options = json!({ "gracePeriodSeconds": 0, "preconditions": { "uid": uid } });
    match rest.delete(&t, &options, &Query::new()).await {
        Ok(_) => Ok(NodeResponse::Done),
        Err(e) if e.code == 404 || e.code == 409 => Ok(NodeResponse::Done), // already gone or replaced
        Err(e) => Err(api(e)),
    }
}

async fn get(
    rest: &Rest,
    id: &Identity,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<NodeResponse, String> {
    if !matches!(plural, "configmaps" | "secrets") {
        return Err(format!(
            "nodes may only read configmaps and secrets here, not {plural}"
        ));
    }
    let t = target(resource("", "v1", plural), namespace, name, "");
    authorize(rest, id, "get", &t, None).await?;
    match rest.get(&t).await {
        Ok(obj) => Ok(NodeResponse::Object(Some(
            serde_json::to_vec(&obj).map_err(|e| e.to_string())?,
        ))),
        Err(e) if e.code == 404 => Ok(NodeResponse::Object(None)),
        Err(e) => Err(api(e)),
    }
}

async fn record_event(rest: &Rest, id: &Identity, body: &[u8]) -> Result<NodeResponse, String> {
    let event = parse(body, "the Event")?;
    let ns = event["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let events = resource("", "v1", "events");
    authorize(rest, id, "create", &target(events, &ns, "", ""), None).await?;
    rest.create(events, &ns, event, &Query::new())
        .await
        .map_err(api)?;
    Ok(NodeResponse::Done)
}

async fn mirror_pod(rest: &Rest, id: &Identity, body: &[u8]) -> Result<NodeResponse, String> {
    let mut pod = parse(body, "the mirror pod")?;
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("kube-system")
        .to_string();
    let pods = resource("", "v1", "pods");
    let status = pod["status"].take();
    let t = target(pods, &ns, &name, "");
    let stored = match rest.get(&t).await {
        Ok(current) => current,
        Err(e) if e.code == 404 => {
            authorize(rest, id, "create", &t, Some(&pod)).await?;
            rest.create(pods, &ns, pod, &Query::new())
                .await
                .map_err(api)?
                .object
        }
        Err(e) => return Err(api(e)),
    };
    if stored["status"] == status {
        return Ok(NodeResponse::Done);
    }
    let st = target(pods, &ns, &name, "status");
    authorize(rest, id, "update", &st, None).await?;
    let mut with_status = stored;
    with_status["status"] = status;
    rest.update(&st, with_status, &Query::new())
        .await
        .map_err(api)?;
    Ok(NodeResponse::Done)
}

/// Cordons the node (no new pods are placed on it), then deletes its pods
/// gracefully (each with its own termination grace period; the node's
/// kubelet stops them and removes the objects); answers how many remain.
async fn drain(rest: &Rest, id: &Identity) -> Result<NodeResponse, String> {
    let me = node_of(id)?;
    let node = target(resource("", "v1", "nodes"), "", me, "");
    authorize(rest, id, "patch", &node, None).await?;
    let cordon = br#"{"spec":{"unschedulable":true}}"#;
    rest.patch(
        &node,
        kc_apiserver::patch::PatchType::Merge,
        cordon,
        &Query::new(),
    )
    .await
    .map_err(api)?;
    let pods = resource("", "v1", "pods");
    let mut query = Query::new();
    query.insert("fieldSelector".into(), format!("spec.nodeName={me}"));
    let list = rest.list(pods, None, &query).await.map_err(api)?;
    let mut left = 0;
    for pod in list["items"].as_array().into_iter().flatten() {
        if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
            continue;
        }
        left += 1;
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        if pod["metadata"]["deletionTimestamp"].is_string() {
            // Already stopping (an earlier drain round): wait for it.
            continue;
        }
        let t = target(pods, ns, name, "");
        // The listed pod is bound here (the field selector): authorize on
        // it, not on a re-read that races with its removal.
        authorize(rest, id, "delete", &t, Some(pod)).await?;
        match rest.delete(&t, &json!({}), &Query::new()).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => left -= 1,
            Err(e) => return Err(api(e)),
        }
    }
    Ok(NodeResponse::Count(left))
}

async fn leave(shared: &Shared, id: &Identity) -> Result<NodeResponse, String> {
    let rest = &shared.rest;
    let me = node_of(id)?;
    let none = json!({});
    let lease = target(
        resource("coordination.k8s.io", "v1", "leases"),
        "kube-node-lease",
        me,
        "",
    );
    let node = target(resource("", "v1", "nodes"), "", me, "");
    for t in [&lease, &node] {
        authorize(rest, id, "delete", t, None).await?;
        match rest.delete(t, &none, &Query::new()).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(api(e)),
        }
    }
    delete_mirror_pods(rest, id, me).await?;
    cidr::release(&rest.storage, me).await.map_err(api)?;
    Ok(NodeResponse::Done)
}

/// Deletes the mirror pods (the host's own parts in kube-system) of a
/// leaving node: nothing runs them any more.
async fn delete_mirror_pods(rest: &Rest, id: &Identity, me: &str) -> Result<(), String> {
    let pods = resource("", "v1", "pods");
    let mut query = Query::new();
    query.insert("fieldSelector".into(), format!("spec.nodeName={me}"));
    let list = rest.list(pods, None, &query).await.map_err(api)?;
    for pod in list["items"].as_array().into_iter().flatten() {
        if !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
            continue;
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let t = target(pods, ns, name, "");
        authorize(rest, id, "delete", &t, Some(pod)).await?;
        // At once: no kubelet is left to confirm a graceful deletion.
        let now = json!({"gracePeriodSeconds": 0});
        match rest.delete(&t, &now, &Query::new()).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(api(e)),
        }
    }
    Ok(())
}

async fn create_token(
    shared: &Shared,
    id: &Identity,
    ttl: u64,
    control_plane: bool,
) -> Result<NodeResponse, String> {
    if !id.is_admin() {
        return Err(format!(
            "{} may not create bootstrap tokens: only admins (system:masters) may",
            id.user
        ));
    }
    let token = tokens::create_with(&shared.rest, ttl, control_plane)
        .await
        .map_err(api)?;
    let mut join_command = shared.join_command(&token.to_string());
    if control_plane {
        join_command.push_str(" --control-plane");
    }
    Ok(NodeResponse::Token {
        join_command,
        token: token.to_string(),
    })
}

/// The pods bound to the node: the list, `Synced`, then every change.
pub async fn watch_pods(
    shared: &Shared,
    id: &Identity,
) -> Result<mpsc::Receiver<PodEvent>, String> {
    let me = node_of(id)?.to_string();
    let mut query = Query::new();
    query.insert("fieldSelector".into(), format!("spec.nodeName={me}"));
    list_and_watch(&shared.rest, resource("", "v1", "pods"), query).await
}

/// The cluster-wide collections a node's network needs (`NodeRequest::Watch`):
/// Services and EndpointSlices for the proxy and DNS, Nodes for the routes
/// to the other nodes' pod CIDRs. Read as the node (nodes may read all).
pub async fn watch_objects(
    shared: &Shared,
    id: &Identity,
    plural: &str,
) -> Result<mpsc::Receiver<PodEvent>, String> {
    node_of(id)?;
    let r = match plural {
        "services" => resource("", "v1", "services"),
        "nodes" => resource("", "v1", "nodes"),
        "endpointslices" => resource("discovery.k8s.io", "v1", "endpointslices"),
        other => {
            return Err(format!(
                "nodes may watch services, endpointslices and nodes here, not {other}"
            ));
        }
    };
    authorize(&shared.rest, id, "watch", &target(r, "", "", ""), None).await?;
    list_and_watch(&shared.rest, r, Query::new()).await
}

/// A list of `r` (all namespaces) then a watch from its revision, as
/// events: every listed object, `Synced`, then every change.
async fn list_and_watch(
    rest: &Rest,
    r: &'static Resource,
    mut query: Query,
) -> Result<mpsc::Receiver<PodEvent>, String> {
    let list = rest.list(r, None, &query).await.map_err(api)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    query.insert("resourceVersion".into(), rv);
    query.insert("timeoutSeconds".into(), (365 * 24 * 3600).to_string());
    let mut lines = watch::start(rest, r, None, &query, Rendering::Json)
        .await
        .map_err(api)?;
    let (tx, rx) = mpsc::channel(256);
    let initial: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    tokio::spawn(async move {
        for obj in initial {
            let Ok(bytes) = serde_json::to_vec(&obj) else {
                continue;
            };
            if tx.send(PodEvent::Upsert(bytes)).await.is_err() {
                return;
            }
        }
        if tx.send(PodEvent::Synced).await.is_err() {
            return;
        }
        while let Some(line) = lines.recv().await {
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let Some(ev) = pod_event(&event) else {
                continue;
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// A watch line (`{"type":..,"object":..}`) as a `PodEvent`.
fn pod_event(event: &Value) -> Option<PodEvent> {
    let object = &event["object"];
    match event["type"].as_str()? {
        "ADDED" | "MODIFIED" => serde_json::to_vec(object).ok().map(PodEvent::Upsert),
        "DELETED" => Some(PodEvent::Deleted {
            // Cluster-scoped objects (Nodes) have no namespace.
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            name: object["metadata"]["name"].as_str()?.to_string(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_time_has_six_fraction_digits() {
        let t = micro_time_now();
        let frac = t.rsplit_once('.').unwrap().1;
        assert_eq!(frac.len(), 7, "{t}"); // 6 digits and the Z
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn watch_lines_become_pod_events() {
        let added = json!({"type":"ADDED","object":{"metadata":{"name":"p","namespace":"d"}}});
        assert!(matches!(pod_event(&added), Some(PodEvent::Upsert(_))));
        let deleted = json!({"type":"DELETED","object":{"metadata":{"name":"p","namespace":"d"}}});
        assert_eq!(
            pod_event(&deleted),
            Some(PodEvent::Deleted {
                namespace: "d".into(),
                name: "p".into()
            })
        );
        assert_eq!(pod_event(&json!({"type":"BOOKMARK","object":{}})), None);
    }
}
