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
fn docs_token_storage_md_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("docs/token-storage.md");
    let want = mcp_authz_harness::storage::docs::token_storage_markdown(root).unwrap();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/token-storage.md is stale; regenerate it with `UPDATE_DOCS=1 cargo test --test docs`"
    );
}
