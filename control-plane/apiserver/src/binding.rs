//! The `pods/<name>/binding` subresource: assigns pods to nodes, one per
//! request (`POST pods/<name>/binding`) or many at once for the in-process
//! scheduler (`Rest::bind_all`).
//!
//! Each binding is judged on its own, as Kubernetes' `BindingREST` does:
//! the target is a Node with a name, the pod exists, is not being deleted,
//! is not bound yet, and has the binding's uid when one is given; the
//! binding's annotations are merged into the pod's. The writes of every
//! binding that passes go to the store as ONE transaction of per-pod
//! compare-and-swaps (one Raft proposal, one revision, one watch event per
//! pod, split only to stay under the proposal size limit). If a pod changed
//! between its read and the transaction, nothing of that transaction is
//! written; the store says which pods changed, those are read again and
//! judged again (a pod bound meanwhile by someone else fails alone with a
//! 409), and the others are resubmitted. So a pod is never bound twice and
//! one conflict never fails its neighbours.

use futures::future::join_all;
use serde_json::{Value, json};

use super::registry;
use super::rest::{Outcome, Rest, Target, TargetKey, success_status};
use super::status::{ApiError, Cause};
use super::storage::{Stored, Swap};

/// A proposal carries at most this many bytes of bindings (the store
/// refuses requests over 1.5 MiB).
const MAX_PROPOSAL_BYTES: usize = 1024 * 1024;
/// Reads of one pod before a binding that keeps losing races gives up.
const MAX_READS: usize = 5;

pub use kc_client::Binding;

/// How the API server judges and applies a binding.
pub trait Judge: Sized {
    fn from_request(target: &Target, body: &Value) -> Result<Self, ApiError>;
    fn target(&self) -> Target;
    fn conflict(&self, why: &str) -> ApiError;
    fn assign(&self, current: &Value) -> Result<Value, ApiError>;
}

impl Judge for Binding {
    /// A `Binding` object posted to `target` (`pods/<name>/binding`).
    fn from_request(target: &Target, body: &Value) -> Result<Self, ApiError> {
        let invalid = |cause| ApiError::invalid("", "Binding", &target.name, vec![cause]);
        let name = body["metadata"]["name"].as_str().unwrap_or("");
        if !name.is_empty() && name != target.name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Binding object",
            ));
        }
        let kind = body["target"]["kind"].as_str().unwrap_or("");
        if !kind.is_empty() && kind != "Node" {
            return Err(invalid(Cause::invalid(
                "target.kind",
                kind,
                "supported values: \"Node\", \"<empty>\"",
            )));
        }
        let node = body["target"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(Cause::required("target.name")))?;
        let mut binding = Self::new(
            &target.namespace,
            &target.name,
            body["metadata"]["uid"].as_str(),
            node,
        );
        if let Some(a) = body["metadata"]["annotations"].as_object() {
            binding.annotations = a.clone();
        }
        Ok(binding)
    }

    fn target(&self) -> Target {
        Target {
            resource: pods(),
            namespace: self.namespace.clone(),
            name: self.pod.clone(),
            subresource: String::new(),
        }
    }

    fn conflict(&self, why: &str) -> ApiError {
        ApiError::conflict("", "pods/binding", &self.pod, why)
    }

    /// The pod as bound, or why it cannot be (pure).
    fn assign(&self, current: &Value) -> Result<Value, ApiError> {
        let meta = &current["metadata"];
        if let Some(uid) = &self.uid
            && meta["uid"].as_str() != Some(uid)
        {
            return Err(self.conflict(&format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta["uid"].as_str().unwrap_or("")
            )));
        }
        if meta["deletionTimestamp"].is_string() {
            return Err(self.conflict(&format!(
                "pod {} is being deleted, cannot be assigned to a host",
                self.pod
            )));
        }
        if let Some(existing) = current["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            return Err(self.conflict(&format!(
                "pod {} is already assigned to node \"{existing}\"",
                self.pod
            )));
        }
        let mut new = current.clone();
        new["spec"]["nodeName"] = json!(self.node);
        if !self.annotations.is_empty() {
            if !new["metadata"]["annotations"].is_object() {
                new["metadata"]["annotations"] = json!({});
            }
            if let Some(a) = new["metadata"]["annotations"].as_object_mut() {
                a.extend(self.annotations.clone());
            }
        }
        Ok(new)
    }
}

fn pods() -> &'static registry::Resource {
    registry::lookup("", "v1", "pods").expect("pods are a registered resource")
}

/// Splits `ready` into runs of at most `MAX_PROPOSAL_BYTES` (each at least one).
fn proposals(ready: Vec<(usize, Swap)>) -> Vec<Vec<(usize, Swap)>> {
    let mut out: Vec<Vec<(usize, Swap)>> = Vec::new();
    let mut bytes = 0;
    for item in ready {
        let size = item.1.size();
        match out.last_mut() {
            Some(run) if bytes + size <= MAX_PROPOSAL_BYTES => {
                bytes += size;
                run.push(item);
            }
            _ => {
                bytes = size;
                out.push(vec![item]);
            }
        }
    }
    out
}

impl Rest {
    /// `POST pods/<name>/binding`: assigns the pod to a node.
    pub async fn bind(&self, target: &Target, body: &Value) -> Result<Outcome, ApiError> {
        let binding = Binding::from_request(target, body)?;
        let mut results = self.bind_all(std::slice::from_ref(&binding)).await;
        results
            .pop()
            .unwrap_or_else(|| Err(binding.conflict("no result")))?;
        Ok(Outcome {
            object: success_status(),
            code: 201,
            warnings: Vec::new(),
            removed: false,
        })
    }

