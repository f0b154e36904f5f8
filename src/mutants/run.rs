//! Running the mutants: the baseline session first (the whole catalogue, the reference for
//! "passes on the baseline"), then each joined mutant, each Keycloak mutant, and the fault
//! mutants last on the baseline session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::catalogue::{Component, Defect, MUTANTS, Mutant};
use super::interposer::Interposer;
use super::report::{MutantOutcome, MutationReport, unkillable_reasons};
use crate::checks::{Check, Selection, catalogue, needs_of};
use crate::config::StackArgs;
use crate::keycloak::realm::{RealmFile, renamed};
use crate::progress::Progress;
use crate::report::{CheckReport, Status};
use crate::runner::orchestrate::{self, Finished, Results};
use crate::runner::{self, Interrupt};
use crate::session::Session;
use crate::stack::{BuildOptions, McpServerOptions, McpServerState};

/// What to run and where the reports go.
pub struct MutantsOptions {
    pub stack: StackArgs,
    /// Mutant IDs to run (all when empty).
    pub only: Vec<String>,
    pub report_dir: PathBuf,
    pub jobs: usize,
    pub check_timeout: Duration,
    /// The shorter limit of each check under a fault (a stall ends at this limit).
    pub fault_timeout: Duration,
}

/// The mutants `only` names (all when empty); an unknown ID is an error naming the known.
pub fn select(only: &[String]) -> Result<Vec<&'static Mutant>, String> {
    if only.is_empty() {
        return Ok(MUTANTS.iter().collect());
    }
    only.iter()
        .map(|id| {
            MUTANTS.iter().find(|m| m.id == id).ok_or_else(|| {
                let known: Vec<&str> = MUTANTS.iter().map(|m| m.id).collect();
                format!("--only: no mutant {id:?}; mutants are {}", known.join(", "))
            })
        })
        .collect()
}

/// The checks a mutant runs.
fn checks_of(m: &Mutant) -> Vec<Check> {
    let all = catalogue();
    let sel = Selection::parse(m.runs, &all).expect("mutant selections are valid (unit test)");
    all.into_iter().filter(|c| sel.matches(c)).collect()
}

/// Runs the self-test. `Err` when the baseline could not be brought up.
pub async fn run(opts: &MutantsOptions) -> anyhow::Result<MutationReport> {
    let started = Instant::now();
    let mutants = select(&opts.only).map_err(anyhow::Error::msg)?;
    let unkillable =
        unkillable_reasons(&crate::config::fixtures_dir().join("mutation/unkillable.toml"))?;
    let interrupt = Interrupt::install();
    let interposer = Interposer::start().await?;
    crate::http::route_through(interposer.url())?;
    let progress = Arc::new(Progress::new());
    let all = catalogue();
    let base_opts = opts.stack.session_options(needs_of(&all))?;
    let base_dir = opts.report_dir.join("baseline");
    let base = orchestrate::start(&base_opts, progress.clone(), &base_dir, &interrupt).await?;
    let baseline = run_on(&base, &all, opts, opts.check_timeout, &interrupt).await;
    let baseline_statuses = statuses(&baseline);
    let mut outcomes = Vec::new();
    for m in &mutants {
        if interrupt.received().is_some() {
            break;
        }
        progress.println(&format!("mutant {}: {}", m.id, m.title));
        let t = Instant::now();
        let got = match m.defect {
            Defect::Fault { .. } => continue,
            Defect::Keycloak { features_disabled } => {
                keycloak_mutant(m, features_disabled, opts, &interrupt).await
            }
            _ => joined_mutant(&base, m, opts, &interrupt).await,
        };
        outcomes.push(outcome(m, got, &baseline_statuses, t));
    }
    for m in mutants
        .iter()
        .filter(|m| matches!(m.defect, Defect::Fault { .. }))
    {
        if interrupt.received().is_some() {
            break;
        }
        progress.println(&format!("mutant {}: {}", m.id, m.title));
        let t = Instant::now();
        let got = fault_mutant(&base, &interposer, m, opts, &interrupt).await;
        outcomes.push(outcome(m, got, &baseline_statuses, t));
    }
    let base_end = orchestrate::finish(
        &base,
        &results_of(baseline),
        Vec::new(),
        &base_dir,
        interrupt.received(),
        false,
    )
    .await;
    progress.finish();
    let mut report = MutationReport {
        schema_version: 1,
        run_id: base_end.report.run_id.clone(),
        finished_at: base_end.report.finished_at.clone(),
        components: (base_end.report.components.iter())
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        baseline: baseline_statuses,
        mutants: outcomes,
        checks: Vec::new(),
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        problems: base_problems(&base_end),
        coverage_problems: Vec::new(),
    };
    let ids: Vec<&str> = all.iter().map(|c| c.id).collect();
    if opts.only.is_empty() {
        report.cover(&ids, &unkillable);
    }
    if let Some(sig) = interrupt.received() {
        report
            .problems
            .push(format!("interrupted by {sig}: the matrix is partial"));
    }
    report.write(&opts.report_dir)?;
    Ok(report)
}

