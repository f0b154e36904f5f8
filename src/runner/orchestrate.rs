//! One orchestration for every command that brings a stack up: start the session (a
//! signal stops the bring-up), run checks (a signal stops them, and the unfinished ones
//! become skips saying so), tear down, build the report, write it and scan it for secrets.
//! `run` and the `cargo test` binary use [`run_catalogue`]; `up` and the live half of
//! `validate-realm` use its parts ([`start`], [`run_cancellable`], [`finish`]).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::interrupt::{INTERRUPTED, Interrupt};
use crate::checks::Check;
use crate::expectations::Expectations;
use crate::progress::Progress;
use crate::report::{CheckReport, Report, Status};
use crate::session::{Session, SessionOptions};
use crate::stack::StackError;

/// Results as they arrive: a run stopped half way keeps what finished.
pub type Results = Arc<Mutex<Vec<CheckReport>>>;

/// Why a session did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0} while bringing the stack up; stopped, nothing left behind")]
    Interrupted(&'static str),
    #[error("the stack could not be brought up:\n{error}{}", logs_note(.error, .logs_dir))]
    NotUp {
        error: StackError,
        logs_dir: std::path::PathBuf,
    },
}

impl StartError {
    /// The contract's exit status: 130 after a signal, 2 when Keycloak did not come up.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Interrupted(_) => INTERRUPTED,
            StartError::NotUp { .. } => 2,
        }
    }
}

fn logs_note(e: &StackError, dir: &Path) -> String {
    if e.logs.is_empty() {
        String::new()
    } else {
        format!("\ncomponent logs copied to {}", dir.display())
    }
}

/// Starts a session unless a signal comes first (then what was started is gone).
pub async fn start(
    opts: &SessionOptions,
    progress: Arc<Progress>,
    report_dir: &Path,
    interrupt: &Interrupt,
) -> Result<Arc<Session>, StartError> {
    let started = interrupt
        .guard(Session::start(opts, progress, report_dir))
        .await
        .map_err(StartError::Interrupted)?;
    started.map_err(|error| StartError::NotUp {
        error,
        logs_dir: report_dir.join("logs"),
    })
}

/// Runs `work` (the checks, pushing into their results) as phase `checks`, unless a
/// signal comes first: then its name.
pub async fn run_cancellable<T>(
    progress: &Progress,
    interrupt: &Interrupt,
    work: impl Future<Output = T>,
) -> Option<&'static str> {
    let started = Instant::now();
    let interrupted = interrupt.guard(work).await.err();
    progress.phase_done("checks", started.elapsed());
    interrupted
}

/// Each of `checks` without a result gets a skip saying the run was interrupted by `sig`.
pub fn mark_unfinished(checks: &[Check], results: &Results, sig: &str) {
    let why = format!("not finished: the run was interrupted by {sig}");
    let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
    let unfinished: Vec<CheckReport> = checks
        .iter()
        .filter(|c| !results.iter().any(|r| r.id == c.id))
        .map(|c| super::not_run(c, Status::Skip, &why))
        .collect();
    results.extend(unfinished);
}

/// How a session's run ended.
pub struct Finished {
    pub report: Report,
    pub interrupted: Option<&'static str>,
    /// Writing or scanning the reports failed (a secret in clear fails the run).
    pub write_error: Option<String>,
}

impl Finished {
    /// The contract's exit status: 130 after a signal; 1 when a check failed or passed
    /// unexpectedly, teardown left something, or the reports could not be written.
    pub fn exit_code(&self) -> u8 {
        match (self.interrupted, &self.write_error, self.report.failed()) {
            (Some(_), _, _) => INTERRUPTED,
            (None, Some(_), _) | (None, None, true) => 1,
            (None, None, false) => 0,
        }
    }
}

/// Tears the session down (copying component logs into the report dir when anything
/// failed here, or `failed_elsewhere` in a session sharing the stack), builds its report
/// and writes it into `report_dir`.
pub async fn finish(
    session: &Session,
    results: &Results,
    mut problems: Vec<String>,
    report_dir: &Path,
    interrupted: Option<&'static str>,
    failed_elsewhere: bool,
) -> Finished {
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(sig) = interrupted {
        problems.push(format!("interrupted by {sig}"));
    }
    let failed =
        failed_elsewhere || interrupted.is_some() || results.iter().any(|r| r.status.fails_run());
    let logs_dir = report_dir.join("logs");
    let teardown = session.teardown(failed.then_some(logs_dir.as_path())).await;
    let mut report = super::build_report(session, results, teardown, problems);
    let kept = session.run.keep.then_some(session.run.dir.as_path());
    let write_error = report
        .write_and_scan(report_dir, kept)
        .err()
        .map(|e| format!("{e:#}"));
    Finished {
        report,
        interrupted,
        write_error,
    }
}

