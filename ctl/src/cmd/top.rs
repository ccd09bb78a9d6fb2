//! `kcctl top node|pod`: resource usage from the `metrics.k8s.io` API,
//! printed as kubectl's `top` prints it (its metricsutil printer): CPU in
//! millicores rounded up, memory in whole MiB, node percentages against
//! allocatable (or capacity), rows sorted by name or by `--sort-by`.
//!
//! Quantities are added and rounded exactly as Kubernetes' `Quantity`
//! does (kept here in nano units), so the figures match kubectl's to the
//! digit for the same answer.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::ctx::{Ctx, selector_query};
use crate::printer;

const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";

/// Display resource (CPU/memory) usage.
#[derive(Debug, Subcommand)]
pub enum TopCmd {
    /// Display resource (CPU/memory) usage of nodes.
    #[command(visible_aliases = ["nodes", "no"])]
    Node(TopNodeArgs),
    /// Display resource (CPU/memory) usage of pods.
    #[command(visible_aliases = ["pods", "po"])]
    Pod(TopPodArgs),
}

/// What `top node` and `top pod` share.
#[derive(Debug, Args)]
pub struct TopCommon {
    /// Only this object.
    pub name: Option<String>,
    /// Selector (label query) to filter on, e.g. -l key1=value1,key2=value2.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Sort by cpu or memory (largest first).
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub struct TopNodeArgs {
    #[command(flatten)]
    pub common: TopCommon,
    /// Percentages against the nodes' capacity instead of allocatable.
    #[arg(long)]
    pub show_capacity: bool,
}

#[derive(Debug, Args)]
pub struct TopPodArgs {
    #[command(flatten)]
    pub common: TopCommon,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// One line per container.
    #[arg(long)]
    pub containers: bool,
    /// Selector (field query) to filter on, e.g. --field-selector status.phase=Running.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Print the sum of the resource usage.
    #[arg(long)]
    pub sum: bool,
}

/// A quantity in nano units (`1` = 10⁹, `5m` = 5·10⁶, `1Ki` = 1024·10⁹),
/// or None if it is not a quantity.
pub fn nano(q: &str) -> Option<u128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.trim_start_matches('+').parse().ok()?
    };
    let frac_digits = frac.len().min(9);
    let frac_value: u128 = if frac_digits == 0 {
        0
    } else {
        frac[..frac_digits].parse::<u128>().ok()? * 10u128.pow((9 - frac_digits) as u32)
    };
    let base = whole * 1_000_000_000 + frac_value;
    let (mul, div): (u128, u128) = match suffix {
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1000),
        "" => (1, 1),
        "k" => (1000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        _ => return None,
    };
    Some(base * mul / div)
}

/// `Quantity.MilliValue()`: thousandths, rounded up.
pub fn milli(nano: u128) -> u128 {
    nano.div_ceil(1_000_000)
}

/// `Quantity.Value()`: whole units, rounded up.
pub fn value(nano: u128) -> u128 {
    nano.div_ceil(1_000_000_000)
}

/// kubectl's CPU cell: `124m`.
pub fn cpu_cell(nano: u128) -> String {
    format!("{}m", milli(nano))
}

/// kubectl's memory cell: `64Mi` (whole MiB, rounded down).
pub fn memory_cell(nano: u128) -> String {
    format!("{}Mi", value(nano) / (1024 * 1024))
}

/// kubectl's percentage cell: `int64(used milli / available milli * 100)`.
pub fn percent_cell(used: u128, available: u128) -> Option<String> {
    let available = milli(available);
    (available > 0).then(|| {
        format!(
            "{}%",
            (milli(used) as f64 / available as f64 * 100.0) as i64
        )
    })
}

/// (cpu, memory) in nano units of a `usage` map.
fn usage_of(usage: &Value) -> (u128, u128) {
    let q = |k: &str| usage[k].as_str().and_then(nano).unwrap_or(0);
    (q("cpu"), q("memory"))
}

fn check_sort(sort_by: Option<&str>) -> Result<()> {
    match sort_by {
        None | Some("cpu" | "memory") => Ok(()),
        Some(_) => bail!("--sort-by accepts only cpu or memory"),
    }
}

/// Orders rows like kubectl's sorters: by cpu or memory, largest first,
/// else by the key.
fn sort_rows<T>(rows: &mut [T], sort_by: Option<&str>, key: impl Fn(&T) -> (String, u128, u128)) {
    rows.sort_by(|a, b| {
        let (ka, ca, ma) = key(a);
        let (kb, cb, mb) = key(b);
        match sort_by {
            Some("cpu") => milli(cb).cmp(&milli(ca)),
            Some("memory") => value(mb).cmp(&value(ma)),
            _ => ka.cmp(&kb),
        }
    });
}

/// Every line is tab-terminated in kubectl's printer, the last cell too;
/// its tab writer has minwidth 6 and padding 3.
fn print_rows(mut rows: Vec<Vec<String>>) {
    for r in &mut rows {
        r.push(String::new());
    }
    print!("{}", printer::tabwriter_min(&rows, 6, 3));
}

