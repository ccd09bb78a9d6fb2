//! Field ownership for server-side apply: an object's `managedFields` read
//! as sets of field paths per manager (FieldsV1), the conflicts of an apply
//! with other managers (409 unless forced), and ownership moving to whoever
//! changes a field with an update.
//!
//! Pure functions over `serde_json::Value`: no I/O. A manager is identified,
//! as in Kubernetes, by (manager name, operation, subresource): `kubectl`
//! applying and `kubectl` updating are two managers.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::patch;

/// One step of a field path as FieldsV1 writes it: `f:<field>` for a map
/// key, `k:<json>` for a list item identified by its merge key.
pub type Path = Vec<String>;

/// A set of field paths. A path with descendants in the set stands for the
/// existence of that node (FieldsV1's `"."`); a path without stands for its
/// value.
pub type FieldSet = BTreeSet<Path>;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// A manager whose fields an apply would change, and which.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub subresource: String,
    /// Rendered paths (`.spec.replicas`).
    pub fields: Vec<String>,
}

/// Reads a FieldsV1 tree into a set of paths.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    fn walk(prefix: &mut Path, tree: &Value, out: &mut FieldSet) {
        let Some(map) = tree.as_object() else {
            return;
        };
        for (k, v) in map {
            if k == "." {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
                continue;
            }
            prefix.push(k.clone());
            let has_children = v.as_object().is_some_and(|m| !m.is_empty());
            if has_children {
                walk(prefix, v, out);
            } else {
                out.insert(prefix.clone());
            }
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(&mut Vec::new(), tree, &mut out);
    out
}

/// Writes a set of paths as a FieldsV1 tree.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            let child = node
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            node = child.as_object_mut().expect("just made an object");
        }
        // A node that also has children marks its own ownership with ".".
        if set
            .iter()
            .any(|p| p.len() > path.len() && p.starts_with(path))
        {
            node.insert(".".into(), Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

/// The fields of an object that a write through `subresource` may own:
/// `.status` for the status subresource, everything else otherwise.
pub fn fields_of(object: &Value, subresource: &str) -> FieldSet {
    if subresource == "status" {
        let status = json!({ "status": object.get("status").cloned().unwrap_or(Value::Null) });
        let tree = patch::field_tree(&status);
        return from_fields_v1(&tree);
    }
    from_fields_v1(&patch::fields_v1(object))
}

/// Whether `path` has descendants in `set` (it stands for a node's existence).
fn is_node(set: &FieldSet, path: &Path) -> bool {
    set.range(path.clone()..)
        .nth(1)
        .is_some_and(|p| p.len() > path.len() && p.starts_with(path))
}

/// Matches a list item against a `k:` key.
fn item_matches(item: &Value, key: &Value) -> bool {
    key.as_object()
        .is_some_and(|k| k.iter().all(|(f, v)| item.get(f) == Some(v)))
}

/// The value at a path, if the object has it.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = object;
    for seg in path {
        cur = if let Some(field) = seg.strip_prefix("f:") {
            cur.as_object()?.get(field)?
        } else if let Some(key) = seg.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).ok()?;
            cur.as_array()?.iter().find(|i| item_matches(i, &key))?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes what a path points at (a map key or a list item), if present.
pub fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = object;
    for seg in parent_path {
        let next = if let Some(field) = seg.strip_prefix("f:") {
            cur.as_object_mut().and_then(|m| m.get_mut(field))
        } else if let Some(key) = seg.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Value>(key) else {
                return;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| item_matches(i, &key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:")
        && let (Ok(key), Some(list)) = (serde_json::from_str::<Value>(key), cur.as_array_mut())
    {
        list.retain(|i| !item_matches(i, &key));
    }
}

/// Whether `path` differs between two objects: by value for a leaf, by
/// existence for a node.
fn differs(a: &Value, b: &Value, path: &Path, node: bool) -> bool {
    match (value_at(a, path), value_at(b, path)) {
        (Some(x), Some(y)) => !node && x != y,
        (None, None) => false,
        _ => true,
    }
}

/// The paths whose value (leaves) or existence (nodes) differs between the
/// old and new object, as seen through `subresource`.
pub fn changed(old: &Value, new: &Value, subresource: &str) -> FieldSet {
    let mut all = fields_of(old, subresource);
    all.extend(fields_of(new, subresource));
    all.iter()
        .filter(|p| differs(old, new, p, is_node(&all, p)))
        .cloned()
        .collect()
}

/// Renders a path as Kubernetes prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`.
pub fn render(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if let Some(field) = seg.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = seg.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_else(|_| vec![key.to_string()]);
            out.push_str(&format!("[{}]", parts.join(",")));
        } else {
            out.push_str(&format!("[{seg}]"));
        }
    }
    out
}

/// Reads an object's `managedFields` (entries that are not FieldsV1 or not
/// objects are dropped).
pub fn entries(object: &Value) -> Vec<Entry> {
    let str_of = |e: &Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    object["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|e| e.is_object())
                .map(|e| Entry {
                    manager: str_of(e, "manager"),
                    operation: str_of(e, "operation"),
                    subresource: str_of(e, "subresource"),
                    api_version: str_of(e, "apiVersion"),
                    time: str_of(e, "time"),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes entries as a `managedFields` list (entries owning nothing are
/// left out, like Kubernetes does).
pub fn to_value(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": to_fields_v1(&e.fields),
                });
                if !e.subresource.is_empty() {
                    v["subresource"] = json!(e.subresource);
                }
                v
            })
            .collect(),
    )
}

/// Who writes and how, for recording ownership.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub subresource: &'a str,
    pub api_version: String,
    pub time: String,
}

impl Writer<'_> {
    fn entry<'e>(&self, entries: &'e mut Vec<Entry>, operation: &str) -> &'e mut Entry {
        let pos = entries
            .iter()
            .position(|e| e.is(self.manager, operation, self.subresource));
        let i = match pos {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    manager: self.manager.to_string(),
                    operation: operation.to_string(),
                    subresource: self.subresource.to_string(),
                    api_version: self.api_version.clone(),
                    time: String::new(),
                    fields: FieldSet::new(),
                });
                entries.len() - 1
            }
        };
        let e = &mut entries[i];
        e.api_version = self.api_version.clone();
        e.time = self.time.clone();
        e
    }
}