/// The statuses a mutant run got, or why it did not run.
type Got = Result<BTreeMap<String, Status>, String>;

fn outcome(m: &Mutant, got: Got, baseline: &BTreeMap<String, Status>, t: Instant) -> MutantOutcome {
    let seconds = (t.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    match got {
        Ok(statuses) => MutantOutcome::judge(m, statuses, baseline, seconds),
        Err(why) => MutantOutcome::not_run(m, why),
    }
}

fn statuses(results: &[CheckReport]) -> BTreeMap<String, Status> {
    results.iter().map(|r| (r.id.clone(), r.status)).collect()
}

fn results_of(results: Vec<CheckReport>) -> Results {
    Arc::new(std::sync::Mutex::new(results))
}

/// What fails the baseline's own run: teardown left something, a report not written.
fn base_problems(end: &Finished) -> Vec<String> {
    let mut out: Vec<String> = end.report.problems.clone();
    out.extend(end.write_error.clone());
    if !end.report.teardown.is_clean() {
        out.push(format!(
            "teardown left something behind: {:?}",
            end.report.teardown
        ));
    }
    out
}

/// Runs `checks` on `session` (jobs at a time) unless a signal comes first; with blocks
/// resolved as a report would.
async fn run_on(
    session: &Arc<Session>,
    checks: &[Check],
    opts: &MutantsOptions,
    timeout: Duration,
    interrupt: &Interrupt,
) -> Vec<CheckReport> {
    let results = Results::default();
    let expectations = runner::session_expectations(session);
    let work = runner::run_checks(
        session,
        checks,
        &expectations,
        opts.jobs,
        timeout,
        &results,
        "",
    );
    if let Some(sig) = orchestrate::run_cancellable(&session.progress, interrupt, work).await {
        orchestrate::mark_unfinished(checks, &results, sig);
    }
    let mut out = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    runner::resolve_blocked(&mut out);
    out
}

/// A realm, resource-server or MCP-server mutant: a session joined to the baseline's, on
/// its own realm (the baseline's, patched or renamed), with its own stand-in and MCP
/// server as the defect says.
async fn joined_mutant(
    base: &Arc<Session>,
    m: &Mutant,
    opts: &MutantsOptions,
    interrupt: &Interrupt,
) -> Got {
    let checks = checks_of(m);
    let mut session_opts = opts
        .stack
        .session_options(needs_of(&checks))
        .map_err(|e| format!("{e:#}"))?;
    let name = realm_name(m);
    let mut realm = renamed(&RealmFile::baseline().json, &name);
    match m.defect {
        Defect::Realm(patch) => patch(&mut realm),
        Defect::ResourceServer(leniency) => session_opts.stack.stand_in_leniency = leniency,
        Defect::McpServer { set_env, release } => {
            let version = release.unwrap_or(&session_opts.stack.mcp_server.version);
            let mut server = McpServerOptions::new(version);
            server.extra_env = set_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            session_opts.stack.mcp_server = server;
        }
        Defect::Keycloak { .. } | Defect::Fault { .. } => unreachable!("not a joined mutant"),
    }
    session_opts.realm = RealmFile::parse(&realm.to_string(), &format!("mutant {}", m.id), None)
        .map_err(|e| format!("{e:#}"))?;
    let dir = opts.report_dir.join(m.id);
    let session = match interrupt.guard(base.join(&session_opts, &dir)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("its session did not start: {e}")),
        Err(sig) => return Err(format!("interrupted by {sig}")),
    };
    // A realm Keycloak refused proves nothing about the checks: every one would fail.
    if let Some(why) = session.realm.unusable() {
        orchestrate::finish(&session, &Results::default(), Vec::new(), &dir, None, false).await;
        return Err(format!(
            "its realm {} did not import: {why}",
            session.realm.name
        ));
    }
    let results = run_on(&session, &checks, opts, opts.check_timeout, interrupt).await;
    let got = statuses(&results);
    orchestrate::finish(
        &session,
        &results_of(results),
        Vec::new(),
        &dir,
        None,
        false,
    )
    .await;
    Ok(got)
}

