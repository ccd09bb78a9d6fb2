//! Structural OpenAPI v3 schemas of custom resources, as
//! apiextensions-apiserver applies them: pruning of fields the schema does
//! not name, defaulting, and validation with Kubernetes' messages.
//!
//! Schemas are `serde_json::Value`s as written in the CRD (`type`,
//! `properties`, `items`, `additionalProperties`, `required`, `enum`,
//! `minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`,
//! `minLength`/`maxLength`, `pattern`, `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `nullable`, `default`, `format`,
//! `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-embedded-resource`). At the root of a custom resource
//! `apiVersion`, `kind` and `metadata` are always kept (metadata is the API
//! server's, checked by its generic rules).

use serde_json::{Map, Value};

use crate::status::Cause;

/// The fields of an object the schema keeps: its properties, every key
/// when `additionalProperties` is a schema or true, or everything when it
/// preserves unknown fields.
enum Keeps<'a> {
    All,
    Named(&'a Map<String, Value>),
    Additional(&'a Value),
}

fn keeps(schema: &Value) -> Keeps<'_> {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return Keeps::All;
    }
    match &schema["additionalProperties"] {
        Value::Bool(true) => Keeps::All,
        s @ Value::Object(_) => Keeps::Additional(s),
        _ => match schema["properties"].as_object() {
            Some(props) => Keeps::Named(props),
            None if schema["x-kubernetes-embedded-resource"] == true => Keeps::All,
            None => Keeps::Named(empty()),
        },
    }
}

fn empty() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes what `schema` does not describe; returns the removed fields'
/// paths (`spec.foo`), which Kubernetes reports as unknown fields. The root
/// is a resource: its apiVersion, kind and metadata are the API server's.
pub fn prune(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(schema, value, "", true, &mut removed);
    removed
}

/// `resource`: `value` is a whole object (the root, or an
/// `x-kubernetes-embedded-resource`), whose apiVersion, kind and metadata
/// are kept as they are.
fn prune_at(
    schema: &Value,
    value: &mut Value,
    path: &str,
    resource: bool,
    removed: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            let rule = keeps(schema);
            map.retain(|key, v| {
                if resource && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    return true;
                }
                let sub = match &rule {
                    Keeps::All => schema["properties"].get(key),
                    Keeps::Named(props) => match props.get(key) {
                        Some(s) => Some(s),
                        None => {
                            removed.push(join(path, key));
                            return false;
                        }
                    },
                    Keeps::Additional(s) => Some(*s),
                };
                if let Some(sub) = sub {
                    let embedded = sub["x-kubernetes-embedded-resource"] == true;
                    prune_at(sub, v, &join(path, key), embedded, removed);
                }
                true
            });
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items").filter(|i| i.is_object()) {
                let embedded = item["x-kubernetes-embedded-resource"] == true;
                for (i, v) in items.iter_mut().enumerate() {
                    prune_at(item, v, &format!("{path}[{i}]"), embedded, removed);
                }
            }
        }
        _ => {}
    }
}

/// Fills in the schema's `default`s of absent fields (and of nulls where
/// the field is not nullable), outside in, as Kubernetes defaults.
pub fn default(schema: &Value, value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for v in items.iter_mut() {
                default(item, v);
            }
        }
        return;
    };
    if let Some(props) = schema["properties"].as_object() {
        for (key, sub) in props {
            let absent = match map.get(key) {
                None => true,
                Some(Value::Null) => sub["nullable"] != true,
                Some(_) => false,
            };
            if absent && let Some(d) = sub.get("default") {
                map.insert(key.clone(), d.clone());
            }
            if let Some(v) = map.get_mut(key) {
                default(sub, v);
            }
        }
    }
    if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
        for v in map.values_mut() {
            default(sub, v);
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match (ty, v) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => ty == type_name(v),
    }
}

