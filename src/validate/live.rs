//! Running the catalogue on both realms in one Keycloak: the baseline's session brings
//! the stack up, the changed realm's session joins it, both run the same checks, and
//! the joined session is torn down before the one that owns the stack.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;

use super::{LEFT_OUT, LiveDetails, Side, compare};
use crate::checks::{Area, Check, Selection, catalogue, needs_of};
use crate::cli::signals::{INTERRUPTED, next_signal};
use crate::config::StackArgs;
use crate::keycloak::augment::augment;
use crate::keycloak::realm::{RealmFile, renamed};
use crate::progress::Progress;
use crate::report::{CheckReport, Report, Status};
use crate::runner;
use crate::session::{Session, SessionOptions, TeardownReport};
use crate::stack::{Backend, StackError};

/// The areas that judge the realm and Keycloak, the ones the live diff runs.
pub const LIVE_AREAS: [Area; 5] = [
    Area::Realm,
    Area::Dcr,
    Area::Pkce,
    Area::Token,
    Area::Exchange,
];

/// The checks to run: those `--only` names (areas and IDs within [`LIVE_AREAS`]), else
/// every check of [`LIVE_AREAS`]. An unknown name or one outside them is a usage error.
pub fn selection(only: Option<&str>) -> Result<Vec<Check>, String> {
    let all = catalogue();
    let Some(spec) = only else {
        return Ok(all
            .into_iter()
            .filter(|c| LIVE_AREAS.contains(&c.area))
            .collect());
    };
    let sel = Selection::parse(spec, &all)?;
    let chosen: Vec<Check> = all.into_iter().filter(|c| sel.matches(c)).collect();
    let outside = sel
        .areas
        .iter()
        .find(|a| !LIVE_AREAS.contains(a))
        .map(|a| a.name());
    let outside = outside.or_else(|| {
        chosen
            .iter()
            .find(|c| !LIVE_AREAS.contains(&c.area))
            .map(|c| c.id)
    });
    if let Some(name) = outside {
        let live: Vec<&str> = LIVE_AREAS.iter().map(|a| a.name()).collect();
        return Err(format!(
            "--only: {name} is not run by the live diff ({LEFT_OUT}); choose among {}",
            live.join(", ")
        ));
    }
    Ok(chosen)
}

/// What the live diff runs, on what, and where its reports go.
pub struct LiveOptions {
    /// Keycloak version, distribution, boot timeout, `--keep`; the backend is always
    /// native (a fresh Keycloak).
    pub stack: StackArgs,
    pub checks: Vec<Check>,
    /// The reports of each side go to `baseline/` and `changed/` under it.
    pub report_dir: PathBuf,
    pub jobs: usize,
    pub check_timeout: Duration,
}

