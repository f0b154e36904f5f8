//! The catalogue under `cargo test`: one session, every check a trial.
//!
//! `main` owns the session: it brings up only what the selected trials need, runs them
//! through libtest-mimic (names `<ID> <title>`, so `cargo test --test conformance -- DCR-`
//! works), tears down explicitly, writes the reports into `target/conformance`, and
//! returns libtest's exit code (or 1 when teardown left something behind).
//!
//! Settings come from the environment (see README): KEYCLOAK_VERSION, KEYCLOAK_HOME,
//! MCP_AUTHZ_HARNESS_BACKEND, ...

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Conclusion, Failed, Trial};
use mcp_authz_harness::checks::{Check, catalogue, needs_of};
use mcp_authz_harness::config::StackArgs;
use mcp_authz_harness::expectations::Expectations;
use mcp_authz_harness::progress::Progress;
use mcp_authz_harness::report::Status;
use mcp_authz_harness::report::dir_lock::ReportDirLock;
use mcp_authz_harness::runner::orchestrate::{self, Plan, Results};
use mcp_authz_harness::runner::{self, INTERRUPTED, Interrupt};
use mcp_authz_harness::session::{Session, SessionOptions};
use mcp_authz_harness::stack::Backend;

fn main() -> ExitCode {
    mcp_authz_harness::cli::init_tracing();
    let args = Arguments::from_args();
    let all = catalogue();
    if args.list {
        let trials = all
            .iter()
            .map(|c| Trial::test(c.trial_name(), || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let selected: Vec<Check> = all
        .iter()
        .filter(|c| !args.is_filtered_out(&Trial::test(c.trial_name(), || Ok(()))))
        .copied()
        .collect();
    if selected.is_empty() {
        return libtest_mimic::run(&args, Vec::new()).exit_code();
    }
    let settings = match StackArgs::from_env() {
        Ok(s) => s,
        Err(e) => return fail_early(&format!("{e:#}")),
    };
    if std::env::var_os("NEXTEST").is_some() && settings.backend != Backend::External {
        return fail_early(
            "cargo-nextest runs each trial in its own process, which would boot Keycloak once per check. \
             Run the catalogue as one process with `cargo test --test conformance`, exclude it from nextest \
             (`cargo nextest run -E 'not binary(conformance)'`), or point it at a running stack with \
             MCP_AUTHZ_HARNESS_BACKEND=external (see `mcp-authz-harness up`).",
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let report_dir = std::env::var_os("MCP_AUTHZ_HARNESS_REPORT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance")
        });
    let run_id = mcp_authz_harness::stack::run::new_id();
    let opts = match settings.session_options(needs_of(&selected)) {
        Ok(o) => SessionOptions {
            run_id: Some(run_id.clone()),
            ..o
        },
        Err(e) => return fail_early(&format!("{e:#}")),
    };
    // A second catalogue run on the same report dir stops here, before anything starts.
    let _report_dir_lock = match ReportDirLock::acquire(&report_dir, &run_id) {
        Ok(lock) => lock,
        Err(e) => return fail_early(&e.to_string()),
    };
    let conclusion: Arc<Mutex<Option<Conclusion>>> = Arc::default();
    let finished = runtime.block_on(async {
        let interrupt = Interrupt::install();
        let plan = Plan {
            session: &opts,
            checks: &selected,
            report_dir: &report_dir,
            progress: Arc::new(Progress::new()),
        };
        let handle = tokio::runtime::Handle::current();
        let conclusion = conclusion.clone();
        let execute = move |session: Arc<Session>, expectations: Arc<Expectations>, results| async move {
            let trials = all
                .iter()
                .map(|check| trial(*check, &handle, &session, &expectations, &results))
                .collect();
            // libtest-mimic blocks its thread; the runtime keeps serving the checks.
            let run = tokio::task::spawn_blocking(move || libtest_mimic::run(&args, trials));
            if let Ok(c) = run.await {
                *conclusion.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
            }
        };
        orchestrate::run_catalogue(plan, &interrupt, execute).await
    });
    let finished = match finished {
        Ok(f) => f,
        Err(e) => return fail_early(&e.to_string()),
    };
    if let Some(e) = &finished.write_error {
        eprintln!("error: {e}");
    }
    print_run_summary(&finished.report, &report_dir);
    if finished.interrupted.is_some() {
        // libtest's threads may still be in a check: leave without waiting for them.
        std::process::exit(i32::from(INTERRUPTED));
    }
    let conclusion = conclusion.lock().unwrap_or_else(|e| e.into_inner()).take();
    match conclusion {
        Some(c) if c.has_failed() => c.exit_code(),
        Some(_) if finished.exit_code() == 0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// One trial: runs the check on the session's runtime and maps the final status to
/// libtest's (xfail passes, skip and blocked are ignored with their reason, fail and
/// xpass fail). A block found invalid after the run fails the run's exit status.
fn trial(
    check: Check,
    handle: &tokio::runtime::Handle,
    session: &Arc<Session>,
    expectations: &Arc<Expectations>,
    results: &Results,
) -> Trial {
    let (handle, session, expectations, results) = (
        handle.clone(),
        session.clone(),
        expectations.clone(),
        results.clone(),
    );
    Trial::ignorable_test(check.trial_name(), move || {
        let timeout = Duration::from_secs(
            std::env::var("MCP_AUTHZ_HARNESS_CHECK_TIMEOUT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(300),
        );
        let report = handle.block_on(runner::run_check(&session, check, &expectations, timeout));
        let (status, detail) = (report.status, report.detail.clone());
        results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(report);
        match status {
            Status::Pass => Ok(Completion::Completed),
            Status::Xfail => {
                eprintln!(
                    "{}: expected failure: {}",
                    check.id,
                    detail.lines().next().unwrap_or_default()
                );
                Ok(Completion::Completed)
            }
            Status::Skip | Status::Blocked => Ok(Completion::ignored_with(detail)),
            Status::Fail | Status::Xpass => {
                Err(Failed::from(format!("{}: {detail}", status.name())))
            }
        }
    })
}

fn print_run_summary(report: &mcp_authz_harness::Report, dir: &std::path::Path) {
    let s = &report.summary;
    let t = &report.teardown;
    println!(
        "conformance: {} pass, {} fail, {} skip, {} xfail, {} xpass, {} blocked; teardown: {} processes, {} clients, {} dirs left; reports in {}",
        s["pass"],
        s["fail"],
        s["skip"],
        s["xfail"],
        s["xpass"],
        s["blocked"],
        t.processes_left,
        t.clients_left,
        t.dirs_left,
        dir.display()
    );
    for p in &report.problems {
        println!("problem: {p}");
    }
    for n in &t.notes {
        println!("teardown: {n}");
    }
}

fn fail_early(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
