//! `componentstatuses` (v1 ComponentStatus, `kubectl get cs`): the health
//! of the control plane's parts, computed on each read as kube-apiserver
//! computes it (nothing is stored). The scheduler and the controller
//! manager are healthy while their leader holds a live Lease in
//! kube-system; the store is healthy while a quorum read through it
//! succeeds (kc's Raft store stands where Kubernetes lists `etcd-0`).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::registry::{self, Resource};
use super::rest::{Rest, Target};
use super::status::ApiError;

/// The components, in the order `kubectl get cs` lists them, with the
/// leader Lease each is judged by (None: the store itself).
const COMPONENTS: &[(&str, Option<&str>)] = &[
    ("scheduler", Some("kube-scheduler")),
    ("controller-manager", Some("kube-controller-manager")),
    ("store", None),
];

fn target(resource: &'static Resource, namespace: &str, name: &str) -> Target {
    Target {
        resource,
        namespace: namespace.into(),
        name: name.into(),
        subresource: String::new(),
    }
}

/// Why a leader Lease shows no live holder, or None when it does.
fn lease_problem(lease: &Value, now: Timestamp) -> Option<String> {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap_or("");
    if holder.is_empty() {
        return Some("no leader holds the lease".into());
    }
    let renewed = spec["renewTime"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let duration = spec["leaseDurationSeconds"].as_i64().unwrap_or(15);
    match renewed {
        Some(t) if now.as_second() - t.as_second() <= duration => None,
        Some(t) => Some(format!(
            "leader {holder} last renewed the lease {}s ago (it lasts {duration}s)",
            now.as_second() - t.as_second()
        )),
        None => Some(format!("leader {holder} has not renewed the lease")),
    }
}

async fn health(rest: &Rest, lease: Option<&str>) -> Result<(), String> {
    match lease {
        Some(name) => {
            let leases = registry::lookup("coordination.k8s.io", "v1", "leases")
                .expect("leases are a registered resource");
            match rest.get(&target(leases, "kube-system", name)).await {
                Ok(l) => lease_problem(&l, kc_client::clock::now()).map_or(Ok(()), |why| {
                    Err(format!("lease kube-system/{name}: {why}"))
                }),
                Err(e) if e.code == 404 => Err(format!(
                    "lease kube-system/{name} does not exist: no leader has been elected"
                )),
                Err(e) => Err(e.message),
            }
        }
        None => {
            let namespaces = registry::lookup("", "v1", "namespaces")
                .expect("namespaces are a registered resource");
            rest.get(&target(namespaces, "", "kube-system"))
                .await
                .map(|_| ())
                .map_err(|e| format!("a quorum read of the store failed: {}", e.message))
        }
    }
}

fn object(name: &str, health: Result<(), String>) -> Value {
    let condition = match health {
        Ok(()) => json!({"type": "Healthy", "status": "True", "message": "ok"}),
        Err(error) => json!({"type": "Healthy", "status": "False", "error": error}),
    };
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    })
}

/// Every component's status.
pub async fn list(rest: &Rest) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, lease) in COMPONENTS {
        out.push(object(name, health(rest, *lease).await));
    }
    out
}

/// One component's status.
pub async fn get(rest: &Rest, name: &str) -> Result<Value, ApiError> {
    let (name, lease) = COMPONENTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| ApiError::not_found("", "componentstatuses", name))?;
    Ok(object(name, health(rest, *lease).await))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_live_until_its_duration_passes() {
        let now: Timestamp = "2026-12-08T10:00:10Z".parse().unwrap();
        let lease = |renew: &str| json!({"spec": {"holderIdentity": "m1", "renewTime": renew, "leaseDurationSeconds": 3}});
        assert_eq!(
            lease_problem(&lease("2026-12-08T10:00:08.500000Z"), now),
            None
        );
        let stale = lease_problem(&lease("2026-12-08T10:00:01.000000Z"), now).unwrap();
        assert!(stale.contains("9s ago"), "{stale}");
        assert!(lease_problem(&json!({"spec": {}}), now).is_some());
    }
}
