//! The layout's rules, checked on the source itself so a change that breaks them fails the build:
//!
//! - the services (every file of a feature folder but its `api.rs` and `pages.rs`) know nothing
//!   of HTTP: no axum, askama, `crate::http`, `crate::web` or the handlers' `AppState`;
//! - features call each other's services, never each other's front ends, and the feature folders
//!   depend on one another without a cycle;
//! - handlers never reach a store;
//! - the shared base (`principal.rs`, `error.rs`) and the HTTP plumbing know no feature.

#![allow(clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable source folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src())
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("readable source file");
                out.push((rel, production_code(&text)));
            }
        }
    }
    out.sort();
    out
}

/// The file without its unit tests and comments: tests may reach anything.
fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("/*") || t.starts_with('*'))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `features/<name>/...` -> `<name>`.
fn feature_of(rel: &str) -> Option<&str> {
    rel.strip_prefix("features/")?
        .split('/')
        .next()
        .filter(|f| !f.ends_with(".rs"))
}

fn is_front_end(rel: &str) -> bool {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    file == "api.rs" || file == "pages.rs" || rel.contains("/pages/")
}

/// Features named by `crate::features::<name>` in the code.
fn features_named(code: &str) -> BTreeSet<String> {
    code.split("crate::features::")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[test]
fn services_know_nothing_of_http() {
    let mut offences = Vec::new();
    for (rel, code) in rust_files(&src().join("features")) {
        if is_front_end(&rel) || rel.ends_with("/mod.rs") {
            continue;
        }
        for banned in [
            "axum",
            "askama",
            "crate::http",
            "crate::web",
            "AppState",
            "hyper",
        ] {
            if code.contains(banned) {
                offences.push(format!("{rel} uses {banned}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "services must not know HTTP:\n{}",
        offences.join("\n")
    );
}

#[test]
fn features_use_each_others_services_never_their_front_ends() {
    let mut offences = Vec::new();
    for (rel, code) in rust_files(&src()) {
        let own = feature_of(&rel).map(str::to_owned);
        for other in features_named(&code) {
            if Some(&other) == own.as_ref() {
                continue;
            }
            for front in ["api::", "pages::"] {
                if code.contains(&format!("crate::features::{other}::{front}"))
                    && rel != "features/mod.rs"
                {
                    offences.push(format!("{rel} calls {other}'s {front}"));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn feature_folders_depend_on_each_other_without_a_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in rust_files(&src().join("features")) {
        let Some(own) = feature_of(&rel) else {
            continue;
        };
        let deps = edges.entry(own.to_owned()).or_default();
        for other in features_named(&code) {
            if other != own {
                deps.insert(other);
            }
        }
    }
    assert!(
        edges.len() >= 10,
        "the feature folders were not found: {edges:?}"
    );
    // Depth-first search; a node met again while still on the stack closes a cycle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("feature folders form a cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn handlers_never_reach_a_store() {
    let mut offences = Vec::new();
    for (rel, code) in rust_files(&src()) {
        if is_front_end(&rel) && (code.contains(".store()") || code.contains(".store\n")) {
            offences.push(rel);
        }
    }
    assert!(offences.is_empty(), "handlers reach a store: {offences:?}");
}

#[test]
fn the_shared_base_and_the_http_plumbing_know_no_feature() {
    let mut offences = Vec::new();
    for (rel, code) in rust_files(&src()) {
        let base = rel == "principal.rs" || rel == "error.rs";
        let plumbing = rel.starts_with("http/") || rel.starts_with("web/");
        if (base || plumbing) && code.contains("crate::features") {
            offences.push(format!("{rel} names a feature"));
        }
        if base && (code.contains("axum") || code.contains("crate::http")) {
            offences.push(format!("{rel} knows HTTP"));
        }
        if rel.starts_with("http/") && code.contains("crate::web") {
            offences.push(format!("{rel} uses the page kit"));
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn files_stay_readable() {
    let mut long = Vec::new();
    for (rel, _) in rust_files(&src()) {
        let lines = std::fs::read_to_string(src().join(&rel))
            .expect("readable")
            .lines()
            .count();
        if lines > 700 {
            long.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}
