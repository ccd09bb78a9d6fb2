//! `kcctl delete`: by `TYPE NAME`, `TYPE/NAME`, `-f`, `-l` or `--all`,
//! printing `pod "x" deleted` and (unless `--wait=false`) waiting until the
//! objects are gone, as kubectl does.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use crate::client::ApiError;
use crate::ctx::{Ctx, parse_args, selector_query, with_query};
use crate::discovery::ApiResource;
use crate::manifest;

/// Delete resources by name, file, label selector or all of a type.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// TYPE [NAME...] or TYPE/NAME...
    pub args: Vec<String>,
    /// Files, folders or `-` naming the objects to delete.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Descend into sub-folders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// Seconds to wait for deletion.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Seconds each object gets to stop (-1 = its own default; 0 = at once).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub grace_period: i64,
    /// Delete at once without waiting for the node (grace period 0).
    #[arg(long)]
    pub force: bool,
    /// Delete with a 1 second grace period.
    #[arg(long)]
    pub now: bool,
    /// List across all namespaces (with -l or --all).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

pub fn run(ctx: &Ctx, a: &DeleteArgs) -> Result<i32> {
    let mut targets: Vec<(ApiResource, String, String)> = Vec::new();
    if !a.files.is_empty() {
        for m in manifest::read_all(&a.files, a.recursive)? {
            let l = super::apply::locate(ctx, &m)?;
            targets.push((l.resource, l.namespace, l.name));
        }
    } else {
        if a.args.is_empty() {
            bail!("You must provide one or more resources by argument or filename.");
        }
        for (resource, name) in parse_args(ctx, &a.args)? {
            match name {
                Some(n) => targets.push((resource, ctx.namespace.clone(), n)),
                None => {
                    if !a.all && a.selector.is_none() {
                        bail!("resource(s) were provided, but no name was specified");
                    }
                    let ns = (!a.all_namespaces).then_some(ctx.namespace.as_str());
                    let sel = selector_query(a.selector.as_deref(), None);
                    let list = ctx
                        .client
                        .get(&with_query(&resource.collection_path(ns), &[&sel]))?;
                    for item in list["items"].as_array().into_iter().flatten() {
                        let m = &item["metadata"];
                        targets.push((
                            resource.clone(),
                            m["namespace"]
                                .as_str()
                                .unwrap_or(&ctx.namespace)
                                .to_string(),
                            m["name"].as_str().unwrap_or("").to_string(),
                        ));
                    }
                }
            }
        }
        if targets.is_empty() {
            eprintln!("No resources found");
            return Ok(0);
        }
    }
    let grace = match (a.force, a.now, a.grace_period) {
        (true, _, g) if g < 0 => Some(0),
        (_, true, g) if g < 0 => Some(1),
        (_, _, g) => (g >= 0).then_some(g),
    };
    if grace == Some(0) {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
        );
    }
    let mut failed = false;
    let mut deleted = Vec::new();
    for (resource, ns, name) in targets {
        let path = resource.object_path(&ns, &name);
        match ctx.client.delete(&with_grace(&path, grace)) {
            Ok(_) => {
                println!("{} \"{name}\" deleted", resource.qualified_kind());
                deleted.push(path);
            }
            Err(e) if e.is_not_found() && a.ignore_not_found => {}
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if a.wait {
        let deadline = Instant::now() + Duration::from_secs(a.timeout);
        for path in deleted {
            wait_gone(ctx, &path, deadline)?;
        }
    }
    Ok(i32::from(failed))
}

/// The DELETE path with `?gracePeriodSeconds=` when one is asked.
pub fn with_grace(path: &str, grace: Option<i64>) -> String {
    match grace {
        Some(g) => format!("{path}?gracePeriodSeconds={g}"),
        None => path.to_string(),
    }
}

/// Polls until `path` answers 404 or the deadline passes.
pub fn wait_gone(ctx: &Ctx, path: &str, deadline: Instant) -> Result<()> {
    loop {
        match ctx.client.get(path) {
            Err(e) if e.is_not_found() => return Ok(()),
            Err(ApiError::Transport(t)) => bail!(t),
            _ if Instant::now() >= deadline => {
                bail!("timed out waiting for the deletion of {path}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
