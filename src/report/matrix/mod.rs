//! Matrices: the same checks across several runs, one column per run.
//!
//! [`render`] makes `docs/mcp-release-matrix.md` from the trimmed reports in
//! `fixtures/releases/` (written by `scripts/release-matrix.sh`); [`merge`] builds one
//! matrix report from `report.json` files made by separate runs; [`subjects::render`]
//! makes `docs/mcp-subjects.md`, both MCP subjects side by side. All draw the check
//! table and its differences with [`table_and_differences`].

pub mod merge;
pub mod merged;
pub mod subjects;

use std::fmt::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One check's result in one column: what a matrix keeps of a report's check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub status: String,
    pub detail: String,
}

impl CheckResult {
    /// From a check of a trimmed report (missing fields read as empty, as the docs
    /// renderer always has).
    fn from_value(c: &Value) -> Self {
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        Self {
            id: text("id"),
            title: text("title"),
            status: c["status"].as_str().unwrap_or("?").to_owned(),
            detail: text("detail"),
        }
    }
}

/// One column: a run's results under its label.
pub struct Column {
    pub label: String,
    pub checks: Vec<CheckResult>,
}

impl Column {
    fn find(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Renders the release matrix from trimmed reports (any order; sorted by release here).
pub fn render(mut releases: Vec<Value>) -> String {
    releases.sort_by_key(|r| version_key(r["mcp_server_version"].as_str().unwrap_or_default()));
    let mut md = String::from(
        "# The MCP area across nextcloud-mcp-server releases\n\n\
         <!-- Generated: do not edit. `scripts/release-matrix.sh` runs the releases with\n\
         `mcp-authz-harness matrix` and keeps trimmed reports in fixtures/releases/;\n\
         `UPDATE_DOCS=1 cargo test --test docs` renders this file. -->\n\n\
         The same checks on one Keycloak (one boot) with the baseline realm, one release per\n\
         column; each release after the first has the realm under a name of its own, its own MCP\n\
         server instance and its own resource server (the harness's Nextcloud stand-in). The\n\
         colon-to-dot scope rename landed in 0.68.4; the fix that makes `tools/call` enforce\n\
         scopes in 0.148.0. Releases without Login Flow v2 provisioning (0.68.3 and older\n\
         here) call Nextcloud with the client's own token, which MCP-32 catches.\n\n",
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
    let columns: Vec<Column> = releases
        .iter()
        .map(|r| Column {
            label: r["mcp_server_version"].as_str().unwrap_or("?").to_owned(),
            checks: (r["checks"].as_array().into_iter().flatten())
                .map(CheckResult::from_value)
                .collect(),
        })
        .collect();
    table_and_differences(&mut md, &columns, "release");
    md
}

/// The check table (one row per check ID, `—` where a column lacks the check), then, for
/// each check whose status differs between columns (`noun`s), the first line of each
/// non-passing result.
pub fn table_and_differences(md: &mut String, columns: &[Column], noun: &str) {
    let labels: Vec<&str> = columns.iter().map(|c| c.label.as_str()).collect();
    let _ = writeln!(md, "\n| check | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
    let rows = check_rows(columns);
    for (id, title) in &rows {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| c.find(id).map_or("—", |r| r.status.as_str()))
            .collect();
        let _ = writeln!(
            md,
            "| {id} {} | {} |",
            crate::markdown::cell(title),
            cells.join(" | ")
        );
    }
    let _ = write!(
        md,
        "\n## What differs\n\nFor each check whose status is not the same in every {noun}, the first line of each non-passing result.\n"
    );
    for (id, title) in &rows {
        let statuses: Vec<&str> = (columns.iter())
            .filter_map(|c| c.find(id))
            .map(|r| r.status.as_str())
            .collect();
        if statuses.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        let _ = writeln!(md, "\n### {id} {title}\n");
        for c in columns {
            if let Some(r) = c.find(id).filter(|r| r.status != "pass") {
                let first = r.detail.lines().next().unwrap_or_default();
                let _ = writeln!(md, "- {} ({}): {first}", c.label, r.status);
            }
        }
    }
}

/// Every check ID of any column, with its title, in catalogue order.
fn check_rows(columns: &[Column]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = (columns.iter())
        .flat_map(|c| &c.checks)
        .map(|c| (c.id.clone(), c.title.clone()))
        .collect();
    rows.sort_by_key(|(id, _)| id_key(id));
    rows.dedup_by(|a, b| a.0 == b.0);
    rows
}

/// Orders versions numerically (`0.65.3` before `0.202.1`).
pub(crate) fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The catalogue's area order, then the number; an unknown area sorts last, by name.
fn id_key(id: &str) -> (usize, String, u64) {
    let (area, n) = id.split_once('-').unwrap_or((id, "0"));
    let position = (crate::checks::Area::ALL.iter())
        .position(|a| a.name() == area)
        .unwrap_or(usize::MAX);
    (position, area.to_owned(), n.parse().unwrap_or(0))
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
