//! The REST verbs over the store: get, list, create, update, patch, delete,
//! deletecollection, generic over every resource of the registry.
//!
//! Each verb is written once for `serde_json::Value` objects; what differs
//! between kinds (defaults, validation, immutable fields) comes from `kinds`.
//! Subresources are *views* of their parent: `status` reads and writes only
//! `.status`, `scale` maps `.spec.replicas` to an `autoscaling/v1` Scale,
//! and writes to a view are merged back into the parent. Updates are
//! compare-and-swap on the stored revision; patches retry on a lost race
//! unless the client pinned a resourceVersion.

use base64::Engine;
use serde_json::{Map, Value, json};

use kc_pki::Identity;

use super::admission;
use super::allocator;
use super::clock;
use super::crd;
use super::kinds;
use super::managed;
use super::names;
use super::namespace_lifecycle;
use super::patch::{self, PatchType};
use super::registry::{self, Resource};
use super::selectors::{FieldSelector, LabelSelector, Selectors};
use super::status::{ApiError, Cause};
use super::storage::{Page, Storage, Stored};
use super::timestamps;
use super::webhook;

/// Namespaces that exist from the start and may not be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

pub use kc_client::{Outcome, Query, Target};

/// The store key of a request's object.
pub trait TargetKey {
    fn key(&self) -> Vec<u8>;
}

impl TargetKey for Target {
    fn key(&self) -> Vec<u8> {
        Storage::key(self.resource, &self.namespace, &self.name)
    }
}

/// What an immediate delete answers: kube-apiserver returns the object
/// only for the kinds whose storage says so (pods and Services); others get
/// a `Status` of success naming what went.
pub fn deleted_status(resource: &Resource, object: &Value) -> Option<Value> {
    if matches!((resource.group, resource.plural), ("", "pods" | "services")) {
        return None;
    }
    let mut details = json!({ "name": meta_str(object, "name"), "kind": resource.plural });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    details["uid"] = json!(meta_str(object, "uid"));
    Some(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Success", "details": details,
    }))
}

/// Strict, Warn (default) or Ignore, from `?fieldValidation=`.
fn field_validation(query: &Query) -> &str {
    query
        .get("fieldValidation")
        .map(String::as_str)
        .unwrap_or("Warn")
}

fn is_dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

fn now_rfc3339() -> String {
    clock::rfc3339_in(0)
}

/// Parses a request body: JSON, or YAML for apply patches.
pub fn parse_body(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if yaml
        && super::nesting::flow_depth(body, super::nesting::MAX_DEPTH) > super::nesting::MAX_DEPTH
    {
        return Err(ApiError::bad_request(format!(
            "the request body is not valid YAML: it nests deeper than {} levels",
            super::nesting::MAX_DEPTH
        )));
    }
    let parsed = if yaml {
        serde_norway::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid {}: {e}",
            if yaml { "YAML" } else { "JSON" }
        ))
    })
}

/// The object's metadata map, made an (empty) object if it is not one.
/// Callers pass objects already checked to be JSON objects.
fn metadata(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("just made an object")
}

fn meta_str<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"][key].as_str().unwrap_or("")
}

/// Checks (and fills in) apiVersion and kind of a request body.
fn check_type(
    resource: &Resource,
    kind: &str,
    api_version: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object describing a {kind}"
        )));
    }
    if let Some(v) = object.get("apiVersion").and_then(Value::as_str)
        && !v.is_empty()
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = object.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({kind}) of {}",
            resource.plural
        )));
    }
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(())
}

/// Validates an object: typed decode (unknown fields per fieldValidation),
/// name, kind rules. Returns warnings.
fn check_object(
    resource: &Resource,
    object: &mut Value,
    query: &Query,
) -> Result<Vec<String>, ApiError> {
    let name = meta_str(object, "name").to_string();
    let mut unknown = kinds::typed_check(resource, object)?;
    unknown.extend(crd::prune(resource, object));
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match field_validation(query) {
            "Strict" => {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    resource.kind,
                    resource.version,
                    resource.kind,
                    list.join(", ")
                )));
            }
            "Ignore" => {}
            _ => warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
        }
    }
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause::required("metadata.name"));
    } else if let Some(msg) = kinds::name_rule(resource).check(&name) {
        causes.push(Cause::invalid("metadata.name", &name, msg));
    }
    for (field, map) in [
        ("metadata.labels", &object["metadata"]["labels"]),
        ("metadata.annotations", &object["metadata"]["annotations"]),
    ] {
        if let Some(m) = map.as_object() {
            for (k, v) in m {
                if !v.is_string() {
                    causes.push(Cause::invalid(
                        &format!("{field}[{k}]"),
                        &v.to_string(),
                        "must be a string",
                    ));
                }
            }
        }
    }
    causes.extend(kinds::validate(resource, object));
    if (resource.group, resource.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") {
        warnings.extend(crd::definition::warnings(object));
    }
    if causes.is_empty() {
        Ok(warnings)
    } else {
        Err(ApiError::invalid(
            resource.group,
            resource.kind,
            &name,
            causes,
        ))
    }
}

