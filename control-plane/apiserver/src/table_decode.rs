//! Decoding stored objects for Table rows: only what the columns and the
//! row's PartialObjectMetadata read is built as `Value`s; the rest of the
//! stored JSON is parsed and skipped without allocating. A pod's spec
//! (containers with their env, ports, probes, volumes...) is most of it, and
//! its columns read only the number of containers and the node name.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::registry::Resource;
use super::status::ApiError;

/// What to keep of a JSON value.
#[derive(Debug)]
pub enum Keep {
    /// All of it.
    All,
    /// Only a list's length: its items become nulls.
    Count,
    /// These fields of an object, each by its own rule; others are skipped.
    Fields(&'static [(&'static str, Keep)]),
}

/// What a pod's row reads (`table::pod_cells`, `table::pod_status`).
static POD: Keep = Keep::Fields(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", Keep::All),
    (
        "spec",
        Keep::Fields(&[
            ("containers", Keep::Count),
            ("initContainers", Keep::Count),
            ("readinessGates", Keep::Count),
            ("nodeName", Keep::All),
        ]),
    ),
    ("status", Keep::All),
]);

/// What to keep of `resource`'s objects for a Table, or None to keep all.
/// Only for lists without a field selector (those may read any field).
pub fn table_keep(resource: &Resource) -> Option<&'static Keep> {
    match (resource.group, resource.kind) {
        ("", "Pod") => Some(&POD),
        _ => None,
    }
}

struct Seed<'k>(&'k Keep);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Keep::All => Value::deserialize(d),
            keep => d.deserialize_any(Pruned(keep)),
        }
    }
}

/// Visits a value kept as `Count` or `Fields`: anything else is null.
struct Pruned<'k>(&'k Keep);

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(match self.0 {
            Keep::Count => Value::Array(vec![Value::Null; n]),
            _ => Value::Null,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Keep::Fields(fields) = self.0 else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match fields.iter().find(|(name, _)| *name == key) {
                Some((_, keep)) => {
                    let v = map.next_value_seed(Seed(keep))?;
                    out.insert(key, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Decodes a stored object keeping only `keep`, with its resourceVersion
/// set like `Storage::decode`.
pub fn decode(kv: &kc_store_api::api::KeyValue, keep: &Keep) -> Result<Value, ApiError> {
    let fail = |e: serde_json::Error| {
        ApiError::internal(format!(
            "stored object {} is not JSON: {e}",
            String::from_utf8_lossy(&kv.key)
        ))
    };
    let mut de = serde_json::Deserializer::from_slice(&kv.value);
    let mut object = Seed(keep).deserialize(&mut de).map_err(fail)?;
    de.end().map_err(fail)?;
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_keep_what_their_rows_read() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "env": [{"name": "X"}]}, {"name": "d"}],
                     "volumes": [{"name": "v"}], "restartPolicy": "Always"},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}]}});
        let kv = kc_store_api::api::KeyValue {
            key: b"k".to_vec(),
            value: serde_json::to_vec(&pod).unwrap(),
            create_revision: 1,
            mod_revision: 7,
            version: 1,
            lease: 0,
        };
        let got = decode(&kv, &POD).unwrap();
        assert_eq!(got["metadata"]["labels"]["a"], "b");
        assert_eq!(got["metadata"]["resourceVersion"], "7");
        assert_eq!(
            got["spec"],
            json!({"nodeName": "n1", "containers": [null, null]})
        );
        assert_eq!(got["status"], pod["status"]);
        // The row is the same as from the whole object.
        let pods = super::super::registry::lookup("", "v1", "pods").unwrap();
        let now = super::super::clock::now();
        let mut whole = pod.clone();
        whole["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(
            super::super::table::row(pods, &got, now),
            super::super::table::row(pods, &whole, now)
        );
        let bad = kc_store_api::api::KeyValue {
            value: b"{\"spec\": [".to_vec(),
            ..kv
        };
        assert!(decode(&bad, &POD).is_err());
    }
}
