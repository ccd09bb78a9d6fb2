//! Metadata-only renderings: `PartialObjectMetadata` and
//! `PartialObjectMetadataList` (`meta.k8s.io`), what a client asks for
//! with `Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`
//! (client-go's metadata informers, the garbage collectors of other tools).
//! Each object keeps only its `metadata`.

use serde_json::{Value, json};

/// `object` as a `PartialObjectMetadata` of `meta.k8s.io/<version>`.
pub fn object(object: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// `items` as a `PartialObjectMetadataList` with list metadata `meta`.
pub fn list(items: &[Value], meta: Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": meta,
        "items": items.iter().map(|i| object(i, version)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metadata_is_kept() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let p = object(&cm, "v1");
        assert_eq!(p["kind"], "PartialObjectMetadata");
        assert_eq!(p["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(p["metadata"]["labels"]["x"], "1");
        assert!(p.get("data").is_none());
        let l = list(&[cm], json!({"resourceVersion": "7"}), "v1");
        assert_eq!(l["kind"], "PartialObjectMetadataList");
        assert_eq!(l["metadata"]["resourceVersion"], "7");
        assert_eq!(l["items"][0]["metadata"]["name"], "a");
    }
}
