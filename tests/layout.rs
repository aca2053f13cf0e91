//! The shipped library's modules import each other in one direction only: no two top-level
//! modules, and no two files of one module directory, depend on each other, directly or round
//! a longer circle. Read from the sources' `crate::`, `super::` and re-exported paths (tests
//! and comments left out), so a new circle fails here before it tangles the house.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The file's code without comments and without its `#[cfg(test)] mod tests`.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("source file reads");
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let next = lines.get(index + 1).map_or("", |next| next.trim());
        if trimmed == "#[cfg(test)]" && next.starts_with("mod tests") {
            break;
        }
        if !trimmed.starts_with("//") {
            kept.push(*line);
        }
    }
    kept.join("\n")
}

/// The identifiers that follow each occurrence of `prefix`, including every name of a
/// `prefix{a, b::c}` group.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + prefix.len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            names.extend(
                top_level_items(group)
                    .into_iter()
                    .filter_map(|item| item.split("::").next().map(str::trim))
                    .filter(|name| !name.is_empty() && *name != "self")
                    .map(str::to_string),
            );
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// The comma-separated items of a `{...}` group up to its closing brace (`group` starts after
/// the opening one), nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// Names a module directory's `mod.rs` re-exports, by the file that defines them.
fn reexports(mod_rs: &str) -> BTreeMap<String, String> {
    let mut owners = BTreeMap::new();
    for line in mod_rs.split(';') {
        let Some(used) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((file, items)) = used.split_once("::") else {
            continue;
        };
        let items = match items.trim().strip_prefix('{') {
            Some(group) => top_level_items(group),
            None => vec![items],
        };
        for item in items {
            let name = item.rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                owners.insert(name.to_string(), file.trim().to_string());
            }
        }
    }
    owners
}

/// The circles in `graph`: its strongly connected components of more than one node.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    let nodes: Vec<&String> = graph.keys().collect();
    let reaches = |from: &String, to: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(node) = stack.pop() {
            if node == to {
                return true;
            }
            if seen.insert(node) {
                stack.extend(graph.get(node).into_iter().flatten());
            }
        }
        false
    };
    let mut found: Vec<Vec<String>> = Vec::new();
    for node in &nodes {
        if found.iter().any(|circle| circle.contains(node)) {
            continue;
        }
        let circle: Vec<String> = nodes
            .iter()
            .filter(|other| other != &node && reaches(node, other) && reaches(other, node))
            .map(|other| (*other).clone())
            .collect();
        if !circle.is_empty() {
            found.push([vec![(*node).clone()], circle].concat());
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("directory reads")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
        .to_string()
}

/// Every file (and subdirectory) of `dir` below `src/`, and what it takes from its siblings.
fn sibling_graph(src: &Path, dir: &Path) -> Graph {
    let module = dir
        .strip_prefix(src)
        .expect("below src")
        .to_string_lossy()
        .replace('/', "::");
    let owners = reexports(&code(&dir.join("mod.rs")));
    let mut siblings: BTreeSet<String> = rust_files(dir)
        .iter()
        .map(|path| stem(path))
        .filter(|name| name != "mod")
        .collect();
    let subdirs: Vec<PathBuf> = fs::read_dir(dir)
        .expect("directory reads")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("mod.rs").is_file())
        .collect();
    siblings.extend(subdirs.iter().map(|path| stem(path)));
    let mut graph = Graph::new();
    let sources = rust_files(dir)
        .into_iter()
        .filter(|path| stem(path) != "mod")
        .map(|path| (stem(&path), vec![path]))
        .chain(subdirs.iter().map(|sub| {
            let files = fs::read_dir(sub)
                .expect("directory reads")
                .map(|entry| entry.expect("entry").path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .collect();
            (stem(sub), files)
        }));
    for (name, files) in sources {
        let edges = graph.entry(name.clone()).or_default();
        for file in files {
            let code = code(&file);
            let own_prefix = format!("crate::{module}::");
            // A subdirectory's files reach their parent's siblings through `super::super::`.
            let parent_prefix = if file.parent() == Some(dir) {
                "super::"
            } else {
                "super::super::"
            };
            for used in names_after(&code, parent_prefix)
                .into_iter()
                .chain(names_after(&code, &own_prefix))
            {
                let target = if siblings.contains(&used) {
                    Some(used)
                } else {
                    owners.get(&used).cloned()
                };
                if let Some(target) = target.filter(|target| target != &name) {
                    edges.insert(target);
                }
            }
        }
    }
    graph
}

/// Top-level modules of the library and the other top-level modules they use.
fn top_level_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut visit = vec![src.to_path_buf()];
    while let Some(dir) = visit.pop() {
        for entry in fs::read_dir(&dir).expect("directory reads") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "bin") {
                    visit.push(path);
                }
                continue;
            }
            let relative = path.strip_prefix(src).expect("below src");
            let top = relative
                .components()
                .next()
                .map(|part| {
                    part.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_string()
                })
                .unwrap_or_default();
            if path.extension().is_none_or(|ext| ext != "rs") || top == "lib" || top == "main" {
                continue;
            }
            let edges = graph.entry(top.clone()).or_default();
            edges.extend(
                names_after(&code(&path), "crate::")
                    .into_iter()
                    .filter(|used| used != &top),
            );
        }
    }
    graph
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_two_top_level_modules_depend_on_each_other() {
    let graph = top_level_graph(&src());
    assert!(graph.contains_key("controller") && graph.contains_key("dli"));
    assert_eq!(circles(&graph), Vec::<Vec<String>>::new(), "{graph:#?}");
}

#[test]
fn no_two_files_of_a_module_depend_on_each_other() {
    let mut dirs = vec![src()];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("directory reads") {
            let path = entry.expect("entry").path();
            if path.join("mod.rs").is_file() {
                dirs.push(path);
            }
        }
        if dir.join("mod.rs").is_file() {
            let graph = sibling_graph(&src(), &dir);
            checked += 1;
            assert_eq!(
                circles(&graph),
                Vec::<Vec<String>>::new(),
                "{}: {graph:#?}",
                dir.display()
            );
        }
    }
    assert!(checked >= 4, "only {checked} module directories found");
}

#[test]
fn the_reader_sees_a_circle_when_there_is_one() {
    let graph: Graph = [
        ("client", vec!["outcome"]),
        ("outcome", vec!["token"]),
        ("token", vec!["client"]),
        ("wire", vec![]),
    ]
    .into_iter()
    .map(|(node, edges)| {
        (
            node.to_string(),
            edges.into_iter().map(str::to_string).collect(),
        )
    })
    .collect();
    assert_eq!(
        circles(&graph),
        vec![vec![
            "client".to_string(),
            "outcome".to_string(),
            "token".to_string()
        ]]
    );
    let code = "use super::{status::{a, b}, plan};\nuse crate::dli::Client;\n";
    assert_eq!(names_after(code, "super::"), vec!["status", "plan"]);
    assert_eq!(names_after(code, "crate::dli::"), vec!["Client"]);
    assert_eq!(
        reexports("pub use client::{DliClient, JobFilter};\npub use error::DliError;"),
        BTreeMap::from([
            ("DliClient".to_string(), "client".to_string()),
            ("JobFilter".to_string(), "client".to_string()),
            ("DliError".to_string(), "error".to_string()),
        ])
    );
}
