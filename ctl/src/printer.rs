//! Output formats, the way kubectl prints them: server-side Tables as
//! aligned columns (upper-case headers, 3-space gaps, `-o wide` adding the
//! priority-1 columns, `-A` a NAMESPACE column), `-o yaml|json` with keys in
//! sorted order (kubectl marshals through maps), and `-o name`.
//! Everything here is pure: values in, text out.

use serde_json::{Map, Value, json};

/// Which output the user asked for with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Wide,
    Yaml,
    Json,
    Name,
}

impl Format {
    pub fn parse(o: Option<&str>) -> anyhow::Result<Self> {
        Ok(match o {
            None | Some("") => Format::Table,
            Some("wide") => Format::Wide,
            Some("yaml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("name") => Format::Name,
            Some(other) => anyhow::bail!(
                "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json,name,wide,yaml"
            ),
        })
    }
}

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableLayout {
    pub wide: bool,
    pub namespace_column: bool,
    pub headers: bool,
}

/// The text of a cell as kubectl prints it.
fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_string(),
        other => other.to_string(),
    }
}

/// The rows (header first when asked) of a `meta.k8s.io` Table.
pub fn table_rows(table: &Value, layout: TableLayout) -> Vec<Vec<String>> {
    let columns: Vec<(usize, String)> = table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| layout.wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, c)| (i, c["name"].as_str().unwrap_or("").to_uppercase()))
        .collect();
    let mut out = Vec::new();
    if layout.headers {
        let mut header: Vec<String> = columns.iter().map(|(_, n)| n.clone()).collect();
        if layout.namespace_column {
            header.insert(0, "NAMESPACE".to_string());
        }
        out.push(header);
    }
    for row in table["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let mut line: Vec<String> = columns
            .iter()
            .map(|(i, _)| cells.get(*i).map(cell_text).unwrap_or_default())
            .collect();
        if layout.namespace_column {
            let ns = row["object"]["metadata"]["namespace"]
                .as_str()
                .unwrap_or("");
            line.insert(0, ns.to_string());
        }
        out.push(line);
    }
    out
}

/// Aligns rows like Go's tabwriter with padding 3 (kubectl's table
/// printer): every column but the last is padded to its widest cell plus
/// three spaces.
pub fn align(rows: &[Vec<String>]) -> String {
    tabwriter(rows, 3)
}

/// Like [`align`], but column widths never shrink below `widths`, which is
/// updated: `get -w` keeps later rows aligned with the first table, as
/// kubectl does.
pub fn align_keep(rows: &[Vec<String>], widths: &mut Vec<usize>) -> String {
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] + 3 - cell.chars().count();
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

/// Go's `text/tabwriter` (flags 0, pad ' '): in each line every cell but the
/// last is "tab-terminated" and padded to the widest cell of its column
/// block (the run of adjacent lines that have a tab-terminated cell in that
/// column) plus `padding`; the last cell is printed as is.
pub fn tabwriter(rows: &[Vec<String>], padding: usize) -> String {
    tabwriter_min(rows, 0, padding)
}

/// [`tabwriter`] with Go's `minwidth`: a padded cell is at least
/// `min_width` wide (kubectl's `printers.GetNewTabWriter` uses 6, which
/// shows on short last columns such as `top node --no-headers`' `4%`).
pub fn tabwriter_min(rows: &[Vec<String>], min_width: usize, padding: usize) -> String {
    let width = |r: usize, c: usize| rows[r][c].chars().count();
    let terminated = |r: usize, c: usize| rows[r].len() > c + 1;
    let mut widths: Vec<Vec<usize>> = rows.iter().map(|r| vec![0; r.len()]).collect();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    for c in 0..ncols {
        let mut r = 0;
        while r < rows.len() {
            if !terminated(r, c) {
                r += 1;
                continue;
            }
            let start = r;
            while r < rows.len() && terminated(r, c) {
                r += 1;
            }
            let w = (start..r).map(|i| width(i, c)).max().unwrap_or(0);
            for row in widths.iter_mut().take(r).skip(start) {
                row[c] = w;
            }
        }
    }
    let mut text = String::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if terminated(r, c) {
                let pad = (widths[r][c] + padding).max(min_width) - width(r, c);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

/// Number of rows in a Table.
pub fn row_count(table: &Value) -> usize {
    table["rows"].as_array().map(Vec::len).unwrap_or(0)
}

/// A copy of `v` whose object keys are in sorted order, the order kubectl
/// prints (whatever map type serde_json was built with).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// JSON with kubectl's 4-space indentation.
pub fn to_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(&sorted(v), &mut ser);
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}

/// YAML with sorted keys, in kubectl's style.
pub fn to_yaml(v: &Value) -> String {
    crate::yaml::to_string(&sorted(v))
}

/// The `List` kubectl prints for several objects with `-o yaml|json`.
pub fn as_list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items,
        "metadata": { "resourceVersion": "" },
    })
}

