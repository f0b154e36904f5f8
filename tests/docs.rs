//! Generated documentation stays in step with the code.

use std::path::Path;

#[test]
fn docs_catalogue_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/catalogue.md");
    let want = mcp_authz_harness::checks::catalogue_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/catalogue.md is stale; regenerate it with `UPDATE_DOCS=1 cargo test --test docs`"
    );
}

#[test]
fn docs_mcp_release_matrix_md_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut releases = Vec::new();
    for entry in std::fs::read_dir(root.join("fixtures/releases"))
        .unwrap()
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "json") {
            releases.push(
                serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap(),
            );
        }
    }
    if releases.is_empty() {
        return;
    }
    let path = root.join("docs/mcp-release-matrix.md");
    let want = mcp_authz_harness::report::matrix::render(releases);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/mcp-release-matrix.md is stale; regenerate it with `UPDATE_DOCS=1 cargo test --test docs`"
    );
}
