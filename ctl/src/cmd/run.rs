//! `kcctl run NAME --image I`: creates a one-container pod labelled
//! `run=NAME`, the object `kubectl run` creates.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::ctx::Ctx;

/// Run a particular image in a pod.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Name of the pod.
    pub name: String,
    /// Image of the container.
    #[arg(long, required = true)]
    pub image: String,
    /// Port the container exposes.
    #[arg(long)]
    pub port: Option<u16>,
    /// Environment variables (KEY=VALUE), repeatable.
    #[arg(long)]
    pub env: Vec<String>,
    /// Labels (k=v,k2=v2) instead of run=NAME.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Restart policy: Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Image pull policy.
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// Treat the arguments after -- as the command instead of its args.
    #[arg(long)]
    pub command: bool,
    /// Print the pod instead of creating it (client).
    #[arg(long)]
    pub dry_run: Option<String>,
    /// Output format for --dry-run (yaml or json).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Command or arguments of the container.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Parses `k=v,k2=v2`.
pub fn parse_pairs(text: &str) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            bail!("invalid label spec: {part}");
        };
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// The pod `kubectl run` would create.
pub fn pod(a: &RunArgs, namespace: &str) -> Result<Value> {
    if !matches!(a.restart.as_str(), "Always" | "OnFailure" | "Never") {
        bail!("invalid restart policy: {}", a.restart);
    }
    let labels = match &a.labels {
        Some(l) => parse_pairs(l)?,
        None => parse_pairs(&format!("run={}", a.name))?,
    };
    let mut container = json!({ "name": a.name, "image": a.image, "resources": {} });
    if let Some(p) = a.port {
        container["ports"] = json!([{ "containerPort": p }]);
    }
    if !a.env.is_empty() {
        let env: Vec<Value> = a
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => Ok(json!({ "name": k, "value": v })),
                None => bail!("invalid env: {e}: expected KEY=VALUE"),
            })
            .collect::<Result<_>>()?;
        container["env"] = json!(env);
    }
    if let Some(p) = &a.image_pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    if !a.args.is_empty() {
        let key = if a.command { "command" } else { "args" };
        container[key] = json!(a.args);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": a.name, "namespace": namespace, "labels": labels },
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": a.restart,
        },
        "status": {},
    }))
}

pub fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    let pod = pod(a, &ctx.namespace)?;
    if a.dry_run.is_some() {
        match a.output.as_deref() {
            Some("json") => print!("{}", crate::printer::to_json(&pod)),
            Some("yaml") => print!("{}", crate::printer::to_yaml(&pod)),
            _ => println!("pod/{} created (dry run)", a.name),
        }
        return Ok(0);
    }
    let path = format!("/api/v1/namespaces/{}/pods", ctx.namespace);
    ctx.client.post(&path, &pod)?;
    println!("pod/{} created", a.name);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn run_builds_kubectls_pod() {
        let t = T::parse_from([
            "t", "web", "--image", "nginx", "--port", "80", "--env", "A=1", "--", "sleep", "1",
        ]);
        let p = pod(&t.run, "default").unwrap();
        assert_eq!(p["metadata"]["labels"]["run"], "web");
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["containerPort"], 80);
        assert_eq!(c["env"][0]["name"], "A");
        assert_eq!(c["args"], json!(["sleep", "1"]));
        assert_eq!(p["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn bad_restart_policy_is_refused() {
        let t = T::parse_from(["t", "web", "--image", "nginx", "--restart", "Sometimes"]);
        assert!(pod(&t.run, "default").is_err());
    }
}
