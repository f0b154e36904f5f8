//! The table printed at the end of a CLI run.

use super::{Report, Status};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let width = report
        .checks
        .iter()
        .map(|c| c.id.len() + c.title.len() + 1)
        .max()
        .unwrap_or(10)
        .min(70);
    for c in &report.checks {
        let name = format!("{} {}", c.id, c.title);
        let mark = match c.status {
            Status::Pass => "pass ",
            Status::Fail => "FAIL ",
            Status::Skip => "skip ",
            Status::Xfail => "xfail",
            Status::Xpass => "XPASS",
            Status::Blocked => "block",
        };
        let stand_in = if c.stand_in { " [stand-in]" } else { "" };
        out.push_str(&format!("{mark}  {name:<width$}{stand_in}\n"));
        if c.status != Status::Pass && !c.detail.is_empty() {
            let first = c.detail.lines().next().unwrap_or_default();
            out.push_str(&format!("       {}\n", crate::http::truncate(first, 300)));
        }
    }
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|s| format!("{} {}", report.summary[s.name()], s.name()))
        .collect();
    let t = &report.teardown;
    out.push_str(&format!(
        "\nresult: {}; teardown: {} processes left{}, {} clients deleted ({} by admin fallback), {} clients left, {} dirs left\n",
        counts.join(", "),
        t.processes_left,
        containers_left(report),
        t.clients_deleted,
        t.clients_deleted_by_admin_fallback,
        t.clients_left,
        t.dirs_left
    ));
    for line in report.revision_lines() {
        out.push_str(&format!("{line}\n"));
    }
    if let Some(v) = &report.mcp_protocol_version {
        out.push_str(&format!("MCP protocol version negotiated: {v}\n"));
    }
    for p in &report.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    if report.uses_stand_in() {
        out.push_str("resource server: stand-in (results marked [stand-in] depend on it)\n");
    }
    out
}

/// `, N containers left` for a run of the containers backend (nothing for the others).
fn containers_left(report: &super::Report) -> String {
    if report.backend == "containers" {
        format!(", {} containers left", report.teardown.containers_left)
    } else {
        String::new()
    }
}
