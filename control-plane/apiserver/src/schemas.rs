//! The schemas of the served kinds in the OpenAPI documents, generated from
//! the k8s-openapi types (their `JsonSchema` implementations carry
//! Kubernetes' own field descriptions, which `kubectl explain` prints), plus
//! the extensions kubectl looks for: `x-kubernetes-group-version-kind` on
//! each kind (how it finds a kind's schema) and the patch merge keys and
//! strategies of lists (how client-side apply computes strategic merge
//! patches), taken from `patch`'s table so both agree.

use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::patch;

/// Which document the schemas go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Swagger 2.0: `#/definitions/<name>`, `$ref` with siblings as is.
    V2,
    /// OpenAPI 3.0: `#/components/schemas/<name>`, `$ref` with siblings
    /// wrapped in `allOf` (as kube-apiserver publishes them).
    V3,
}

fn generator(flavor: Flavor) -> SchemaGenerator {
    match flavor {
        Flavor::V3 => SchemaSettings::openapi3()
            .with(|s| s.meta_schema = None)
            .into_generator(),
        Flavor::V2 => SchemaSettings::draft07()
            .with(|s| {
                s.definitions_path = "/definitions".into();
                s.meta_schema = None;
                s.transforms.clear();
            })
            .into_generator(),
    }
}

/// Adds the schema of a served kind; None for a kind without a type here.
fn add_kind(generator: &mut SchemaGenerator, group: &str, kind: &str) -> Option<String> {
    super::typed::add_schema(generator, group, kind)
}

/// The definitions for these kinds (`(group, version, kind)`), each kind
/// tagged with its group-version-kind, lists with their merge keys.
pub fn definitions(kinds: &[(&str, &str, &str)], flavor: Flavor) -> Map<String, Value> {
    let mut generator = generator(flavor);
    let mut tagged = Vec::new();
    for (group, version, kind) in kinds {
        match add_kind(&mut generator, group, kind) {
            Some(name) => tagged.push((name, *group, *version, *kind)),
            None => tracing::debug!(group, kind, "no schema for this kind"),
        }
    }
    let mut defs = generator.take_definitions(true);
    for (name, group, version, kind) in tagged {
        if let Some(schema) = defs.get_mut(&name).and_then(Value::as_object_mut) {
            let list = schema
                .entry("x-kubernetes-group-version-kind")
                .or_insert_with(|| json!([]));
            let gvk = json!({ "group": group, "version": version, "kind": kind });
            if let Some(l) = list.as_array_mut()
                && !l.contains(&gvk)
            {
                l.push(gvk);
            }
        }
    }
    let snapshot = defs.clone();
    for schema in defs.values_mut() {
        add_patch_extensions(schema, &snapshot);
    }
    defs
}

/// The property names of the schema a `$ref` (possibly inside `allOf`) points at.
fn referenced_properties<'a>(schema: &Value, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str())?;
    let name = reference.rsplit('/').next()?;
    defs.get(name).map(|d| &d["properties"])
}

/// Marks list properties with Kubernetes' patch strategy and merge key.
fn add_patch_extensions(schema: &mut Value, defs: &Map<String, Value>) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        if prop["type"] != "array" {
            continue;
        }
        if patch::is_merged_set(field) {
            prop["x-kubernetes-patch-strategy"] = json!("merge");
            continue;
        }
        // A sample element with the item type's fields, for the key lookup.
        let sample: Map<String, Value> = referenced_properties(&prop["items"], defs)
            .and_then(Value::as_object)
            .map(|p| p.keys().map(|k| (k.clone(), Value::Null)).collect())
            .unwrap_or_default();
        if let Some(key) = patch::merge_key(field, &Value::Object(sample)) {
            prop["x-kubernetes-patch-merge-key"] = json!(key);
            prop["x-kubernetes-patch-strategy"] = json!("merge");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_have_descriptions_gvk_and_merge_keys() {
        let defs = definitions(&[("", "v1", "Pod")], Flavor::V3);
        let pod = &defs["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        assert_eq!(
            pod["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        let spec = &defs["io.k8s.api.core.v1.PodSpec"];
        assert_eq!(
            spec["properties"]["containers"]["x-kubernetes-patch-merge-key"],
            "name"
        );
        let container = &defs["io.k8s.api.core.v1.Container"];
        assert!(
            container["properties"]["image"]["description"]
                .as_str()
                .unwrap()
                .starts_with("Container image name.")
        );
        assert_eq!(
            container["properties"]["ports"]["x-kubernetes-patch-merge-key"],
            "containerPort"
        );
        let svc = definitions(&[("", "v1", "Service")], Flavor::V2);
        assert_eq!(
            svc["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]["x-kubernetes-patch-merge-key"],
            "port"
        );
        assert_eq!(
            svc["io.k8s.api.core.v1.Service"]["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.ServiceSpec"
        );
        let meta = &svc["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        assert_eq!(
            meta["properties"]["finalizers"]["x-kubernetes-patch-strategy"],
            "merge"
        );
    }
}
