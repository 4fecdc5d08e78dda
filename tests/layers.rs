//! The dependency rule (ARCHITECTURE.md) inside the `estuary` crate. Between crates the compiler
//! keeps it: the pure crates (`estuary-http`, `estuary-media`, `estuary-live`), the I/O crates
//! (`estuary-budget`, `-storage`, `-cache`, `-cluster`, `-telemetry`) and `estuary-sys` cannot
//! import upward. What is left in `estuary` are the tiers and what assembles them; this reads the
//! `use crate::` paths of every file under `src/` so that those, too, point down a layer, never up
//! or sideways, and the module graph has no circles.

use std::path::{Path, PathBuf};

/// Each node and its layer; a node may import only nodes of lower layers. The crates below
/// `estuary`, re-exported under their old module names, are layer 0.
const LAYERS: &[(&str, u32)] = &[
    ("http", 0),
    ("packaging", 0),
    ("budget", 0),
    ("storage", 0),
    ("cache", 0),
    ("cluster", 0),
    ("telemetry", 0),
    ("health", 0),
    // Where content keys come from (a static key, a SPEKE key server): the config builds them.
    ("keys", 1),
    ("config", 2),
    ("vod", 3),
    ("live", 3),
    ("edge", 4),
    ("api", 4),
    ("ingest", 4),
    ("internal", 4),
    ("server", 5),
];

fn layer(node: &str) -> u32 {
    LAYERS.iter().find(|(n, _)| *n == node).unwrap_or_else(|| panic!("{node} has no layer in tests/layers.rs")).1
}

/// The node of a module path below `crate::` (`live::actor::run` -> `live`).
fn node_of_path(segments: &[&str]) -> String {
    segments.first().map_or_else(String::new, |top| (*top).into())
}

/// The node a source file belongs to.
fn node_of_file(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let segments: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
    match segments.as_slice() {
        ["main"] | ["lib"] => None,
        segments => Some(node_of_path(segments)),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file (`src/live/actor/mod.rs` -> `live::actor`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segments: Vec<String> = rel.iter().filter_map(|s| s.to_str()).map(String::from).collect();
    if segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    segments
}

/// The absolute module paths a file in `module` names through `crate::` or `super::`, outside its
/// test modules (from the first `#[cfg(test)]` on).
fn crate_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(['c', 's']) {
        let tail = &rest[i..];
        let preceded = rest[..i].chars().next_back().is_some_and(ident);
        let (base, after): (Vec<String>, &str) = if !preceded && tail.starts_with("crate::") {
            (Vec::new(), &tail["crate::".len()..])
        } else if !preceded && tail.starts_with("super::") {
            let mut base = module.to_vec();
            let mut after = tail;
            while let Some(next) = after.strip_prefix("super::") {
                base.pop();
                after = next;
            }
            (base, after)
        } else {
            rest = &tail[1..];
            continue;
        };
        let path: String = after.chars().take_while(|c| ident(*c)).collect();
        if path.is_empty() {
            // `use super::*;` in an inline module: its parent, the file itself.
            rest = after;
            continue;
        }
        let mut segments = base;
        segments.extend(
            path.split("::")
                .filter(|s| !s.is_empty() && s.starts_with(|c: char| c.is_ascii_lowercase()))
                .map(String::from),
        );
        if !segments.is_empty() {
            paths.push(segments);
        }
        rest = &after[path.len()..];
    }
    paths
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let Some(from) = node_of_file(&src, file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(&module_of(&src, file), &text) {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let to = node_of_path(&segments);
            if to == from {
                continue;
            }
            if layer(&to) >= layer(&from) {
                let rel = file.strip_prefix(&src).unwrap().display().to_string();
                violations.push(format!("{rel} ({from}) uses crate::{} ({to})", path.join("::")));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "imports that point up or sideways:\n{}", violations.join("\n"));
}

#[test]
fn the_rule_sees_what_it_checks() {
    let module: Vec<String> = vec!["live".into(), "actor".into(), "writes".into()];
    let text = "use crate::live::model::Slot;\nuse super::super::shared;\nfn f() { crate::cache::CacheKey::new(); }\n\
                #[cfg(test)]\nmod tests { use crate::edge; }";
    let paths = crate_paths(&module, text);
    let nodes: Vec<String> =
        paths.iter().map(|p| node_of_path(&p.iter().map(String::as_str).collect::<Vec<_>>())).collect();
    assert_eq!(nodes, ["live", "live", "cache"]);
    let src = Path::new("/x/src");
    assert_eq!(node_of_file(src, Path::new("/x/src/live/actor/writes.rs")).as_deref(), Some("live"));
    assert_eq!(node_of_file(src, Path::new("/x/src/edge/mod.rs")).as_deref(), Some("edge"));
    assert_eq!(node_of_file(src, Path::new("/x/src/lib.rs")), None);
    assert!(layer("storage") < layer("config") && layer("config") < layer("live") && layer("live") < layer("edge"));
    assert!(layer("edge") < layer("server"));
}
