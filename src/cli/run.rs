//! `run`: the catalogue against a fresh stack, with reports and the contract's exit codes.

use std::sync::Arc;
use std::time::Duration;

use super::RunArgs;
use crate::checks::{Check, Selection, catalogue, needs_of};
use crate::progress::Progress;
use crate::runner::Interrupt;
use crate::runner::orchestrate::{self, Plan};

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

fn select(args: &RunArgs, all: &[Check]) -> Result<Vec<Check>, String> {
    match &args.only {
        None => Ok(all.to_vec()),
        Some(spec) => {
            let sel = Selection::parse(spec, all)?;
            Ok(all.iter().filter(|c| sel.matches(c)).copied().collect())
        }
    }
}
