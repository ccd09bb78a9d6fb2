//! Label and field selectors, as `?labelSelector=` and `?fieldSelector=`
//! spell them, parsed once and matched against JSON objects.
//!
//! Label selectors support Kubernetes' whole grammar (`a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x)`, `a`, `!a`). Field selectors are `=`/`==`/`!=`
//! on a dotted path into the object (`metadata.name`, `spec.nodeName`,
//! `status.phase`, `involvedObject.uid`...); a missing field reads as "".
//! As in Kubernetes, each kind accepts only its own field labels
//! (`supported_fields`; every kind has `metadata.name` and
//! `metadata.namespace`), and another is refused, not matched against
//! nothing.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesized set, found {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEq(check_key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Eq(check_key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Eq(check_key(k)?, v.trim().to_string())
            } else if let Some((k, set)) = part.split_once(" notin ") {
                LabelReq::NotIn(check_key(k)?, parse_set(set)?)
            } else if let Some((k, set)) = part.split_once(" in ") {
                LabelReq::In(check_key(k)?, parse_set(set)?)
            } else if let Some(k) = part.strip_prefix('!') {
                LabelReq::NotExists(check_key(k)?)
            } else {
                LabelReq::Exists(check_key(part)?)
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, set) => get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            LabelReq::NotIn(k, set) => !get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// The value at a dotted path as a string ("" if absent).
pub fn field_value(object: &Value, path: &str) -> String {
    let mut cur = object;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let (path, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid field selector requirement {part:?}: expected field=value or field!=value"
                ));
            };
            let path = path.trim();
            if path.is_empty() || !path.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                return Err(format!("invalid field path {path:?}"));
            }
            reqs.push((path.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|(path, equal, value)| (field_value(object, path) == *value) == *equal)
    }

    /// The value required for `path` by an `=` term, if any (used to narrow
    /// a list to one name).
    pub fn required(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, eq, _)| p == path && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

/// The field labels a kind may be selected by beyond `metadata.name` and
/// `metadata.namespace`, as kube-apiserver registers them per kind.
pub fn supported_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Refuses a field label the kind does not support, with
    /// kube-apiserver's message.
    pub fn check_supported(&self, group: &str, plural: &str) -> Result<(), String> {
        let extra = supported_fields(group, plural);
        match self.0.iter().find(|(path, _, _)| {
            !matches!(path.as_str(), "metadata.name" | "metadata.namespace")
                && !extra.contains(&path.as_str())
        }) {
            Some((path, _, _)) => Err(format!("field label not supported: {path}")),
            None => Ok(()),
        }
    }
}

/// Both selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": "fe"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
        })
    }

    #[test]
    fn label_selector_grammar() {
        let p = pod();
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing!=x", true),
            ("app=web,tier=be", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&p),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("bad key!x=1").is_err());
    }

    #[test]
    fn field_labels_are_checked_per_kind() {
        let sel = FieldSelector::parse("spec.nodeName=n1,metadata.name=p").unwrap();
        assert!(sel.check_supported("", "pods").is_ok());
        assert_eq!(
            sel.check_supported("", "configmaps").unwrap_err(),
            "field label not supported: spec.nodeName"
        );
        let bad = FieldSelector::parse("spec.noSuchField=x").unwrap();
        assert_eq!(
            bad.check_supported("", "pods").unwrap_err(),
            "field label not supported: spec.noSuchField"
        );
        assert!(
            FieldSelector::parse("type=Opaque")
                .unwrap()
                .check_supported("", "secrets")
                .is_ok()
        );
    }

    #[test]
    fn field_selector_on_common_fields() {
        let p = pod();
        assert!(
            FieldSelector::parse("spec.nodeName=n1")
                .unwrap()
                .matches(&p)
        );
        assert!(
            FieldSelector::parse("status.phase!=Pending,metadata.name=p")
                .unwrap()
                .matches(&p)
        );
        assert!(!FieldSelector::parse("metadata.name=q").unwrap().matches(&p));
        assert!(
            FieldSelector::parse("spec.schedulerName=")
                .unwrap()
                .matches(&p)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
        assert_eq!(
            FieldSelector::parse("metadata.name=p")
                .unwrap()
                .required("metadata.name"),
            Some("p")
        );
    }
}
