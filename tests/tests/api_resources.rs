//! `kubectl api-resources` on kc against Kubernetes 1.32's: the table of
//! docs/api-coverage.md is Kubernetes' own list (name, short names,
//! apiVersion, scope, kind) with what kc serves of it. Every resource kc
//! lists must be a row of that table marked served, with Kubernetes' short
//! names, scope and kind; every row marked served must be listed. So
//! discovery matches Kubernetes' and the coverage page cannot drift.

mod api_common;

use std::collections::BTreeSet;
use std::path::Path;

use api_common::ApiServer;

/// (name, short names, apiVersion, namespaced, kind).
type Row = (String, String, String, String, String);

/// The rows of the coverage table (and whether kc serves each).
fn coverage() -> Vec<(Row, bool)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api-coverage.md");
    let text = std::fs::read_to_string(&path).expect("docs/api-coverage.md");
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| NAME") && !l.starts_with("|---"))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            (cells.len() == 6).then(|| {
                let served = cells[5].starts_with("yes");
                (
                    (
                        cells[0].clone(),
                        cells[1].replace(' ', ""),
                        cells[2].clone(),
                        cells[3].clone(),
                        cells[4].clone(),
                    ),
                    served,
                )
            })
        })
        .collect()
}

/// `kubectl api-resources` as rows.
fn served(api: &ApiServer) -> BTreeSet<Row> {
    let out = api.ok(&["api-resources", "-o", "wide"]);
    let head = out.lines().next().expect("a header line");
    let col = |name: &str| {
        head.find(name)
            .unwrap_or_else(|| panic!("no {name} column: {head}"))
    };
    let (short, version, namespaced, kind, verbs) = (
        col("SHORTNAMES"),
        col("APIVERSION"),
        col("NAMESPACED"),
        col("KIND"),
        col("VERBS"),
    );
    let cell = |line: &str, from: usize, to: usize| {
        line.get(from..to.min(line.len()))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    out.lines()
        .skip(1)
        .map(|l| {
            (
                cell(l, 0, short),
                cell(l, short, version),
                cell(l, version, namespaced),
                cell(l, namespaced, kind),
                cell(l, kind, verbs),
            )
        })
        .collect()
}

#[test]
fn api_resources_are_kubernetes_own_rows() {
    let api = ApiServer::start();
    let table = coverage();
    assert!(
        table.len() >= 58,
        "the coverage table has {} rows",
        table.len()
    );
    let listed = served(&api);
    let known: BTreeSet<&Row> = table.iter().map(|(r, _)| r).collect();
    let marked: BTreeSet<&Row> = table.iter().filter(|(_, s)| *s).map(|(r, _)| r).collect();
    for row in &listed {
        if row.2.starts_with("metrics.k8s.io/") {
            continue; // metrics-server's, listed in the page's second table
        }
        assert!(
            known.contains(row),
            "kc lists {row:?}, which is not Kubernetes 1.32's row (docs/api-coverage.md)"
        );
        assert!(
            marked.contains(row),
            "kc serves {row:?}: mark it served in docs/api-coverage.md"
        );
    }
    for row in marked {
        assert!(
            listed.contains(row),
            "docs/api-coverage.md marks {row:?} served, but kubectl api-resources lacks it"
        );
    }
}
