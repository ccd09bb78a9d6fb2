//! Verbs about the cluster and the tool rather than objects: `version`,
//! `api-resources`, and `completion`.

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
