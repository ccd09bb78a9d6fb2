//! Content negotiation: what representation a client's `Accept` header asks
//! for.
//!
//! Kubernetes clients ask for alternative renderings of the same data with
//! media-type parameters: `as=Table;g=meta.k8s.io;v=v1` for server-side
//! printing (kubectl get), `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;
//! v=v2` for aggregated discovery, `as=PartialObjectMetadataList;
//! g=meta.k8s.io;v=v1` for metadata only (`partial`). The first alternative
//! we can produce wins; plain JSON is always possible.

/// What to send back for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The object(s) as JSON.
    Json,
    /// A `meta.k8s.io` Table of the given version (`v1` or `v1beta1`).
    Table(&'static str),
    /// Aggregated discovery of the given `apidiscovery.k8s.io` version.
    Discovery(&'static str),
    /// Metadata only: `PartialObjectMetadata(List)` of the given
    /// `meta.k8s.io` version (metadata informers, garbage collectors).
    Metadata(&'static str),
}

/// One media range of an Accept header, with its parameters.
struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> MediaRange<'a> {
    fn parse(s: &'a str) -> Self {
        let mut parts = s.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("");
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        Self { essence, params }
    }

    fn param(&self, key: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn is_json(&self) -> bool {
        matches!(
            self.essence,
            "application/json" | "application/*" | "*/*" | ""
        )
    }
}

/// Chooses the rendering for `accept` (the raw header; absent = JSON).
pub fn choose(accept: Option<&str>) -> Rendering {
    let Some(accept) = accept else {
        return Rendering::Json;
    };
    for range in accept.split(',').map(MediaRange::parse) {
        if !range.is_json() {
            continue;
        }
        match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => return Rendering::Json,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Rendering::Table("v1"),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Rendering::Table("v1beta1");
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some(v @ ("v1" | "v1beta1")),
            ) => return Rendering::Metadata(if v == "v1" { "v1" } else { "v1beta1" }),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return Rendering::Discovery("v2");
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return Rendering::Discovery("v2beta1");
            }
            _ => continue,
        }
    }
    Rendering::Json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(choose(Some(accept)), Rendering::Table("v1"));
    }

    #[test]
    fn discovery_version_follows_the_first_acceptable_alternative() {
        let v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(choose(Some(v2)), Rendering::Discovery("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(choose(Some(old)), Rendering::Discovery("v2beta1"));
    }

    #[test]
    fn metadata_informers_ask_for_partial_object_metadata() {
        let list =
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(choose(Some(list)), Rendering::Metadata("v1"));
        let one = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1";
        assert_eq!(choose(Some(one)), Rendering::Metadata("v1beta1"));
    }

    #[test]
    fn protobuf_and_plain_fall_back_to_json() {
        assert_eq!(
            choose(Some("application/vnd.kubernetes.protobuf,application/json")),
            Rendering::Json
        );
        assert_eq!(choose(Some("application/json, */*")), Rendering::Json);
        assert_eq!(choose(None), Rendering::Json);
        assert_eq!(choose(Some(";;;,,=")), Rendering::Json);
    }
}
