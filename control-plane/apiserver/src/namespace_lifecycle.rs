//! The API side of a namespace's lifecycle, as Kubernetes has it: DELETE
//! marks a namespace Terminating (deletionTimestamp, `status.phase`) while
//! `spec.finalizers` holds `kubernetes`; nothing new may be created in it
//! (checked atomically in each create's transaction against a marker key
//! written with the mark); the Namespace controller empties it and removes
//! the finalizer through `namespaces/{name}/finalize`, which deletes it.
//! The system namespaces may not be deleted.

use serde_json::{Value, json};

use super::registry::Resource;
use super::status::ApiError;

/// Where the marker of a Terminating namespace lives (outside every
/// resource's prefix, so no list sees it).
const MARKER_PREFIX: &str = "/registry/kc.namespacelifecycle/terminating/";

/// Namespaces Kubernetes refuses to delete.
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

pub fn is_namespaces(resource: &Resource) -> bool {
    (resource.group, resource.plural) == ("", "namespaces")
}

/// The store key that exists while `namespace` is Terminating.
pub fn marker(namespace: &str) -> Vec<u8> {
    format!("{MARKER_PREFIX}{namespace}").into_bytes()
}

/// Whether a namespace still has finalizers in `spec.finalizers`.
pub fn has_spec_finalizers(namespace: &Value) -> bool {
    namespace["spec"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// The refusal of deleting a system namespace, if `name` is one.
pub fn check_deletable(name: &str) -> Result<(), ApiError> {
    if IMMORTAL.contains(&name) {
        return Err(ApiError::forbidden_by_admission(
            "",
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    Ok(())
}

/// A namespace marked for deletion: `status.phase` Terminating.
pub fn mark_terminating(namespace: &mut Value) {
    if !namespace["status"].is_object() {
        namespace["status"] = json!({});
    }
    namespace["status"]["phase"] = json!("Terminating");
}

/// The refusal of creating `resource`/`name` in a Terminating namespace.
pub fn terminating(resource: &Resource, name: &str, namespace: &str) -> ApiError {
    ApiError::forbidden_by_admission(
        resource.group,
        resource.plural,
        name,
        &format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        ),
    )
}

/// What a `finalize` write changes: only `spec.finalizers`, from `view`.
pub fn finalized(current: &Value, view: &Value) -> Value {
    let mut new = current.clone();
    let finalizers = match &view["spec"]["finalizers"] {
        Value::Array(a) => Value::Array(a.clone()),
        _ => json!([]),
    };
    if !new["spec"].is_object() {
        new["spec"] = json!({});
    }
    new["spec"]["finalizers"] = finalizers;
    new
}

/// Only `finalize` changes a namespace's `spec.finalizers`: an update of the
/// namespace itself keeps the current ones.
pub fn keep_finalizers(current: &Value, new: &mut Value) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match current["spec"].get("finalizers") {
        Some(f) => spec.insert("finalizers".into(), f.clone()),
        None => spec.remove("finalizers"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_namespaces_are_immortal_with_kubernetes_message() {
        let e = check_deletable("default").unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        );
        assert!(check_deletable("team-a").is_ok());
    }

    #[test]
    fn finalize_changes_only_spec_finalizers() {
        let cur = json!({"metadata": {"name": "t", "labels": {"a": "b"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}});
        let view = json!({"metadata": {"name": "t", "labels": {}},
            "spec": {"finalizers": []}, "status": {"phase": "Active"}});
        let new = finalized(&cur, &view);
        assert_eq!(new["spec"]["finalizers"], json!([]));
        assert_eq!(new["status"]["phase"], "Terminating");
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert!(!has_spec_finalizers(&new));
        assert!(has_spec_finalizers(&cur));
    }

    #[test]
    fn markers_are_outside_resource_prefixes() {
        assert!(!marker("t").starts_with(b"/registry/core/"));
    }
}
