//! No import cycle between files of different concepts, in any crate of
//! the workspace (the issue "The control plane as a folder of crates"):
//! each source file is a node, each `crate::a::b` or `super::x` path it
//! names (outside comments and its `#[cfg(test)] mod tests`) an edge to the
//! deepest file that path reaches, and a strongly connected set of more
//! than one file fails the test, naming them. A module and the files of its
//! own submodules are one concept (a `mod.rs` and its children may use
//! each other), so those edges do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `src` folders of the workspace's crates.
const CRATES: &[&str] = &[
    "protocol/src",
    "runtime/src",
    "control-plane/store/src",
    "control-plane/pki/src",
    "control-plane/client/src",
    "control-plane/registry/src",
    "control-plane/apiserver/src",
    "control-plane/nodeapi/src",
    "control-plane/scheduler/src",
    "control-plane/controllers/src",
    "control-plane/member/src",
    "node/src",
    "ctl/src",
];

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source without line comments and without its test module.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::...` and `super::...` path in `code`, as (supers, segments);
/// `crate` is `None`.
fn paths(code: &str) -> Vec<(Option<usize>, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in 0..bytes.len() {
        if !code.is_char_boundary(start) {
            continue;
        }
        let rest = &code[start..];
        let boundary = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        if !boundary || !(rest.starts_with("crate::") || rest.starts_with("super::")) {
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let supers = segs.iter().take_while(|s| **s == "super").count();
        let head = if segs[0] == "crate" {
            None
        } else {
            Some(supers)
        };
        let skip = if head.is_none() { 1 } else { supers };
        let names = segs[skip..]
            .iter()
            .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .map(|s| s.to_string())
            .collect();
        out.push((head, names));
    }
    out
}

#[test]
fn no_import_cycles_between_files_of_different_concepts() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut edges: BTreeMap<(usize, Module), BTreeSet<(usize, Module)>> = BTreeMap::new();
    for (c, dir) in CRATES.iter().enumerate() {
        let root = repo.join(dir);
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let modules: BTreeMap<Module, PathBuf> = files
            .iter()
            .map(|f| (module_of(&root, f), f.clone()))
            .collect();
        for (module, file) in &modules {
            let code = code_of(&std::fs::read_to_string(file).unwrap());
            for (head, names) in paths(&code) {
                // `super` is the parent of this file's module.
                let mut target = match head {
                    None => Vec::new(),
                    Some(n) => module[..module.len().saturating_sub(n)].to_vec(),
                };
                let start = target.len();
                target.extend(names);
                let reached = (start..=target.len())
                    .rev()
                    .map(|i| target[..i].to_vec())
                    .find(|m| modules.contains_key(m));
                let Some(to) = reached else { continue };
                // A module and its own submodules are one concept.
                if to.starts_with(module) || module.starts_with(&to) {
                    continue;
                }
                edges
                    .entry((c, module.clone()))
                    .or_default()
                    .insert((c, to));
            }
        }
    }
    let cycles = strongly_connected(&edges);
    let named: Vec<String> = cycles
        .iter()
        .map(|set| {
            let files: Vec<String> = set
                .iter()
                .map(|(c, m)| {
                    format!(
                        "{}/{}",
                        CRATES[*c],
                        if m.is_empty() {
                            "<root>".into()
                        } else {
                            m.join("/")
                        }
                    )
                })
                .collect();
            files.join(" <-> ")
        })
        .collect();
    assert!(
        named.is_empty(),
        "import cycles between files:\n{}",
        named.join("\n")
    );
    assert!(
        edges.len() > 100,
        "too few imports found ({}): is the parser broken?",
        edges.len()
    );
}

type Node = (usize, Module);

/// Tarjan's strongly connected components of more than one node.
fn strongly_connected(edges: &BTreeMap<Node, BTreeSet<Node>>) -> Vec<Vec<Node>> {
    struct State<'a> {
        edges: &'a BTreeMap<Node, BTreeSet<Node>>,
        index: BTreeMap<Node, usize>,
        low: BTreeMap<Node, usize>,
        stack: Vec<Node>,
        on_stack: BTreeSet<Node>,
        next: usize,
        out: Vec<Vec<Node>>,
    }
    fn visit(s: &mut State, v: &Node) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        for w in s.edges.get(v).cloned().unwrap_or_default() {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = &w == v;
                set.push(w);
                if done {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.out.push(set);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn paths_are_read_from_code_not_comments() {
    let code =
        code_of("use crate::a::b::{C, d};\n// crate::x::y\nfn f() { super::super::z::w(); }\n");
    assert_eq!(
        paths(&code),
        vec![
            (None, vec!["a".to_string(), "b".to_string()]),
            (Some(2), vec!["z".to_string(), "w".to_string()]),
        ]
    );
}