/// An update (create, PUT, non-apply PATCH) changed `changed`: the writer
/// owns them now and every other manager loses them; removed fields are
/// owned by nobody.
pub fn record_update(entries: &mut Vec<Entry>, writer: &Writer, changed: &FieldSet, new: &Value) {
    if changed.is_empty() {
        return;
    }
    for e in entries.iter_mut() {
        e.fields.retain(|p| !changed.contains(p));
    }
    let gained: Vec<Path> = changed
        .iter()
        .filter(|p| value_at(new, p).is_some())
        .cloned()
        .collect();
    writer.entry(entries, "Update").fields.extend(gained);
    entries.retain(|e| !e.fields.is_empty());
}

/// What an apply does to ownership: the new entries and the fields to
/// remove from the object (applied before, no longer applied, owned by
/// nobody else).
#[derive(Debug)]
pub struct Applied {
    pub entries: Vec<Entry>,
    pub removed: Vec<Path>,
}

/// An apply by `writer` of the fields `applied`, turning `live` into
/// `merged`: conflicts with other managers owning an applied field whose
/// value changes, unless `force` (then they lose it). Managers owning an
/// applied field with the same value share it.
pub fn record_apply(
    mut entries: Vec<Entry>,
    writer: &Writer,
    applied: &FieldSet,
    live: &Value,
    merged: &Value,
    force: bool,
) -> Result<Applied, Vec<Conflict>> {
    let mut conflicts = Vec::new();
    for e in entries.iter_mut() {
        if e.is(writer.manager, "Apply", writer.subresource) {
            continue;
        }
        let clashing: Vec<Path> = e
            .fields
            .intersection(applied)
            .filter(|p| differs(live, merged, p, is_node(applied, p)))
            .cloned()
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if force {
            e.fields.retain(|p| !clashing.contains(p));
        } else {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                fields: clashing.iter().map(|p| render(p)).collect(),
            });
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let previous = entries
        .iter()
        .find(|e| e.is(writer.manager, "Apply", writer.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !e.is(writer.manager, "Apply", writer.subresource))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    // Deepest first, so a removed node's children go before the node.
    let mut removed: Vec<Path> = previous
        .difference(applied)
        .filter(|p| !others.contains(*p) && !others.iter().any(|o| o.starts_with(p)))
        .cloned()
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    writer.entry(&mut entries, "Apply").fields = applied.clone();
    entries.retain(|e| !e.fields.is_empty());
    Ok(Applied { entries, removed })
}

/// The message of a conflict Status, like Kubernetes':
/// `Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas`.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let n: usize = conflicts.iter().map(|c| c.fields.len()).sum();
    let mut parts = Vec::new();
    for c in conflicts {
        let who = conflict_owner(c);
        if c.fields.len() == 1 {
            parts.push(format!("conflict with {who}: {}", c.fields[0]));
        } else {
            let list: Vec<String> = c.fields.iter().map(|f| format!("- {f}")).collect();
            parts.push(format!("conflicts with {who}:\n{}", list.join("\n")));
        }
    }
    format!(
        "Apply failed with {n} conflict{}: {}",
        if n == 1 { "" } else { "s" },
        parts.join("\n")
    )
}

