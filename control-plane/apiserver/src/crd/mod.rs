//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): what a CRD makes
//! this API server serve, and how its custom resources are checked.
//!
//! - `definition`: a CRD's defaults, validation, and the `Served` versions
//!   it declares (each a `Resource` row of the registry, made at run time);
//! - `schema`: structural schemas: pruning, defaulting, validation;
//! - `columns`: `additionalPrinterColumns` in Tables;
//! - `sync`: follows the CRDs in the store (registering what they serve in
//!   this process, writing their conditions, deleting a deleted CRD's
//!   custom resources before the CRD).
//!
//! Custom resources then go through the same generic REST path as the
//! built-in kinds; the hooks in `kinds`, `table` and `openapi` ask `served`
//! for what differs. Every version is stored as the CRD's storage version
//! and served with conversion `None` (the object as stored, under the
//! requested apiVersion), as Kubernetes does.

pub mod columns;
pub mod definition;
pub mod schema;
pub mod sync;

use std::sync::{Arc, RwLock};

use serde_json::{Map, Value, json};

use crate::registry::{self, Resource};
use crate::status::{ApiError, Cause};

/// One served version of a CRD: its registry row and what kc checks.
#[derive(Debug)]
pub struct Served {
    pub resource: &'static Resource,
    /// The version's `openAPIV3Schema`.
    pub schema: Value,
    pub columns: Vec<columns::Column>,
    /// The version custom resources are stored in.
    pub storage_version: String,
    pub list_kind: String,
}

struct Entry {
    served: Arc<Served>,
    terminating: bool,
}

static SERVED: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

fn same(a: &Resource, b: &Resource) -> bool {
    a.group == b.group && a.version == b.version && a.plural == b.plural
}

/// What kc knows of a custom resource (None: `resource` is built in).
pub fn served(resource: &Resource) -> Option<Arc<Served>> {
    let all = SERVED.read().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|e| same(e.served.resource, resource))
        .map(|e| e.served.clone())
}

/// Serves `versions` for `group`/`plural` (none: stops serving it).
pub fn serve(group: &str, plural: &str, versions: Vec<Served>, terminating: bool) {
    let mut all = SERVED.write().unwrap_or_else(|p| p.into_inner());
    all.retain(|e| !(e.served.resource.group == group && e.served.resource.plural == plural));
    let rows = versions.iter().map(|s| s.resource).collect();
    all.extend(versions.into_iter().map(|s| Entry {
        served: Arc::new(s),
        terminating,
    }));
    registry::set_custom(group, plural, rows);
}

/// A create of a custom resource whose CRD is being deleted is refused.
pub fn check_create(resource: &Resource) -> Result<(), ApiError> {
    let all = SERVED.read().unwrap_or_else(|p| p.into_inner());
    if all
        .iter()
        .any(|e| e.terminating && same(e.served.resource, resource))
    {
        return Err(ApiError::from_code(
            405,
            format!(
                "create not allowed while custom resource definition is terminating: {}.{}",
                resource.plural, resource.group
            ),
        ));
    }
    Ok(())
}

/// Prunes the fields a custom resource's schema does not name; returns
/// their paths (unknown fields, for warnings or `fieldValidation=Strict`).
pub fn prune(resource: &Resource, object: &mut Value) -> Vec<String> {
    match served(resource) {
        Some(s) => schema::prune(&s.schema, object),
        None => Vec::new(),
    }
}

pub fn apply_defaults(resource: &Resource, object: &mut Value) {
    if let Some(s) = served(resource) {
        schema::default(&s.schema, object);
    }
}

pub fn validate(resource: &Resource, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(s) = served(resource) {
        schema::validate(&s.schema, object, "", &mut causes);
    }
    causes
}

/// A stored custom resource as the requested version serves it: that
/// apiVersion (conversion `None`) and the schema's defaults, which apply on
/// every read as they do in Kubernetes.
pub fn present(resource: &Resource, object: &mut Value) {
    if let Some(s) = served(resource) {
        s.present(object);
    }
}

/// `present` for every item of a list (one lookup).
pub fn present_all(resource: &Resource, items: &mut [Value]) {
    if let Some(s) = served(resource) {
        items.iter_mut().for_each(|item| s.present(item));
    }
}

impl Served {
    fn present(&self, object: &mut Value) {
        if object.is_object() {
            object["apiVersion"] = json!(self.resource.api_version());
            schema::default(&self.schema, object);
        }
    }
}

/// The name OpenAPI documents give a custom kind (`com.example.stable.v1.CronTab`).
fn definition_name(r: &Resource) -> String {
    let reversed: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
}

/// The OpenAPI v3 schemas of a custom group-version (for `components`).
pub fn openapi_schemas(group: &str, version: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for r in registry::in_group_version(group, version) {
        let Some(s) = served(r) else { continue };
        let mut schema = s.schema.clone();
        let props = &mut schema["properties"];
        if !props.is_object() {
            *props = json!({});
        }
        props["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
        props["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
        props["metadata"] = json!({"type": "object", "description": "Standard object's metadata."});
        schema["x-kubernetes-group-version-kind"] =
            json!([{ "group": r.group, "version": r.version, "kind": r.kind }]);
        out.insert(definition_name(r), schema);
        let list_kind = if s.list_kind.is_empty() {
            format!("{}List", r.kind)
        } else {
            s.list_kind.clone()
        };
        out.insert(
            format!("{}List", definition_name(r)),
            json!({"type": "object", "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{}", definition_name(r))}},
                },
                "x-kubernetes-group-version-kind": [{ "group": r.group, "version": r.version, "kind": list_kind }]}),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_crd_is_in_the_registry_until_it_stops_being_served() {
        let crd = json!({"metadata": {"name": "widgets.test-mod.example.com"},
            "spec": {"group": "test-mod.example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget", "singular": "widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}}}}}}}]}});
        serve(
            "test-mod.example.com",
            "widgets",
            definition::served(&crd),
            false,
        );
        let r = registry::lookup("test-mod.example.com", "v1", "widgets").expect("served");
        assert!(registry::is_custom(r) && !r.namespaced);
        let mut o = json!({"apiVersion": "test-mod.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}});
        present(r, &mut o);
        assert_eq!(o["spec"]["size"], 1);
        let schemas = openapi_schemas("test-mod.example.com", "v1");
        assert!(schemas.contains_key("com.example.test-mod.v1.Widget"));
        serve("test-mod.example.com", "widgets", Vec::new(), false);
        assert!(registry::lookup("test-mod.example.com", "v1", "widgets").is_none());
    }
}