/// Appends to `causes` every way `value` (at `path`) breaks `schema`.
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            causes.push(Cause::invalid_value(
                path,
                value,
                &format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !matches!(type_name(value), "integer" | "string") {
            causes.push(Cause::invalid_value(
                path,
                value,
                &format!(
                    "{path} in body must be of type integer,string: \"{}\"",
                    type_name(value)
                ),
            ));
            return;
        }
    } else if let Some(ty) = schema["type"].as_str()
        && !type_matches(ty, value)
    {
        causes.push(Cause::invalid_value(
            path,
            value,
            &format!(
                "{path} in body must be of type {ty}: \"{}\"",
                type_name(value)
            ),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    match value {
        Value::Number(n) => validate_number(schema, n.as_f64().unwrap_or(0.0), value, path, causes),
        Value::String(s) => validate_string(schema, s, value, path, causes),
        Value::Array(items) => {
            let n = items.len() as i64;
            if let Some(max) = schema["maxItems"].as_i64()
                && n > max
            {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(min) = schema["minItems"].as_i64()
                && n < min
            {
                causes.push(Cause::invalid_value(
                    path,
                    &Value::from(n),
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(item) = schema.get("items").filter(|i| i.is_object()) {
                for (i, v) in items.iter().enumerate() {
                    validate(item, v, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(map) => validate_object(schema, map, path, causes),
        _ => {}
    }
}

fn validate_number(schema: &Value, n: f64, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(min) = schema["minimum"].as_f64() {
        let exclusive = schema["exclusiveMinimum"] == true;
        if n < min || (exclusive && n == min) {
            let how = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(Cause::invalid_value(
                path,
                value,
                &format!("{path} in body should be {how} {}", schema["minimum"]),
            ));
        }
    }
    if let Some(max) = schema["maximum"].as_f64() {
        let exclusive = schema["exclusiveMaximum"] == true;
        if n > max || (exclusive && n == max) {
            let how = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(Cause::invalid_value(
                path,
                value,
                &format!("{path} in body should be {how} {}", schema["maximum"]),
            ));
        }
    }
    if let Some(m) = schema["multipleOf"].as_f64()
        && m > 0.0
        && (n / m).fract() != 0.0
    {
        causes.push(Cause::invalid_value(
            path,
            value,
            &format!(
                "{path} in body should be a multiple of {}",
                schema["multipleOf"]
            ),
        ));
    }
}

fn validate_string(schema: &Value, s: &str, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count() as i64;
    if let Some(max) = schema["maxLength"].as_i64()
        && len > max
    {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema["minLength"].as_i64()
        && len < min
    {
        causes.push(Cause::invalid_value(
            path,
            value,
            &format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => causes.push(Cause::invalid_value(
                path,
                value,
                &format!("{path} in body should match '{pattern}'"),
            )),
            _ => {}
        }
    }
    if let Some(format) = schema["format"].as_str()
        && !format_matches(format, s)
    {
        causes.push(Cause::invalid_value(
            path,
            value,
            &format!("{path} in body must be of type {format}: {value}"),
        ));
    }
}

/// The formats Kubernetes checks that matter most to CRDs; others pass.
fn format_matches(format: &str, s: &str) -> bool {
    match format {
        "int32" | "int64" | "byte" | "" => true,
        "date-time" => {
            k8s_openapi::jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%:z", s).is_ok()
                || s.parse::<k8s_openapi::jiff::Timestamp>().is_ok()
        }
        "date" => s.len() == 10 && k8s_openapi::jiff::civil::Date::strptime("%Y-%m-%d", s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        _ => true,
    }
}

fn validate_object(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    for key in schema["required"].as_array().into_iter().flatten() {
        if let Some(k) = key.as_str()
            && map.get(k).is_none_or(Value::is_null)
            && !(path.is_empty() && matches!(k, "apiVersion" | "kind" | "metadata"))
        {
            causes.push(Cause::required(&join(path, k)));
        }
    }
    let n = map.len() as i64;
    if let Some(max) = schema["maxProperties"].as_i64()
        && n > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {n}: must have at most {max} items"),
        ));
    }
    if let Some(min) = schema["minProperties"].as_i64()
        && n < min
    {
        causes.push(Cause::invalid_value(
            path,
            &Value::from(n),
            &format!("{path} in body should have at least {min} properties"),
        ));
    }
    for (key, v) in map {
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let sub = schema["properties"]
            .get(key)
            .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
        if let Some(sub) = sub {
            validate(sub, v, &join(path, key), causes);
        }
    }
}

/// Whether a CRD's schema is one kc can serve: an object at the root,
/// every node typed (or int-or-string, or preserving unknown fields), and
/// patterns that compile. Returns the causes, Kubernetes' wording.
pub fn check_structural(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    check_node(schema, path, true, causes);
}

fn check_node(schema: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    let Some(map) = schema.as_object() else {
        causes.push(Cause::invalid_value(path, schema, "must be an object"));
        return;
    };
    let typed = map.get("type").and_then(Value::as_str);
    let free = schema["x-kubernetes-int-or-string"] == true
        || schema["x-kubernetes-preserve-unknown-fields"] == true;
    if typed.is_none() && !free {
        causes.push(Cause::required(&format!("{path}.type")));
    }
    if root && typed.is_some_and(|t| t != "object") {
        causes.push(Cause::invalid_value(
            &format!("{path}.type"),
            &schema["type"],
            "must be object at the root",
        ));
    }
    if let Some(t) = typed
        && !matches!(
            t,
            "object" | "array" | "string" | "integer" | "number" | "boolean"
        )
    {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            &format!("{path}.type"),
            format!(
                "Unsupported value: {}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"",
                schema["type"]
            ),
        ));
    }
    if let Some(p) = map.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(p).is_err()
    {
        causes.push(Cause::invalid_value(
            &format!("{path}.pattern"),
            &schema["pattern"],
            "must be a valid regular expression",
        ));
    }
    if typed == Some("array") && !map.get("items").is_some_and(Value::is_object) {
        causes.push(Cause::required(&format!("{path}.items")));
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            check_node(sub, &format!("{path}.properties[{k}]"), false, causes);
        }
    }
    if let Some(items) = map.get("items").filter(|i| i.is_object()) {
        check_node(items, &format!("{path}.items"), false, causes);
    }
    if let Some(extra) = map.get("additionalProperties").filter(|i| i.is_object()) {
        if map.contains_key("properties") {
            causes.push(Cause::forbidden(
                &format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        check_node(
            extra,
            &format!("{path}.additionalProperties"),
            false,
            causes,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        }})
    }

    fn causes(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        validate(&schema(), v, "", &mut out);
        out.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported_but_preserved_where_asked() {
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": 1, "extra": 1, "free": {"any": {"thing": 1}}, "labels": {"a": "b"}},
            "junk": true});
        let removed = prune(&schema(), &mut v);
        assert_eq!(removed, vec!["junk".to_string(), "spec.extra".to_string()]);
        assert_eq!(v["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(v["spec"]["labels"]["a"], "b");
        assert_eq!(v["metadata"]["name"], "a");
    }

    #[test]
    fn embedded_resources_keep_their_type_and_metadata() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}}}}});
        let mut v = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {}, "junk": 1}}});
        assert_eq!(
            prune(&schema, &mut v),
            vec!["spec.template.junk".to_string()]
        );
        assert_eq!(v["spec"]["template"]["metadata"]["labels"]["a"], "b");
        assert_eq!(v["spec"]["template"]["kind"], "Pod");
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let mut v = json!({"spec": {"size": 2}});
        default(&schema(), &mut v);
        assert_eq!(v["spec"]["color"], "red");
    }

    #[test]
    fn validation_speaks_kubernetes() {
        assert!(causes(&json!({"spec": {"size": 3, "port": "http"}})).is_empty());
        assert_eq!(
            causes(&json!({"spec": {"size": "big"}})),
            vec![
                r#"spec.size: Invalid value: "big": spec.size in body must be of type integer: "string""#
            ]
        );
        assert_eq!(
            causes(&json!({"spec": {}})),
            vec!["spec.size: Required value"]
        );
        assert_eq!(
            causes(
                &json!({"spec": {"size": 11, "color": "pink", "name": "ABCDEF", "tags": ["a", "b", "c"]}})
            ),
            vec![
                r#"spec.color: Unsupported value: "pink": supported values: "red", "green""#,
                "spec.name: Too long: may not be more than 5 bytes",
                r#"spec.name: Invalid value: "ABCDEF": spec.name in body should match '^[a-z]+$'"#,
                "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
                "spec.tags: Too many: 3: must have at most 2 items",
            ]
        );
    }

    #[test]
    fn schemas_must_be_structural() {
        let mut out = Vec::new();
        check_structural(
            &json!({"type": "object", "properties": {"a": {}, "b": {"type": "array"}, "c": {"type": "wat"}}}),
            "spec.versions[0].schema.openAPIV3Schema",
            &mut out,
        );
        let fields: Vec<&str> = out.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[a].type",
                "spec.versions[0].schema.openAPIV3Schema.properties[b].items",
                "spec.versions[0].schema.openAPIV3Schema.properties[c].type",
            ]
        );
    }
}
