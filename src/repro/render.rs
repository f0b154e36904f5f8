//! The results as a terminal table and as Markdown (`results.md`, and the committed
//! `docs/impersonation-findings.md`, rendered from `fixtures/repro/*.json`).

use std::fmt::Write;

use super::model::{BootRecord, Cell, ImpersonationResults};
use crate::markdown::cell as md_cell;

/// The terminal table: rows are requests, columns the three settings; descriptions as
/// footnotes so the table stays narrow.
pub fn terminal(r: &ImpersonationResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "repro impersonation: Keycloak {} · {} · realm {}",
        versions(r),
        r.date,
        r.realm
    );
    let mut notes: Vec<String> = Vec::new();
    let mut header = vec!["request".to_owned()];
    header.extend(r.columns.iter().map(|c| c.title.clone()));
    let mut rows = vec![header];
    for (i, req) in r.requests.iter().enumerate() {
        let mut row = vec![format!("{} {}", i + 1, req.id)];
        for col in &r.columns {
            row.push(match col.cell(&req.id) {
                Some(cell) => short_cell(cell, &mut notes),
                None => "-".to_owned(),
            });
        }
        rows.push(row);
    }
    if r.columns.is_empty() {
        out.push_str("no column ran: a boot failed (see boots below)\n");
    } else {
        out.push_str(&text_table(&rows));
    }
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(out, "  [{}] {n}", footnote_mark(i));
    }
    out.push_str("\nrequests (all sent by the confidential client `requester`):\n");
    for (i, req) in r.requests.iter().enumerate() {
        let _ = writeln!(out, "  {} {}: {}", i + 1, req.id, req.title);
        let _ = writeln!(out, "      {}", req.parameters.join(" "));
    }
    out.push_str("\nsettings per column:\n");
    for col in &r.columns {
        let _ = writeln!(out, "  {}:", col.title);
        for s in &col.settings {
            let _ = writeln!(out, "    - {}", s.replace('`', ""));
        }
        if let Some(e) = &col.setup_error {
            let _ = writeln!(out, "    ! setup incomplete: {e}");
        }
    }
    out.push_str("\nboots:\n");
    for b in &r.boots {
        let _ = writeln!(out, "  {}: {}, {}", b.id, b.title, boot_facts(b));
        if !b.argv.is_empty() {
            let _ = writeln!(out, "    {}", b.argv.join(" "));
        }
        if let Some(f) = &b.fallback {
            let _ = writeln!(out, "    fallback: {f}");
        }
        if let Some(e) = &b.error {
            let _ = writeln!(out, "    error: {e}");
        }
    }
    out.push_str("\nanswered by:\n");
    for col in &r.columns {
        let providers = distinct(col.cells.iter().map(|c| c.answered_by.as_str()));
        let _ = writeln!(out, "  {}: {}", col.title, providers.join(", "));
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {}", n.replace('`', ""));
    }
    out
}

fn footnote_mark(i: usize) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    if i < letters.len() {
        (letters[i] as char).to_string()
    } else {
        format!("n{i}")
    }
}

fn short_cell(cell: &Cell, notes: &mut Vec<String>) -> String {
    let Some(status) = cell.status else {
        return "not sent".to_owned();
    };
    let mut s = status.to_string();
    if let Some(e) = &cell.error {
        s.push(' ');
        s.push_str(e);
    }
    if let Some(d) = &cell.error_description {
        let i = match notes.iter().position(|n| n == d) {
            Some(i) => i,
            None => {
                notes.push(d.clone());
                notes.len() - 1
            }
        };
        let _ = write!(s, " [{}]", footnote_mark(i));
    }
    if let Some(issued) = &cell.issued {
        let _ = write!(s, " sub={}", who(issued));
    }
    s
}

fn who(issued: &super::model::Issued) -> String {
    match (&issued.username, &issued.sub) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => "(no sub)".to_owned(),
    }
}

fn text_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join(" | ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("-+-"));
        }
    }
    out
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The Keycloak version(s) the boots ran (the requested one when none booted).
pub fn versions(r: &ImpersonationResults) -> String {
    let ran = distinct(r.boots.iter().filter_map(|b| b.keycloak_version.as_deref()));
    if ran.is_empty() {
        r.keycloak_version.clone()
    } else {
        ran.join(", ")
    }
}

/// Version, Java and boot time of a boot.
fn boot_facts(b: &BootRecord) -> String {
    let mut facts = Vec::new();
    if let Some(v) = &b.keycloak_version {
        facts.push(format!("Keycloak {v}"));
    }
    if let Some(j) = &b.java {
        facts.push(format!("Java {j}"));
    }
    if let Some(t) = b.boot_seconds {
        facts.push(format!("ready in {t:.1}s"));
    }
    if facts.is_empty() {
        "did not boot".to_owned()
    } else {
        facts.join(", ")
    }
}

