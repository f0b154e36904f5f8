//! JUnit XML: one test suite per area, one test case per check.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{Report, Status};

pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut junit = quick_junit::Report::new(format!("mcp-authz-harness {}", report.run_id));
    let mut areas: Vec<&str> = report.checks.iter().map(|c| c.area.as_str()).collect();
    areas.dedup();
    for area in areas {
        let mut suite = TestSuite::new(area);
        for c in report.checks.iter().filter(|c| c.area == area) {
            let mut status = match c.status {
                Status::Pass | Status::Xfail => TestCaseStatus::success(),
                Status::Skip | Status::Blocked => TestCaseStatus::skipped(),
                Status::Fail | Status::Xpass => {
                    TestCaseStatus::non_success(NonSuccessKind::Failure)
                }
            };
            if c.status != Status::Pass {
                status.set_message(format!("{}: {}", c.status.name(), first_line(&c.detail)));
                status.set_description(c.detail.clone());
            }
            let mut case = TestCase::new(format!("{} {}", c.id, c.title), status);
            case.set_classname(format!("{}.{}", c.area, c.component));
            case.set_time(std::time::Duration::from_millis(c.duration_ms));
            case.add_property(("spec", c.spec.as_str()));
            case.add_property(("stand_in", if c.stand_in { "true" } else { "false" }));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    if !report.teardown.is_clean() || !report.problems.is_empty() {
        let mut suite = TestSuite::new("RUN");
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        let mut lines = report.problems.clone();
        lines.extend(report.teardown.notes.iter().cloned());
        status
            .set_message("the run itself failed (teardown left something, or a problem was found)");
        status.set_description(lines.join("\n"));
        suite.add_test_case(TestCase::new("teardown and expectations", status));
        junit.add_test_suite(suite);
    }
    Ok(junit.to_string()?)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
