//! Results: one [`Report`] per run, rendered as JSON, Markdown, JUnit XML and a terminal
//! table. Every renderer reads the same structure; evidence in it is already redacted.

mod backends;
pub mod dir_lock;
mod junit;
mod markdown;

pub use backends::backends_markdown;
pub mod matrix;
pub mod scan;
mod terminal;

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::checks::Check;
use crate::evidence::Step;
use crate::session::TeardownReport;

pub use junit::render as render_junit;
pub use markdown::render as render_markdown;
pub use terminal::render as render_terminal;

/// The final status of a check, after expectations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// Failed, as an expectations file says it does.
    Xfail,
    /// Passed although an expectations file says it fails: the file is stale.
    Xpass,
    /// Could not judge its property because a named check of the same run did not pass
    /// (`blocked_by`). Checked after the run: blocked by a check that passed, or that did
    /// not run, is a failure, so nothing is blocked by accident.
    Blocked,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pass,
        Status::Fail,
        Status::Skip,
        Status::Xfail,
        Status::Xpass,
        Status::Blocked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Xpass => "xpass",
            Status::Blocked => "blocked",
        }
    }

    /// Whether this status fails the run.
    pub fn fails_run(self) -> bool {
        matches!(self, Status::Fail | Status::Xpass)
    }
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub id: String,
    pub title: String,
    pub area: String,
    pub spec: String,
    /// The MCP specification revisions stating what the check tests (may be empty).
    pub spec_revisions: Vec<String>,
    pub component: String,
    pub status: Status,
    pub detail: String,
    /// For a blocked check: the check whose result stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    pub stand_in: bool,
    pub evidence: Vec<Step>,
    pub duration_ms: u64,
}

impl CheckReport {
    pub fn new(check: &Check, status: Status, detail: String) -> Self {
        Self {
            id: check.id.to_owned(),
            title: check.title.to_owned(),
            area: check.area.name().to_owned(),
            spec: check.spec.to_owned(),
            spec_revisions: check
                .spec_revisions
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
            component: check.subject.name().to_owned(),
            status,
            detail,
            blocked_by: None,
            stand_in: false,
            evidence: Vec::new(),
            duration_ms: 0,
        }
    }
}

/// The whole run (`report.json`, `schema_version` 1).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub backend: String,
    pub realm: String,
    pub components: Map<String, Value>,
    /// The MCP protocol version the MCP server answered `initialize` with, over the
    /// harness's MCP client; `None` (null) when the run made no MCP session.
    pub mcp_protocol_version: Option<String>,
    pub keycloak_features: Vec<String>,
    pub keycloak_argv: Vec<String>,
    pub phases: Map<String, Value>,
    pub summary: Map<String, Value>,
    pub checks: Vec<CheckReport>,
    pub teardown: TeardownReport,
    /// Problems of the run itself (a stale expectations entry, ...): each fails the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Report {
    /// Counts per status, every status present.
    pub fn summarize(checks: &[CheckReport]) -> Map<String, Value> {
        Status::ALL
            .iter()
            .map(|s| {
                let n = checks.iter().filter(|c| c.status == *s).count();
                (s.name().to_owned(), Value::from(n))
            })
            .collect()
    }

    /// Per MCP specification revision, the counts per status of the checks of that
    /// revision: `2025-06-18: 40 pass, 0 fail, …` (revisions no check of the run belongs
    /// to are left out).
    pub fn revision_lines(&self) -> Vec<String> {
        crate::checks::SPEC_REVISIONS
            .iter()
            .filter_map(|r| {
                let of: Vec<CheckReport> = (self.checks.iter())
                    .filter(|c| c.spec_revisions.iter().any(|x| x == r))
                    .cloned()
                    .collect();
                if of.is_empty() {
                    return None;
                }
                let counts = Self::summarize(&of);
                let counts: Vec<String> = Status::ALL
                    .iter()
                    .map(|s| format!("{} {}", counts[s.name()], s.name()))
                    .collect();
                let checks = if of.len() == 1 { "check" } else { "checks" };
                Some(format!(
                    "MCP {r}: {} {checks}: {}",
                    of.len(),
                    counts.join(", ")
                ))
            })
            .collect()
    }

    /// Whether the run failed: a check failed or passed unexpectedly, teardown left
    /// something behind, or the run has problems.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status.fails_run())
            || !self.teardown.is_clean()
            || !self.problems.is_empty()
    }

    /// Whether any result depends on a stand-in.
    pub fn uses_stand_in(&self) -> bool {
        self.checks.iter().any(|c| c.stand_in)
    }

    /// Writes the reports into `dir`, then scans `dir` (and `kept`, a kept run dir) for
    /// secrets in clear; any hit becomes a problem of the run and the reports are written
    /// again with it.
    pub fn write_and_scan(&mut self, dir: &Path, kept: Option<&Path>) -> anyhow::Result<()> {
        self.write_all(dir)?;
        let mut roots = vec![dir.to_owned()];
        roots.extend(kept.map(Path::to_owned));
        let hits = scan::secret_hits(&roots);
        if !hits.is_empty() {
            self.problems
                .extend(hits.into_iter().map(|h| format!("secret scan: {h}")));
            self.write_all(dir)?;
        }
        Ok(())
    }

    /// Writes `report.json`, `report.md` and `junit.xml` into `dir`.
    pub fn write_all(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the report dir {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        write(dir, "report.json", &json)?;
        write(dir, "report.md", &render_markdown(self))?;
        write(dir, "junit.xml", &render_junit(self)?)?;
        Ok(())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    // Reports are built from redacted evidence; this is the last line of defence.
    let text = crate::secret::redact(text);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::catalogue;

    #[test]
    fn revision_lines_count_the_statuses_of_each_revisions_checks() {
        let all = catalogue();
        let report = |ids: &[(&str, Status)]| -> Vec<String> {
            let checks: Vec<CheckReport> = (ids.iter())
                .map(|(id, s)| {
                    let c = all.iter().find(|c| c.id == *id).unwrap();
                    CheckReport::new(c, *s, String::new())
                })
                .collect();
            let mut r = Report {
                schema_version: 1,
                run_id: "r".into(),
                started_at: String::new(),
                finished_at: String::new(),
                backend: "native".into(),
                realm: String::new(),
                components: Map::new(),
                mcp_protocol_version: None,
                keycloak_features: Vec::new(),
                keycloak_argv: Vec::new(),
                phases: Map::new(),
                summary: Report::summarize(&checks),
                checks,
                teardown: TeardownReport::default(),
                problems: Vec::new(),
            };
            r.summary = Report::summarize(&r.checks);
            r.revision_lines()
        };
        // EXCHANGE-03 belongs to no revision; MCP-27 to 2026-07-28 only.
        let lines = report(&[
            ("MCP-04", Status::Pass),
            ("MCP-27", Status::Xfail),
            ("EXCHANGE-03", Status::Fail),
        ]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("MCP 2025-06-18: 1 check: 1 pass, 0 fail"));
        assert!(lines[2].starts_with("MCP 2026-07-28: 2 checks: 1 pass, 0 fail, 0 skip, 1 xfail"));
        assert!(report(&[("EXCHANGE-03", Status::Pass)]).is_empty());
        let json = serde_json::to_value(CheckReport::new(
            all.iter().find(|c| c.id == "MCP-26").unwrap(),
            Status::Pass,
            String::new(),
        ))
        .unwrap();
        assert_eq!(
            json["spec_revisions"],
            serde_json::json!(["2025-11-25", "2026-07-28"])
        );
    }
}
