//! What `validate-realm` reports: the lint's findings and the live diff's lists, rendered
//! as text, JSON, Markdown or JUnit XML. Findings never contain secrets (LINT-05 names
//! only marker words and lengths), so every rendering can be stored as is.

use crate::markdown::cell;
use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::{Finding, RULES, Severity};
use crate::validate::LiveDetails;

/// The result of `validate-realm` for one file.
///
/// JSON: `{"file", "findings": [{"rule", "severity", "path", "message"}], "regressions",
/// "fixes", "not_applicable", "live"}`; the three lists of check IDs come from the live
/// diff and are present and empty without it; `live` (absent under `--static-only`) has
/// both sides and every check's status on each (see [`LiveDetails`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ValidationReport {
    pub file: String,
    pub findings: Vec<Finding>,
    /// Checks that pass on the baseline realm and fail on this one.
    pub regressions: Vec<String>,
    /// Checks that fail on the baseline realm and pass on this one.
    pub fixes: Vec<String>,
    /// Checks that cannot run on this realm (distinct from a regression).
    pub not_applicable: Vec<String>,
    /// The live diff, when it ran (it fills the three lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveDetails>,
}

impl ValidationReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether the file fails validation (exit 1): an error finding or a regression, or
    /// a problem of the live run itself (teardown left something, a secret in a report).
    pub fn fails(&self) -> bool {
        self.count(Severity::Error) > 0
            || !self.regressions.is_empty()
            || self.live.as_ref().is_some_and(|l| !l.problems.is_empty())
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} error(s), {} warning(s), {} info",
            self.file,
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        );
        if let Some(live) = &self.live {
            let _ = write!(
                s,
                "; live diff: {} regression(s), {} fix(es), {} not applicable",
                self.regressions.len(),
                self.fixes.len(),
                self.not_applicable.len()
            );
            if !live.problems.is_empty() {
                let _ = write!(s, ", {} problem(s) of the run", live.problems.len());
            }
        } else {
            s.push_str("; live diff not run (--static-only)");
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// One line per finding, then the live diff's table, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:<8} {} {}: {}",
                f.severity.name(),
                f.rule,
                f.path,
                f.message
            );
        }
        if let Some(live) = &self.live {
            out.push_str(&live.to_text());
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# validate-realm: `{}`\n\n{}\n\n",
            self.file,
            self.summary()
        );
        if self.findings.is_empty() {
            out.push_str("No findings.\n");
        } else {
            out.push_str("| Rule | Severity | Path | Message |\n|---|---|---|---|\n");
            for f in &self.findings {
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` | {} |",
                    f.rule,
                    f.severity.name(),
                    f.path.replace('`', "'"),
                    cell(&f.message)
                );
            }
        }
        if let Some(live) = &self.live {
            out.push_str(&live.to_markdown());
        }
        out
    }

    /// One test case per rule, failing when the rule has an error finding; warnings and
    /// info go to the case's system-out. The live diff is a second suite, a case per check.
    pub fn to_junit(&self) -> anyhow::Result<String> {
        let mut junit = quick_junit::Report::new("validate-realm");
        let mut suite = TestSuite::new(format!("realm lint: {}", self.file));
        for rule in RULES {
            let of_rule: Vec<&Finding> =
                self.findings.iter().filter(|f| f.rule == rule.id).collect();
            let line = |f: &&Finding| format!("{} {}: {}", f.severity.name(), f.path, f.message);
            let errors: Vec<String> = of_rule
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(line)
                .collect();
            let status = match errors.first() {
                None => TestCaseStatus::success(),
                Some(first) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(first.clone());
                    s.set_description(errors.join("\n"));
                    s
                }
            };
            let mut case = TestCase::new(format!("{} {}", rule.id, rule.title), status);
            case.set_classname("realm-lint");
            let others: Vec<String> = of_rule
                .iter()
                .filter(|f| f.severity != Severity::Error)
                .map(line)
                .collect();
            if !others.is_empty() {
                case.set_system_out(others.join("\n"));
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
        if let Some(live) = &self.live {
            junit.add_test_suite(live.to_junit_suite(&self.file));
        }
        Ok(junit.to_string()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ValidationReport {
        ValidationReport {
            file: "realm.json".into(),
            findings: vec![
                Finding::new(
                    "LINT-02",
                    Severity::Error,
                    "clients[a].attributes.x",
                    "do | this",
                ),
                Finding::new(
                    "LINT-03",
                    Severity::Warning,
                    "clients[b].attributes.y",
                    "maybe that",
                ),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn json_has_the_contract_fields_and_empty_live_lists() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(v["file"], "realm.json");
        assert_eq!(v["findings"][0]["severity"], "error");
        assert_eq!(v["findings"][1]["rule"], "LINT-03");
        for key in ["regressions", "fixes", "not_applicable"] {
            assert_eq!(v[key], serde_json::json!([]), "{key}");
        }
        assert!(v.get("live_diff_ran").is_none());
    }

    #[test]
    fn text_has_a_line_per_finding_and_a_summary() {
        let text = report().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("error    LINT-02 clients[a].attributes.x: do | this"));
        assert!(
            lines[2].contains("1 error(s), 1 warning(s), 0 info"),
            "{text}"
        );
    }

    #[test]
    fn markdown_is_a_table_with_escaped_pipes() {
        let md = report().to_markdown();
        assert!(
            md.contains("| LINT-02 | error | `clients[a].attributes.x` | do \\| this |"),
            "{md}"
        );
    }

    #[test]
    fn junit_has_a_case_per_rule_and_fails_those_with_errors() {
        let xml = report().to_junit().unwrap();
        assert_eq!(xml.matches("<testcase ").count(), RULES.len(), "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(
            xml.contains("maybe that"),
            "warnings go to system-out: {xml}"
        );
    }

    #[test]
    fn a_regression_fails_the_report() {
        let mut r = ValidationReport::default();
        assert!(!r.fails());
        r.regressions.push("EXCHANGE-01".into());
        assert!(r.fails());
    }
}
