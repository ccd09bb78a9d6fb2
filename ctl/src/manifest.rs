//! Manifests given with `-f`: files, folders (`-R` to descend), `-` for
//! stdin, multi-document YAML or JSON, `kind: List` expanded into its
//! items. Each object keeps the file it came from for error messages.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// One object read from a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub object: Value,
}

/// Reads every object named by the `-f` arguments, in order.
pub fn read_all(sources: &[String], recursive: bool) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for source in sources {
        if source == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading manifests from stdin")?;
            out.extend(parse(&text, "STDIN")?);
            continue;
        }
        let path = Path::new(source);
        if !path.exists() {
            bail!("the path \"{source}\" does not exist");
        }
        for file in files(path, recursive, true)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            out.extend(parse(&text, &file.display().to_string())?);
        }
    }
    if out.is_empty() {
        bail!("no objects passed to apply");
    }
    Ok(out)
}

/// The manifest files under `path` (itself when a file).
fn files(path: &Path, recursive: bool, top: bool) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !top && !recursive {
        return Ok(Vec::new());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for e in entries {
        if e.is_dir() {
            out.extend(files(&e, recursive, false)?);
        } else if matches!(
            e.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Parses a multi-document YAML (or JSON) text into objects.
pub fn parse(text: &str, source: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)
            .with_context(|| format!("error parsing {source}: not valid YAML or JSON"))?;
        push(&mut out, value, source)?;
    }
    Ok(out)
}

fn push(out: &mut Vec<Manifest>, value: Value, source: &str) -> Result<()> {
    if value.is_null() {
        return Ok(());
    }
    if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array() {
        for item in value["items"].as_array().into_iter().flatten() {
            push(out, item.clone(), source)?;
        }
        return Ok(());
    }
    if value["kind"].as_str().unwrap_or("").is_empty()
        || value["apiVersion"].as_str().unwrap_or("").is_empty()
    {
        bail!(
            "error validating data from {source}: apiVersion and kind must be set on every object"
        );
    }
    out.push(Manifest {
        source: source.to_string(),
        object: value,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists_expand_in_order() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n";
        let objs = parse(text, "x.yaml").unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn objects_without_kind_are_refused() {
        assert!(parse("metadata: {name: a}\n", "x.yaml").is_err());
    }

    #[test]
    fn folders_are_read_sorted_and_recursion_is_opt_in() {
        let dir = tempdir();
        std::fs::write(
            dir.join("b.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("a.yml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(
            dir.join("sub/c.json"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"c"}}"#,
        )
        .unwrap();
        let arg = vec![dir.display().to_string()];
        let flat: Vec<String> = read_all(&arg, false)
            .unwrap()
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(flat, ["a", "b"]);
        let deep = read_all(&arg, true).unwrap();
        assert_eq!(deep.len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("kcctl-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
