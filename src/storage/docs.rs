//! `docs/token-storage.md`, rendered from committed data only, so a test can tell when
//! the file is stale: the inventories STORAGE-13 pins per release
//! (`fixtures/snapshots/token-storage-<release>.snap`, taken from a live database) and
//! the STORAGE deviations pinned in `fixtures/expectations/mcp-server/<release>.toml`.

use std::path::Path;

use anyhow::Context;

use super::inventory::Inventory;
use crate::checks::{Area, Subject, catalogue};
use crate::expectations::Expectations;

/// How the inputs are produced again, shown at the top of the document.
const HOW: &str = "\
How to reproduce: `cargo run -- run --only STORAGE` (or `cargo test --test conformance -- STORAGE-`) \
drives the flows against a dedicated instance of the server (its own port, database and Fernet key) \
and reads the database read-only. STORAGE-13 compares what it finds with the pinned inventory and \
fails when they differ; re-pin with `cargo run -- pin --only STORAGE-13`, then \
render this file with `UPDATE_DOCS=1 cargo test --test docs`.

The flows, each driven as a user would: Flow 2 (background provisioning) for `carol` through the \
`check_logged_in` elicitation and Keycloak's login page in her browser profile; Login Flow v2 for \
`bob` through the Nextcloud stand-in; the authorization proxy (Flow 1) for `alice`; and an instance \
without a static client, which registers itself at Keycloak.

`protection`: `fernet` for columns named `encrypted_*` (Fernet with `TOKEN_ENCRYPTION_KEY`, decrypted \
by the harness with the run's key), `clear` otherwise. `held after the flows`: the kinds of value a \
column held once the flows had run, never the values; for encrypted columns, what the stored value \
decrypts to. Clear columns are described in tables that hold credentials, elsewhere only when they \
hold a credential (a finding).";

/// The document, from the snapshots and expectations under `root` (the crate root).
pub fn token_storage_markdown(root: &Path) -> anyhow::Result<String> {
    let mut inventories = Vec::new();
    let dir = root.join("fixtures/snapshots");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("token-storage-") && name.ends_with(".snap") {
            let text = std::fs::read_to_string(&path)?;
            inventories.push(
                Inventory::from_snapshot(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    inventories.sort_by_key(|i| release_key(&i.release));
    let mut md = format!("# Token storage: what the MCP server keeps at rest\n\n{HOW}\n");
    for inv in inventories.iter().rev() {
        md.push_str(&format!("\n## nextcloud-mcp-server {}\n", inv.release));
        md.push_str("\n### Where the credentials are\n\n");
        md.push_str(&inv.summary_markdown());
        md.push_str(&deviations(root, &inv.release)?);
        md.push_str("\n### Every table\n");
        md.push_str(&inv.tables_markdown("####"));
    }
    Ok(md)
}

/// The STORAGE checks this release fails as expected, with the reason pinned.
fn deviations(root: &Path, release: &str) -> anyhow::Result<String> {
    let all = catalogue();
    let ex = Expectations::load(
        &root.join("fixtures/expectations"),
        &[(Subject::McpServer, release.to_owned())],
        &all,
    )?;
    let mut md = String::from(
        "\n### What the STORAGE checks found\n\nEvery STORAGE check not listed here passes on this release \
         (or is skipped when a listed one leaves it nothing to look at); each listed one fails as pinned:\n\n\
         | check | expected | why it fails |\n|---|---|---|\n",
    );
    for c in all.iter().filter(|c| c.area == Area::Storage) {
        if let Some(e) = ex.get(c.id) {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                c.id,
                crate::markdown::cell(c.title),
                crate::markdown::cell(&e.reason)
            ));
        }
    }
    Ok(md)
}

/// `0.202.1` → `[0, 202, 1]`, so releases sort as versions.
fn release_key(release: &str) -> Vec<u64> {
    release.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}
