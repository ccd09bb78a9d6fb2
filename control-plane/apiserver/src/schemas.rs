//! The schemas of the served kinds in the OpenAPI documents, generated from
//! the k8s-openapi types (their `JsonSchema` implementations carry
//! Kubernetes' own field descriptions, which `kubectl explain` prints), plus
//! the extensions kubectl looks for: `x-kubernetes-group-version-kind` on
//! each kind (how it finds a kind's schema) and the patch merge keys and
//! strategies of lists (how client-side apply computes strategic merge
//! patches), taken from `patch`'s table so both agree.

use k8s_openapi::schemars::JsonSchema;
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

/// Adds `T`'s schema (and everything it refers to); returns its name.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Adds the schema of a served kind; None for a kind without a type here.
fn add_kind(generator: &mut SchemaGenerator, group: &str, kind: &str) -> Option<String> {
    use k8s_openapi::api::{apps, autoscaling, coordination, core, discovery, policy};
    let g = generator;
    Some(match (group, kind) {
        ("", "Pod") => add::<core::v1::Pod>(g),
        ("", "Namespace") => add::<core::v1::Namespace>(g),
        ("", "Node") => add::<core::v1::Node>(g),
        ("", "Service") => add::<core::v1::Service>(g),
        ("", "Endpoints") => add::<core::v1::Endpoints>(g),
        ("", "ConfigMap") => add::<core::v1::ConfigMap>(g),
        ("", "Secret") => add::<core::v1::Secret>(g),
        ("", "ServiceAccount") => add::<core::v1::ServiceAccount>(g),
        ("", "Event") => add::<core::v1::Event>(g),
        ("events.k8s.io", "Event") => add::<k8s_openapi::api::events::v1::Event>(g),
        ("", "Binding") => add::<core::v1::Binding>(g),
        ("", "PersistentVolumeClaim") => add::<core::v1::PersistentVolumeClaim>(g),
        ("policy", "Eviction") => add::<policy::v1::Eviction>(g),
        ("apps", "Deployment") => add::<apps::v1::Deployment>(g),
        ("apps", "ReplicaSet") => add::<apps::v1::ReplicaSet>(g),
        ("apps", "DaemonSet") => add::<apps::v1::DaemonSet>(g),
        ("apps", "StatefulSet") => add::<apps::v1::StatefulSet>(g),
        ("autoscaling", "Scale") => add::<autoscaling::v1::Scale>(g),
        ("coordination.k8s.io", "Lease") => add::<coordination::v1::Lease>(g),
        ("discovery.k8s.io", "EndpointSlice") => add::<discovery::v1::EndpointSlice>(g),
        ("batch", "Job") => add::<k8s_openapi::api::batch::v1::Job>(g),
        ("batch", "CronJob") => add::<k8s_openapi::api::batch::v1::CronJob>(g),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => add::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(g),
        _ => return None,
    })
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
