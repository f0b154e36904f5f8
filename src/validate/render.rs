//! The live diff as text, Markdown and a JUnit suite: one row per check with both
//! statuses, the change, and the changed side's message when it did not pass.

use crate::markdown::cell;
use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{Change, CheckDiff, LiveDetails, Side};
use crate::report::Status;

/// Longest message shown in a text or Markdown row; report.json has it whole.
const DETAIL_MAX: usize = 160;

fn header(d: &LiveDetails) -> String {
    format!(
        "live diff on Keycloak {}: {} ({:.0} s)",
        d.keycloak, d.selection, d.seconds
    )
}

/// The scope-map comparison, one line each.
fn scope_map_lines(d: &LiveDetails) -> Vec<String> {
    match &d.scope_map {
        None => {
            vec!["tool-to-scope map: not compared (a side derived no map; see MCP-10)".to_owned()]
        }
        Some(changes) if changes.is_empty() => {
            vec!["tool-to-scope map: the same tools under the same scopes".to_owned()]
        }
        Some(changes) => std::iter::once(format!(
            "tool-to-scope map: {} tool(s) differ (baseline -> changed):",
            changes.len()
        ))
        .chain(changes.iter().map(|c| format!("  {}", c.describe())))
        .collect(),
    }
}

fn side_line(label: &str, s: &Side) -> String {
    format!(
        "{:<9} realm {} from {}; reports in {}",
        format!("{label}:"),
        s.realm,
        s.file,
        s.report_dir
    )
}

/// The changed side's message, on one line and cut to [`DETAIL_MAX`], when it matters:
/// the check did not pass there.
fn detail(c: &CheckDiff) -> String {
    if c.changed == Status::Pass {
        return String::new();
    }
    let why = match c.change {
        Change::NotApplicable => c.detail.trim_start_matches("not applicable: "),
        _ => &c.detail,
    };
    let line = why.replace('\n', " ");
    match line.char_indices().nth(DETAIL_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub(super) fn text(d: &LiveDetails) -> String {
    let mut out = format!("\n{}\n", header(d));
    for (label, side) in [("baseline", &d.baseline), ("changed", &d.changed)] {
        let _ = writeln!(out, "  {}", side_line(label, side));
        for note in &side.added {
            let _ = writeln!(out, "    added: {note}");
        }
    }
    let _ = writeln!(
        out,
        "{:<12} {:<8} {:<8} {:<14} detail (changed realm)",
        "check", "baseline", "changed", "change"
    );
    for c in &d.checks {
        let row = format!(
            "{:<12} {:<8} {:<8} {:<14} {}",
            c.id,
            c.baseline.name(),
            c.changed.name(),
            c.change.name(),
            detail(c)
        );
        let _ = writeln!(out, "{}", row.trim_end());
    }
    for line in scope_map_lines(d) {
        let _ = writeln!(out, "{line}");
    }
    for p in problems(d) {
        let _ = writeln!(out, "problem: {p}");
    }
    out
}

fn problems(d: &LiveDetails) -> Vec<String> {
    let mut all = d.problems.clone();
    if let Some(sig) = &d.interrupted {
        all.push(format!(
            "interrupted by {sig}: unfinished checks are skips, the lists are partial"
        ));
    }
    all
}

pub(super) fn markdown(d: &LiveDetails) -> String {
    let mut out = format!("\n## Live diff\n\n{}\n\n", header(d));
    for (label, side) in [("baseline", &d.baseline), ("changed", &d.changed)] {
        let _ = writeln!(out, "- {}", side_line(label, side));
        for note in &side.added {
            let _ = writeln!(out, "  - added: {}", note.replace('`', "'"));
        }
    }
    out.push_str(
        "\n| check | baseline | changed | change | detail (changed realm) |\n|---|---|---|---|---|\n",
    );
    for c in &d.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            c.id,
            c.baseline.name(),
            c.changed.name(),
            c.change.name(),
            cell(&detail(c))
        );
    }
    for (label, change) in [
        ("regressions", Change::Regression),
        ("fixes", Change::Fix),
        ("not applicable", Change::NotApplicable),
    ] {
        let ids = d.ids_with(change);
        let list = if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        };
        let _ = write!(out, "\n**{label}**: {list}\n");
    }
    let _ = write!(out, "\n**{}**\n", scope_map_lines(d)[0]);
    for line in scope_map_lines(d).iter().skip(1) {
        let _ = writeln!(out, "- {}", cell(line.trim()));
    }
    for p in problems(d) {
        let _ = write!(out, "\n**problem**: {}\n", cell(&p));
    }
    out
}