/// How a write changes field ownership (`managedFields`).
#[derive(Debug, Clone)]
pub enum Owner<'a> {
    /// Create, PUT, or a non-apply PATCH: the manager takes what it changed.
    Update(&'a str),
    /// Server-side apply of these fields; `force` takes them from others.
    Apply {
        manager: &'a str,
        fields: managed::FieldSet,
        force: bool,
    },
}

fn writer<'a>(resource: &Resource, manager: &'a str, subresource: &'a str) -> managed::Writer<'a> {
    managed::Writer {
        manager,
        subresource,
        api_version: resource.api_version(),
        time: now_rfc3339(),
    }
}

/// The `fieldManager` of a request, if it names one.
fn field_manager(query: &Query) -> Option<&str> {
    query
        .get("fieldManager")
        .map(String::as_str)
        .filter(|m| !m.is_empty())
}

/// The 409 of an apply that would change other managers' fields.
fn conflict_error(r: &Resource, name: &str, conflicts: &[managed::Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .flat_map(|c| {
            let who = format!("conflict with {}", managed::conflict_owner(c));
            c.fields.iter().map(move |f| (f.clone(), who.clone()))
        })
        .collect();
    ApiError::field_conflicts(
        r.group,
        r.kind,
        name,
        managed::conflict_message(conflicts),
        causes,
    )
}

/// The object without the fields the server owns, to compare updates.
fn comparable(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        meta.remove("generation");
    }
    o
}

/// Whether `subresource` is the object itself or a view of it that get,
/// update and patch go through (`to_view` / `from_view`).
fn reads_through(subresource: &str) -> bool {
    matches!(subresource, "" | "status" | "scale" | "approval")
}

/// Builds a Scale view of a scalable object.
fn to_scale(object: &Value) -> Value {
    // A LabelSelector's matchLabels, or a ReplicationController's map.
    let selector = &object["spec"]["selector"];
    let selector = selector["matchLabels"]
        .as_object()
        .or_else(|| {
            selector
                .as_object()
                .filter(|m| m.values().all(Value::is_string))
        })
        .map(|m| {
            let mut parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            parts.sort();
            parts.join(",")
        })
        .unwrap_or_default();
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": object["spec"]["replicas"].as_i64().unwrap_or(0) },
        "status": { "replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector },
    })
}

/// The API version and kind a view of `target` reads and writes.
fn view_type(target: &Target) -> (String, &'static str) {
    let r = target.resource;
    match r.subresource(&target.subresource) {
        Some(sub) if target.subresource == "scale" => {
            let (g, v, k) = r.subresource_kind(sub);
            (format!("{g}/{v}"), k)
        }
        _ => (r.api_version(), r.kind),
    }
}

/// What a client sees of `object` through `subresource`.
fn to_view(target: &Target, object: Value) -> Value {
    match target.subresource.as_str() {
        "scale" => to_scale(&object),
        _ => object,
    }
}

/// Merges a written view back into the stored object.
fn from_view(target: &Target, current: &Value, view: Value) -> Result<Value, ApiError> {
    let r = target.resource;
    if !view.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object describing a {}",
            view_type(target).1
        )));
    }
    match target.subresource.as_str() {
        "" => {
            let mut new = view;
            if namespace_lifecycle::is_namespaces(r) {
                namespace_lifecycle::keep_finalizers(current, &mut new);
            }
            if r.subresource("status").is_some() {
                // The main resource ignores status writes, like Kubernetes.
                match current.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            Ok(new)
        }
        "status" => {
            let mut new = current.clone();
            new["status"] = view.get("status").cloned().unwrap_or(Value::Null);
            Ok(new)
        }
        // A CSR's approval writes its conditions only.
        "approval" => {
            let mut new = current.clone();
            new["status"]["conditions"] = view["status"]
                .get("conditions")
                .cloned()
                .unwrap_or(Value::Null);
            Ok(new)
        }
        "finalize" => Ok(namespace_lifecycle::finalized(current, &view)),
        "scale" => {
            let replicas = view["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    &target.name,
                    vec![Cause::required("spec.replicas")],
                )
            })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    &target.name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        &replicas.to_string(),
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let mut new = current.clone();
            new["spec"]["replicas"] = json!(replicas);
            if let Some(rv) = view["metadata"].get("resourceVersion") {
                metadata(&mut new).insert("resourceVersion".into(), rv.clone());
            }
            Ok(new)
        }
        other => Err(ApiError::method_not_supported(
            &format!("{}/{other}", r.plural),
            "update",
        )),
    }
}

