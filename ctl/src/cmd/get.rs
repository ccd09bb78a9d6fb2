//! `kcctl get`: lists or shows objects as the server's Tables (aligned like
//! kubectl), or as YAML, JSON or names; `-w` then follows the watch stream.

use std::io::{BufReader, Write};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::client::{ACCEPT_TABLE, ApiError};
use crate::ctx::{Ctx, Named, parse_args, selector_query, with_query};
use crate::discovery::ApiResource;
use crate::printer::{self, Format, TableLayout};

/// Display one or many resources.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE[,TYPE...] [NAME...] or TYPE/NAME...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Output format: wide, yaml, json or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Label selector (e.g. -l app=web,tier!=db).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (e.g. --field-selector status.phase=Running).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    pub watch_only: bool,
    /// Do not print table headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Keep metadata.managedFields in yaml/json output.
    #[arg(long)]
    pub show_managed_fields: bool,
}

/// What was fetched for one resource type.
struct Fetched {
    resource: ApiResource,
    table: Value,
    objects: Vec<Value>,
    resource_version: String,
}

pub fn run(ctx: &Ctx, a: &GetArgs) -> Result<i32> {
    let format = Format::parse(a.output.as_deref())?;
    let named = parse_args(ctx, &a.args)?;
    let namespace = (!a.all_namespaces).then_some(ctx.namespace.as_str());
    let selectors = selector_query(a.selector.as_deref(), a.field_selector.as_deref());
    let as_table = matches!(format, Format::Table | Format::Wide);
    let (fetched, errors) = fetch(ctx, &named, namespace, &selectors, as_table);
    let single_named = named.len() == 1 && named[0].1.is_some();
    let mut out = std::io::stdout().lock();
    let mut widths = Vec::new();
    if !a.watch_only {
        print(&mut out, &fetched, format, a, single_named, &mut widths)?;
    }
    drop(out);
    for e in &errors {
        eprintln!("{e}");
    }
    let any_rows = fetched
        .iter()
        .any(|f| !f.objects.is_empty() || printer::row_count(&f.table) > 0);
    let structured = matches!(format, Format::Yaml | Format::Json | Format::Name);
    if !any_rows && errors.is_empty() && !a.watch && !a.watch_only && !structured {
        let cluster_scoped = named.iter().all(|(r, _)| !r.namespaced);
        match namespace {
            Some(ns) if !cluster_scoped => eprintln!("No resources found in {ns} namespace."),
            _ => eprintln!("No resources found"),
        }
    }
    if a.watch || a.watch_only {
        if fetched.len() != 1 {
            bail!("you may only specify a single resource type with --watch");
        }
        let name = named[0].1.as_deref();
        let header = a.watch_only || !any_rows;
        let w = Watch {
            name,
            namespace,
            selectors: &selectors,
            format,
            header,
        };
        watch(ctx, &fetched[0], a, w, &mut widths)?;
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// Fetches every named object or collection, grouping by resource type.
fn fetch(
    ctx: &Ctx,
    named: &Named,
    namespace: Option<&str>,
    selectors: &str,
    as_table: bool,
) -> (Vec<Fetched>, Vec<ApiError>) {
    let mut fetched: Vec<Fetched> = Vec::new();
    let mut errors = Vec::new();
    for (resource, name) in named {
        let path = match name {
            Some(n) => resource.object_path(namespace.unwrap_or(&ctx.namespace), n),
            None => with_query(&resource.collection_path(namespace), &[selectors]),
        };
        let result = if as_table {
            ctx.client.get_table(&path)
        } else {
            ctx.client.get(&path)
        };
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let rv = value["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let objects: Vec<Value> = if as_table {
            Vec::new()
        } else if name.is_some() {
            vec![value.clone()]
        } else {
            value["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| printer::with_type(i.clone(), &resource.api_version(), &resource.kind))
                .collect()
        };
        match fetched.last_mut() {
            Some(last) if last.resource == *resource => {
                if let (Some(rows), Some(more)) =
                    (last.table["rows"].as_array_mut(), value["rows"].as_array())
                {
                    rows.extend(more.iter().cloned());
                }
                last.objects.extend(objects);
            }
            _ => fetched.push(Fetched {
                resource: resource.clone(),
                table: if as_table { value } else { Value::Null },
                objects,
                resource_version: rv,
            }),
        }
    }
    (fetched, errors)
}

fn layout(a: &GetArgs, format: Format, headers: bool) -> TableLayout {
    TableLayout {
        wide: format == Format::Wide,
        namespace_column: a.all_namespaces,
        headers: headers && !a.no_headers,
    }
}

/// Prefixes NAME cells with `kind/` (kubectl does when several types print).
fn prefix_names(table: &mut Value, resource: &ApiResource) {
    let prefix = resource.qualified_kind();
    for row in table["rows"].as_array_mut().into_iter().flatten() {
        if let Some(cell) = row["cells"].get_mut(0)
            && let Some(s) = cell.as_str()
        {
            *cell = json!(format!("{prefix}/{s}"));
        }
    }
}

fn print(
    out: &mut impl Write,
    fetched: &[Fetched],
    format: Format,
    a: &GetArgs,
    single_named: bool,
    widths: &mut Vec<usize>,
) -> Result<()> {
    match format {
        Format::Table | Format::Wide => {
            let several = fetched.len() > 1;
            let mut first = true;
            for f in fetched {
                if printer::row_count(&f.table) == 0 {
                    continue;
                }
                if !first {
                    writeln!(out)?;
                }
                first = false;
                let mut table = f.table.clone();
                if several {
                    prefix_names(&mut table, &f.resource);
                }
                let rows = printer::table_rows(&table, layout(a, format, true));
                if several {
                    write!(out, "{}", printer::align(&rows))?;
                } else {
                    write!(out, "{}", printer::align_keep(&rows, widths))?;
                }
            }
        }
        Format::Name => {
            for f in fetched {
                for o in &f.objects {
                    writeln!(out, "{}", object_name(&f.resource, o))?;
                }
            }
        }
        Format::Yaml | Format::Json => {
            let mut items: Vec<Value> = fetched.iter().flat_map(|f| f.objects.clone()).collect();
            if !a.show_managed_fields {
                for item in &mut items {
                    printer::strip_managed_fields(item);
                }
            }
            if items.is_empty() && !single_named && fetched.is_empty() {
                return Ok(());
            }
            let doc = if single_named && items.len() == 1 {
                items.remove(0)
            } else {
                printer::as_list(items)
            };
            let text = if format == Format::Yaml {
                printer::to_yaml(&doc)
            } else {
                printer::to_json(&doc)
            };
            write!(out, "{text}")?;
        }
    }
    Ok(())
}

/// `pod/web`, `deployment.apps/web`.
pub fn object_name(resource: &ApiResource, object: &Value) -> String {
    format!(
        "{}/{}",
        resource.qualified_kind(),
        object["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// What a watch follows and how it prints.
struct Watch<'a> {
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    selectors: &'a str,
    format: Format,
    header: bool,
}

fn watch(ctx: &Ctx, f: &Fetched, a: &GetArgs, w: Watch, widths: &mut Vec<usize>) -> Result<()> {
    let Watch {
        name,
        namespace,
        selectors,
        format,
        mut header,
    } = w;
    let name_selector = name.map(|n| format!("fieldSelector=metadata.name%3D{n}"));
    let rv = if a.watch_only || f.resource_version.is_empty() {
        String::new()
    } else {
        format!("resourceVersion={}", f.resource_version)
    };
    let path = with_query(
        &f.resource.collection_path(namespace),
        &[
            "watch=true",
            &rv,
            if name.is_some() { "" } else { selectors },
            name_selector.as_deref().unwrap_or(""),
        ],
    );
    let as_table = matches!(format, Format::Table | Format::Wide);
    let accept = if as_table {
        ACCEPT_TABLE
    } else {
        "application/json"
    };
    let reader = ctx.client.stream("GET", &path, accept, None)?;
    let events = serde_json::Deserializer::from_reader(BufReader::new(reader)).into_iter::<Value>();
    let mut out = std::io::stdout().lock();
    for event in events {
        let event = event.map_err(|e| anyhow::anyhow!("watch stream broke: {e}"))?;
        if event["type"] == "ERROR" {
            let st = &event["object"];
            bail!(
                "watch failed: {}",
                st["message"].as_str().unwrap_or("unknown error")
            );
        }
        if event["type"] == "BOOKMARK" {
            continue;
        }
        let object = &event["object"];
        match format {
            Format::Table | Format::Wide => {
                let rows = printer::table_rows(object, layout(a, format, header));
                if rows.len() > usize::from(header) {
                    header = false;
                }
                write!(out, "{}", printer::align_keep(&rows, widths))?;
            }
            Format::Name => writeln!(out, "{}", object_name(&f.resource, object))?,
            Format::Json => write!(out, "{}", printer::to_json(object))?,
            Format::Yaml => write!(out, "---\n{}", printer::to_yaml(object))?,
        }
        out.flush()?;
    }
    Ok(())
}
