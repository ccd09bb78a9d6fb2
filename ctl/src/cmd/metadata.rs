//! `kcctl label`, `kcctl annotate` and `kcctl scale`: small merge patches
//! on existing objects. `key=value` sets (refused over an existing value
//! unless `--overwrite`), `key-` removes.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::ctx::{Ctx, Named, parse_args, selector_query, with_query};

const MERGE_PATCH: &str = "application/merge-patch+json";

/// Update the labels (or annotations) of resources.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// TYPE NAME KEY=VAL... KEY-... or TYPE/NAME KEY=VAL...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Allow replacing existing values.
    #[arg(long)]
    pub overwrite: bool,
    /// Select the objects by label instead of by name.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
}

/// Set a new size for a deployment, replica set or stateful set.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// TYPE NAME or TYPE/NAME.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The new number of replicas.
    #[arg(long, required = true)]
    pub replicas: u32,
}

/// One change asked on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Set(String, String),
    Remove(String),
}

/// Splits the arguments into resource words and changes.
pub fn split_changes(args: &[String]) -> Result<(Vec<String>, Vec<Change>)> {
    let mut words = Vec::new();
    let mut changes = Vec::new();
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            changes.push(Change::Set(k.to_string(), v.to_string()));
        } else if let Some(k) = a.strip_suffix('-').filter(|_| !words.is_empty()) {
            changes.push(Change::Remove(k.to_string()));
        } else {
            words.push(a.clone());
        }
    }
    if changes.is_empty() {
        bail!("at least one label update is required");
    }
    Ok((words, changes))
}

/// The merge patch for `field` (`labels`/`annotations`) given the current
/// values; `None` when nothing would change.
pub fn patch_for(
    field: &str,
    current: &Map<String, Value>,
    changes: &[Change],
    overwrite: bool,
) -> Result<Option<Value>> {
    let mut m = Map::new();
    for c in changes {
        match c {
            Change::Set(k, v) => {
                if let Some(old) = current.get(k).and_then(Value::as_str) {
                    if old == v {
                        continue;
                    }
                    if !overwrite {
                        bail!("'{k}' already has a value ({old}), and --overwrite is false");
                    }
                }
                m.insert(k.clone(), json!(v));
            }
            Change::Remove(k) => {
                if current.contains_key(k) {
                    m.insert(k.clone(), Value::Null);
                }
            }
        }
    }
    Ok((!m.is_empty()).then(|| json!({ "metadata": { field: m } })))
}

fn targets(
    ctx: &Ctx,
    words: &[String],
    selector: Option<&str>,
    all: bool,
) -> Result<Vec<(crate::discovery::ApiResource, String)>> {
    let named: Named = parse_args(ctx, words)?;
    let mut out = Vec::new();
    for (r, name) in named {
        match name {
            Some(n) => out.push((r, n)),
            None if selector.is_some() || all => {
                let q = selector_query(selector, None);
                let list = ctx
                    .client
                    .get(&with_query(&r.collection_path(Some(&ctx.namespace)), &[&q]))?;
                for i in list["items"].as_array().into_iter().flatten() {
                    out.push((
                        r.clone(),
                        i["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
            None => bail!("resource(s) were provided, but no name was specified"),
        }
    }
    Ok(out)
}

/// `label` (field `labels`) or `annotate` (field `annotations`).
pub fn run(ctx: &Ctx, a: &MetaArgs, field: &str) -> Result<i32> {
    let (words, changes) = split_changes(&a.args)?;
    let (done, not_done) = if field == "labels" {
        ("labeled", "not labeled")
    } else {
        ("annotated", "not annotated")
    };
    for (r, name) in targets(ctx, &words, a.selector.as_deref(), a.all)? {
        let path = r.object_path(&ctx.namespace, &name);
        let object = ctx.client.get(&path)?;
        let current = object["metadata"][field]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let id = format!("{}/{name}", r.qualified_kind());
        match patch_for(field, &current, &changes, a.overwrite)? {
            Some(patch) => {
                ctx.client.patch(&path, MERGE_PATCH, &patch)?;
                println!("{id} {done}");
            }
            None => println!("{id} {not_done}"),
        }
    }
    Ok(0)
}

pub fn scale(ctx: &Ctx, a: &ScaleArgs) -> Result<i32> {
    for (r, name) in targets(ctx, &a.args, None, false)? {
        let path = r.object_path(&ctx.namespace, &name);
        let patch = json!({ "spec": { "replicas": a.replicas } });
        ctx.client.patch(&path, MERGE_PATCH, &patch)?;
        println!("{}/{name} scaled", r.qualified_kind());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn changes_and_words_split() {
        let (w, c) = split_changes(&s(&["pod", "web", "a=1", "b-"])).unwrap();
        assert_eq!(w, ["pod", "web"]);
        assert_eq!(
            c,
            [
                Change::Set("a".into(), "1".into()),
                Change::Remove("b".into())
            ]
        );
    }

    #[test]
    fn existing_value_needs_overwrite_and_removal_of_absent_is_noop() {
        let mut cur = Map::new();
        cur.insert("a".into(), json!("0"));
        let set = [Change::Set("a".into(), "1".into())];
        let err = patch_for("labels", &cur, &set, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'a' already has a value (0), and --overwrite is false"
        );
        let p = patch_for("labels", &cur, &set, true).unwrap().unwrap();
        assert_eq!(p, json!({"metadata": {"labels": {"a": "1"}}}));
        assert!(
            patch_for("labels", &cur, &[Change::Remove("zz".into())], false)
                .unwrap()
                .is_none()
        );
        let rm = patch_for("labels", &cur, &[Change::Remove("a".into())], false)
            .unwrap()
            .unwrap();
        assert_eq!(rm, json!({"metadata": {"labels": {"a": null}}}));
    }
}