/// A continue token: where the next page starts, at which revision.
fn encode_continue(revision: i64, key: &[u8]) -> String {
    let token = json!({ "rv": revision, "start": String::from_utf8_lossy(key) });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &[u8]) -> Result<(i64, Vec<u8>), ApiError> {
    let bad =
        || ApiError::bad_request("the continue token is not valid: start a new list without it");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let key = v["start"].as_str().ok_or_else(bad)?.as_bytes().to_vec();
    if !key.starts_with(prefix) {
        return Err(bad());
    }
    Ok((rv, key))
}

/// The selectors of a list or watch of `resource`; a field label the kind
/// does not support is a 400, as in Kubernetes.
pub fn selectors(resource: &Resource, query: &Query) -> Result<Selectors, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    fields
        .check_supported(resource.group, resource.plural)
        .map_err(ApiError::bad_request)?;
    Ok(Selectors { labels, fields })
}

/// The REST verbs.
#[derive(Clone)]
pub struct Rest {
    pub storage: Storage,
}

impl Rest {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    async fn current(&self, target: &Target) -> Result<Stored, ApiError> {
        self.storage
            .get(&target.key())
            .await?
            .ok_or_else(|| target.not_found())
    }

    pub async fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let stored = self.current(target).await?;
        match target.subresource.as_str() {
            sub if reads_through(sub) => {
                let mut object = stored.object;
                crd::present(target.resource, &mut object);
                Ok(to_view(target, object))
            }
            other => Err(ApiError::method_not_supported(
                &format!("{}/{other}", target.resource.plural),
                "get",
            )),
        }
    }

    /// Reads one page; returns the page and the list's continue token.
    pub async fn list_page(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<(Page, Option<String>), ApiError> {
        let sel = selectors(resource, query)?;
        let prefix = Storage::prefix(resource, namespace);
        let limit: usize = match query.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("limit {l:?} is not a number")))?,
            None => 0,
        };
        let (revision, after) = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let (rv, key) = decode_continue(token, &prefix)?;
                (rv, Some(key))
            }
            None => {
                let exact = query
                    .get("resourceVersionMatch")
                    .is_some_and(|m| m == "Exact");
                let rv = query
                    .get("resourceVersion")
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                (if exact { rv } else { 0 }, None)
            }
        };
        let keep = |o: &Value| sel.matches(o);
        let page = self
            .storage
            .list(&prefix, after.as_deref(), revision, limit, &keep)
            .await
            .map_err(|e| {
                if e.code == 410 && after.is_some() {
                    ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                } else {
                    e
                }
            })?;
        let token = page
            .next_key
            .as_ref()
            .map(|k| encode_continue(page.revision, k));
        let mut page = page;
        crd::present_all(resource, &mut page.items);
        Ok((page, token))
    }

    /// A whole collection as `<Kind>List` JSON bytes, built from the stored
    /// bytes without parsing them (the common `kubectl get -o json` and
    /// informer list). None when the query needs the objects parsed
    /// (selectors, pages, old revisions).
    pub async fn list_json_fast(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let plain = [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersionMatch",
        ]
        .iter()
        .all(|k| query.get(*k).is_none_or(String::is_empty));
        if !plain || registry::is_custom(resource) {
            return Ok(None);
        }
        let resp = self
            .storage
            .list_raw(&Storage::prefix(resource, namespace), 0)
            .await?;
        let mut items = Vec::with_capacity(resp.kvs.iter().map(|kv| kv.value.len() + 32).sum());
        for (i, kv) in resp.kvs.iter().enumerate() {
            if i > 0 {
                items.push(b',');
            }
            match Storage::splice_resource_version(kv) {
                Some(bytes) => items.extend_from_slice(&bytes),
                None => items.extend_from_slice(
                    &serde_json::to_vec(&Storage::decode(kv)?)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                ),
            }
        }
        let head = format!(
            r#"{{"kind":"{}List","apiVersion":"{}","metadata":{{"resourceVersion":"{}"}},"items":["#,
            resource.kind,
            resource.api_version(),
            resp.revision
        );
        let mut out = Vec::with_capacity(head.len() + items.len() + 2);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&items);
        out.extend_from_slice(b"]}");
        Ok(Some(out))
    }

    /// A whole collection as a Table (JSON bytes), rendered on every core.
    /// None when the query pages (limit/continue) or reads an old revision.
    pub async fn list_table_fast(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        query: &Query,
        version: &'static str,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let plain = ["limit", "continue", "resourceVersionMatch"]
            .iter()
            .all(|k| query.get(*k).is_none_or(String::is_empty));
        if !plain {
            return Ok(None);
        }
        let sel = selectors(resource, query)?;
        // A field selector may read any field: decode whole objects then.
        let decode = if query.get("fieldSelector").is_none_or(String::is_empty) {
            super::table_decode::table_keep(resource)
        } else {
            None
        };
        let resp = self
            .storage
            .list_raw(&Storage::prefix(resource, namespace), 0)
            .await?;
        let meta = json!({ "resourceVersion": resp.revision.to_string() });
        let bytes = tokio::task::spawn_blocking(move || {
            let keep = |o: &Value| sel.matches(o);
            super::table::table_bytes(resource, version, &resp.kvs, &keep, meta, decode)
        })
        .await
        .map_err(|e| ApiError::internal(format!("table rendering failed: {e}")))??;
        Ok(Some(bytes))
    }

    /// `GET` on a collection: a `<Kind>List`.
    pub async fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let (page, token) = self.list_page(resource, namespace, query).await?;
        Ok(list_object(resource, page.items, page.revision, token))
    }

    /// The namespace of a create must exist and not be Terminating.
    async fn ensure_namespace(
        &self,
        namespace: &str,
        resource: &Resource,
        name: &str,
    ) -> Result<(), ApiError> {
        let ns = registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
        match self.storage.get(&Storage::key(ns, "", namespace)).await? {
            None => Err(ApiError::not_found("", "namespaces", namespace)),
            Some(s) if s.object["metadata"]["deletionTimestamp"].is_string() => {
                Err(namespace_lifecycle::terminating(resource, name, namespace))
            }
            Some(_) => Ok(()),
        }
    }

    /// Gives a new Service its ClusterIP and NodePorts from what is free now
    /// (starting from the spec as the client sent it); the keys returned
    /// must be claimed in the create's transaction.
    async fn assign_allocations(
        &self,
        object: &mut Value,
        spec_template: &Value,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        object["spec"] = spec_template.clone();
        let mut keys = Vec::new();
        for prefix in [allocator::IP_PREFIX, allocator::PORT_PREFIX] {
            let resp = self.storage.list_raw(prefix.as_bytes(), 0).await?;
            keys.extend(resp.kvs.into_iter().map(|kv| kv.key));
        }
        let taken = allocator::Taken::from_keys(keys.iter().map(Vec::as_slice));
        allocator::assign(object, &taken, rand::random())
    }

    /// `POST` to a collection.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        mut object: Value,
        query: &Query,
    ) -> Result<Outcome, ApiError> {
        check_type(
            resource,
            resource.kind,
            &resource.api_version(),
            &mut object,
        )?;
        {
            let meta = metadata(&mut object);
            if resource.namespaced {
                match meta.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && ns != namespace => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        meta.insert("namespace".into(), json!(namespace));
                    }
                }
            } else {
                meta.remove("namespace");
            }
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
        let generate =
            meta_str(&object, "name").is_empty() && !meta_str(&object, "generateName").is_empty();
        if generate {
            let name = names::generate(meta_str(&object, "generateName"));
            metadata(&mut object).insert("name".into(), json!(name));
        }
        timestamps::normalize(resource, &mut object)?;
        if (resource.group, resource.kind) == ("", "Pod") {
            admission::admit_pod(&self.storage, &mut object).await?;
        }
        kinds::apply_defaults(resource, &mut object);
        crd::check_create(resource)?;
        let name = meta_str(&object, "name").to_string();
        let admitting = webhook::Request {
            resource,
            subresource: "",
            namespace,
            name: &name,
            operation: "CREATE",
            dry_run: is_dry_run(query),
        };
        let mutated = webhook::mutate(&self.storage, &admitting, &mut object, None).await?;
        if mutated.changed {
            // What a webhook added is defaulted like the rest.
            kinds::apply_defaults(resource, &mut object);
        }
        let mut warnings = mutated.warnings;
        warnings.extend(check_object(resource, &mut object, query)?);
        warnings.extend(webhook::validate(&self.storage, &admitting, Some(&object), None).await?);
        // The namespace must exist and not be Terminating: checked in the
        // create's transaction.
        let ns_key = resource.namespaced.then(|| {
            let namespaces =
                registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
            Storage::key(namespaces, "", namespace)
        });
        let ns_terminating: Vec<Vec<u8>> = if resource.namespaced {
            vec![namespace_lifecycle::marker(namespace)]
        } else {
            Vec::new()
        };
        {
            let meta = metadata(&mut object);
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
            if kinds::has_generation(resource) {
                meta.insert("generation".into(), json!(1));
            }
        }
        kinds::after_uid(resource, &mut object);
        if let Some(manager) = field_manager(query) {
            let mut entries = Vec::new();
            let fields = managed::fields_of(&object, "");
            managed::record_update(
                &mut entries,
                &writer(resource, manager, ""),
                &fields,
                &object,
            );
            metadata(&mut object).insert("managedFields".into(), managed::to_value(&entries));
        }
        let allocates = is_service(resource);
        let spec_template = object["spec"].clone();
        if is_dry_run(query) {
            if resource.namespaced {
                self.ensure_namespace(namespace, resource, meta_str(&object, "name"))
                    .await?;
            }
            if allocates {
                self.assign_allocations(&mut object, &spec_template).await?;
            }
            return Ok(Outcome {
                object,
                code: 201,
                warnings,
                removed: false,
            });
        }
        for _ in 0..8 {
            let claims = if allocates {
                self.assign_allocations(&mut object, &spec_template).await?
            } else {
                Vec::new()
            };
            let target = Target {
                resource,
                namespace: namespace.to_string(),
                name: meta_str(&object, "name").to_string(),
                subresource: String::new(),
            };
            match self
                .storage
                .create_guarded(
                    &target.key(),
                    &object,
                    ns_key.as_deref(),
                    &claims,
                    &ns_terminating,
                )
                .await?
            {
                Some(rev) => {
                    metadata(&mut object).insert("resourceVersion".into(), json!(rev.to_string()));
                    return Ok(Outcome {
                        object,
                        code: 201,
                        warnings,
                        removed: false,
                    });
                }
                None if resource.namespaced
                    && self
                        .storage
                        .get(ns_key.as_deref().unwrap_or_default())
                        .await?
                        .is_none() =>
                {
                    return Err(ApiError::not_found("", "namespaces", namespace));
                }
                None if resource.namespaced
                    && self
                        .storage
                        .get(&namespace_lifecycle::marker(namespace))
                        .await?
                        .is_some() =>
                {
                    return Err(namespace_lifecycle::terminating(
                        resource,
                        &target.name,
                        namespace,
                    ));
                }
                // Another create took the picked ClusterIP/NodePort first: pick again.
                None if allocates && self.storage.get(&target.key()).await?.is_none() => {}
                None if generate => {
                    let name = names::generate(meta_str(&object, "generateName"));
                    metadata(&mut object).insert("name".into(), json!(name));
                }
                None => {
                    return Err(ApiError::already_exists(
                        resource.group,
                        resource.plural,
                        &target.name,
                    ));
                }
            }
        }
        Err(ApiError::conflict(
            resource.group,
            resource.plural,
            meta_str(&object, "generateName"),
            "could not find a free generated name; retry",
        ))
    }

    /// Writes `new` over `current` (both full objects): keeps server-owned
    /// metadata, validates, bumps generation, and compares the revision.
    async fn write(
        &self,
        target: &Target,
        current: &Stored,
        mut new: Value,
        query: &Query,
        owner: Option<Owner<'_>>,
    ) -> Result<Outcome, ApiError> {
        let r = target.resource;
        let cur = &current.object;
        let cur_rv = current.mod_revision.to_string();
        match new["metadata"]
            .get("resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() && rv != cur_rv => {
                return Err(ApiError::stale(r.group, r.plural, &target.name));
            }
            _ => {}
        }
        {
            let name = meta_str(&new, "name");
            if !name.is_empty() && name != target.name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({name}) does not match the name on the URL ({})",
                    target.name
                )));
            }
            let ns = meta_str(&new, "namespace");
            if r.namespaced && !ns.is_empty() && ns != target.namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        {
            let old_meta = cur["metadata"].clone();
            let meta = metadata(&mut new);
            meta.insert("name".into(), json!(target.name));
            if r.namespaced {
                meta.insert("namespace".into(), json!(target.namespace));
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            // Ownership is the server's: what is stored, changed below.
            match old_meta.get("managedFields") {
                Some(m) => meta.insert("managedFields".into(), m.clone()),
                None => meta.remove("managedFields"),
            };
            meta.remove("resourceVersion");
        }
        if let Some(Owner::Apply {
            manager,
            fields,
            force,
        }) = &owner
        {
            let applied = managed::record_apply(
                managed::entries(cur),
                &writer(r, manager, &target.subresource),
                fields,
                cur,
                &new,
                *force,
            )
            .map_err(|c| conflict_error(r, &target.name, &c))?;
            for path in &applied.removed {
                managed::remove_at(&mut new, path);
            }
            metadata(&mut new).insert("managedFields".into(), managed::to_value(&applied.entries));
        }
        check_type(r, r.kind, &r.api_version(), &mut new)?;
        kinds::carry_over(r, cur, &mut new);
        timestamps::normalize(r, &mut new)?;
        kinds::apply_defaults(r, &mut new);
        let admitting = webhook::Request {
            resource: r,
            subresource: &target.subresource,
            namespace: &target.namespace,
            name: &target.name,
            operation: "UPDATE",
            dry_run: is_dry_run(query),
        };
        let mutated = webhook::mutate(&self.storage, &admitting, &mut new, Some(cur)).await?;
        if mutated.changed {
            kinds::apply_defaults(r, &mut new);
        }
        let mut warnings = mutated.warnings;
        warnings.extend(check_object(r, &mut new, query)?);
        let causes = kinds::validate_update(r, cur, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(r.group, r.kind, &target.name, causes));
        }
        warnings.extend(webhook::validate(&self.storage, &admitting, Some(&new), Some(cur)).await?);
        if kinds::has_generation(r) && cur.get("spec") != new.get("spec") {
            let g = cur["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata(&mut new).insert("generation".into(), json!(g));
        }
        if let Some(Owner::Update(manager)) = owner {
            let changed = managed::changed(cur, &new, &target.subresource);
            let mut entries = managed::entries(cur);
            managed::record_update(
                &mut entries,
                &writer(r, manager, &target.subresource),
                &changed,
                &new,
            );
            metadata(&mut new).insert("managedFields".into(), managed::to_value(&entries));
        }
        if comparable(&new) == comparable(cur)
            && managed::ownership(&new) == managed::ownership(cur)
        {
            // Nothing changed: no write, like Kubernetes.
            return Ok(Outcome {
                object: to_view(target, cur.clone()),
                code: 200,
                warnings,
                removed: false,
            });
        }
        // The last finalizer removed from a deleting object deletes it.
        let deleting = new["metadata"]["deletionTimestamp"].is_string();
        let no_finalizers = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
            && !(namespace_lifecycle::is_namespaces(r)
                && namespace_lifecycle::has_spec_finalizers(&new));
        if is_dry_run(query) {
            return Ok(Outcome {
                object: to_view(target, new),
                code: 200,
                warnings,
                removed: false,
            });
        }
        if deleting && no_finalizers {
            return match self
                .storage
                .delete_releasing(&target.key(), current.mod_revision, &released(r, &new))
                .await?
            {
                Some(_) => Ok(Outcome {
                    object: to_view(target, new),
                    code: 200,
                    warnings,
                    removed: false,
                }),
                None => Err(ApiError::stale(r.group, r.plural, &target.name)),
            };
        }
        match self
            .storage
            .replace(&target.key(), &new, current.mod_revision)
            .await?
        {
            Some(rev) => {
                metadata(&mut new).insert("resourceVersion".into(), json!(rev.to_string()));
                Ok(Outcome {
                    object: to_view(target, new),
                    code: 200,
                    warnings,
                    removed: false,
                })
            }
            None => Err(ApiError::stale(r.group, r.plural, &target.name)),
        }
    }

    /// `PUT` of an object or subresource.
    pub async fn update(
        &self,
        target: &Target,
        mut body: Value,
        query: &Query,
    ) -> Result<Outcome, ApiError> {
        let finalize =
            target.subresource == "finalize" && namespace_lifecycle::is_namespaces(target.resource);
        if !(finalize || reads_through(&target.subresource)) {
            return Err(ApiError::method_not_supported(
                &format!("{}/{}", target.resource.plural, target.subresource),
                "update",
            ));
        }
        let (api_version, kind) = view_type(target);
        check_type(target.resource, kind, &api_version, &mut body)?;
        let current = self.current(target).await?;
        let new = from_view(target, &current.object, body)?;
        let owner = field_manager(query).map(Owner::Update);
        self.write(target, &current, new, query, owner).await
    }

    /// `PATCH` of an object or subresource; server-side apply creates.
    pub async fn patch(
        &self,
        target: &Target,
        kind: PatchType,
        body: &[u8],
        query: &Query,
    ) -> Result<Outcome, ApiError> {
        if !reads_through(&target.subresource) {
            return Err(ApiError::method_not_supported(
                &format!("{}/{}", target.resource.plural, target.subresource),
                "patch",
            ));
        }
        let patch_doc = parse_body(body, kind == PatchType::Apply)?;
        let r = target.resource;
        let pinned = patch_doc
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        for _ in 0..8 {
            let current = match self.storage.get(&target.key()).await? {
                Some(c) => c,
                None if kind == PatchType::Apply && target.subresource.is_empty() => {
                    return self.apply_create(target, patch_doc, query).await;
                }
                None => return Err(target.not_found()),
            };
            let view = to_view(target, current.object.clone());
            let patched = match kind {
                PatchType::Json => patch::json_patch(&view, &patch_doc).map_err(|e| {
                    ApiError::invalid(
                        r.group,
                        r.kind,
                        &target.name,
                        vec![Cause::invalid("", "", &e)],
                    )
                })?,
                PatchType::Merge => patch::merge_patch(&view, &patch_doc),
                PatchType::StrategicMerge => {
                    patch::strategic_merge(&view, &patch_doc).map_err(ApiError::bad_request)?
                }
                PatchType::Apply => {
                    let mut applied = patch_doc.clone();
                    let (api_version, vkind) = view_type(target);
                    check_type(r, vkind, &api_version, &mut applied)?;
                    patch::apply_merge(&view, &applied).map_err(ApiError::bad_request)?
                }
            };
            let manager = field_manager(query);
            if kind == PatchType::Apply && manager.is_none() {
                return Err(ApiError::bad_request(
                    "fieldManager is required for apply requests",
                ));
            }
            let new = from_view(target, &current.object, patched)?;
            // Applies through the scale view record what they changed.
            let owner = match manager {
                Some(m) if kind == PatchType::Apply && target.subresource != "scale" => {
                    Some(Owner::Apply {
                        manager: m,
                        fields: managed::fields_of(&patch_doc, &target.subresource),
                        force: query.get("force").is_some_and(|f| f == "true"),
                    })
                }
                Some(m) => Some(Owner::Update(m)),
                None => None,
            };
            match self.write(target, &current, new, query, owner).await {
                Err(e) if e.code == 409 && !e.is_field_conflict() && !pinned => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(r.group, r.plural, &target.name))
    }

    async fn apply_create(
        &self,
        target: &Target,
        mut applied: Value,
        query: &Query,
    ) -> Result<Outcome, ApiError> {
        let manager = query.get("fieldManager").cloned().unwrap_or_default();
        if manager.is_empty() {
            return Err(ApiError::bad_request(
                "fieldManager is required for apply requests",
            ));
        }
        let name = meta_str(&applied, "name").to_string();
        if !name.is_empty() && name != target.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                target.name
            )));
        }
        metadata(&mut applied).insert("name".into(), json!(target.name));
        let applied_fields = managed::fields_of(&applied, "");
        let owned = managed::record_apply(
            Vec::new(),
            &writer(target.resource, &manager, ""),
            &applied_fields,
            &json!({}),
            &applied,
            true,
        )
        .map_err(|c| conflict_error(target.resource, &target.name, &c))?;
        metadata(&mut applied).insert("managedFields".into(), managed::to_value(&owned.entries));
        let mut q = query.clone();
        q.remove("fieldManager");
        self.create(target.resource, &target.namespace, applied, &q)
            .await
    }

    /// `DELETE` of one object, with DeleteOptions from the body and query.
    pub async fn delete(
        &self,
        target: &Target,
        options: &Value,
        query: &Query,
    ) -> Result<Outcome, ApiError> {
        let r = target.resource;
        let namespaces = namespace_lifecycle::is_namespaces(r);
        if namespaces {
            namespace_lifecycle::check_deletable(&target.name)?;
        }
        let grace: Option<i64> = options["gracePeriodSeconds"]
            .as_i64()
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
        for _ in 0..5 {
            let current = self.current(target).await?;
            let obj = &current.object;
            let pre = &options["preconditions"];
            if let Some(uid) = pre["uid"].as_str()
                && uid != meta_str(obj, "uid")
            {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    &target.name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(obj, "uid")
                    ),
                ));
            }
            if let Some(rv) = pre["resourceVersion"].as_str()
                && rv != current.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    &target.name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    ),
                ));
            }
            if obj["metadata"]["deletionTimestamp"].is_string() && grace != Some(0) {
                return Ok(Outcome::ok(obj.clone()));
            }
            let admitting = webhook::Request {
                resource: r,
                subresource: "",
                namespace: &target.namespace,
                name: &target.name,
                operation: "DELETE",
                dry_run: is_dry_run(query),
            };
            webhook::validate(&self.storage, &admitting, None, Some(obj)).await?;
            // Orphan and Foreground propagation are finalizers the garbage
            // collector acts on (Background, the default, needs none).
            let mut obj = obj.clone();
            let policy = options["propagationPolicy"]
                .as_str()
                .or(query.get("propagationPolicy").map(String::as_str));
            if let Some(finalizer) = match policy {
                Some("Orphan") => Some("orphan"),
                Some("Foreground") => Some("foregroundDeletion"),
                _ => None,
            } {
                let list = metadata(&mut obj)
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut()
                    && !list.iter().any(|f| f == finalizer)
                {
                    list.push(json!(finalizer));
                }
            }
            let obj = &obj;
            let has_finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
                || (namespaces && namespace_lifecycle::has_spec_finalizers(obj));
            // A pod bound to a node stops gracefully: the node deletes it.
            let pod_grace =
                if (r.group, r.plural) == ("", "pods") && obj["spec"]["nodeName"].is_string() {
                    grace
                        .or(obj["spec"]["terminationGracePeriodSeconds"].as_i64())
                        .unwrap_or(30)
                } else {
                    0
                };
            if is_dry_run(query) {
                return Ok(Outcome::ok(obj.clone()));
            }
            if has_finalizers || pod_grace > 0 {
                let mut new = obj.clone();
                let meta = metadata(&mut new);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(clock::rfc3339_in(pod_grace)),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(pod_grace));
                let markers = if namespaces {
                    namespace_lifecycle::mark_terminating(&mut new);
                    vec![namespace_lifecycle::marker(&target.name)]
                } else {
                    Vec::new()
                };
                match self
                    .storage
                    .replace_marking(&target.key(), &new, current.mod_revision, &markers)
                    .await?
                {
                    Some(rev) => {
                        metadata(&mut new).insert("resourceVersion".into(), json!(rev.to_string()));
                        return Ok(Outcome {
                            object: new,
                            code: 202,
                            warnings: Vec::new(),
                            removed: false,
                        });
                    }
                    None => continue,
                }
            }
            if self
                .storage
                .delete_releasing(&target.key(), current.mod_revision, &released(r, obj))
                .await?
                .is_some()
            {
                return Ok(Outcome::removed(obj.clone()));
            }
        }
        Err(ApiError::stale(r.group, r.plural, &target.name))
    }

    /// `DELETE` on a collection: deletes every matching object.
    pub async fn delete_collection(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        options: &Value,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let mut q = query.clone();
        q.remove("limit");
        q.remove("continue");
        let (page, _) = self.list_page(resource, namespace, &q).await?;
        let mut deleted = Vec::new();
        for item in page.items {
            let target = Target {
                resource,
                namespace: meta_str(&item, "namespace").to_string(),
                name: meta_str(&item, "name").to_string(),
                subresource: String::new(),
            };
            match self.delete(&target, options, query).await {
                Ok(o) => deleted.push(o.object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list_object(resource, deleted, page.revision, None))
    }
}

/// A `Status` of success (returned by binding and some deletes).
fn is_service(resource: &Resource) -> bool {
    (resource.group, resource.kind) == ("", "Service")
}

/// The allocation keys deleting `object` frees (a Service's ClusterIP and NodePorts).
fn released(resource: &Resource, object: &Value) -> Vec<Vec<u8>> {
    if is_service(resource) {
        allocator::held(object)
    } else if namespace_lifecycle::is_namespaces(resource) {
        vec![namespace_lifecycle::marker(meta_str(object, "name"))]
    } else {
        Vec::new()
    }
}

pub fn success_status() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
}

