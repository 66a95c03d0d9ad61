//! The layout's promises, checked on the source itself so that they cannot
//! drift: top-level modules import each other without circles, and SQL is
//! written only under `src/store/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file of `src/` belongs to (`src/routes/admin.rs` → `routes`).
fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a source text names as `crate::NAME`, outside
/// comments and `#[cfg(test)]` modules.
fn crate_references(source: &str) -> BTreeSet<String> {
    let code: String = source
        .split("#[cfg(test)]")
        .next()
        .unwrap_or(source)
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    for (index, _) in code.match_indices("crate::") {
        let rest = &code[index + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            // `use crate::{a, b}`: every name in the braces.
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let item = item.trim();
                    let name: String = item
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        names.insert(name);
                    }
                }
            }
        } else {
            names.insert(name);
        }
    }
    names
}

/// Who imports whom among the top-level modules of `src/`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let module = top_module(&src, &file);
        if module == "main" || module == "lib" {
            continue;
        }
        let source = fs::read_to_string(&file).unwrap();
        let targets = graph.entry(module.clone()).or_default();
        targets.extend(
            crate_references(&source)
                .into_iter()
                .filter(|name| *name != module),
        );
    }
    graph
}

/// A circle in `graph`, as the list of modules along it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry((*from).into()).or_default().insert((*to).into());
        }
        graph
    };
    assert_eq!(find_circle(&graph(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_circle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_references(
            "use crate::{error::ApiError, store};\nuse crate::state::AppState;\n/// see [`crate::server`]"
        ),
        BTreeSet::from(["error".into(), "store".into(), "state".into()])
    );
}

#[test]
fn top_level_modules_import_each_other_without_circles() {
    let graph = module_graph();
    assert!(
        graph.contains_key("routes") && graph.contains_key("store"),
        "{graph:?}"
    );
    if let Some(circle) = find_circle(&graph) {
        panic!("import circle: {}\nwhole graph: {graph:#?}", circle.join(" → "));
    }
}

#[test]
fn sql_is_written_only_under_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let offenders: Vec<PathBuf> = rust_files(&src)
        .into_iter()
        .filter(|file| top_module(&src, file) != "store")
        .filter(|file| {
            let source = fs::read_to_string(file).unwrap();
            ["sqlx::query", "query_as(", "query_scalar(", "QueryBuilder"]
                .iter()
                .any(|needle| source.contains(needle))
        })
        .collect();
    assert!(offenders.is_empty(), "SQL outside src/store/: {offenders:?}");
}