/// A mutant's realm: `m-` and the mutant's ID, short enough for Keycloak (a realm name
/// of 37 characters or more failed to import: "Database operation failed").
fn realm_name(m: &Mutant) -> String {
    let slug: String =
        m.id.trim_start_matches("M-")
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
    let name = format!("m-{slug}");
    name.chars().take(30).collect()
}

/// A Keycloak mutant: a session of its own on a Keycloak built with the defect.
async fn keycloak_mutant(
    m: &Mutant,
    features_disabled: &[&str],
    opts: &MutantsOptions,
    interrupt: &Interrupt,
) -> Got {
    let checks = checks_of(m);
    let mut session_opts = opts
        .stack
        .session_options(needs_of(&checks))
        .map_err(|e| format!("{e:#}"))?;
    // The session's build, less the features the mutant disables.
    let features = (session_opts.stack.keycloak.build.features.iter())
        .filter(|f| !features_disabled.contains(&f.as_str()))
        .cloned()
        .collect();
    session_opts.stack.keycloak.build = BuildOptions {
        features,
        features_disabled: features_disabled.iter().map(|f| (*f).to_owned()).collect(),
    };
    let dir = opts.report_dir.join(m.id);
    let plan = orchestrate::Plan {
        session: &session_opts,
        checks: &checks,
        report_dir: &dir,
        progress: Arc::new(Progress::new()),
    };
    let execute = orchestrate::concurrently(&checks, opts.jobs, opts.check_timeout);
    match orchestrate::run_catalogue(plan, interrupt, execute).await {
        Ok(end) => Ok(end
            .report
            .checks
            .iter()
            .map(|c| (c.id.clone(), c.status))
            .collect()),
        Err(e) => Err(format!("{e}")),
    }
}

/// A fault mutant, on the baseline session: the fault is on only while its checks run.
async fn fault_mutant(
    base: &Arc<Session>,
    interposer: &Interposer,
    m: &Mutant,
    opts: &MutantsOptions,
    interrupt: &Interrupt,
) -> Got {
    let Defect::Fault { component, fault } = m.defect else {
        unreachable!("not a fault mutant")
    };
    let origin = origin_of(base, component)?;
    let checks = checks_of(m);
    interposer.set(&origin, Some(fault));
    let results = run_on(base, &checks, opts, opts.fault_timeout, interrupt).await;
    interposer.set(&origin, None);
    write_side_report(base, &results, &opts.report_dir.join(m.id));
    Ok(statuses(&results))
}

/// Where `component` answers the harness.
fn origin_of(session: &Session, component: Component) -> Result<String, String> {
    let subjects = &session.stack.subjects;
    let url = match component {
        Component::Keycloak => Some(session.stack.keycloak.base_url.clone()),
        Component::McpServer => match &subjects.mcp {
            McpServerState::Running(m) => Some(m.base_url.clone()),
            _ => None,
        },
        Component::ResourceServer => subjects
            .resource_server
            .as_ref()
            .map(|r| r.base_url.clone()),
    };
    let url = url.ok_or_else(|| format!("the baseline session has no {component:?}"))?;
    let u = url::Url::parse(&url).map_err(|e| format!("{url}: {e}"))?;
    Ok(u.origin().ascii_serialization())
}

/// A fault mutant's results as a report of their own (evidence included), beside the
/// joined mutants' (the baseline session's teardown is not theirs to report).
fn write_side_report(session: &Session, results: &[CheckReport], dir: &Path) {
    let report = runner::build_report(session, results.to_vec(), Default::default(), Vec::new());
    if let Err(e) = report
        .write_all(dir)
        .context("writing a fault mutant's report")
    {
        tracing::warn!("{e:#}");
    }
}
