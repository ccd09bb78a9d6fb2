//! The kubeconfig file: where it is (`--kubeconfig`, `$KUBECONFIG`,
//! `~/.kube/config`), which context is current, and what that context
//! resolves to (server URL, CA, client certificate or token, namespace).
//!
//! The file is kept as a YAML value so `kcctl config` can show and edit it
//! without losing fields this module does not know; resolution into a
//! [`Target`] is pure and tested on its own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::Value;

/// A loaded kubeconfig and where it came from.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    pub path: PathBuf,
    pub doc: Value,
}

/// What one context resolves to: everything needed to reach the API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub server: String,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
    pub namespace: String,
}

/// The kubeconfig path kubectl would use: `--kubeconfig`, then the first
/// entry of `$KUBECONFIG`, then `~/.kube/config`.
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Ok(list) = std::env::var("KUBECONFIG") {
        let mut first = None;
        for p in std::env::split_paths(&list) {
            if p.as_os_str().is_empty() {
                continue;
            }
            if p.exists() {
                return p;
            }
            first.get_or_insert(p);
        }
        if let Some(p) = first {
            return p;
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".kube").join("config")
}

impl Kubeconfig {
    /// Reads the kubeconfig at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read kubeconfig {}: pass --kubeconfig or set KUBECONFIG",
                path.display()
            )
        })?;
        let doc: Value = serde_norway::from_str(&text)
            .with_context(|| format!("kubeconfig {} is not valid YAML", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Writes the kubeconfig back to its file.
    pub fn save(&self) -> Result<()> {
        let text = serde_norway::to_string(&self.doc)?;
        std::fs::write(&self.path, text)
            .with_context(|| format!("cannot write kubeconfig {}", self.path.display()))
    }

    pub fn current_context(&self) -> Option<&str> {
        self.doc["current-context"]
            .as_str()
            .filter(|s| !s.is_empty())
    }

    /// The named entries of a top-level list (`contexts`, `clusters`, `users`).
    pub fn named(&self, list: &str, name: &str) -> Option<&Value> {
        self.doc[list]
            .as_array()?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
    }

    pub fn contexts(&self) -> Vec<(String, Value)> {
        self.doc["contexts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["name"].as_str().unwrap_or("").to_string(),
                            e["context"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Resolves `context` (or the current one) into a [`Target`].
    pub fn resolve(&self, context: Option<&str>) -> Result<Target> {
        let name = context.or(self.current_context()).ok_or_else(|| {
            anyhow!(
                "no context in kubeconfig {}: set current-context or pass --context",
                self.path.display()
            )
        })?;
        let ctx = self
            .named("contexts", name)
            .ok_or_else(|| anyhow!("context was not found for specified context: {name}"))?;
        let ctx = &ctx["context"];
        let cluster_name = ctx["cluster"].as_str().unwrap_or("");
        let cluster = self
            .named("clusters", cluster_name)
            .map(|c| &c["cluster"])
            .ok_or_else(|| anyhow!("cluster {cluster_name:?} of context {name:?} not found"))?;
        let user = ctx["user"]
            .as_str()
            .and_then(|u| self.named("users", u))
            .map(|u| u["user"].clone())
            .unwrap_or(Value::Null);
        let server = cluster["server"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("cluster {cluster_name:?} has no server URL"))?
            .to_string();
        let base = self.path.parent().unwrap_or(Path::new("."));
        Ok(Target {
            server: server.trim_end_matches('/').to_string(),
            ca_pem: data_or_file(cluster, "certificate-authority", base)?,
            insecure: cluster["insecure-skip-tls-verify"]
                .as_bool()
                .unwrap_or(false),
            client_cert_pem: data_or_file(&user, "client-certificate", base)?,
            client_key_pem: data_or_file(&user, "client-key", base)?,
            token: match user["token"].as_str() {
                Some(t) => Some(t.to_string()),
                None => match user["tokenFile"].as_str() {
                    Some(f) => Some(
                        std::fs::read_to_string(base.join(f))
                            .with_context(|| format!("cannot read tokenFile {f}"))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                },
            },
            namespace: ctx["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string(),
        })
    }
}

/// `<field>-data` (base64) or `<field>` (a path relative to the kubeconfig).
fn data_or_file(entry: &Value, field: &str, base: &Path) -> Result<Option<Vec<u8>>> {
    if let Some(data) = entry[format!("{field}-data")].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .with_context(|| format!("{field}-data in kubeconfig is not valid base64"))?;
        return Ok(Some(bytes));
    }
    match entry[field].as_str() {
        Some(path) => {
            let full = base.join(path);
            let bytes = std::fs::read(&full)
                .with_context(|| format!("cannot read {field} {}", full.display()))?;
            Ok(Some(bytes))
        }
        None => Ok(None),
    }
}

/// Fails with kubectl's message when the server URL is not https or http.
pub fn check_server(server: &str) -> Result<()> {
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        bail!("server URL {server:?} must start with https:// or http://");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Kubeconfig {
        Kubeconfig {
            path: PathBuf::from("/nonexistent/config"),
            doc: serde_norway::from_str(text).unwrap(),
        }
    }

    const TEXT: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: kc
  cluster: {server: "https://127.0.0.1:6443/", certificate-authority-data: Q0E=}
users:
- name: admin
  user: {token: t0k}
contexts:
- name: admin@kc
  context: {cluster: kc, user: admin}
- name: other
  context: {cluster: kc, user: admin, namespace: kube-system}
current-context: admin@kc
"#;

    #[test]
    fn current_context_resolves_server_ca_token_and_default_namespace() {
        let t = config(TEXT).resolve(None).unwrap();
        assert_eq!(t.server, "https://127.0.0.1:6443");
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(t.token.as_deref(), Some("t0k"));
        assert_eq!(t.namespace, "default");
    }

    #[test]
    fn explicit_context_brings_its_namespace() {
        let t = config(TEXT).resolve(Some("other")).unwrap();
        assert_eq!(t.namespace, "kube-system");
    }

    #[test]
    fn unknown_context_is_a_clear_error() {
        let err = config(TEXT).resolve(Some("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