/// What one catalogue run brings up, runs and writes.
pub struct Plan<'a> {
    pub session: &'a SessionOptions,
    pub checks: &'a [Check],
    pub report_dir: &'a Path,
    pub progress: Arc<Progress>,
}

/// The whole shape for one session: start, load the expectations of what came up,
/// `execute` the checks (pushing into the results), tear down, report.
pub async fn run_catalogue<F, Fut>(
    plan: Plan<'_>,
    interrupt: &Interrupt,
    execute: F,
) -> Result<Finished, StartError>
where
    F: FnOnce(Arc<Session>, Arc<Expectations>, Results) -> Fut,
    Fut: Future<Output = ()>,
{
    let session = start(
        plan.session,
        plan.progress.clone(),
        plan.report_dir,
        interrupt,
    )
    .await;
    let session = session.inspect_err(|_| plan.progress.finish())?;
    let expectations = super::session_expectations(&session);
    let problems = expectations.problems.clone();
    let results = Results::default();
    let work = execute(session.clone(), Arc::new(expectations), results.clone());
    let interrupted = run_cancellable(&plan.progress, interrupt, work).await;
    if let Some(sig) = interrupted {
        mark_unfinished(plan.checks, &results, sig);
    }
    let finished = finish(
        &session,
        &results,
        problems,
        plan.report_dir,
        interrupted,
        false,
    )
    .await;
    plan.progress.finish();
    Ok(finished)
}

/// The usual executor: every check on the session, `jobs` at a time, each within
/// `timeout`, with a progress line per result.
pub fn concurrently(
    checks: &[Check],
    jobs: usize,
    timeout: Duration,
) -> impl FnOnce(
    Arc<Session>,
    Arc<Expectations>,
    Results,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let checks = checks.to_vec();
    move |session, expectations, results| {
        Box::pin(async move {
            super::run_checks(
                &session,
                &checks,
                &expectations,
                jobs,
                timeout,
                &results,
                "",
            )
            .await;
        })
    }
}

/// How the same checks run on several sessions sharing one stack.
pub struct OnEach<'a> {
    pub checks: &'a [Check],
    pub jobs: usize,
    pub timeout: Duration,
    /// One session after another instead of all at once.
    pub sequential: bool,
}

/// What [`run_on_each`] returns per session (results, expectation problems) and the
/// signal that stopped it, if one did.
pub type EachResults = (Vec<Results>, Vec<Vec<String>>, Option<&'static str>);

/// Runs `plan.checks` on every session, each line of progress prefixed with its label;
/// on a signal the unfinished ones become skips saying so. The live diff of
/// `validate-realm` and `matrix` both run this way.
pub async fn run_on_each(
    sessions: &[Arc<Session>],
    labels: &[String],
    plan: &OnEach<'_>,
    interrupt: &Interrupt,
) -> EachResults {
    let expectations: Vec<_> = sessions
        .iter()
        .map(|s| super::session_expectations(s))
        .collect();
    let results: Vec<Results> = sessions.iter().map(|_| Results::default()).collect();
    let one = |i: usize| {
        super::run_checks(
            &sessions[i],
            plan.checks,
            &expectations[i],
            plan.jobs,
            plan.timeout,
            &results[i],
            &labels[i],
        )
    };
    let work = async {
        if plan.sequential {
            for i in 0..sessions.len() {
                one(i).await;
            }
        } else {
            futures::future::join_all((0..sessions.len()).map(one)).await;
        }
    };
    let interrupted = run_cancellable(&sessions[0].progress, interrupt, work).await;
    if let Some(sig) = interrupted {
        for results in &results {
            mark_unfinished(plan.checks, results, sig);
        }
    }
    let problems = expectations.into_iter().map(|e| e.problems).collect();
    (results, problems, interrupted)
}
