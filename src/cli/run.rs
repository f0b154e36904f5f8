//! `run`: the catalogue against a fresh stack, with reports and the contract's exit codes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::RunArgs;
use super::signals::{INTERRUPTED, next_signal};
use crate::checks::{Check, Selection, catalogue, needs_of};
use crate::progress::Progress;
use crate::report::{CheckReport, Status};
use crate::runner;
use crate::session::Session;

pub async fn run(args: RunArgs) -> u8 {
    let all = catalogue();
    if args.list {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for c in &all {
            // A closed pipe (`run --list | head`) ends the listing quietly.
            if writeln!(out, "{}: test", c.trial_name()).is_err() {
                break;
            }
        }
        return 0;
    }
    let selected = match select(&args, &all) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let opts = match args.stack.session_options(needs_of(&selected)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let progress = Arc::new(Progress::new());
    let session = tokio::select! {
        s = Session::start(&opts, progress.clone(), &args.report_dir) => s,
        sig = next_signal() => {
            eprintln!("{sig} while bringing the stack up; stopped, nothing left behind");
            return INTERRUPTED;
        }
    };
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            progress.finish();
            eprintln!("error: the stack could not be brought up:\n{e}");
            if !e.logs.is_empty() {
                eprintln!(
                    "component logs copied to {}",
                    args.report_dir.join("logs").display()
                );
            }
            return 2;
        }
    };
    let (expectations, mut problems) =
        match runner::load_expectations(&session, &crate::config::expectations_dir(), &all) {
            Ok(ex) => {
                let p = ex.problems.clone();
                (ex, p)
            }
            Err(e) => (Default::default(), vec![format!("{e:#}")]),
        };
    let results = Mutex::new(Vec::<CheckReport>::new());
    let timeout = Duration::from_secs(args.check_timeout);
    let checks = runner::run_checks(
        &session,
        &selected,
        &expectations,
        args.jobs,
        timeout,
        &results,
        "",
    );
    let started = std::time::Instant::now();
    let interrupted = tokio::select! {
        _ = checks => None,
        sig = next_signal() => Some(sig),
    };
    progress.phase_done("checks", started.elapsed());
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(sig) = interrupted {
        progress.println(&format!(
            "{sig}: stopping the checks and tearing down (send it again to abort at once)"
        ));
        problems.push(format!("interrupted by {sig}"));
        let unfinished: Vec<&Check> = selected
            .iter()
            .filter(|c| !results.iter().any(|r| r.id == c.id))
            .collect();
        for c in unfinished {
            results.push(runner::not_run(
                c,
                Status::Skip,
                &format!("not finished: the run was interrupted by {sig}"),
            ));
        }
        let s = session.clone();
        tokio::spawn(async move {
            next_signal().await;
            eprintln!("second signal: aborting teardown; the watchdog removes what is left");
            s.run.abort();
            std::process::exit(i32::from(INTERRUPTED));
        });
    }
    let failed = results.iter().any(|r| r.status.fails_run()) || interrupted.is_some();
    let logs_dir = args.report_dir.join("logs");
    let teardown = session.teardown(failed.then_some(logs_dir.as_path())).await;
    let mut report = runner::build_report(&session, results, teardown, problems);
    progress.finish();
    let kept = session.run.keep.then_some(session.run.dir.as_path());
    if let Err(e) = report.write_and_scan(&args.report_dir, kept) {
        eprintln!("error: {e:#}");
        return 1;
    }
    print!("{}", crate::report::render_terminal(&report));
    println!("reports: {}", args.report_dir.display());
    match (interrupted, report.failed()) {
        (Some(_), _) => INTERRUPTED,
        (None, true) => 1,
        (None, false) => 0,
    }
}

fn select(args: &RunArgs, all: &[Check]) -> Result<Vec<Check>, String> {
    match &args.only {
        None => Ok(all.to_vec()),
        Some(spec) => {
            let sel = Selection::parse(spec, all)?;
            Ok(all.iter().filter(|c| sel.matches(c)).copied().collect())
        }
    }
}