/// `results.md`: one run, standalone.
pub fn markdown(r: &ImpersonationResults) -> String {
    let mut out = format!("# Impersonation reproduction: Keycloak {}\n\n", versions(r));
    out.push_str(&section(r, 2));
    out
}

/// `docs/impersonation-findings.md`: each committed run (fixture path, results), one
/// section each.
pub fn findings(runs: &[(String, ImpersonationResults)]) -> String {
    let mut out = String::from(
        "# Impersonation findings: Standard Token Exchange (V2) versus Legacy V1\n\n\
         <!-- Generated: do not edit. Rendered from the raw results named below by\n\
         `UPDATE_DOCS=1 cargo test --test repro_render`; `cargo test` fails when it is stale. -->\n\n\
         Can a client act as another user through Keycloak's token exchange, and what does\n\
         Keycloak need for it? Each section below is one real run of\n\
         `mcp-authz-harness repro impersonation`: Keycloak booted twice from its distribution,\n\
         once with default features (Standard Token Exchange V2) and once with Legacy V1\n\
         (`token-exchange:v1`, `admin-fine-grained-authz:v1`), the same requests sent to each,\n\
         and V1 asked again after its permissions were granted through the admin API.\n\n\
         Reproduce: `mcp-authz-harness repro impersonation --keycloak-version <V> --out results.json`\n\
         (writes `results.json` and `results.md`).\n\n",
    );
    out.push_str("Runs:\n\n");
    for (path, r) in runs {
        let _ = writeln!(out, "- Keycloak {}: `{path}`, {}", versions(r), r.date);
    }
    out.push('\n');
    for (path, r) in runs {
        let _ = writeln!(out, "## Keycloak {}\n", versions(r));
        let _ = writeln!(out, "Raw results: `{path}`.\n");
        out.push_str(&section(r, 3));
    }
    out
}

/// The committed raw results under `root/fixtures/repro` (`impersonation-*.json`), newest
/// Keycloak first, each with its path relative to `root`.
pub fn committed_runs(
    root: &std::path::Path,
) -> anyhow::Result<Vec<(String, ImpersonationResults)>> {
    use anyhow::Context;
    let dir = root.join("fixtures/repro");
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("impersonation-") && name.ends_with(".json")) {
            continue;
        }
        let rel = format!("fixtures/repro/{name}");
        let text =
            std::fs::read_to_string(root.join(&rel)).with_context(|| format!("reading {rel}"))?;
        let r: ImpersonationResults =
            serde_json::from_str(&text).with_context(|| format!("parsing {rel}"))?;
        runs.push((rel, r));
    }
    runs.sort_by_key(|(_, r)| std::cmp::Reverse(version_key(&r.keycloak_version)));
    Ok(runs)
}

