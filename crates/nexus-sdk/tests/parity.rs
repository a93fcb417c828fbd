//! The parity list in CONTRIBUTING.md against the sources: every public
//! method of the SDK has a row, and every binding method a row names exists.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `Type -> {method}` of the public inherent methods in Rust sources.
fn rust_methods(files: &[&str], only_pub: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let file = syn::parse_file(&read(f)).unwrap();
        for item in file.items {
            let syn::Item::Impl(imp) = item else { continue };
            if imp.trait_.is_some() {
                continue;
            }
            let syn::Type::Path(tp) = &*imp.self_ty else {
                continue;
            };
            let ty = tp.path.segments.last().unwrap().ident.to_string();
            for it in &imp.items {
                if let syn::ImplItem::Fn(f) = it {
                    if !only_pub || matches!(f.vis, syn::Visibility::Public(_)) {
                        out.entry(ty.clone())
                            .or_default()
                            .insert(f.sig.ident.to_string());
                    }
                }
            }
        }
    }
    out
}

struct Row {
    rust: String,
    cells: [Vec<String>; 3],
    note: String,
}

fn table() -> Vec<Row> {
    let text = read("CONTRIBUTING.md");
    let start = text.find("<!-- parity:begin -->").unwrap();
    let end = text.find("<!-- parity:end -->").unwrap();
    text[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cols: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            assert_eq!(cols.len(), 5, "a parity row needs 5 columns: {l}");
            let cell = |c: &str| -> Vec<String> {
                if c == "—" {
                    return Vec::new();
                }
                c.split(", ")
                    .map(|x| x.trim_matches('`').to_string())
                    .collect()
            };
            Row {
                rust: cols[0].trim_matches('`').to_string(),
                cells: [cell(&cols[1]), cell(&cols[2]), cell(&cols[3])],
                note: cols[4].clone(),
            }
        })
        .collect()
}

/// Methods per class in the Python stub and the package's own classes,
/// properties included.
fn python_methods() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut class = String::new();
    let stub = read("bindings/python/python/nexus/_nexus.pyi");
    let module = read("bindings/python/python/nexus/__init__.py");
    for line in stub.lines().chain(module.lines()) {
        if let Some(rest) = line.strip_prefix("class ") {
            class = rest.split(['(', ':']).next().unwrap().to_string();
        } else if let Some(rest) = line.trim_start().strip_prefix("def ") {
            let name = rest.split('(').next().unwrap().to_string();
            out.entry(class.clone()).or_default().insert(name);
        } else if let Some(rest) = line.trim_start().strip_prefix("async def ") {
            let name = rest.split('(').next().unwrap().to_string();
            out.entry(class.clone()).or_default().insert(name);
        }
    }
    out
}

/// Methods per class in the generated d.ts.
fn node_methods() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut class: Option<String> = None;
    for line in read("bindings/node/index.d.ts").lines() {
        if let Some(rest) = line.strip_prefix("export declare class ") {
            class = Some(rest.split([' ', '{']).next().unwrap().to_string());
            continue;
        }
        if line.starts_with('}') {
            class = None;
        }
        let Some(c) = &class else { continue };
        let t = line.trim_start();
        if t.starts_with("/*") || t.starts_with('*') {
            continue;
        }
        let t = t.strip_prefix("get ").unwrap_or(t);
        if let Some(name) = t.split('(').next() {
            if t.contains('(')
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                out.entry(c.clone()).or_default().insert(name.to_string());
            }
        }
    }
    out
}

#[test]
fn every_sdk_method_has_a_row_and_every_binding_method_exists() {
    let sdk = rust_methods(
        &[
            "crates/nexus-sdk/src/client.rs",
            "crates/nexus-sdk/src/settings.rs",
            "crates/nexus-sdk/src/tools.rs",
            "crates/nexus-sdk/src/vault.rs",
            "crates/nexus-sdk/src/mesh.rs",
        ],
        true,
    );
    let rows = table();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.rust.clone()).collect();
    let mut missing = Vec::new();
    for ty in ["Client", "ReplyStream", "VaultHandle", "Mesh", "MeshFollow"] {
        for m in &sdk[ty] {
            let key = format!("{ty}::{m}");
            if !listed.contains(&key) {
                missing.push(key);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "public SDK methods without a parity row in CONTRIBUTING.md (add them to every binding): {missing:?}"
    );

    let python = python_methods();
    let node = node_methods();
    let ffi = rust_methods(
        &[
            "crates/nexus-ffi/src/lib.rs",
            "crates/nexus-ffi/src/mesh.rs",
            "crates/nexus-ffi/src/tools.rs",
        ],
        true,
    );
    let mut problems = Vec::new();
    for r in &rows {
        let rust_ok = r
            .rust
            .split_once("::")
            .is_some_and(|(t, m)| sdk.get(t).is_some_and(|s| s.contains(m)));
        if !rust_ok {
            problems.push(format!("{}: not a public SDK method", r.rust));
        }
        for (i, (name, methods)) in [("Python", &python), ("Node", &node), ("Swift/Kotlin", &ffi)]
            .into_iter()
            .enumerate()
        {
            if r.cells[i].is_empty() && r.note.is_empty() {
                problems.push(format!(
                    "{}: {name} has no counterpart and no note why",
                    r.rust
                ));
            }
            for cell in &r.cells[i] {
                let (class, method) = cell.split_once('.').unwrap_or((cell, ""));
                let found = methods.get(class).is_some_and(|s| s.contains(method));
                if !found {
                    problems.push(format!("{}: {name} has no `{cell}`", r.rust));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "parity problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_the_bindings() {
    // Guards against a parser that finds nothing and so passes vacuously.
    assert!(python_methods()["_Common"].contains("route"));
    assert!(python_methods()["Client"].contains("__new__"));
    assert!(python_methods()["AsyncClient"].contains("chat"));
    assert!(node_methods()["Client"].contains("usePreset"));
    assert!(node_methods()["Client"].contains("constructor"));
    assert!(node_methods()["Vault"].contains("backend"));
    assert!(
        rust_methods(&["crates/nexus-ffi/src/lib.rs"], true)["Client"].contains("chat_messages")
    );
}