/// A signal stopped the live diff before its checks ran (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("{0} while bringing the stack up; stopped, nothing left behind")]
pub struct Interrupted(pub &'static str);

impl Interrupted {
    pub const EXIT_STATUS: u8 = INTERRUPTED;
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

fn not_up(e: StackError, report_dir: &Path) -> anyhow::Error {
    let mut msg = format!("the stack could not be brought up:\n{e}");
    if !e.logs.is_empty() {
        let logs = report_dir.join("logs");
        msg.push_str(&format!("\ncomponent logs copied to {}", logs.display()));
    }
    anyhow::anyhow!(msg)
}

/// Imports both realms into one fresh Keycloak, runs `opts.checks` on both, writes each
/// side's reports and compares them. `Err` means nothing was compared: invalid input,
/// Keycloak did not come up, or a signal arrived first ([`Interrupted`]).
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
    let progress = Arc::new(Progress::new());
    let realms = [baseline_realm, changed_realm];
    let up = bring_up(opts, realms, &dirs, &progress).await;
    let [base, changed] = up.inspect_err(|_| progress.finish())?;
    let (outcomes, interrupted) = run_both(&[base.clone(), changed.clone()], opts).await;
    let failed = interrupted.is_some()
        || outcomes
            .iter()
            .flat_map(|o| &o.results)
            .any(|r| r.status.fails_run());
    // The joined session first: the other one stops Keycloak.
    let changed_teardown = changed.teardown(None).await;
    let logs = opts.report_dir.join("logs");
    let base_teardown = base.teardown(failed.then_some(logs.as_path())).await;
    progress.finish();
    let kept = base.run.keep.then(|| base.run.dir.clone());
    let [base_outcome, changed_outcome] = outcomes;
    let (base_report, mut problems) = finish_side(
        ("baseline", &base, &dirs[0]),
        base_outcome,
        base_teardown,
        kept.as_deref(),
    );
    let (changed_report, changed_problems) = finish_side(
        ("changed", &changed, &dirs[1]),
        changed_outcome,
        changed_teardown,
        None,
    );
    problems.extend(changed_problems);
    let side = |session: &Session, file: &RealmFile, added, dir: &Path, report: &Report| Side {
        realm: session.realm.name.clone(),
        file: file.origin.clone(),
        report_dir: dir.display().to_string(),
        added,
        summary: report.summary.clone(),
    };
    Ok(LiveDetails {
        keycloak: base.stack.keycloak.version.clone(),
        selection: describe(&opts.checks),
        left_out: LEFT_OUT.to_owned(),
        baseline: side(&base, baseline_file, baseline_added, &dirs[0], &base_report),
        changed: side(
            &changed,
            changed_file,
            changed_added,
            &dirs[1],
            &changed_report,
        ),
        checks: compare(&base_report.checks, &changed_report.checks),
        problems,
        interrupted: interrupted.map(str::to_owned),
    })
}

/// Boots Keycloak with the baseline's session, then joins the changed realm's session to
/// it; a signal or a failure on the way tears down what is up.
async fn bring_up(
    opts: &LiveOptions,
    [baseline, changed]: [RealmFile; 2],
    dirs: &[PathBuf; 2],
    progress: &Arc<Progress>,
) -> anyhow::Result<[Arc<Session>; 2]> {
    let baseline_opts = session_options(opts, baseline)?;
    let changed_opts = session_options(opts, changed)?;
    let base = tokio::select! {
        s = Session::start(&baseline_opts, progress.clone(), &dirs[0]) => s,
        sig = next_signal() => return Err(Interrupted(sig).into()),
    };
    let base = base.map_err(|e| not_up(e, &dirs[0]))?;
    let joined = tokio::select! {
        s = base.join(&changed_opts, &dirs[1]) => s.map_err(|e| not_up(e, &dirs[1])),
        sig = next_signal() => Err(Interrupted(sig).into()),
    };
    match joined {
        Ok(changed) => Ok([base, changed]),
        Err(e) => {
            base.teardown(None).await;
            Err(e)
        }
    }
}

/// The selection as `--only` would write it: whole areas by name, other checks by ID.
fn describe(checks: &[Check]) -> String {
    let all = catalogue();
    let mut parts = Vec::new();
    for area in LIVE_AREAS {
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

/// One side's results and the problems its expectations had.
struct Outcome {
    results: Vec<CheckReport>,
    problems: Vec<String>,
}

/// Runs the checks on both sessions at once; on a signal, the unfinished ones become
/// skips saying so, and a second signal aborts at once (the watchdog cleans up).
async fn run_both(
    sessions: &[Arc<Session>; 2],
    opts: &LiveOptions,
) -> ([Outcome; 2], Option<&'static str>) {
    let all = catalogue();
    let expectations = sessions.each_ref().map(|s| {
        runner::load_expectations(s, &crate::config::expectations_dir(), &all).unwrap_or_else(|e| {
            let mut none = crate::expectations::Expectations::default();
            none.problems.push(format!("{e:#}"));
            none
        })
    });
    let results = [Mutex::new(Vec::new()), Mutex::new(Vec::new())];
    let run = |i: usize, label| {
        runner::run_checks(
            &sessions[i],
            &opts.checks,
            &expectations[i],
            opts.jobs,
            opts.check_timeout,
            &results[i],
            label,
        )
    };
    let started = Instant::now();
    let interrupted = tokio::select! {
        _ = futures::future::join(run(0, "[baseline] "), run(1, "[changed] ")) => None,
        sig = next_signal() => Some(sig),
    };
    let progress = &sessions[0].progress;
    progress.phase_done("checks", started.elapsed());
    if let Some(sig) = interrupted {
        progress.println(&format!(
            "{sig}: stopping the checks and tearing down (send it again to abort at once)"
        ));
        let run = sessions[0].run.clone();
        tokio::spawn(async move {
            next_signal().await;
            eprintln!("second signal: aborting teardown; the watchdog removes what is left");
            run.abort();
            std::process::exit(i32::from(INTERRUPTED));
        });
    }
    let outcomes = [0, 1].map(|i| {
        let mut results =
            std::mem::take(&mut *results[i].lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(sig) = interrupted {
            let why = format!("not finished: the run was interrupted by {sig}");
            let unfinished: Vec<CheckReport> = opts
                .checks
                .iter()
                .filter(|c| !results.iter().any(|r| r.id == c.id))
                .map(|c| runner::not_run(c, Status::Skip, &why))
                .collect();
            results.extend(unfinished);
        }
        Outcome {
            results,
            problems: expectations[i].problems.clone(),
        }
    });
    (outcomes, interrupted)
}

/// Builds a side's report, writes it into `dir` and scans it for secrets. Returns it with
/// what fails the diff besides regressions, each line prefixed with the side: teardown
/// left something, a secret in clear, a stale expectation, a report not written.
fn finish_side(
    (label, session, dir): (&str, &Session, &Path),
    outcome: Outcome,
    teardown: TeardownReport,
    kept: Option<&Path>,
) -> (Report, Vec<String>) {
    let mut report = runner::build_report(session, outcome.results, teardown, outcome.problems);
    let mut problems = Vec::new();
    if let Err(e) = report.write_and_scan(dir, kept) {
        problems.push(format!("{label}: {e:#}"));
    }
    problems.extend(report.problems.iter().map(|p| format!("{label}: {p}")));
    let t = &report.teardown;
    if !t.is_clean() {
        problems.push(format!(
            "{label}: teardown left something behind ({} processes, {} clients, {} realms, {} dirs; {} deleted by admin fallback): {}",
            t.processes_left,
            t.clients_left,
            t.realms_left,
            t.dirs_left,
            t.clients_deleted_by_admin_fallback,
            t.notes.join("; ")
        ));
    }
    (report, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_selection_is_every_live_area_and_others_are_refused() {
        let all = selection(None).unwrap();
        assert!(all.iter().all(|c| LIVE_AREAS.contains(&c.area)));
        assert_eq!(describe(&all), "REALM,DCR,PKCE,TOKEN,EXCHANGE");
        let some = selection(Some("EXCHANGE,REALM-01")).unwrap();
        assert_eq!(describe(&some), "REALM-01,EXCHANGE");
        for only in ["MCP", "RS", "REALM,MCP-01"] {
            let err = selection(Some(only)).unwrap_err();
            assert!(err.contains("is not run by the live diff"), "{only}: {err}");
        }
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
