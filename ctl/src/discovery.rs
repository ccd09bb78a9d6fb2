//! Resource discovery: which resources the server serves (from the legacy
//! discovery documents `/api/v1`, `/apis`, `/apis/<group>/<version>`) and
//! how a word the user typed (`po`, `pods`, `pod`, `Pod`,
//! `deployments.apps`) names one of them. Matching is pure and tested apart
//! from the fetching.

use anyhow::{Result, anyhow};
use serde_json::Value;

use crate::client::Client;

/// One resource the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub subresources: Vec<String>,
    /// Categories such as `all` (`kcctl get all`).
    pub categories: Vec<String>,
}

impl ApiResource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`: how kubectl names the resource in
    /// messages such as `deployments.apps "web" not found`.
    pub fn qualified_plural(&self) -> String {
        qualify(&self.plural, &self.group)
    }

    /// `pod` or `deployment.apps`: the prefix of `-o name` and of
    /// `pod/x created`.
    pub fn qualified_kind(&self) -> String {
        qualify(&self.kind.to_lowercase(), &self.group)
    }

    fn base(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection path, in `namespace` for namespaced resources
    /// (`None` = all namespaces).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}/namespaces/{ns}/{}", self.base(), self.plural),
            _ => format!("{}/{}", self.base(), self.plural),
        }
    }

    /// The path of one object.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.collection_path(Some(namespace)))
    }
}

fn qualify(word: &str, group: &str) -> String {
    if group.is_empty() {
        word.to_string()
    } else {
        format!("{word}.{group}")
    }
}

/// Everything the server serves.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub resources: Vec<ApiResource>,
    pub groups: Vec<String>,
}

impl Discovery {
    /// Fetches the legacy discovery documents.
    pub fn fetch(client: &Client) -> Result<Self> {
        let mut d = Discovery::default();
        let core = client.get("/api/v1")?;
        d.add_list("", "v1", &core);
        let groups = client.get("/apis")?;
        for g in groups["groups"].as_array().into_iter().flatten() {
            let name = g["name"].as_str().unwrap_or("");
            d.groups.push(name.to_string());
            let Some(gv) = g["preferredVersion"]["groupVersion"].as_str() else {
                continue;
            };
            let version = gv.rsplit('/').next().unwrap_or("");
            match client.get(&format!("/apis/{gv}")) {
                Ok(list) => d.add_list(name, version, &list),
                Err(e) => tracing::warn!("discovery of {gv} failed: {e}"),
            }
        }
        Ok(d)
    }

    /// Adds the resources of one `APIResourceList`.
    pub fn add_list(&mut self, group: &str, version: &str, list: &Value) {
        let entries = list["resources"].as_array().cloned().unwrap_or_default();
        for r in &entries {
            let name = r["name"].as_str().unwrap_or("");
            if name.is_empty() || name.contains('/') {
                continue;
            }
            let prefix = format!("{name}/");
            let subresources = entries
                .iter()
                .filter_map(|s| s["name"].as_str()?.strip_prefix(&prefix))
                .map(str::to_string)
                .collect();
            let kind = r["kind"].as_str().unwrap_or("").to_string();
            self.resources.push(ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                singular: r["singularName"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                kind,
                plural: name.to_string(),
                short_names: r["shortNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                namespaced: r["namespaced"].as_bool().unwrap_or(false),
                subresources,
                categories: r["categories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
            });
        }
    }

    /// The resource a user's word names (`po`, `pods`, `pod`,
    /// `deployments.apps`, `deploy.apps`), with kubectl's error otherwise.
    pub fn resolve(&self, word: &str) -> Result<&ApiResource> {
        let lower = word.to_lowercase();
        let (name, group) = match lower.split_once('.') {
            Some((n, g)) => (n.to_string(), Some(g.to_string())),
            None => (lower.clone(), None),
        };
        let matches = |r: &&ApiResource| {
            group.as_deref().is_none_or(|g| r.group == g)
                && (r.plural == name
                    || r.singular == name
                    || r.kind.to_lowercase() == name
                    || r.short_names.contains(&name))
        };
        // Prefer the core group, then the first group served (kubectl's
        // priority order puts core and apps first).
        self.resources
            .iter()
            .find(matches)
            .ok_or_else(|| anyhow!("the server doesn't have a resource type \"{word}\""))
    }

    /// The resources a word names: one resource, or every member of a
    /// category (`all`) when no resource has that name.
    pub fn expand(&self, word: &str) -> Result<Vec<&ApiResource>> {
        match self.resolve(word) {
            Ok(r) => Ok(vec![r]),
            Err(e) => {
                let lower = word.to_lowercase();
                let members: Vec<&ApiResource> = self
                    .resources
                    .iter()
                    .filter(|r| r.categories.contains(&lower))
                    .collect();
                if members.is_empty() {
                    Err(e)
                } else {
                    Ok(members)
                }
            }
        }
    }

    /// The resource serving `apiVersion` + `kind` (from a manifest).
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Result<&ApiResource> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .ok_or_else(|| {
                anyhow!(
                    "resource mapping not found for kind \"{kind}\" in version \"{api_version}\": ensure CRDs are installed first"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Discovery {
        let mut d = Discovery::default();
        d.add_list(
            "",
            "v1",
            &json!({"resources": [
                {"name": "pods", "singularName": "pod", "kind": "Pod", "namespaced": true, "shortNames": ["po"]},
                {"name": "pods/log", "kind": "Pod", "namespaced": true},
                {"name": "nodes", "singularName": "node", "kind": "Node", "namespaced": false, "shortNames": ["no"]},
            ]}),
        );
        d.add_list(
            "apps",
            "v1",
            &json!({"resources": [
                {"name": "deployments", "singularName": "deployment", "kind": "Deployment", "namespaced": true, "shortNames": ["deploy"]},
            ]}),
        );
        d
    }

    #[test]
    fn short_plural_singular_kind_and_grouped_names_resolve() {
        let d = sample();
        for word in ["po", "pods", "pod", "Pod", "pods."] {
            if word.ends_with('.') {
                continue;
            }
            assert_eq!(d.resolve(word).unwrap().plural, "pods", "{word}");
        }
        assert_eq!(d.resolve("deploy").unwrap().group, "apps");
        assert_eq!(d.resolve("deployments.apps").unwrap().kind, "Deployment");
        assert_eq!(d.resolve("pods").unwrap().subresources, vec!["log"]);
    }

    #[test]
    fn unknown_type_has_kubectls_message() {
        let err = sample().resolve("widgets").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server doesn't have a resource type \"widgets\""
        );
    }

    #[test]
    fn paths_follow_scope() {
        let d = sample();
        assert_eq!(
            d.resolve("po").unwrap().object_path("default", "x"),
            "/api/v1/namespaces/default/pods/x"
        );
        assert_eq!(
            d.resolve("no").unwrap().object_path("default", "n1"),
            "/api/v1/nodes/n1"
        );
        assert_eq!(
            d.resolve("deploy").unwrap().collection_path(None),
            "/apis/apps/v1/deployments"
        );
        assert_eq!(
            d.resolve("deploy").unwrap().qualified_kind(),
            "deployment.apps"
        );
    }
}
