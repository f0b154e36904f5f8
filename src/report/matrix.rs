//! `docs/mcp-release-matrix.md`: the MCP area across releases of the reference server,
//! side by side, rendered from the trimmed reports in `fixtures/releases/`
//! (written by `scripts/release-matrix.sh`).

use std::fmt::Write;

use serde_json::Value;

/// Renders the matrix from trimmed reports (any order; sorted by release here).
pub fn render(mut releases: Vec<Value>) -> String {
    releases.sort_by_key(|r| version_key(r["mcp_server_version"].as_str().unwrap_or_default()));
    let versions: Vec<&str> = releases
        .iter()
        .map(|r| r["mcp_server_version"].as_str().unwrap_or("?"))
        .collect();
    let mut md = String::from(
        "# The MCP area across nextcloud-mcp-server releases\n\n\
         <!-- Generated: do not edit. `scripts/release-matrix.sh` runs the releases and keeps trimmed\n\
         reports in fixtures/releases/; `UPDATE_DOCS=1 cargo test --test docs` renders this file. -->\n\n\
         The same checks, the same Keycloak and realm, one release per column. The colon-to-dot\n\
         scope rename landed in 0.68.4; the fix that makes `tools/call` enforce scopes in 0.148.0.\n\
         Each run's resource server is the harness's Nextcloud stand-in.\n\n",
    );
    for r in &releases {
        let c = &r["components"];
        let _ = writeln!(
            md,
            "- **{}**: run `{}` finished {}; Keycloak {}; summary {}",
            r["mcp_server_version"].as_str().unwrap_or("?"),
            r["run_id"].as_str().unwrap_or("?"),
            r["finished_at"].as_str().unwrap_or("?"),
            c["keycloak"].as_str().unwrap_or("?"),
            r["summary"]
        );
    }
    let _ = writeln!(md, "\n| check | {} |", versions.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(versions.len()));
    for check in check_rows(&releases) {
        let cells: Vec<String> = releases
            .iter()
            .map(|r| {
                find(r, &check.0)
                    .map(|c| c["status"].as_str().unwrap_or("?").to_owned())
                    .unwrap_or_else(|| "—".into())
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} {} | {} |",
            check.0,
            crate::markdown::cell(&check.1),
            cells.join(" | ")
        );
    }
    md.push_str("\n## What differs\n\nFor each check whose status is not the same in every release, the first line of each non-passing result.\n");
    for check in check_rows(&releases) {
        let statuses: Vec<String> = releases
            .iter()
            .filter_map(|r| find(r, &check.0))
            .map(|c| c["status"].to_string())
            .collect();
        if statuses.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        let _ = writeln!(md, "\n### {} {}\n", check.0, check.1);
        for r in &releases {
            if let Some(c) = find(r, &check.0).filter(|c| c["status"] != "pass") {
                let _ = writeln!(
                    md,
                    "- {} ({}): {}",
                    r["mcp_server_version"].as_str().unwrap_or("?"),
                    c["status"].as_str().unwrap_or("?"),
                    c["detail"].as_str().unwrap_or_default()
                );
            }
        }
    }
    md
}

fn check_rows(releases: &[Value]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = releases
        .iter()
        .flat_map(|r| r["checks"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    rows.sort_by_key(|(id, _)| id_key(id));
    rows.dedup_by(|a, b| a.0 == b.0);
    rows
}

fn find<'a>(release: &'a Value, id: &str) -> Option<&'a Value> {
    release["checks"].as_array()?.iter().find(|c| c["id"] == id)
}

fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn id_key(id: &str) -> (String, u64) {
    let (area, n) = id.split_once('-').unwrap_or((id, "0"));
    (area.to_owned(), n.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn releases_are_columns_in_version_order_and_differences_are_listed() {
        let a = json!({"mcp_server_version": "0.202.1", "components": {}, "summary": {}, "checks": [{"id": "MCP-11", "title": "t", "status": "pass", "detail": ""}]});
        let b = json!({"mcp_server_version": "0.65.3", "components": {}, "summary": {}, "checks": [{"id": "MCP-11", "title": "t", "status": "fail", "detail": "ran without scope"}]});
        let md = render(vec![a, b]);
        assert!(md.contains("| check | 0.65.3 | 0.202.1 |"), "{md}");
        assert!(md.contains("| MCP-11 t | fail | pass |"), "{md}");
        assert!(md.contains("- 0.65.3 (fail): ran without scope"), "{md}");
    }
}