fn metrics_available(ctx: &Ctx) -> Result<()> {
    if !ctx
        .discovery()?
        .groups
        .iter()
        .any(|g| g == "metrics.k8s.io")
    {
        bail!("Metrics API not available");
    }
    Ok(())
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// The items of a list answer, or the one object a name asked for.
fn items(answer: Value, named: bool) -> Vec<Value> {
    if named {
        vec![answer]
    } else {
        answer["items"].as_array().cloned().unwrap_or_default()
    }
}

pub fn run(ctx: &Ctx, cmd: &TopCmd) -> Result<i32> {
    match cmd {
        TopCmd::Node(a) => top_node(ctx, a),
        TopCmd::Pod(a) => top_pod(ctx, a),
    }
}

fn top_node(ctx: &Ctx, a: &TopNodeArgs) -> Result<i32> {
    let c = &a.common;
    check_sort(c.sort_by.as_deref())?;
    if c.name.is_some() && c.selector.as_deref().is_some_and(|s| !s.is_empty()) {
        bail!("only one of NAME or --selector can be provided");
    }
    metrics_available(ctx)?;
    let query = selector_query(c.selector.as_deref(), None);
    let (metrics_path, nodes_path) = match &c.name {
        Some(n) => (format!("{METRICS}/nodes/{n}"), format!("/api/v1/nodes/{n}")),
        None => (format!("{METRICS}/nodes"), "/api/v1/nodes".to_string()),
    };
    let metrics = items(
        ctx.client.get(&with_query(metrics_path, &query))?,
        c.name.is_some(),
    );
    if metrics.is_empty() {
        bail!("metrics not available yet");
    }
    let nodes = items(
        ctx.client.get(&with_query(nodes_path, &query))?,
        c.name.is_some(),
    );
    let field = if a.show_capacity {
        "capacity"
    } else {
        "allocatable"
    };
    let mut available: Vec<(String, (u128, u128))> = nodes
        .iter()
        .map(|n| {
            let name = n["metadata"]["name"].as_str().unwrap_or("").to_string();
            (name, usage_of(&n["status"][field]))
        })
        .collect();
    let mut measured: Vec<(String, (u128, u128))> = metrics
        .iter()
        .map(|m| {
            let name = m["metadata"]["name"].as_str().unwrap_or("").to_string();
            (name, usage_of(&m["usage"]))
        })
        .collect();
    sort_rows(&mut measured, c.sort_by.as_deref(), |(n, (cpu, mem))| {
        (n.clone(), *cpu, *mem)
    });
    let mut rows = Vec::new();
    if !c.no_headers {
        rows.push(
            ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
                .map(String::from)
                .to_vec(),
        );
    }
    for (name, (cpu, mem)) in &measured {
        let mut row = vec![name.clone(), cpu_cell(*cpu)];
        let avail = available
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| available.remove(i).1);
        if let Some(p) = avail.and_then(|(ac, _)| percent_cell(*cpu, ac)) {
            row.push(p);
        }
        row.push(memory_cell(*mem));
        if let Some(p) = avail.and_then(|(_, am)| percent_cell(*mem, am)) {
            row.push(p);
        }
        rows.push(row);
    }
    // Nodes with no metrics yet, as kubectl prints them.
    for (name, _) in available {
        let mut row = vec![name];
        row.extend(std::iter::repeat_n("<unknown>".to_string(), 4));
        rows.push(row);
    }
    print_rows(rows);
    Ok(0)
}

/// The pod's creation age in seconds (None if unknown).
fn age_seconds(pod: &Value) -> Option<i64> {
    let created = pod["metadata"]["creationTimestamp"].as_str()?;
    let at = chrono::DateTime::parse_from_rfc3339(created).ok()?;
    Some(chrono::Utc::now().timestamp() - at.timestamp())
}

/// kubectl's answer to an empty metrics list: pods older than two minutes
/// have no metrics (an error), younger ones may not have them yet.
fn explain_no_metrics(ctx: &Ctx, a: &TopPodArgs, pods_path: &str) -> Result<()> {
    let pods = ctx.client.get(pods_path)?;
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    if pods.is_empty() {
        if a.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace);
        }
        return Ok(());
    }
    for pod in &pods {
        if let Some(age) = age_seconds(pod).filter(|s| *s > 120) {
            bail!(
                "Metrics not available for pod {}/{}, age: {}s",
                pod["metadata"]["namespace"].as_str().unwrap_or(""),
                pod["metadata"]["name"].as_str().unwrap_or(""),
                age
            );
        }
    }
    bail!("metrics not available yet")
}

