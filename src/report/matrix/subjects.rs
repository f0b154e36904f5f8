//! `docs/mcp-subjects.md`: the catalogue on both MCP subjects side by side, from the
//! trimmed reports in `fixtures/subjects/reports/` (written by `scripts/subjects.sh`).

use std::fmt::Write;

use serde_json::Value;

use super::{CheckResult, Column, table_and_differences};

/// The reference first, then the generic subject.
pub fn render(mut reports: Vec<Value>) -> String {
    reports.sort_by_key(|r| r["subject"].as_str() != Some("nextcloud-mcp-server"));
    let mut md = String::from(
        "# The catalogue on two MCP servers\n\n\
         <!-- Generated: do not edit. `scripts/subjects.sh` runs the catalogue once per subject\n\
         and keeps trimmed reports in fixtures/subjects/reports/; `UPDATE_DOCS=1 cargo test\n\
         --test docs` renders this file. -->\n\n\
         Each column is a full run (`CI=true mcp-authz-harness run --mcp-subject S`) on its own\n\
         stack with the baseline realm. `nextcloud-mcp-server` is the reference, run against the\n\
         harness's Nextcloud stand-in. `generic` is FastMCP from PyPI, which validates Keycloak's\n\
         tokens itself (`JWTVerifier` on the realm's JWKS, `RemoteAuthProvider` serving RFC 9728\n\
         metadata; fixtures/subjects/fastmcp/server.py): it gets every check that needs nothing\n\
         of Nextcloud, and the Nextcloud-specific ones (the reference's authorization proxy,\n\
         Login Flow v2 provisioning, token storage, the resource server) are skips by design,\n\
         which say so. The Keycloak areas (REALM to EXCHANGE) judge Keycloak, the same in both\n\
         columns. Expected failures are pinned per subject in\n\
         fixtures/expectations/mcp-server/.\n\n",
    );
    for r in &reports {
        let _ = writeln!(
            md,
            "- **{}**: MCP server {}; run `{}` finished {}; Keycloak {}; summary {}",
            r["subject"].as_str().unwrap_or("?"),
            r["components"]["mcp-server"].as_str().unwrap_or("?"),
            r["run_id"].as_str().unwrap_or("?"),
            r["finished_at"].as_str().unwrap_or("?"),
            r["components"]["keycloak"].as_str().unwrap_or("?"),
            r["summary"]
        );
    }
    let columns: Vec<Column> = reports
        .iter()
        .map(|r| Column {
            label: r["subject"].as_str().unwrap_or("?").to_owned(),
            checks: (r["checks"].as_array().into_iter().flatten())
                .map(CheckResult::from_value)
                .collect(),
        })
        .collect();
    table_and_differences(&mut md, &columns, "subject");
    md
}
