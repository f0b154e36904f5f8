//! Running the catalogue on both realms in one Keycloak: the baseline's session brings
//! the stack up, the changed realm's session joins it, both run the same checks, and
//! the joined session is torn down before the one that owns the stack.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;

use super::{LiveDetails, Side, compare, scope_map};
use crate::checks::{Area, Check, Selection, catalogue, needs_of};
use crate::config::StackArgs;
use crate::keycloak::augment::augment;
use crate::keycloak::realm::{RealmFile, renamed};
use crate::mcp::scope_map::Derived;
use crate::progress::Progress;
use crate::report::Report;
use crate::runner::Interrupt;
use crate::runner::orchestrate::{self, Finished};
use crate::session::{Joining, Session, SessionOptions};
use crate::stack::Backend;

/// The checks to run: those `--only` names (areas and check IDs), else the whole
/// catalogue. An unknown name is a usage error.
pub fn selection(only: Option<&str>) -> Result<Vec<Check>, String> {
    let all = catalogue();
    let Some(spec) = only else {
        return Ok(all);
    };
    let sel = Selection::parse(spec, &all)?;
    Ok(all.into_iter().filter(|c| sel.matches(c)).collect())
}

/// What the live diff runs, on what, and where its reports go.
pub struct LiveOptions {
    /// Keycloak version, distribution, boot timeout, MCP server release, `--keep`; the
    /// backend is always native (a fresh Keycloak, subjects the harness starts).
    pub stack: StackArgs,
    pub checks: Vec<Check>,
    /// The reports of each side go to `baseline/` and `changed/` under it.
    pub report_dir: PathBuf,
    pub jobs: usize,
    pub check_timeout: Duration,
}

/// `file` renamed to `<its name>-<suffix>` and augmented from `baseline`; with the notes of
/// what was added.
fn prepare(
    file: &RealmFile,
    baseline: &RealmFile,
    suffix: &str,
) -> anyhow::Result<(RealmFile, Vec<String>)> {
    let name = format!("{}-{suffix}", file.name());
    let (json, added) = augment(&renamed(&file.json, &name), &baseline.json);
    let origin = format!("{}, imported as {name}", file.origin);
    Ok((RealmFile::parse(&json.to_string(), &origin, None)?, added))
}

fn session_options(opts: &LiveOptions, realm: RealmFile) -> anyhow::Result<SessionOptions> {
    let mut args = opts.stack.clone();
    args.backend = Backend::Native;
    args.realm = None;
    args.mcp_redirect_uri = None;
    let mut session = args.session_options(needs_of(&opts.checks))?;
    session.realm = realm;
    Ok(session)
}

/// Imports both realms into one fresh Keycloak, runs `opts.checks` on both, writes each
/// side's reports and compares them. `Err` means nothing was compared: invalid input,
/// Keycloak did not come up, or a signal arrived first (an
/// [`orchestrate::StartError::Interrupted`]).
pub async fn run(
    changed_file: &RealmFile,
    baseline_file: &RealmFile,
    opts: &LiveOptions,
) -> anyhow::Result<LiveDetails> {
    let (baseline_realm, baseline_added) = prepare(baseline_file, baseline_file, "baseline")?;
    let (changed_realm, changed_added) = prepare(changed_file, baseline_file, "changed")?;
    ensure!(
        baseline_realm.name() != changed_realm.name(),
        "both realms would be imported as {}; rename one",
        changed_realm.name()
    );
    let dirs = [
        opts.report_dir.join("baseline"),
        opts.report_dir.join("changed"),
    ];
    let started = std::time::Instant::now();
    let interrupt = Interrupt::install();
    let progress = Arc::new(Progress::new());
    let realms = [baseline_realm, changed_realm];
    let up = bring_up(opts, realms, &dirs, &progress, &interrupt).await;
    let [base, changed] = up.inspect_err(|_| progress.finish())?;
    let sessions = [base.clone(), changed.clone()];
    let labels = ["[baseline] ".to_owned(), "[changed] ".to_owned()];
    let plan = orchestrate::OnEach {
        checks: &opts.checks,
        jobs: opts.jobs,
        timeout: opts.check_timeout,
        sequential: false,
    };
    let (results, problems, interrupted) =
        orchestrate::run_on_each(&sessions, &labels, &plan, &interrupt).await;
    let failed = results.iter().any(|r| {
        r.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.status.fails_run())
    });
    let mut problems = problems.into_iter();
    let (base_problems, changed_problems) = (
        problems.next().unwrap_or_default(),
        problems.next().unwrap_or_default(),
    );
    // The joined session first: the other one stops Keycloak.
    let changed_end = orchestrate::finish(
        &changed,
        &results[1],
        changed_problems,
        &dirs[1],
        interrupted,
        failed,
    )
    .await;
    let base_end = orchestrate::finish(
        &base,
        &results[0],
        base_problems,
        &dirs[0],
        interrupted,
        failed,
    )
    .await;
    progress.finish();
    let mut problems = side_problems("baseline", &base_end);
    problems.extend(side_problems("changed", &changed_end));
    let side = |session: &Session, file: &RealmFile, added, dir: &Path, report: &Report| Side {
        realm: session.realm.name.clone(),
        file: file.origin.clone(),
        report_dir: dir.display().to_string(),
        added,
        summary: report.summary.clone(),
    };
    let (base_report, changed_report) = (&base_end.report, &changed_end.report);
    Ok(LiveDetails {
        keycloak: base.stack.keycloak.version.clone(),
        selection: describe(&opts.checks),
        baseline: side(&base, baseline_file, baseline_added, &dirs[0], base_report),
        changed: side(
            &changed,
            changed_file,
            changed_added,
            &dirs[1],
            changed_report,
        ),
        checks: compare(&base_report.checks, &changed_report.checks),
        scope_map: match (base.memo.get::<Derived>(), changed.memo.get::<Derived>()) {
            (Some(b), Some(c)) => Some(scope_map::compare(&b.map, &c.map)),
            _ => None,
        },
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        problems,
        interrupted: interrupted.map(str::to_owned),
    })
}

