//! The layering, as a test: the stack owns components and knows nothing of the catalogue;
//! the session holds handles and never chooses a backend; checks never reach into a
//! backend. A `use` line or an inline path that breaks it fails here, with file and line.

use std::path::{Path, PathBuf};

/// `(folder, forbidden path fragment, why)`.
const RULES: &[(&str, &str, &str)] = &[
    (
        "src/stack",
        "checks::",
        "the stack must not know the catalogue",
    ),
    (
        "src/session",
        "checks::",
        "the session must not know the catalogue",
    ),
    (
        "src/session",
        "Backend::",
        "the session never chooses a backend (ask the stack for a capability)",
    ),
    (
        "src/checks",
        "stack::native",
        "checks are blind to the backend",
    ),
    (
        "src/checks",
        "Backend",
        "checks are blind to the backend (declare a Need instead)",
    ),
    (
        "src/checks",
        "StandIn",
        "checks reach the resource server by URL, never the stand-in's code",
    ),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The code of a line: comments are prose, not imports.
fn code(line: &str) -> &str {
    let line = line.trim_start();
    if line.starts_with("//") {
        return "";
    }
    line.split(" //").next().unwrap_or(line)
}

#[test]
fn layers_import_only_downwards() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for (dir, fragment, why) in RULES {
        for file in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if code(line).contains(fragment) {
                    let rel = file.strip_prefix(root).unwrap().display();
                    broken.push(format!("{rel}:{}: `{}`: {why}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_rule_sees_inline_paths_and_skips_comments() {
    assert!(code("    let k = crate::checks::Area::ALL;").contains("checks::"));
    assert!(code("use crate::stack::native::mcp_server;").contains("stack::native"));
    assert!(!code("    // see crate::checks::Area").contains("checks::"));
    assert!(!code("/// [`crate::checks`] owns ...").contains("checks::"));
}