/// A `<Kind>List` of `items`.
pub fn list_object(
    resource: &Resource,
    items: Vec<Value>,
    revision: i64,
    token: Option<String>,
) -> Value {
    let mut meta = json!({ "resourceVersion": revision.to_string() });
    if let Some(t) = token {
        meta["continue"] = json!(t);
    }
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": meta,
        "items": items,
    })
}

/// Whether `id` may write `target` given the pod's node (NodeRestriction).
pub fn pod_on_node(object: &Value, node: &str) -> bool {
    object["spec"]["nodeName"].as_str() == Some(node)
}

/// Who is asking, for error messages.
pub fn user_of(id: &Identity) -> &str {
    &id.user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_are_checked() {
        let t = encode_continue(42, b"/registry/core/pods/default/b");
        assert_eq!(
            decode_continue(&t, b"/registry/core/pods/").unwrap(),
            (42, b"/registry/core/pods/default/b".to_vec())
        );
        assert_eq!(
            decode_continue(&t, b"/registry/core/secrets/")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(decode_continue("%%%", b"/").unwrap_err().code, 400);
    }

    #[test]
    fn bodies_parse_as_json_or_yaml_and_garbage_is_400() {
        assert_eq!(parse_body(b"{\"a\":1}", false).unwrap()["a"], 1);
        assert_eq!(parse_body(b"a: 1\n", true).unwrap()["a"], 1);
        assert_eq!(parse_body(b"{nope", false).unwrap_err().code, 400);
        assert_eq!(parse_body(b"  ", false).unwrap_err().code, 400);
    }

    #[test]
    fn scale_view_reads_and_writes_replicas() {
        let deploys = registry::lookup("apps", "v1", "deployments").unwrap();
        let target = Target {
            resource: deploys,
            namespace: "d".into(),
            name: "web".into(),
            subresource: "scale".into(),
        };
        let d = json!({"metadata": {"name": "web", "resourceVersion": "5"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}}});
        let scale = to_view(&target, d.clone());
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        let mut s2 = scale.clone();
        s2["spec"]["replicas"] = json!(4);
        assert_eq!(from_view(&target, &d, s2).unwrap()["spec"]["replicas"], 4);
        let mut neg = scale;
        neg["spec"]["replicas"] = json!(-1);
        assert_eq!(from_view(&target, &d, neg).unwrap_err().code, 422);
    }

    #[test]
    fn main_resource_writes_keep_status() {
        let pods = registry::lookup("", "v1", "pods").unwrap();
        let target = Target {
            resource: pods,
            namespace: "d".into(),
            name: "p".into(),
            subresource: String::new(),
        };
        let cur = json!({"status": {"phase": "Running"}});
        let new = from_view(
            &target,
            &cur,
            json!({"status": {"phase": "Failed"}, "spec": {}}),
        )
        .unwrap();
        assert_eq!(new["status"]["phase"], "Running");
        let status_target = Target {
            subresource: "status".into(),
            ..target
        };
        let new = from_view(
            &status_target,
            &cur,
            json!({"status": {"phase": "Failed"}, "spec": {"x": 1}}),
        )
        .unwrap();
        assert_eq!(new["status"]["phase"], "Failed");
        assert!(new.get("spec").is_none());
    }
}
