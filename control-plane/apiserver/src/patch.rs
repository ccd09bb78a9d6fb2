//! Patch engines: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! Kubernetes' strategic merge patch, plus the merge used by server-side
//! apply.
//!
//! Strategic merge differs from a JSON merge in lists: lists of objects with
//! a merge key (containers by `name`, container ports by `containerPort`,
//! env by `name`, volumes by `name`, ...) are merged element by element
//! instead of replaced, and the `$patch` / `$deleteFromPrimitiveList` /
//! `$setElementOrder` directives are honoured. The merge keys are those of
//! the Kubernetes types (`patchMergeKey` tags), looked up by field name,
//! which is how they are used across the built-in kinds.

use serde_json::{Map, Value};

pub use kc_client::PatchType;

/// Applies an RFC 6902 JSON patch, all operations or none. As in
/// Kubernetes, a missing member reads as null, so `test` of `null` on a
/// path that does not exist passes (kube-runtime's finalizer helper starts
/// with exactly that test).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut out = target.clone();
    for (i, op) in ops.iter().enumerate() {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
            && out.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut out, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = i;
            e.to_string()
        })?;
    }
    Ok(out)
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// The merge key of the list under `field`, given one of its elements.
pub fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if sample.get("containerPort").is_some() => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Lists of scalars that merge as sets (`patchStrategy:"merge"`).
pub fn is_merged_set(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a strategic merge patch.
pub fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, String> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_maps(t, p, false)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_maps(&Map::new(), p, false)?)),
        _ => Err("a strategic merge patch must be a JSON object".into()),
    }
}

/// The merge used by server-side apply: like a strategic merge, but nothing
/// the applied configuration omits is removed (no `null` deletions needed).
pub fn apply_merge(live: &Value, applied: &Value) -> Result<Value, String> {
    match (live, applied) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_maps(t, p, true)?)),
        _ => Err("an applied configuration must be a JSON object".into()),
    }
}

fn merge_maps(
    target: &Map<String, Value>,
    patch: &Map<String, Value>,
    apply: bool,
) -> Result<Map<String, Value>, String> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut out = patch.clone();
        out.remove("$patch");
        return Ok(out);
    }
    let mut out = target.clone();
    for (key, pv) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (out.get_mut(field), pv) {
                list.retain(|v| !del.contains(v));
            }
            continue;
        }
        match pv {
            Value::Null if !apply => {
                out.remove(key);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    out.remove(key);
                    continue;
                }
                let merged = match out.get(key) {
                    Some(Value::Object(tm)) => merge_maps(tm, pm, apply)?,
                    _ => merge_maps(&Map::new(), pm, apply)?,
                };
                out.insert(key.clone(), Value::Object(merged));
            }
            Value::Array(pl) => {
                let merged = match out.get(key) {
                    Some(Value::Array(tl)) => merge_lists(key, tl, pl, apply)?,
                    _ => merge_lists(key, &[], pl, apply)?,
                };
                out.insert(key.clone(), Value::Array(merged));
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(out)
}

fn merge_lists(
    field: &str,
    target: &[Value],
    patch: &[Value],
    apply: bool,
) -> Result<Vec<Value>, String> {
    if is_merged_set(field) {
        let mut out = target.to_vec();
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(out);
    }
    // `[{"$patch": "replace"}, ...]` replaces the whole list.
    if patch
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .cloned()
            .collect());
    }
    let Some(key) = patch.first().and_then(|s| merge_key(field, s)) else {
        return Ok(patch.iter().map(|v| strip_directives(v.clone())).collect());
    };
    let mut out = target.to_vec();
    for pv in patch {
        let Some(pm) = pv.as_object() else {
            return Err(format!("list {field} must hold objects with {key}"));
        };
        let id = pm.get(key);
        let pos = out.iter().position(|t| t.get(key) == id && id.is_some());
        let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let merged = match &out[i] {
                    Value::Object(tm) => merge_maps(tm, pm, apply)?,
                    _ => pm.clone(),
                };
                out[i] = Value::Object(merged);
            }
            (None, false) => out.push(strip_directives(pv.clone())),
        }
    }
    Ok(out)
}

/// Removes `$`-directives from a value being inserted whole.
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

/// The field set of an object in `FieldsV1` form (`{"f:spec":{"f:replicas":{}}}`),
/// as recorded in `managedFields`. Lists with a merge key are keyed by it
/// (`k:{"name":"c"}`); other lists are owned whole.
pub fn fields_v1(object: &Value) -> Value {
    let mut trimmed = object.clone();
    if let Some(m) = trimmed.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "name",
                "namespace",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(k);
            }
            if meta.is_empty() {
                m.remove("metadata");
            }
        }
    }
    field_tree(&trimmed)
}

/// The FieldsV1 tree of a value, every field included.
pub fn field_tree(value: &Value) -> Value {
    fn walk(field: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(format!("f:{k}"), walk(k, v));
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let Some(key) = items.first().and_then(|s| merge_key(field, s)) else {
                    return Value::Object(Map::new());
                };
                let mut out = Map::new();
                out.insert(".".into(), Value::Object(Map::new()));
                for item in items {
                    let id =
                        serde_json::json!({ key: item.get(key).cloned().unwrap_or(Value::Null) });
                    let mut sub = match walk("", item) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    sub.insert(".".into(), Value::Object(Map::new()));
                    out.insert(format!("k:{id}"), Value::Object(sub));
                }
                Value::Object(out)
            }
            _ => Value::Object(Map::new()),
        }
    }
    walk("", value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"}
        ]}}}, "metadata": {"finalizers": ["f1"], "labels": {"x": "1"}}})
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}}}});
        let out = strategic_merge(&deployment(), &patch).unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn strategic_merge_directives() {
        let patch = json!({
            "metadata": {"finalizers": ["f2"], "labels": {"x": null}},
            "spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}],
                                          "$setElementOrder/containers": [{"name": "a"}]}}}
        });
        let out = strategic_merge(&deployment(), &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert!(out["metadata"]["labels"].get("x").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            out["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
        assert!(strategic_merge(&deployment(), &json!([1])).is_err());
    }

    #[test]
    fn merge_and_json_patch() {
        let out = merge_patch(
            &deployment(),
            &json!({"spec": {"replicas": 3, "template": null}}),
        );
        assert_eq!(out["spec"], json!({"replicas": 3}));
        let out = json_patch(
            &deployment(),
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert!(json_patch(&deployment(), &json!([{"op": "remove", "path": "/nope"}])).is_err());
        // A missing member tests as null; a present one does not.
        let with = json_patch(
            &json!({"metadata": {"name": "cm"}}),
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]},
            ]),
        )
        .unwrap();
        assert_eq!(with["metadata"]["finalizers"], json!(["a/b"]));
        let err = json_patch(
            &with,
            &json!([
                {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
                {"op": "test", "path": "/metadata/finalizers", "value": null},
            ]),
        )
        .unwrap_err();
        assert!(err.contains("operation '/1'"), "{err}");
        assert!(json_patch(&deployment(), &json!({"not": "a list"})).is_err());
    }

    #[test]
    fn apply_keeps_what_is_not_applied() {
        let out = apply_merge(&deployment(), &json!({"spec": {"replicas": 2}})).unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        assert!(out["spec"]["template"].is_object());
    }

    #[test]
    fn field_sets_key_lists_by_merge_key() {
        let f = fields_v1(
            &json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        assert!(f["f:metadata"]["f:labels"]["f:a"].is_object());
        assert!(f["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:image"].is_object());
    }
}
