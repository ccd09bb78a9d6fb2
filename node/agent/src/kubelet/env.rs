//! A container's environment from its pod spec: the image's env, then
//! `envFrom` (ConfigMaps, Secrets, with prefix), then `env` (plain values
//! with `$(VAR)` expansion, ConfigMap/Secret keys, and the downward API
//! basics: metadata.name/namespace/uid/labels/annotations, spec.nodeName,
//! spec.serviceAccountName, status.hostIP/podIP). Referenced objects come
//! through `ConfigSource`; pure helpers are unit-tested.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

use super::ConfigSource;

/// Why an environment could not be built (reason CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    #[error("configmap {0:?} not found")]
    ConfigMap(String),
    #[error("secret {0:?} not found")]
    Secret(String),
    #[error("couldn't find key {key} in {what} {name:?}")]
    Key {
        what: &'static str,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0:?}")]
    Field(String),
    #[error("cannot read {what} {name:?}: {message}")]
    Source {
        what: &'static str,
        name: String,
        message: String,
    },
}

/// Pod fields the downward API exposes.
pub struct Downward<'a> {
    pub pod: &'a Pod,
    pub node_name: &'a str,
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
}

/// The value of a `fieldRef.fieldPath`.
pub fn field(d: &Downward, path: &str) -> Result<String, EnvError> {
    let m = &d.pod.metadata;
    let label = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let spec = d.pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_else(|| "default".into()),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| d.node_name.to_string()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.hostIP" => d.host_ip.to_string(),
        "status.podIP" => d.pod_ip.to_string(),
        p => {
            if let Some(k) = bracket_key(p, "metadata.labels") {
                label(&m.labels, &k)
            } else if let Some(k) = bracket_key(p, "metadata.annotations") {
                label(&m.annotations, &k)
            } else {
                return Err(EnvError::Field(p.to_string()));
            }
        }
    })
}

/// `metadata.labels['app']` -> `app`.
fn bracket_key(path: &str, prefix: &str) -> Option<String> {
    let rest = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let k = rest.trim_matches(|c| c == '\'' || c == '"');
    Some(k.to_string())
}

/// Expands `$(VAR)` from `vars`; `$$(VAR)` is a literal `$(VAR)`; unknown
/// references stay as written (Kubernetes' rules).
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

pub fn configmap_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// A ConfigMap's or Secret's data, fetched through `src`.
pub async fn object_data(
    src: &dyn ConfigSource,
    namespace: &str,
    name: &str,
    secret: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, EnvError> {
    let what = if secret { "secret" } else { "configmap" };
    let failed = |message| EnvError::Source {
        what,
        name: name.to_string(),
        message,
    };
    if secret {
        Ok(src
            .get_secret(namespace, name)
            .await
            .map_err(failed)?
            .map(|s| secret_data(&s)))
    } else {
        Ok(src
            .get_configmap(namespace, name)
            .await
            .map_err(failed)?
            .map(|c| configmap_data(&c)))
    }
}

async fn required(
    src: &dyn ConfigSource,
    ns: &str,
    name: &str,
    secret: bool,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>, EnvError> {
    match object_data(src, ns, name, secret).await? {
        Some(d) => Ok(d),
        None if optional == Some(true) => Ok(BTreeMap::new()),
        None if secret => Err(EnvError::Secret(name.to_string())),
        None => Err(EnvError::ConfigMap(name.to_string())),
    }
}

/// The container's environment as `KEY=VALUE` entries, in order, the image
/// env first.
pub async fn build(
    c: &Container,
    image_env: &[String],
    d: &Downward<'_>,
    src: &dyn ConfigSource,
) -> Result<Vec<String>, EnvError> {
    let ns = d
        .pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |vars: &mut BTreeMap<String, String>, k: String, v: String| {
        if !order.contains(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    for kv in image_env {
        if let Some((k, v)) = kv.split_once('=') {
            set(&mut vars, k.to_string(), v.to_string());
        }
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            required(src, &ns, &r.name, false, r.optional).await?
        } else if let Some(r) = &from.secret_ref {
            required(src, &ns, &r.name, true, r.optional).await?
        } else {
            continue;
        };
        for (k, v) in data {
            set(
                &mut vars,
                format!("{prefix}{k}"),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field(d, &f.field_path)?
            } else if let Some(r) = &from.config_map_key_ref {
                key_of(src, &ns, &r.name, &r.key, false, r.optional).await?
            } else if let Some(r) = &from.secret_key_ref {
                key_of(src, &ns, &r.name, &r.key, true, r.optional).await?
            } else {
                String::new()
            }
        } else {
            expand(e.value.as_deref().unwrap_or(""), &vars)
        };
        set(&mut vars, e.name.clone(), value);
    }
    Ok(order
        .iter()
        .map(|k| format!("{k}={}", vars.get(k).map(String::as_str).unwrap_or("")))
        .collect())
}

async fn key_of(
    src: &dyn ConfigSource,
    ns: &str,
    name: &str,
    key: &str,
    secret: bool,
    optional: Option<bool>,
) -> Result<String, EnvError> {
    let data = required(src, ns, name, secret, optional).await?;
    match data.get(key) {
        Some(v) => Ok(String::from_utf8_lossy(v).into_owned()),
        None if optional == Some(true) => Ok(String::new()),
        None => Err(EnvError::Key {
            what: if secret { "secret" } else { "configmap" },
            name: name.to_string(),
            key: key.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars: BTreeMap<String, String> =
            [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("cost $5", &vars), "cost $5");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn downward_fields() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.labels = Some([("app".to_string(), "x".to_string())].into_iter().collect());
        let d = Downward {
            pod: &pod,
            node_name: "n1",
            host_ip: "10.0.0.2",
            pod_ip: "",
        };
        assert_eq!(field(&d, "metadata.name").unwrap(), "web");
        assert_eq!(field(&d, "metadata.namespace").unwrap(), "default");
        assert_eq!(field(&d, "spec.nodeName").unwrap(), "n1");
        assert_eq!(field(&d, "status.hostIP").unwrap(), "10.0.0.2");
        assert_eq!(field(&d, "metadata.labels['app']").unwrap(), "x");
        assert!(field(&d, "spec.bogus").is_err());
    }
}