    /// Binds every pod of `bindings`, their writes batched into as few
    /// store transactions as fit; one result per binding, in order.
    pub async fn bind_all(&self, bindings: &[Binding]) -> Vec<Result<(), ApiError>> {
        let mut results: Vec<Result<(), ApiError>> = vec![Ok(()); bindings.len()];
        let mut reads = vec![0; bindings.len()];
        let mut to_read: Vec<usize> = (0..bindings.len()).collect();
        let mut ready: Vec<(usize, Swap)> = Vec::new();
        let mut first_round = true;
        while !to_read.is_empty() || !ready.is_empty() {
            let read = join_all(
                to_read
                    .iter()
                    .map(|&i| self.binding_read(&bindings[i], first_round)),
            )
            .await;
            first_round = false;
            for (i, current) in to_read.drain(..).zip(read) {
                reads[i] += 1;
                let b = &bindings[i];
                match current.and_then(|c| Ok((b.assign(&c.object)?, c.mod_revision))) {
                    Ok((new, revision)) => {
                        ready.push((i, Swap::new(b.target().key(), &new, revision)))
                    }
                    Err(e) => results[i] = Err(e),
                }
            }
            let runs = proposals(std::mem::take(&mut ready));
            let swaps: Vec<Vec<Swap>> = runs
                .iter()
                .map(|run| run.iter().map(|(_, s)| s.clone()).collect())
                .collect();
            let outcomes = join_all(swaps.iter().map(|s| self.storage.replace_all(s))).await;
            for (run, outcome) in runs.into_iter().zip(outcomes) {
                match outcome {
                    Ok(Ok(_revision)) => {}
                    Err(e) => {
                        for (i, _) in run {
                            results[i] = Err(e.clone());
                        }
                    }
                    Ok(Err(stale)) => {
                        for (j, (i, swap)) in run.into_iter().enumerate() {
                            if !stale.contains(&j) {
                                ready.push((i, swap));
                            } else if reads[i] < MAX_READS {
                                to_read.push(i);
                            } else {
                                let b = &bindings[i];
                                results[i] = Err(ApiError::stale("", "pods", &b.pod));
                            }
                        }
                    }
                }
            }
        }
        results
    }

    /// The pod a binding is about. The first read is this member's own copy
    /// (the scheduler binds pods it saw from this member; the swap checks it
    /// was current); a pod not seen here or seen bound, and every later
    /// read, is linearizable.
    async fn binding_read(&self, b: &Binding, local: bool) -> Result<Stored, ApiError> {
        let target = b.target();
        let key = target.key();
        if local
            && let Some(c) = self.storage.get_local(&key).await?
            && c.object["spec"]["nodeName"].is_null()
        {
            return Ok(c);
        }
        self.storage.get(&key).await?.ok_or_else(|| {
            ApiError::not_found(target.resource.group, target.resource.plural, &b.pod)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            resource: pods(),
            namespace: "default".into(),
            name: name.into(),
            subresource: "binding".into(),
        }
    }

    fn pod(uid: &str, node: Option<&str>) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default", "uid": uid},
               "spec": {"nodeName": node, "containers": []}})
    }

    #[test]
    fn a_binding_request_is_validated_like_kubernetes() {
        let ok = json!({"metadata": {"name": "p", "uid": "u1", "annotations": {"a": "b"}},
                        "target": {"kind": "Node", "name": "n1"}});
        let b = Binding::from_request(&target("p"), &ok).unwrap();
        assert_eq!((b.node.as_str(), b.uid.as_deref()), ("n1", Some("u1")));
        let no_node = json!({"target": {"kind": "Node"}});
        assert_eq!(
            Binding::from_request(&target("p"), &no_node)
                .unwrap_err()
                .code,
            422
        );
        let not_a_node = json!({"target": {"kind": "Pod", "name": "x"}});
        assert_eq!(
            Binding::from_request(&target("p"), &not_a_node)
                .unwrap_err()
                .code,
            422
        );
        let other_name = json!({"metadata": {"name": "q"}, "target": {"name": "n1"}});
        assert_eq!(
            Binding::from_request(&target("p"), &other_name)
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn assign_sets_the_node_and_refuses_bound_deleting_or_replaced_pods() {
        let mut b = Binding::new("default", "p", Some("u1"), "n1");
        b.annotations.insert("x".into(), json!("y"));
        let new = b.assign(&pod("u1", None)).unwrap();
        assert_eq!(new["spec"]["nodeName"], "n1");
        assert_eq!(new["metadata"]["annotations"]["x"], "y");
        let bound = b.assign(&pod("u1", Some("n2"))).unwrap_err();
        assert_eq!(bound.code, 409);
        assert!(bound.message.contains("already assigned to node \"n2\""));
        let replaced = b.assign(&pod("u2", None)).unwrap_err();
        assert!(replaced.message.contains("Precondition failed: UID"));
        let mut deleting = pod("u1", None);
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(
            b.assign(&deleting)
                .unwrap_err()
                .message
                .contains("being deleted")
        );
        // Without a uid precondition, any pod of that name.
        let any = Binding::new("default", "p", None, "n1");
        assert!(any.assign(&pod("u2", None)).is_ok());
    }

    #[test]
    fn proposals_stay_under_the_size_limit_and_keep_order() {
        let obj = json!({"metadata": {"name": "p"}, "pad": "x".repeat(300 * 1024)});
        let ready: Vec<(usize, Swap)> = (0..7)
            .map(|i| (i, Swap::new(b"/k".to_vec(), &obj, 1)))
            .collect();
        let runs = proposals(ready);
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert_eq!(runs[2][0].0, 6);
        assert!(proposals(Vec::new()).is_empty());
    }
}
