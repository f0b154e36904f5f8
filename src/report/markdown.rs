//! `report.md`: a header naming what ran, a results table, then details and evidence of
//! everything that did not simply pass.

use std::fmt::Write;

use super::{CheckReport, Report, Status};
use crate::markdown::cell;

pub fn render(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# mcp-authz-harness report `{}`\n", r.run_id);
    let _ = writeln!(
        md,
        "- started {} · finished {}",
        r.started_at, r.finished_at
    );
    let _ = writeln!(md, "- backend: **{}** · realm: `{}`", r.backend, r.realm);
    let comps: Vec<String> = r
        .components
        .iter()
        .map(|(k, v)| format!("{k} `{}`", v.as_str().unwrap_or_default()))
        .collect();
    let _ = writeln!(md, "- components: {}", comps.join(", "));
    let _ = writeln!(
        md,
        "- MCP protocol version negotiated with the MCP server: {}",
        match &r.mcp_protocol_version {
            Some(v) => format!("`{v}`"),
            None => "none (no MCP session was made)".to_owned(),
        }
    );
    if r.components.get("nextcloud").and_then(|v| v.as_str()) == Some("stand-in")
        || r.uses_stand_in()
    {
        let _ = writeln!(
            md,
            "- **resource server: stand-in** (the harness's strict Nextcloud stand-in; results marked ⓢ depend on it)"
        );
    }
    if !r.keycloak_argv.is_empty() {
        let _ = writeln!(md, "- Keycloak: `{}`", r.keycloak_argv.join(" "));
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(k, v)| format!("{k} {:.1}s", v.as_f64().unwrap_or(0.0)))
        .collect();
    let _ = writeln!(md, "- phases: {}", phases.join(", "));
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|s| format!("{} {}", r.summary[s.name()], s.name()))
        .collect();
    let _ = writeln!(md, "- summary: {}", counts.join(", "));
    for line in r.revision_lines() {
        let _ = writeln!(md, "- {line}");
    }
    let t = &r.teardown;
    let _ = writeln!(
        md,
        "- teardown: {} processes left{}, {} clients deleted ({} by admin fallback), {} clients left, {} dirs left\n",
        t.processes_left,
        containers_left(r),
        t.clients_deleted,
        t.clients_deleted_by_admin_fallback,
        t.clients_left,
        t.dirs_left
    );
    for p in &r.problems {
        let _ = writeln!(md, "> **problem:** {p}\n");
    }
    let _ = writeln!(
        md,
        "| ID | title | spec | MCP revisions | component | status | ms |\n|---|---|---|---|---|---|---|"
    );
    for c in &r.checks {
        let si = if c.stand_in { " ⓢ" } else { "" };
        let _ = writeln!(
            md,
            "| {} | {}{si} | {} | {} | {} | {} | {} |",
            c.id,
            cell(&c.title),
            c.spec,
            crate::checks::revisions_cell(
                &c.spec_revisions
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            ),
            c.component,
            status_cell(c.status),
            c.duration_ms
        );
    }
    for c in r.checks.iter().filter(|c| c.status != Status::Pass) {
        details(&mut md, c);
    }
    md
}

fn details(md: &mut String, c: &CheckReport) {
    let _ = writeln!(md, "\n## {} {} — {}\n", c.id, c.title, c.status.name());
    let _ = writeln!(md, "{}\n", c.detail);
    for step in &c.evidence {
        let _ = writeln!(md, "- **{}**", step.name);
        for n in &step.notes {
            let _ = writeln!(md, "  - {n}");
        }
        for x in &step.exchanges {
            let status = x
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| x.error.clone().unwrap_or_default());
            let _ = writeln!(md, "  - `{} {}` → {}", x.method, x.url, status);
            if let Some(body) = &x.response_body {
                let _ = writeln!(
                    md,
                    "    `{}`",
                    crate::http::truncate(&body.replace('`', "'"), 400)
                );
            }
        }
    }
}

fn status_cell(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "**FAIL**",
        Status::Skip => "skip",
        Status::Xfail => "xfail",
        Status::Xpass => "**XPASS**",
        Status::Blocked => "blocked",
    }
}

/// `, N containers left` for a run of the containers backend (nothing for the others).
fn containers_left(report: &super::Report) -> String {
    if report.backend == "containers" {
        format!(", {} containers left", report.teardown.containers_left)
    } else {
        String::new()
    }
}
