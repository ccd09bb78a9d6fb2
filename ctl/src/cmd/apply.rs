//! `kcctl apply -f` (server-side apply: a `PATCH` of
//! `application/apply-patch+yaml` with field manager `kcctl`) and
//! `kcctl create -f` (a `POST` per object). Both take files, folders,
//! multi-document YAML and `-` for stdin, and go on past a failed object
//! like kubectl, failing at the end.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::{Ctx, encode, with_query};
use crate::discovery::ApiResource;
use crate::manifest::{self, Manifest};

/// Where objects come from.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// Files, folders or `-` (stdin) holding the objects.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// Descend into sub-folders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// Apply a configuration to resources (server-side apply).
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Take over fields other managers own instead of failing with a conflict.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub force_conflicts: bool,
    /// Field manager recorded for the applied fields.
    #[arg(long, default_value = "kcctl")]
    pub field_manager: String,
    /// Accepted for kubectl compatibility: kcctl always applies server-side.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub server_side: bool,
    /// Output format: name prints only `kind/name`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// Create resources from files.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Output format: name prints only `kind/name`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// One object from a manifest, located on the server.
pub struct Located {
    pub resource: ApiResource,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

/// Finds each manifest's resource and namespace (the object's own, else -n).
pub fn locate(ctx: &Ctx, m: &Manifest) -> Result<Located> {
    let api_version = m.object["apiVersion"].as_str().unwrap_or("");
    let kind = m.object["kind"].as_str().unwrap_or("");
    let resource = ctx.discovery()?.for_kind(api_version, kind)?.clone();
    let mut object = m.object.clone();
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| ctx.namespace.clone());
    if resource.namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    Ok(Located {
        resource,
        namespace,
        name,
        object,
    })
}

fn report(output: Option<&str>, l: &Located, verb: &str) {
    let id = format!("{}/{}", l.resource.qualified_kind(), l.name);
    if output == Some("name") {
        println!("{id}");
    } else {
        println!("{id} {verb}");
    }
}

pub fn apply(ctx: &Ctx, a: &ApplyArgs) -> Result<i32> {
    let manifests = manifest::read_all(&a.files.files, a.files.recursive)?;
    let mut failed = false;
    for m in &manifests {
        let result = locate(ctx, m).and_then(|l| {
            if l.name.is_empty() {
                anyhow::bail!(
                    "error when applying {}: metadata.name is required",
                    m.source
                );
            }
            let path = with_query(
                &l.resource.object_path(&l.namespace, &l.name),
                &[
                    &format!("fieldManager={}", encode(&a.field_manager)),
                    if a.force_conflicts { "force=true" } else { "" },
                ],
            );
            ctx.client
                .patch(&path, "application/apply-patch+yaml", &l.object)?;
            Ok(l)
        });
        match result {
            Ok(l) => report(a.output.as_deref(), &l, "serverside-applied"),
            Err(e) => {
                failed = true;
                crate::print_error(&e);
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<i32> {
    let manifests = manifest::read_all(&a.files.files, a.files.recursive)?;
    let mut failed = false;
    for m in &manifests {
        let result = locate(ctx, m).and_then(|l| {
            let ns = l.namespace.clone();
            let created = ctx
                .client
                .post(&l.resource.collection_path(Some(&ns)), &l.object)?;
            let name = created["metadata"]["name"]
                .as_str()
                .unwrap_or(&l.name)
                .to_string();
            Ok(Located { name, ..l })
        });
        match result {
            Ok(l) => report(a.output.as_deref(), &l, "created"),
            Err(e) => {
                failed = true;
                crate::print_error(&e);
            }
        }
    }
    Ok(i32::from(failed))
}