/// `26.7.3` as numbers, for ordering.
fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// One run: header, table, requests, settings, boots, notes. `level` is the heading level
/// of its subsections.
pub fn section(r: &ImpersonationResults, level: usize) -> String {
    let h = "#".repeat(level);
    let mut out = String::new();
    let _ = writeln!(out, "- Command: `{}`", r.command_line.join(" "));
    let _ = writeln!(out, "- Date: {}", r.date);
    let _ = writeln!(out, "- Keycloak: {}", versions(r));
    let java = distinct(r.boots.iter().filter_map(|b| b.java.as_deref()));
    if !java.is_empty() {
        let _ = writeln!(out, "- Java: {}", java.join(", "));
    }
    let _ = writeln!(
        out,
        "- Harness: {} {}; results schema {}",
        r.tool, r.harness_version, r.schema_version
    );
    let _ = writeln!(
        out,
        "- Realm: `{}`, imported through the admin API in each boot\n",
        r.realm
    );

    let _ = writeln!(out, "{h} Results\n");
    let mut header = String::from("| request |");
    let mut rule = String::from("|---|");
    for c in &r.columns {
        let _ = write!(header, " {} |", md_cell(&c.title));
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (i, req) in r.requests.iter().enumerate() {
        let _ = write!(out, "| {}. {} |", i + 1, md_cell(&req.title));
        for c in &r.columns {
            let cell = c
                .cell(&req.id)
                .map(result_cell)
                .unwrap_or_else(|| "–".to_owned());
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');
    if r.columns.is_empty() {
        out.push_str("No column ran: see the boots below.\n\n");
    } else {
        let _ = writeln!(out, "{h} Summary\n");
        out.push_str(&summary(r));
        out.push('\n');
    }

    let _ = writeln!(out, "{h} Requests\n");
    out.push_str(
        "Each is a `POST` to the realm's token endpoint with \
         `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, \
         `client_id=requester` and its `client_secret`, plus:\n\n",
    );
    for (i, req) in r.requests.iter().enumerate() {
        let _ = writeln!(out, "{}. `{}`: {}", i + 1, req.id, req.title);
        for p in &req.parameters {
            let _ = writeln!(out, "   - `{p}`");
        }
    }
    out.push('\n');

    let _ = writeln!(out, "{h} What each column needed\n");
    for c in &r.columns {
        let _ = writeln!(out, "**{}** (boot `{}`):\n", md_cell(&c.title), c.boot);
        for s in &c.settings {
            let _ = writeln!(out, "- {s}");
        }
        for step in &c.setup {
            let status = step
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no answer".to_owned());
            let _ = writeln!(
                out,
                "- admin API: {} (`{} {}` → {status})",
                step.what,
                step.method,
                generic_path(&step.path)
            );
        }
        if let Some(e) = &c.setup_error {
            let _ = writeln!(out, "- **setup incomplete**: {}", md_cell(e));
        }
        let providers = distinct(c.cells.iter().map(|x| x.answered_by.as_str()));
        let reasons = distinct(
            c.cells
                .iter()
                .filter(|x| x.status.is_some())
                .map(|x| x.answered_by_reason.as_str()),
        );
        let _ = writeln!(out, "- answered by: {}", providers.join(", "));
        for why in reasons {
            let _ = writeln!(out, "  - {}", md_cell(why));
        }
        out.push('\n');
    }

    let _ = writeln!(out, "{h} Boots\n");
    for b in &r.boots {
        let _ = writeln!(
            out,
            "**{}** (`{}`): {}\n",
            md_cell(&b.title),
            b.id,
            md_cell(&boot_facts(b))
        );
        if !b.argv.is_empty() {
            let _ = writeln!(out, "```\n{}\n```\n", b.argv.join(" "));
        }
        if !b.features_enabled.is_empty() {
            let _ = writeln!(
                out,
                "Enabled features (serverinfo): {}\n",
                b.features_enabled
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(f) = &b.fallback {
            let _ = writeln!(out, "Fallback: {}\n", md_cell(f));
        }
        if let Some(e) = &b.error {
            let _ = writeln!(out, "Error:\n\n```\n{e}\n```\n");
        }
    }

    let _ = writeln!(out, "{h} Notes\n");
    for n in &r.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

/// Per request: where a token was issued (for whom) and where it was refused (how).
fn summary(r: &ImpersonationResults) -> String {
    let mut out = String::new();
    for (i, req) in r.requests.iter().enumerate() {
        let mut issued = Vec::new();
        let mut refused = Vec::new();
        let mut other = Vec::new();
        for c in &r.columns {
            match c.cell(&req.id) {
                Some(cell) if cell.issued.is_some() => {
                    let i = cell.issued.as_ref().expect("checked");
                    issued.push(format!("{} (sub **{}**)", c.title, md_cell(&who(i))));
                }
                Some(cell) if cell.status.is_some() => refused.push(format!(
                    "{} ({} `{}`)",
                    c.title,
                    cell.status.unwrap_or_default(),
                    md_cell(cell.error.as_deref().unwrap_or("?"))
                )),
                _ => other.push(c.title.clone()),
            }
        }
        let mut parts = Vec::new();
        if !issued.is_empty() {
            parts.push(format!("issued in {}", issued.join(", ")));
        }
        if !refused.is_empty() {
            parts.push(format!("refused in {}", refused.join(", ")));
        }
        if !other.is_empty() {
            parts.push(format!("not sent in {}", other.join(", ")));
        }
        let _ = writeln!(out, "{}. `{}`: {}.", i + 1, req.id, parts.join("; "));
    }
    out
}

fn result_cell(cell: &Cell) -> String {
    let Some(status) = cell.status else {
        return md_cell(cell.note.as_deref().unwrap_or("not sent"));
    };
    let mut s = format!("**{status}**");
    if let Some(e) = &cell.error {
        let _ = write!(s, " `{}`", md_cell(e));
    }
    if let Some(d) = &cell.error_description {
        let _ = write!(s, "<br>{}", md_cell(d));
    }
    if let Some(i) = &cell.issued {
        let _ = write!(s, "<br>sub: **{}**", md_cell(&who(i)));
        if let Some(azp) = &i.azp {
            let _ = write!(s, ", azp `{}`", md_cell(azp));
        }
        if !i.aud.is_empty() {
            let _ = write!(s, ", aud `{}`", md_cell(&i.aud.join(" ")));
        }
        if let Some(t) = &i.issued_token_type {
            let short = t.rsplit(':').next().unwrap_or(t);
            let _ = write!(s, "<br>issued_token_type {short}");
        }
        if i.refresh_token_issued {
            s.push_str(" + refresh_token");
        }
    }
    if let Some(n) = &cell.note {
        let _ = write!(s, "<br>({})", md_cell(n));
    }
    s
}

/// Admin paths with ids replaced by what they name, so runs compare.
fn generic_path(path: &str) -> String {
    static UUID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
            .expect("static regex")
    });
    UUID.replace_all(path, "{id}").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::model::*;

    pub(crate) fn sample() -> ImpersonationResults {
        let cell =
            |req: &str, status, err: Option<&str>, desc: Option<&str>, sub: Option<&str>| Cell {
                request: req.into(),
                status: Some(status),
                error: err.map(Into::into),
                error_description: desc.map(Into::into),
                issued: sub.map(|s| Issued {
                    sub: Some("0b5c…".into()),
                    username: Some(s.into()),
                    azp: Some("requester".into()),
                    aud: vec!["target".into()],
                    scope: Some("profile email".into()),
                    issued_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
                    refresh_token_issued: false,
                }),
                answered_by: "standard (V2)".into(),
                answered_by_reason: "only".into(),
                note: None,
            };
        ImpersonationResults {
            schema_version: SCHEMA_VERSION,
            tool: "mcp-authz-harness repro impersonation".into(),
            harness_version: "0.1.0".into(),
            command_line: vec!["mcp-authz-harness".into(), "repro".into(), "impersonation".into()],
            date: "2026-01-01T00:00:00Z".into(),
            keycloak_version: "26.7.3".into(),
            realm: "repro-impersonation".into(),
            notes: vec!["a note".into()],
            boots: vec![BootRecord {
                id: "standard".into(),
                title: "Standard".into(),
                requested: BuildRecord::default(),
                used: BuildRecord::default(),
                fallback: None,
                keycloak_version: Some("26.7.3".into()),
                java: Some("21".into()),
                argv: vec!["kc.sh".into(), "start".into()],
                features_enabled: vec!["TOKEN_EXCHANGE_STANDARD_V2".into()],
                boot_seconds: Some(30.0),
                error: None,
            }],
            requests: vec![
                RequestSpec { id: "own-token".into(), title: "own | token".into(), parameters: vec!["audience=x".into()] },
                RequestSpec { id: "impersonate".into(), title: "imp".into(), parameters: vec![] },
            ],
            columns: vec![ColumnResult {
                id: "v2".into(),
                title: "V2 (standard)".into(),
                boot: "standard".into(),
                settings: vec!["features: default".into()],
                setup: vec![SetupStep {
                    what: "enable".into(),
                    method: "PUT".into(),
                    path: "/admin/realms/r/clients/0b5c1a2e-1111-2222-3333-444455556666/management/permissions".into(),
                    status: Some(200),
                }],
                setup_error: None,
                cells: vec![
                    cell("own-token", 200, None, None, Some("alice")),
                    cell("impersonate", 400, Some("invalid_request"), Some("Parameter 'requested_subject' is not supported for standard token exchange"), None),
                ],
            }],
        }
    }

    #[test]
    fn terminal_table_has_a_row_per_request_and_footnotes() {
        let t = terminal(&sample());
        assert!(t.contains("1 own-token"), "{t}");
        assert!(t.contains("200 sub=alice"), "{t}");
        assert!(t.contains("400 invalid_request [a]"), "{t}");
        assert!(
            t.contains("[a] Parameter 'requested_subject' is not supported"),
            "{t}"
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_hides_ids() {
        let m = markdown(&sample());
        assert!(m.contains("own \\| token"), "{m}");
        assert!(m.contains("/clients/{id}/management/permissions"), "{m}");
        assert!(m.contains("sub: **alice**"), "{m}");
        assert!(m.contains("- Date: 2026-01-01T00:00:00Z"), "{m}");
        assert!(
            m.contains("1. `own-token`: issued in V2 (standard) (sub **alice**)."),
            "{m}"
        );
        assert!(
            m.contains("2. `impersonate`: refused in V2 (standard) (400 `invalid_request`)."),
            "{m}"
        );
    }

    #[test]
    fn results_round_trip_through_json() {
        let s = sample();
        let text = serde_json::to_string(&s).unwrap();
        let back: ImpersonationResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
