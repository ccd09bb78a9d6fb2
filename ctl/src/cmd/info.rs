//! Verbs about the cluster and the tool rather than objects: `version`,
//! `api-resources`, `completion` and `top` (needs `metrics.k8s.io`).

use anyhow::{Result, bail};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::printer;

/// Print the client and server version information.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the client version (no server needed).
    #[arg(long)]
    pub client: bool,
    /// Output format: yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

fn client_version() -> Value {
    json!({
        "gitVersion": format!("v{}", env!("CARGO_PKG_VERSION")),
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn version(ctx: Option<&Ctx>, a: &VersionArgs) -> Result<i32> {
    let mut doc = json!({ "clientVersion": client_version() });
    if let Some(ctx) = ctx.filter(|_| !a.client) {
        doc["serverVersion"] = ctx.client.get("/version")?;
    }
    match a.output.as_deref() {
        Some("json") => print!("{}", printer::to_json(&doc)),
        Some("yaml") => print!("{}", printer::to_yaml(&doc)),
        Some(o) => bail!("--output must be 'yaml' or 'json', not {o:?}"),
        None => {
            println!(
                "Client Version: {}",
                doc["clientVersion"]["gitVersion"].as_str().unwrap_or("")
            );
            if let Some(v) = doc["serverVersion"]["gitVersion"].as_str() {
                println!("Server Version: {v}");
            }
        }
    }
    Ok(0)
}

/// Print the supported API resources on the server.
#[derive(Debug, Args)]
pub struct ApiResourcesArgs {
    /// Output format: wide or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Only namespaced (true) or cluster-scoped (false) resources.
    #[arg(long)]
    pub namespaced: Option<bool>,
}

pub fn api_resources(ctx: &Ctx, a: &ApiResourcesArgs) -> Result<i32> {
    let d = ctx.discovery()?;
    let mut resources: Vec<_> = d
        .resources
        .iter()
        .filter(|r| a.namespaced.is_none_or(|n| r.namespaced == n))
        .collect();
    resources.sort_by(|x, y| {
        (x.group.as_str(), x.plural.as_str()).cmp(&(y.group.as_str(), y.plural.as_str()))
    });
    if a.output.as_deref() == Some("name") {
        for r in resources {
            println!("{}", r.qualified_plural());
        }
        return Ok(0);
    }
    let mut rows = vec![
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
            .map(String::from)
            .to_vec(),
    ];
    for r in resources {
        rows.push(vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ]);
    }
    print!("{}", printer::align(&rows));
    Ok(0)
}

/// Output shell completion code for bash, zsh or fish.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh or fish.
    pub shell: Shell,
}

pub fn completion(a: &CompletionArgs) -> Result<i32> {
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "kcctl", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)?;
    Ok(0)
}

/// Display resource (CPU/memory) usage of nodes or pods.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// node or pod.
    pub what: String,
    /// Only this object.
    pub name: Option<String>,
    /// Across all namespaces (pods).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// CPU quantity (`12345678n`, `250m`, `1`) in millicores.
pub fn millicores(q: &str) -> f64 {
    let (num, scale) = match q.char_indices().last() {
        Some((i, 'n')) => (&q[..i], 1e-6),
        Some((i, 'u')) => (&q[..i], 1e-3),
        Some((i, 'm')) => (&q[..i], 1.0),
        _ => (q, 1000.0),
    };
    num.parse::<f64>().unwrap_or(0.0) * scale
}

/// Memory quantity (`1024Ki`, `5Mi`, `123456`) in MiB.
pub fn mebibytes(q: &str) -> f64 {
    let units = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap_or(0.0) * factor / 1048576.0;
        }
    }
    q.parse::<f64>().unwrap_or(0.0) / 1048576.0
}

pub fn top(ctx: &Ctx, a: &TopArgs) -> Result<i32> {
    let d = ctx.discovery()?;
    if !d.groups.iter().any(|g| g == "metrics.k8s.io") {
        bail!("Metrics API not available");
    }
    let (path, namespaced) = match a.what.as_str() {
        "node" | "nodes" | "no" => ("/apis/metrics.k8s.io/v1beta1/nodes".to_string(), false),
        "pod" | "pods" | "po" if a.all_namespaces => {
            ("/apis/metrics.k8s.io/v1beta1/pods".to_string(), true)
        }
        "pod" | "pods" | "po" => (
            format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods",
                ctx.namespace
            ),
            true,
        ),
        other => bail!("kcctl top takes node or pod, not {other:?}"),
    };
    let list = ctx.client.get(&path)?;
    let mut rows = vec![if namespaced && a.all_namespaces {
        vec![
            "NAMESPACE".to_string(),
            "NAME".into(),
            "CPU(cores)".into(),
            "MEMORY(bytes)".into(),
        ]
    } else {
        vec![
            "NAME".to_string(),
            "CPU(cores)".into(),
            "MEMORY(bytes)".into(),
        ]
    }];
    for item in list["items"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().unwrap_or("");
        if a.name.as_deref().is_some_and(|n| n != name) {
            continue;
        }
        let (cpu, mem) = if namespaced {
            item["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .fold((0.0, 0.0), |(c, m), x| {
                    (
                        c + millicores(x["usage"]["cpu"].as_str().unwrap_or("0")),
                        m + mebibytes(x["usage"]["memory"].as_str().unwrap_or("0")),
                    )
                })
        } else {
            (
                millicores(item["usage"]["cpu"].as_str().unwrap_or("0")),
                mebibytes(item["usage"]["memory"].as_str().unwrap_or("0")),
            )
        };
        let mut row = vec![
            name.to_string(),
            format!("{}m", cpu.round()),
            format!("{}Mi", mem.round()),
        ];
        if namespaced && a.all_namespaces {
            row.insert(
                0,
                item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        rows.push(row);
    }
    print!("{}", printer::align(&rows));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_convert() {
        assert_eq!(millicores("250m"), 250.0);
        assert_eq!(millicores("2"), 2000.0);
        assert!((millicores("12345678n") - 12.345678).abs() < 1e-9);
        assert_eq!(mebibytes("2048Ki"), 2.0);
        assert_eq!(mebibytes("1Gi"), 1024.0);
    }
}
