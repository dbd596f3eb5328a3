//! The layering rule of docs/design.md, enforced: every module of `src/`
//! sits in one layer of the table under "## Layers", and no code outside a
//! test module names (`crate::…`) a module of a higher layer. Modules of
//! one layer may use each other, but never in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Module → layer, from the table in docs/design.md.
fn layers() -> BTreeMap<String, usize> {
    let design = std::fs::read_to_string(Path::new(ROOT).join("docs/design.md")).unwrap();
    let section = design
        .split("\n## Layers\n")
        .nth(1)
        .expect("docs/design.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<usize>().ok()) else {
            continue;
        };
        for module in cells[2].split(',') {
            let name = module.trim().trim_matches('`');
            assert!(
                out.insert(name.to_string(), layer).is_none(),
                "{name} is in two layers"
            );
        }
    }
    assert!(
        out.len() > 5,
        "the layer table of docs/design.md was not read"
    );
    out
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; `None` for the
/// crate root and the binaries.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(Path::new(ROOT).join("src")).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (!matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
}

/// `(line number, module named)` of every `crate::module` in the code of
/// `text`, test modules and comments left out.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
        }
    }
    out
}

#[test]
fn no_module_uses_a_higher_layer_or_a_circle() {
    let layers = layers();
    let mut files = Vec::new();
    sources(&Path::new(ROOT).join("src"), &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(&layer) = layers.get(&module) else {
            panic!("src/{module} is in no layer of docs/design.md's table: place it there");
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in uses(&text) {
            if used == module {
                continue;
            }
            let Some(&used_layer) = layers.get(&used) else {
                panic!(
                    "{}:{line}: crate::{used} is in no layer of docs/design.md's table",
                    file.display()
                );
            };
            if used_layer > layer {
                upward.push(format!(
                    "{}:{line}: {module} (layer {layer}) uses {used} (layer {used_layer})",
                    file.strip_prefix(ROOT).unwrap().display()
                ));
            }
            edges.entry(module.clone()).or_default().insert(used);
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up a layer:\n  {}",
        upward.join("\n  ")
    );
    // Within a layer: no circle.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("an import circle: {} -> {m}", path[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_reader_of_uses_skips_comments_and_tests() {
    let text = "use crate::store::X;\n// crate::cmd in a comment\nlet a = crate::sql::open(); // crate::view\n#[cfg(test)]\nmod tests { use crate::cmd; }\n";
    assert_eq!(
        uses(text),
        vec![(1, "store".to_string()), (3, "sql".to_string())]
    );
}
