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

/// Create resources from files, or one of the common kinds by name.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    /// Files, folders or `-` (stdin) holding the objects.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Descend into sub-folders of folders given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format: name prints only `kind/name`.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
}

/// `kcctl create <kind> NAME ...`: objects built from flags.
#[derive(Debug, clap::Subcommand)]
pub enum CreateWhat {
    /// Create a namespace.
    #[command(visible_alias = "ns")]
    Namespace { name: String },
    /// Create a deployment running the given image(s).
    #[command(visible_alias = "deploy")]
    Deployment {
        name: String,
        /// Container image(s).
        #[arg(long, required = true)]
        image: Vec<String>,
        /// Number of replicas.
        #[arg(short = 'r', long, default_value_t = 1)]
        replicas: u32,
        /// Port the container exposes.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Create a config map from literal values.
    #[command(visible_alias = "cm")]
    Configmap {
        name: String,
        /// KEY=VALUE, repeatable.
        #[arg(long)]
        from_literal: Vec<String>,
    },
}

/// The object `kubectl create <kind>` builds.
pub fn build(what: &CreateWhat) -> Result<Value> {
    Ok(match what {
        CreateWhat::Namespace { name } => json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": name }, "spec": {}, "status": {},
        }),
        CreateWhat::Deployment {
            name,
            image,
            replicas,
            port,
        } => {
            let containers: Vec<Value> = image
                .iter()
                .map(|i| {
                    // kubectl names a container after its image's base name.
                    let base = i.rsplit('/').next().unwrap_or(i);
                    let base = base.split(['@', ':']).next().unwrap_or(base);
                    let mut c = json!({ "name": base, "image": i, "resources": {} });
                    if let Some(p) = port {
                        c["ports"] = json!([{ "containerPort": p }]);
                    }
                    c
                })
                .collect();
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": name, "labels": { "app": name } },
                "spec": {
                    "replicas": replicas,
                    "selector": { "matchLabels": { "app": name } },
                    "strategy": {},
                    "template": {
                        "metadata": { "labels": { "app": name } },
                        "spec": { "containers": containers },
                    },
                },
                "status": {},
            })
        }
        CreateWhat::Configmap { name, from_literal } => {
            let mut data = serde_json::Map::new();
            for kv in from_literal {
                let Some((k, v)) = kv.split_once('=') else {
                    anyhow::bail!("invalid literal source {kv}, expected key=value");
                };
                data.insert(k.to_string(), json!(v));
            }
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": data })
        }
    })
}

/// One object from a manifest, located on the server.
pub struct Located {
    pub resource: ApiResource,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

/// Change fields of a resource with a patch.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// TYPE NAME or TYPE/NAME.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The patch (JSON or YAML).
    #[arg(short = 'p', long, required = true)]
    pub patch: String,
    /// strategic (default), merge or json.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
}

/// `object` without status, resourceVersion and managedFields.
fn without_bookkeeping(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

pub fn patch(ctx: &Ctx, a: &PatchArgs) -> Result<i32> {
    let content_type = match a.patch_type.as_str() {
        "strategic" => "application/strategic-merge-patch+json",
        "merge" => "application/merge-patch+json",
        "json" => "application/json-patch+json",
        other => anyhow::bail!("--type must be one of [json merge strategic], not {other:?}"),
    };
    let body: Value = serde_norway::from_str(&a.patch)
        .map_err(|e| anyhow::anyhow!("unable to parse {:?}: {e}", a.patch))?;
    for (r, name) in crate::ctx::parse_args(ctx, &a.args)? {
        let Some(name) = name else {
            anyhow::bail!("resource(s) were provided, but no name was specified");
        };
        let path = r.object_path(&ctx.namespace, &name);
        let before = ctx.client.get(&path)?;
        let after = ctx.client.patch(&path, content_type, &body)?;
        // Like kubectl: unchanged if the object is the same as before. Status
        // and bookkeeping are left out, since a controller may have written
        // them between the read and the patch (the patch cannot touch them).
        let same = without_bookkeeping(&before) == without_bookkeeping(&after);
        let note = if same { " (no change)" } else { "" };
        println!("{}/{name} patched{note}", r.qualified_kind());
    }
    Ok(0)
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
    let manifests = match &a.what {
        Some(what) => vec![Manifest {
            source: "command line".to_string(),
            object: build(what)?,
        }],
        None if a.files.is_empty() => {
            anyhow::bail!(
                "must specify one of -f and -k, or a kind to create (namespace, deployment, configmap)"
            )
        }
        None => manifest::read_all(&a.files, a.recursive)?,
    };
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