/// Boots Keycloak for the baseline's session and deploys both realms on it at once (the
/// changed realm's session joins the baseline's); a signal or a failure on the way tears
/// down what is up.
async fn bring_up(
    opts: &LiveOptions,
    [baseline, changed]: [RealmFile; 2],
    dirs: &[PathBuf; 2],
    progress: &Arc<Progress>,
    interrupt: &Interrupt,
) -> anyhow::Result<[Arc<Session>; 2]> {
    let baseline_opts = session_options(opts, baseline)?;
    let changed_opts = session_options(opts, changed)?;
    let joining = [Joining {
        opts: &changed_opts,
        report_dir: &dirs[1],
    }];
    let up = Session::start_sharing(&baseline_opts, &dirs[0], &joining, progress.clone());
    let sessions = match interrupt.guard(up).await {
        Ok(Ok(sessions)) => sessions,
        Ok(Err(error)) => Err(orchestrate::StartError::NotUp {
            error,
            logs_dir: dirs[0].join("logs"),
        })?,
        Err(sig) => Err(orchestrate::StartError::Interrupted(sig))?,
    };
    let [base, changed]: [Arc<Session>; 2] = sessions
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected two sessions from the shared bring-up"))?;
    Ok([base, changed])
}

/// The selection as `--only` would write it: whole areas by name, other checks by ID.
fn describe(checks: &[Check]) -> String {
    let all = catalogue();
    let mut parts = Vec::new();
    for area in Area::ALL {
        let of_area: Vec<&Check> = all.iter().filter(|c| c.area == area).collect();
        let chosen: Vec<&Check> = checks.iter().filter(|c| c.area == area).collect();
        if !chosen.is_empty() && chosen.len() == of_area.len() {
            parts.push(area.name().to_owned());
        } else {
            parts.extend(chosen.iter().map(|c| c.id.to_owned()));
        }
    }
    parts.join(",")
}

/// What fails the diff besides regressions, each line prefixed with the side: teardown
/// left something, a secret in clear, a stale expectation, a report not written.
fn side_problems(label: &str, end: &Finished) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = &end.write_error {
        problems.push(format!("{label}: {e}"));
    }
    let report = &end.report;
    problems.extend(
        report
            .problems
            .iter()
            .filter(|p| !p.starts_with("interrupted by"))
            .map(|p| format!("{label}: {p}")),
    );
    let t = &report.teardown;
    if !t.is_clean() {
        problems.push(format!(
            "{label}: teardown left something behind ({} processes, {} containers, {} clients, {} realms, {} dirs; {} deleted by admin fallback): {}",
            t.processes_left,
            t.containers_left,
            t.clients_left,
            t.realms_left,
            t.dirs_left,
            t.clients_deleted_by_admin_fallback,
            t.notes.join("; ")
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_selection_is_the_whole_catalogue() {
        let all = selection(None).unwrap();
        assert_eq!(all.len(), catalogue().len());
        assert_eq!(
            describe(&all),
            "REALM,DCR,PKCE,TOKEN,EXCHANGE,RS,MCP,STORAGE"
        );
        let some = selection(Some("EXCHANGE,REALM-01,MCP-10")).unwrap();
        assert_eq!(describe(&some), "REALM-01,EXCHANGE,MCP-10");
        assert!(selection(Some("NOPE")).is_err());
    }

    #[test]
    fn each_side_is_renamed_and_augmented_from_the_baseline() {
        let baseline = RealmFile::baseline();
        let export = RealmFile::parse(
            r#"{"realm": "nextcloud-mcp", "clients": [{"clientId": "c", "secret": "**********"}]}"#,
            "export.json",
            None,
        )
        .unwrap();
        let (file, added) = prepare(&export, &baseline, "changed").unwrap();
        assert_eq!(file.name(), "nextcloud-mcp-changed");
        assert_eq!(
            file.origin,
            "export.json, imported as nextcloud-mcp-changed"
        );
        assert!(!file.is_builtin());
        assert_eq!(added.len(), 5, "a secret and four users: {added:?}");
        let (file, added) = prepare(&baseline, &baseline, "baseline").unwrap();
        assert_eq!(file.name(), "nextcloud-mcp-baseline");
        assert!(added.is_empty(), "{added:?}");
        assert!(
            !file.is_builtin(),
            "a check not applicable to the baseline side is a skip there, not a failure"
        );
    }
}