/// Drops `metadata.managedFields`, which kubectl hides unless asked.
pub fn strip_managed_fields(object: &mut Value) {
    if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
}

/// Fills in `apiVersion`/`kind` of list items (the server omits them in
/// lists; kubectl prints them).
pub fn with_type(mut item: Value, api_version: &str, kind: &str) -> Value {
    if let Some(m) = item.as_object_mut() {
        m.entry("apiVersion").or_insert_with(|| json!(api_version));
        m.entry("kind").or_insert_with(|| json!(kind));
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_table() -> Value {
        json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "priority": 0},
                {"name": "Ready", "priority": 0},
                {"name": "Node", "priority": 1},
                {"name": "Age", "priority": 0},
            ],
            "rows": [
                {"cells": ["web", "0/1", "<none>", "5m"], "object": {"metadata": {"namespace": "default"}}},
                {"cells": ["a-long-name", "1/1", "n1", "10s"], "object": {"metadata": {"namespace": "kube-system"}}},
            ],
        })
    }

    #[test]
    fn table_aligns_with_three_spaces_and_no_trailing_padding() {
        let layout = TableLayout {
            headers: true,
            ..Default::default()
        };
        let text = align(&table_rows(&pod_table(), layout));
        assert_eq!(
            text,
            "NAME          READY   AGE\nweb           0/1     5m\na-long-name   1/1     10s\n"
        );
    }

    #[test]
    fn wide_adds_priority_columns_and_all_namespaces_adds_namespace() {
        let layout = TableLayout {
            headers: true,
            wide: true,
            namespace_column: true,
        };
        let rows = table_rows(&pod_table(), layout);
        assert_eq!(rows[0], ["NAMESPACE", "NAME", "READY", "NODE", "AGE"]);
        assert_eq!(rows[2][0], "kube-system");
    }

    #[test]
    fn tabwriter_blocks_break_at_lines_without_tabs() {
        let rows: Vec<Vec<String>> = [
            vec!["Name:", "web"],
            vec!["Service Account:", "default"],
            vec!["Containers:"],
            vec!["  web:"],
            vec!["    Image:", "nginx"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
        assert_eq!(
            tabwriter(&rows, 2),
            "Name:             web\nService Account:  default\nContainers:\n  web:\n    Image:  nginx\n"
        );
    }

    #[test]
    fn min_width_pads_short_cells_as_go_does() {
        let rows = vec![vec!["w1".to_string(), "4%".to_string(), String::new()]];
        // Go: width = max(minwidth, text + padding) = max(6, 2 + 3).
        assert_eq!(tabwriter_min(&rows, 6, 3), "w1    4%    \n");
        assert_eq!(tabwriter(&rows, 3), "w1   4%   \n");
    }

    #[test]
    fn kept_widths_align_later_rows_with_earlier_ones() {
        let mut w = Vec::new();
        let row = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        assert_eq!(
            align_keep(&[row("NAME", "AGE"), row("long-name", "1s")], &mut w),
            "NAME        AGE\nlong-name   1s\n"
        );
        assert_eq!(align_keep(&[row("p", "0s")], &mut w), "p           0s\n");
    }

    #[test]
    fn json_is_sorted_and_indented_by_four() {
        let text = to_json(&json!({"b": 1, "a": {"d": 2, "c": 3}}));
        assert_eq!(
            text,
            "{\n    \"a\": {\n        \"c\": 3,\n        \"d\": 2\n    },\n    \"b\": 1\n}\n"
        );
    }

    #[test]
    fn unknown_output_format_is_refused() {
        assert!(Format::parse(Some("xml")).is_err());
        assert_eq!(Format::parse(Some("wide")).unwrap(), Format::Wide);
    }
}
