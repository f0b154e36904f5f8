//! `run`: the catalogue against a fresh stack, with reports and the contract's exit codes.

use std::sync::Arc;
use std::time::Duration;

use super::RunArgs;
use crate::checks::{Check, Selection, catalogue, needs_of, pinning_selection};
use crate::progress::Progress;
use crate::report::dir_lock::ReportDirLock;
use crate::runner::Interrupt;
use crate::runner::orchestrate::{self, Plan};
use crate::session::SessionOptions;

pub async fn run(args: RunArgs) -> u8 {
    execute(args, false).await
}

/// `pin`: the checks that keep a pin, run as `run` runs them, each writing what it
/// observed as its new pin (a pin that still holds is left untouched).
pub async fn pin(args: RunArgs) -> u8 {
    execute(args, true).await
}

async fn execute(args: RunArgs, update_pins: bool) -> u8 {
    let all = catalogue();
    if args.list {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let listed = match update_pins {
            true => pinning_selection(None, &all).unwrap_or_default(),
            false => (all.iter())
                .filter(|c| (args.spec_revision.as_ref()).is_none_or(|r| c.belongs_to(r)))
                .copied()
                .collect(),
        };
        for c in &listed {
            // A closed pipe (`run --list | head`) ends the listing quietly.
            if writeln!(out, "{}: test", c.trial_name()).is_err() {
                break;
            }
        }
        return 0;
    }
    let selected = match select(&args, &all, update_pins) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let run_id = crate::stack::run::new_id();
    let opts = match args.stack.session_options(needs_of(&selected)) {
        Ok(o) => SessionOptions {
            update_pins,
            run_id: Some(run_id.clone()),
            ..o
        },
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    // Before anything starts: a second run on the same report dir stops here.
    let _report_dir = match ReportDirLock::acquire(&args.report_dir, &run_id) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let interrupt = Interrupt::install();
    let plan = Plan {
        session: &opts,
        checks: &selected,
        report_dir: &args.report_dir,
        progress: Arc::new(Progress::new()),
    };
    let timeout = Duration::from_secs(args.check_timeout);
    let execute = orchestrate::concurrently(&selected, args.jobs, timeout);
    let finished = match orchestrate::run_catalogue(plan, &interrupt, execute).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    if let Some(e) = &finished.write_error {
        eprintln!("error: {e}");
    }
    print!("{}", crate::report::render_terminal(&finished.report));
    println!("reports: {}", args.report_dir.display());
    finished.exit_code()
}

fn select(args: &RunArgs, all: &[Check], pins: bool) -> Result<Vec<Check>, String> {
    if pins {
        return pinning_selection(args.only.as_deref(), all);
    }
    let mut chosen: Vec<Check> = match &args.only {
        None => all.to_vec(),
        Some(spec) => {
            let sel = Selection::parse(spec, all)?;
            all.iter().filter(|c| sel.matches(c)).copied().collect()
        }
    };
    if let Some(r) = &args.spec_revision {
        chosen.retain(|c| c.belongs_to(r));
        if chosen.is_empty() {
            return Err(format!(
                "--spec-revision {r}: no selected check belongs to it{}",
                args.only
                    .as_deref()
                    .map(|o| format!(" (with --only {o})"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(chosen)
}