/// `"kubectl" using apps/v1` or `"m" with subresource "scale" using apps/v1`.
pub fn conflict_owner(c: &Conflict) -> String {
    if c.subresource.is_empty() {
        format!("\"{}\" using {}", c.manager, c.api_version)
    } else {
        format!(
            "\"{}\" with subresource \"{}\" using {}",
            c.manager, c.subresource, c.api_version
        )
    }
}

/// `managedFields` without the times, to tell whether ownership changed.
pub fn ownership(object: &Value) -> Value {
    let mut list = object["metadata"]["managedFields"].clone();
    if let Some(items) = list.as_array_mut() {
        for e in items.iter_mut().filter_map(Value::as_object_mut) {
            e.remove("time");
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Path {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn writer(m: &str) -> Writer<'_> {
        Writer {
            manager: m,
            subresource: "",
            api_version: "apps/v1".into(),
            time: "t".into(),
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn fields_v1_round_trips_through_path_sets() {
        let tree = patch::fields_v1(&deployment(1, "a"));
        let set = from_fields_v1(&tree);
        assert!(set.contains(&path(&["f:spec", "f:replicas"])));
        assert!(set.contains(&path(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}"
        ])));
        assert_eq!(to_fields_v1(&set), tree);
    }

    #[test]
    fn values_are_found_and_removed_by_path() {
        let mut d = deployment(2, "a");
        let image = path(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:image",
        ]);
        assert_eq!(value_at(&d, &image), Some(&json!("a")));
        assert_eq!(
            render(&image),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        remove_at(&mut d, &image[..5]);
        assert_eq!(d["spec"]["template"]["spec"]["containers"], json!([]));
        remove_at(&mut d, &path(&["f:metadata", "f:labels", "f:app"]));
        assert_eq!(d["metadata"]["labels"], json!({}));
        assert!(value_at(&d, &path(&["f:nope", "k:garbage"])).is_none());
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let applied = fields_of(&deployment(1, "a"), "");
        let mut entries = record_apply(
            vec![],
            &writer("kubectl"),
            &applied,
            &json!({}),
            &deployment(1, "a"),
            false,
        )
        .unwrap()
        .entries;
        let new = deployment(3, "a");
        let ch = changed(&deployment(1, "a"), &new, "");
        assert_eq!(ch, FieldSet::from([path(&["f:spec", "f:replicas"])]));
        let scaler = Writer {
            subresource: "scale",
            ..writer("kubectl")
        };
        record_update(&mut entries, &scaler, &ch, &new);
        assert_eq!(entries.len(), 2);
        assert!(!entries[0].fields.contains(&path(&["f:spec", "f:replicas"])));
        assert_eq!(entries[1].operation, "Update");
        assert_eq!(entries[1].subresource, "scale");
        // Applying replicas 1 again conflicts with the scaler...
        let conflicts = record_apply(
            entries.clone(),
            &writer("kubectl"),
            &applied,
            &new,
            &deployment(1, "a"),
            false,
        )
        .unwrap_err();
        assert_eq!(conflicts[0].fields, vec![".spec.replicas".to_string()]);
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
        );
        // ...applying the live value shares it, forcing takes it.
        assert!(
            record_apply(
                entries.clone(),
                &writer("kubectl"),
                &applied,
                &new,
                &deployment(3, "a"),
                false
            )
            .is_ok()
        );
        let forced = record_apply(
            entries,
            &writer("kubectl"),
            &applied,
            &new,
            &deployment(1, "a"),
            true,
        )
        .unwrap();
        assert_eq!(forced.entries.len(), 1);
        assert_eq!(forced.entries[0].operation, "Apply");
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let first = fields_of(&deployment(1, "a"), "");
        let owned = record_apply(
            vec![],
            &writer("a"),
            &first,
            &json!({}),
            &deployment(1, "a"),
            false,
        )
        .unwrap()
        .entries;
        let mut second_obj = deployment(1, "a");
        second_obj["metadata"]["labels"] = json!({});
        let second = fields_of(&second_obj, "");
        let out = record_apply(
            owned,
            &writer("a"),
            &second,
            &deployment(1, "a"),
            &deployment(1, "a"),
            false,
        )
        .unwrap();
        assert!(
            out.removed
                .contains(&path(&["f:metadata", "f:labels", "f:app"]))
        );
        assert!(!out.removed.contains(&path(&["f:spec", "f:replicas"])));
        let v = to_value(&out.entries);
        assert_eq!(entries(&json!({"metadata": {"managedFields": v}})).len(), 1);
    }
}