fn top_pod(ctx: &Ctx, a: &TopPodArgs) -> Result<i32> {
    let c = &a.common;
    check_sort(c.sort_by.as_deref())?;
    let selected = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if c.name.is_some() && (selected(&c.selector) || selected(&a.field_selector)) {
        bail!("only one of NAME or selector can be provided");
    }
    metrics_available(ctx)?;
    let query = selector_query(c.selector.as_deref(), a.field_selector.as_deref());
    let scope = if a.all_namespaces {
        String::new()
    } else {
        format!("/namespaces/{}", ctx.namespace)
    };
    let metrics_path = match &c.name {
        Some(n) => format!("{METRICS}{scope}/pods/{n}"),
        None => format!("{METRICS}{scope}/pods"),
    };
    let metrics = items(
        ctx.client.get(&with_query(metrics_path, &query))?,
        c.name.is_some(),
    );
    if metrics.is_empty() {
        // kubectl looks at the context's namespace, even with -A.
        let pods_path = with_query(format!("/api/v1/namespaces/{}/pods", ctx.namespace), &query);
        explain_no_metrics(ctx, a, &pods_path)?;
        return Ok(0);
    }
    struct PodRow {
        namespace: String,
        name: String,
        cpu: u128,
        memory: u128,
        containers: Vec<(String, u128, u128)>,
    }
    let mut pods: Vec<PodRow> = metrics
        .iter()
        .map(|m| {
            let containers: Vec<(String, u128, u128)> = m["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let (cpu, mem) = usage_of(&c["usage"]);
                    (c["name"].as_str().unwrap_or("").to_string(), cpu, mem)
                })
                .collect();
            PodRow {
                namespace: m["metadata"]["namespace"].as_str().unwrap_or("").into(),
                name: m["metadata"]["name"].as_str().unwrap_or("").into(),
                cpu: containers.iter().map(|c| c.1).sum(),
                memory: containers.iter().map(|c| c.2).sum(),
                containers,
            }
        })
        .collect();
    let sort_by = c.sort_by.as_deref();
    let with_ns = a.all_namespaces;
    sort_rows(&mut pods, sort_by, |p| {
        let key = if with_ns {
            format!("{}\0{}", p.namespace, p.name)
        } else {
            p.name.clone()
        };
        (key, p.cpu, p.memory)
    });
    let mut rows = Vec::new();
    if !c.no_headers {
        let mut header = Vec::new();
        if with_ns {
            header.push("NAMESPACE".to_string());
        }
        if a.containers {
            header.push("POD".to_string());
        }
        header.extend(["NAME", "CPU(cores)", "MEMORY(bytes)"].map(String::from));
        rows.push(header);
    }
    for p in &mut pods {
        sort_rows(&mut p.containers, sort_by, |c| (c.0.clone(), c.1, c.2));
    }
    for p in &pods {
        let lead = |rows: &mut Vec<String>| {
            if with_ns {
                rows.push(p.namespace.clone());
            }
        };
        if a.containers {
            for (name, cpu, mem) in &p.containers {
                let mut row = Vec::new();
                lead(&mut row);
                row.extend([
                    p.name.clone(),
                    name.clone(),
                    cpu_cell(*cpu),
                    memory_cell(*mem),
                ]);
                rows.push(row);
            }
        } else {
            let mut row = Vec::new();
            lead(&mut row);
            row.extend([p.name.clone(), cpu_cell(p.cpu), memory_cell(p.memory)]);
            rows.push(row);
        }
    }
    if a.sum {
        let columns = 3 + usize::from(with_ns) + usize::from(a.containers);
        let mut bar = vec![String::new(); columns - 2];
        bar.extend(["________".to_string(), "________".to_string()]);
        rows.push(bar);
        let mut total = vec![String::new(); columns - 2];
        total.push(cpu_cell(pods.iter().map(|p| p.cpu).sum()));
        total.push(memory_cell(pods.iter().map(|p| p.memory).sum()));
        rows.push(total);
    }
    print_rows(rows);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_into_nano_units() {
        assert_eq!(nano("123456789n"), Some(123_456_789));
        assert_eq!(nano("250m"), Some(250_000_000));
        assert_eq!(nano("2"), Some(2_000_000_000));
        assert_eq!(nano("1.5"), Some(1_500_000_000));
        assert_eq!(nano("65536Ki"), Some((64u128 << 20) * 1_000_000_000));
        assert_eq!(nano("1k"), Some(1_000_000_000_000));
        assert_eq!(nano("12x"), None);
    }

    #[test]
    fn cells_round_like_kubernetes_quantities() {
        // MilliValue rounds up, memory is whole MiB rounded down.
        assert_eq!(cpu_cell(nano("123456789n").unwrap()), "124m");
        assert_eq!(cpu_cell(nano("1000000n").unwrap()), "1m");
        assert_eq!(cpu_cell(0), "0m");
        assert_eq!(memory_cell(nano("65535Ki").unwrap()), "63Mi");
        assert_eq!(memory_cell(nano("65536Ki").unwrap()), "64Mi");
        assert_eq!(
            percent_cell(nano("999m").unwrap(), nano("2").unwrap()),
            Some("49%".into())
        );
        assert_eq!(percent_cell(1, 0), None);
    }

    #[test]
    fn sorting_is_by_name_or_largest_first() {
        let mut rows = vec![("b", 5u128, 1u128), ("a", 1, 9), ("c", 3, 3)];
        let key = |r: &(&str, u128, u128)| (r.0.to_string(), r.1 * 1_000_000, r.2 * 1_000_000_000);
        sort_rows(&mut rows, None, key);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        sort_rows(&mut rows, Some("cpu"), key);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        sort_rows(&mut rows, Some("memory"), key);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ["a", "c", "b"]
        );
    }
}