/// One case per check: a regression fails (with the changed side's message), a check not
/// applicable is skipped, everything else passes (both statuses in the case's output).
pub(super) fn junit_suite(d: &LiveDetails, file: &str) -> TestSuite {
    let mut suite = TestSuite::new(format!("live diff: {file}"));
    for c in &d.checks {
        let status = match c.change {
            Change::Regression => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message("passes on the baseline realm, fails on this one");
                s.set_description(c.detail.clone());
                s
            }
            Change::NotApplicable => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(c.detail.clone());
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("{} {}", c.id, c.title), status);
        case.set_classname("live-diff");
        case.set_system_out(format!(
            "baseline {}, changed {}: {}",
            c.baseline.name(),
            c.changed.name(),
            c.change.name()
        ));
        suite.add_test_case(case);
    }
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> LiveDetails {
        let side = |realm: &str| Side {
            realm: realm.into(),
            file: "f.json".into(),
            report_dir: format!("target/validate-realm/{realm}"),
            added: vec!["users[bob]: absent; added".into()],
            summary: Default::default(),
        };
        let diff = |id: &str, b, c, change, detail: &str| CheckDiff {
            id: id.into(),
            title: "t".into(),
            baseline: b,
            changed: c,
            change,
            detail: detail.into(),
        };
        LiveDetails {
            keycloak: "26.7.3".into(),
            selection: "REALM, EXCHANGE".into(),
            seconds: 100.0,
            scope_map: Some(vec![super::super::ToolChange {
                tool: "nc_notes_create_note".into(),
                baseline: Some(vec!["notes.write".into()]),
                changed: None,
            }]),
            baseline: side("b"),
            changed: side("c"),
            checks: vec![
                diff(
                    "REALM-01",
                    Status::Pass,
                    Status::Pass,
                    Change::Unchanged,
                    "ok",
                ),
                diff(
                    "EXCHANGE-02",
                    Status::Pass,
                    Status::Fail,
                    Change::Regression,
                    "refused | 400\nmore",
                ),
                diff(
                    "EXCHANGE-09",
                    Status::Pass,
                    Status::Skip,
                    Change::NotApplicable,
                    "not applicable: no client",
                ),
            ],
            problems: vec![],
            interrupted: None,
        }
    }

    #[test]
    fn text_has_a_row_per_check_with_the_changed_sides_message_when_it_did_not_pass() {
        let text = text(&details());
        assert!(
            text.contains("REALM-01     pass     pass     unchanged\n"),
            "{text}"
        );
        assert!(
            text.contains("EXCHANGE-02  pass     fail     regression     refused | 400 more\n"),
            "{text}"
        );
        assert!(text.contains("added: users[bob]"), "{text}");
        assert!(
            text.contains("EXCHANGE-09  pass     skip     not applicable no client\n"),
            "{text}"
        );
    }

    #[test]
    fn markdown_escapes_cells_and_lists_the_three_kinds() {
        let md = markdown(&details());
        assert!(
            md.contains("| EXCHANGE-02 | pass | fail | regression | refused \\| 400 more |"),
            "{md}"
        );
        assert!(md.contains("**regressions**: EXCHANGE-02"), "{md}");
        assert!(md.contains("**fixes**: none"), "{md}");
        assert!(md.contains("**not applicable**: EXCHANGE-09"), "{md}");
    }

    #[test]
    fn junit_fails_regressions_and_skips_what_does_not_apply() {
        let mut report = quick_junit::Report::new("t");
        report.add_test_suite(junit_suite(&details(), "f.json"));
        let xml = report.to_string().unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert_eq!(xml.matches("<skipped").count(), 1, "{xml}");
    }

    #[test]
    fn long_messages_are_cut() {
        let mut d = details();
        d.checks[1].detail = "x".repeat(500);
        let row = detail(&d.checks[1]);
        assert_eq!(row.chars().count(), DETAIL_MAX + 1);
    }
}
