//! `additionalPrinterColumns`: the Table columns of a custom resource, each
//! a JSONPath into the object (`.spec.replicas`, `.status.conditions[0]`,
//! `.status.conditions[?(@.type=="Ready")].status`), typed `string`,
//! `integer`, `number`, `boolean` or `date` (shown as an age).

use serde_json::{Value, json};

/// One printer column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

impl Column {
    /// The columns of a CRD version; none given means Kubernetes' default
    /// (an Age column after the name).
    pub fn all_of(list: &Value) -> Vec<Column> {
        let given: Vec<Column> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c["name"].as_str().unwrap_or("").to_string(),
                type_: c["type"].as_str().unwrap_or("string").to_string(),
                format: c["format"].as_str().unwrap_or("").to_string(),
                description: c["description"].as_str().unwrap_or("").to_string(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        if !given.is_empty() {
            return given;
        }
        vec![Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }]
    }
}

/// The Table's column definitions: the name, then the CRD's columns.
pub fn definitions(columns: &[Column]) -> Vec<Value> {
    let name = json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0});
    std::iter::once(name)
        .chain(columns.iter().map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format,
                "description": c.description, "priority": c.priority})
        }))
        .collect()
}

/// One row's cells; `age` renders a timestamp as kubectl's age.
pub fn cells(columns: &[Column], object: &Value, age: impl Fn(&Value) -> String) -> Vec<Value> {
    let name = object["metadata"]["name"].clone();
    std::iter::once(name)
        .chain(columns.iter().map(|c| {
            let found = evaluate(&c.json_path, object);
            match (c.type_.as_str(), found) {
                (_, None) => Value::Null,
                ("date", Some(v)) => json!(age(&v)),
                ("integer", Some(v)) if v.is_number() => v,
                ("number", Some(v)) if v.is_number() => v,
                ("boolean", Some(v)) if v.is_boolean() => v,
                (_, Some(Value::String(s))) => json!(s),
                (_, Some(v)) => json!(v.to_string()),
            }
        }))
        .collect()
}

/// The first value `path` reaches in `object` (None: nothing there).
pub fn evaluate(path: &str, object: &Value) -> Option<Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current = vec![object.clone()];
    let mut rest = path.strip_prefix('.').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            current = current
                .into_iter()
                .flat_map(|v| select(&v, inner))
                .collect();
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let field = &rest[..end];
            rest = &rest[end..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            current = current
                .into_iter()
                .filter_map(|v| v.get(field).cloned())
                .collect();
        }
        if current.is_empty() {
            return None;
        }
    }
    current.into_iter().next()
}

/// `[n]`, `[*]` or `[?(@.field=="value")]` of an array.
fn select(v: &Value, inner: &str) -> Vec<Value> {
    let Some(items) = v.as_array() else {
        return Vec::new();
    };
    if inner == "*" {
        return items.clone();
    }
    if let Ok(i) = inner.parse::<i64>() {
        let i = if i < 0 { items.len() as i64 + i } else { i };
        return items.get(i as usize).cloned().into_iter().collect();
    }
    let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) else {
        return Vec::new();
    };
    let Some((field, wanted)) = filter.split_once("==") else {
        return Vec::new();
    };
    let wanted = wanted.trim().trim_matches(|c| c == '"' || c == '\'');
    items
        .iter()
        .filter(|item| {
            evaluate(&format!(".{}", field.trim()), item).is_some_and(|v| match v {
                Value::String(s) => s == wanted,
                other => serde_json::to_string(&other).is_ok_and(|t| t == wanted),
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_reach_fields_indexes_and_filters() {
        let o = json!({"spec": {"replicas": 3},
            "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(evaluate(".spec.replicas", &o), Some(json!(3)));
        assert_eq!(
            evaluate(".status.conditions[1].type", &o),
            Some(json!("Ready"))
        );
        assert_eq!(
            evaluate(r#".status.conditions[?(@.type=="Ready")].status"#, &o),
            Some(json!("True"))
        );
        assert_eq!(evaluate(".spec.missing", &o), None);
    }

    #[test]
    fn cells_follow_the_column_types() {
        let cols = Column::all_of(&json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]));
        let o =
            json!({"metadata": {"name": "a", "creationTimestamp": "t"}, "spec": {"replicas": 2}});
        assert_eq!(
            cells(&cols, &o, |_| "5m".into()),
            vec![json!("a"), json!(2), Value::Null, json!("5m")]
        );
        assert_eq!(definitions(&cols).len(), 4);
        assert_eq!(Column::all_of(&Value::Null)[0].name, "Age");
    }
}
