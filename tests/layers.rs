//! The dependency rule (ARCHITECTURE.md): pure layers at the bottom (`http`, `packaging`, live's
//! model), I/O above, and every `crate::` import points down a layer, never up or sideways, so the
//! module graph has no circles. `http` and `packaging` are crates of their own now (`crates/http`,
//! `crates/media`), which the compiler keeps pure; this reads the `use crate::` paths of every file
//! under `src/` for the layers that are still modules of `estuary`.

use std::path::{Path, PathBuf};

/// Live's pure files: the model, its manifests, the channel state machine and its records.
const LIVE_MODEL: &[&str] = &[
    "model",
    "manifests",
    "offer",
    "ll_hls",
    "ll_dash",
    "trick_play",
    "cmaf_ingest",
    "channel",
    "record",
    "keys",
    "blocking",
    "upload",
    "key",
];

/// Each node and its layer; a node may import only nodes of lower layers.
const LAYERS: &[(&str, u32)] = &[
    ("http", 0),
    ("storage/key", 0),
    ("budget", 0),
    ("health", 0),
    ("packaging", 1),
    ("live/model", 2),
    ("config", 3),
    ("cache", 4),
    ("storage", 4),
    ("telemetry", 5),
    ("cluster", 5),
    ("vod", 6),
    ("live", 6),
    ("edge", 7),
    ("api", 7),
    ("ingest", 7),
    ("internal", 7),
    ("server", 8),
];

fn layer(node: &str) -> u32 {
    LAYERS.iter().find(|(n, _)| *n == node).unwrap_or_else(|| panic!("{node} has no layer in tests/layers.rs")).1
}

/// The node of a module path below `crate::` (`live::model::Slot` -> `live/model`).
fn node_of_path(segments: &[&str]) -> String {
    match segments {
        ["live", sub, ..] if LIVE_MODEL.contains(sub) => "live/model".into(),
        ["storage", "key", ..] => "storage/key".into(),
        [top, ..] => (*top).into(),
        [] => String::new(),
    }
}

/// The node a source file belongs to.
fn node_of_file(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let segments: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
    match segments.as_slice() {
        ["main"] | ["lib"] => None,
        ["live", "tests"] => None,
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

/// The module path of a source file (`src/live/channel/mod.rs` -> `live::channel`).
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
    let module: Vec<String> = vec!["live".into(), "channel".into(), "commit".into()];
    let text = "use crate::live::model::Slot;\nuse super::super::actor;\nfn f() { crate::cache::CacheKey::new(); }\n\
                #[cfg(test)]\nmod tests { use crate::edge; }";
    let paths = crate_paths(&module, text);
    let nodes: Vec<String> =
        paths.iter().map(|p| node_of_path(&p.iter().map(String::as_str).collect::<Vec<_>>())).collect();
    assert_eq!(nodes, ["live/model", "live", "cache"]);
    let src = Path::new("/x/src");
    assert_eq!(node_of_file(src, Path::new("/x/src/live/channel/commit.rs")).as_deref(), Some("live/model"));
    assert_eq!(node_of_file(src, Path::new("/x/src/live/actor.rs")).as_deref(), Some("live"));
    assert_eq!(node_of_file(src, Path::new("/x/src/edge/mod.rs")).as_deref(), Some("edge"));
    assert!(
        layer("http") < layer("packaging")
            && layer("packaging") < layer("live/model")
            && layer("live/model") < layer("live")
    );
}
