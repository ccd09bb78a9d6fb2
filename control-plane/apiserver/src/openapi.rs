//! OpenAPI documents, generated from the registry: `/openapi/v3` (an index
//! of group-version documents) and `/openapi/v3/<gv>`, and `/openapi/v2`.
//! Each has, per resource, the operations kubectl looks for (the `patch`
//! operation with its `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter that tells kubectl to validate on the
//! server) and the schemas of the served kinds (`schemas`: descriptions for
//! `kubectl explain`, merge keys for client-side apply). Documents are
//! built once per process: they change only with the binary.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::discovery::KUBE_MINOR;
use super::registry::{self, RESOURCES, Resource};
use super::schemas::{self, Flavor};

/// The `/openapi/v3` path of a group-version (`api/v1`, `apis/apps/v1`).
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable hash of the generated documents (they change only with the binary).
fn doc_hash() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    // Bumped when the documents' shape changes (clients cache by hash).
    h.update("schemas-1");
    for r in RESOURCES {
        h.update(r.plural);
        h.update(r.group);
    }
    hex::encode(&h.finalize()[..16]).to_uppercase()
}

/// `GET /openapi/v3`: the index of group-version documents.
pub fn v3_index() -> Value {
    let hash = doc_hash();
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    gvs.dedup();
    for (g, v) in gvs {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}") }),
        );
    }
    // Custom group-versions: hashed by their document, which changes with their CRDs.
    for r in registry::all()
        .into_iter()
        .filter(|r| registry::is_custom(r))
    {
        let p = gv_path(r.group, r.version);
        if !paths.contains_key(&p) {
            // The document changes only with the schemas of its custom kinds.
            let schemas = super::crd::openapi_schemas(r.group, r.version);
            let hash = {
                use sha2::{Digest, Sha256};
                let text = serde_json::to_string(&schemas).unwrap_or_default();
                hex::encode(&Sha256::digest(text.as_bytes())[..16]).to_uppercase()
            };
            paths.insert(
                p.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}") }),
            );
        }
    }
    json!({ "paths": paths })
}

fn query_param(name: &str) -> Value {
    json!({ "name": name, "in": "query", "schema": { "type": "string", "uniqueItems": true } })
}

fn operation(r: &Resource, action: &str, kind: &str) -> Value {
    let mut params = vec![query_param("dryRun"), query_param("fieldManager")];
    if matches!(action, "patch" | "post" | "put") {
        params.push(query_param("fieldValidation"));
    }
    if action == "patch" {
        params.push(query_param("force"));
    }
    json!({
        "operationId": format!("{action}{}{}", r.group.replace('.', ""), r.kind),
        "parameters": params,
        "responses": { "200": { "description": "OK" } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": r.group, "version": r.version, "kind": kind },
    })
}

fn resource_paths(r: &Resource, paths: &mut Map<String, Value>) {
    let root = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    paths.insert(
        collection.clone(),
        json!({ "get": operation(r, "list", r.kind), "post": operation(r, "post", r.kind) }),
    );
    let item = format!("{collection}/{{name}}");
    paths.insert(
        item.clone(),
        json!({
            "get": operation(r, "get", r.kind),
            "put": operation(r, "put", r.kind),
            "patch": operation(r, "patch", r.kind),
            "delete": operation(r, "delete", r.kind),
        }),
    );
    for sub in r
        .subresources
        .iter()
        .filter(|s| matches!(s.name, "status" | "scale"))
    {
        let (_, _, kind) = r.subresource_kind(sub);
        paths.insert(
            format!("{item}/{}", sub.name),
            json!({ "get": operation(r, "get", kind), "put": operation(r, "put", kind), "patch": operation(r, "patch", kind) }),
        );
    }
}

/// The kinds whose schemas a document about `resources` carries: each
/// resource's kind and its subresources' (Scale).
fn kinds_of<'a>(
    resources: impl Iterator<Item = &'a Resource>,
) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut kinds = Vec::new();
    for r in resources {
        kinds.push((r.group, r.version, r.kind));
        for sub in r.subresources.iter().filter(|s| !s.kind.is_empty()) {
            kinds.push((sub.group, sub.version, sub.kind));
        }
    }
    kinds.dedup();
    kinds
}

/// `GET /openapi/v3/<api/v1 | apis/<group>/<version>>`, or None if unserved.
/// Built-in documents are made once; a custom group-version's on each
/// request (its CRDs may change).
pub fn v3_group_version(path: &str) -> Option<std::borrow::Cow<'static, Value>> {
    if let Some(gv) = path.strip_prefix("apis/")
        && let Some((group, version)) = gv.split_once('/')
        && registry::in_group_version(group, version).any(registry::is_custom)
    {
        return Some(std::borrow::Cow::Owned(build_v3_group_version(
            group, version,
        )));
    }
    static DOCS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
        gvs.sort();
        gvs.dedup();
        gvs.into_iter()
            .map(|(g, v)| (gv_path(g, v), build_v3_group_version(g, v)))
            .collect()
    })
    .get(path)
    .map(std::borrow::Cow::Borrowed)
}

fn build_v3_group_version(group: &str, version: &str) -> Value {
    let resources: Vec<&Resource> = registry::in_group_version(group, version).collect();
    let mut paths = Map::new();
    for r in &resources {
        resource_paths(r, &mut paths);
    }
    let mut defs = schemas::definitions(&kinds_of(resources.into_iter()), Flavor::V3);
    defs.extend(super::crd::openapi_schemas(group, version));
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0") },
        "paths": paths,
        "components": { "schemas": defs },
    })
}

/// `GET /openapi/v2` (JSON): every path and kind of every group.
pub fn v2() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = Map::new();
        for r in RESOURCES {
            resource_paths(r, &mut paths);
        }
        json!({
            "swagger": "2.0",
            "info": { "title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0") },
            "paths": paths,
            "definitions": schemas::definitions(&kinds_of(RESOURCES.iter()), Flavor::V2),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_points_at_every_group_version() {
        let idx = v3_index();
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert!(idx["paths"]["apis/apps/v1"].is_object());
    }

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = v3_group_version("apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(v3_group_version("apis/nope/v1").is_none());
        assert!(v3_group_version("garbage").is_none());
    }
}
