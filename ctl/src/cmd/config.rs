//! `kcctl config`: show and edit the kubeconfig (view with secrets
//! redacted unless `--raw`, contexts, the current context, a context's
//! namespace). Needs no server.

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::kubeconfig::{self, Kubeconfig};

/// Modify kubeconfig files.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Display merged kubeconfig settings.
    View {
        /// Show certificates, keys and tokens instead of redacting them.
        #[arg(long)]
        raw: bool,
        /// Only the current context's entries.
        #[arg(long)]
        minify: bool,
        /// Output format: yaml (default) or json.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Describe one or many contexts.
    GetContexts {
        /// Only these contexts.
        names: Vec<String>,
        /// Output format: name prints only the names.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Display the current context.
    CurrentContext,
    /// Set the current context.
    UseContext {
        /// The context to switch to.
        name: String,
    },
    /// Set a context entry (e.g. its namespace).
    SetContext {
        /// The context to change (default: --current).
        name: Option<String>,
        /// Change the current context.
        #[arg(long)]
        current: bool,
        /// Default namespace of the context.
        #[arg(long)]
        namespace: Option<String>,
        /// Cluster of the context.
        #[arg(long)]
        cluster: Option<String>,
        /// User of the context.
        #[arg(long)]
        user: Option<String>,
    },
}

/// Replaces secret fields by kubectl's placeholders.
pub fn redact(doc: &mut Value) {
    for (list, key) in [("clusters", "cluster"), ("users", "user")] {
        for entry in doc[list].as_array_mut().into_iter().flatten() {
            if let Some(m) = entry[key].as_object_mut() {
                for (k, v) in m.iter_mut() {
                    if k.ends_with("-data") {
                        *v = json!("DATA+OMITTED");
                    } else if k == "token" || k == "password" {
                        *v = json!("REDACTED");
                    }
                }
            }
        }
    }
}

/// Keeps only the current context and its cluster and user.
fn minify(cfg: &Kubeconfig) -> Result<Value> {
    let name = cfg
        .current_context()
        .ok_or_else(|| anyhow!("current-context must exist in order to minify"))?;
    let ctx = cfg
        .named("contexts", name)
        .cloned()
        .ok_or_else(|| anyhow!("cannot locate context {name}"))?;
    let pick = |list: &str, key: &str| -> Value {
        let n = ctx["context"][key].as_str().unwrap_or("");
        json!(cfg.named(list, n).into_iter().cloned().collect::<Vec<_>>())
    };
    let mut doc = cfg.doc.clone();
    doc["clusters"] = pick("clusters", "cluster");
    doc["users"] = pick("users", "user");
    doc["contexts"] = json!([ctx]);
    Ok(doc)
}

pub fn run(g: &GlobalArgs, cmd: &ConfigCmd) -> Result<i32> {
    let path = kubeconfig::locate(g.kubeconfig.as_deref());
    let mut cfg = Kubeconfig::load(&path)?;
    match cmd {
        ConfigCmd::View {
            raw,
            minify: min,
            output,
        } => {
            let mut doc = if *min { minify(&cfg)? } else { cfg.doc.clone() };
            if !raw {
                redact(&mut doc);
            }
            match output.as_deref() {
                Some("json") => print!("{}", crate::printer::to_json(&doc)),
                None | Some("yaml") => print!("{}", crate::printer::to_yaml(&doc)),
                Some(o) => bail!(
                    "unable to match a printer suitable for the output format \"{o}\", allowed formats are: json,yaml"
                ),
            }
        }
        ConfigCmd::GetContexts { names, output } => {
            let current = cfg.current_context().unwrap_or("").to_string();
            let contexts: Vec<(String, Value)> = cfg
                .contexts()
                .into_iter()
                .filter(|(n, _)| names.is_empty() || names.contains(n))
                .collect();
            if let Some(missing) = names
                .iter()
                .find(|n| !contexts.iter().any(|(c, _)| c == *n))
            {
                bail!("context {missing} not found");
            }
            if output.as_deref() == Some("name") {
                for (n, _) in contexts {
                    println!("{n}");
                }
                return Ok(0);
            }
            let mut rows = vec![
                ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
                    .map(String::from)
                    .to_vec(),
            ];
            for (n, c) in contexts {
                let f = |k: &str| c[k].as_str().unwrap_or("").to_string();
                let mark = if n == current { "*" } else { "" };
                rows.push(vec![
                    mark.to_string(),
                    n.clone(),
                    f("cluster"),
                    f("user"),
                    f("namespace"),
                ]);
            }
            print!("{}", crate::printer::align(&rows));
        }
        ConfigCmd::CurrentContext => match cfg.current_context() {
            Some(c) => println!("{c}"),
            None => bail!("current-context is not set"),
        },
        ConfigCmd::UseContext { name } => {
            if cfg.named("contexts", name).is_none() {
                bail!("no context exists with the name: \"{name}\"");
            }
            cfg.doc["current-context"] = json!(name);
            cfg.save()?;
            println!("Switched to context \"{name}\".");
        }
        ConfigCmd::SetContext {
            name,
            current,
            namespace,
            cluster,
            user,
        } => {
            let name = match (name, current) {
                (Some(n), false) => n.clone(),
                (None, true) => cfg
                    .current_context()
                    .ok_or_else(|| anyhow!("no current context is set"))?
                    .to_string(),
                _ => bail!("you must specify a context name or --current"),
            };
            let list = cfg.doc["contexts"].as_array_mut();
            let contexts = match list {
                Some(l) => l,
                None => {
                    cfg.doc["contexts"] = json!([]);
                    cfg.doc["contexts"]
                        .as_array_mut()
                        .ok_or_else(|| anyhow!("contexts is not a list"))?
                }
            };
            let existed = contexts.iter().any(|c| c["name"] == name.as_str());
            if !existed {
                contexts.push(json!({"name": name, "context": {}}));
            }
            for c in contexts.iter_mut().filter(|c| c["name"] == name.as_str()) {
                for (k, v) in [
                    ("namespace", namespace),
                    ("cluster", cluster),
                    ("user", user),
                ] {
                    if let Some(v) = v {
                        c["context"][k] = json!(v);
                    }
                }
            }
            cfg.save()?;
            let verb = if existed { "modified" } else { "created" };
            println!("Context \"{name}\" {verb}.");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let mut doc = json!({
            "clusters": [{"name": "kc", "cluster": {"server": "https://x", "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "a", "user": {"token": "t", "client-key-data": "S0VZ"}}],
        });
        redact(&mut doc);
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "DATA+OMITTED"
        );
        assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://x");
        assert_eq!(doc["users"][0]["user"]["token"], "REDACTED");
        assert_eq!(doc["users"][0]["user"]["client-key-data"], "DATA+OMITTED");
    }
}
