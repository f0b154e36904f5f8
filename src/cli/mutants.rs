//! `mutants`: the mutation self-test (see [`crate::mutants`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::StackArgs;
use crate::mutants::{MutantsOptions, run};
use crate::runner::INTERRUPTED;
use crate::runner::orchestrate::StartError;

/// `mutants`' flags.
#[derive(clap::Args)]
pub struct MutantsArgs {
    /// Comma list of mutant IDs to run (e.g. M-RS-ALG-NONE) [default: all; the check
    /// coverage is judged only then]. `--list` shows them.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the mutants (ID, kind, what must fail) and start nothing.
    #[arg(long)]
    pub list: bool,
    /// Where mutation.json, mutation.md and each mutant's reports go.
    #[arg(long, default_value = "target/mutation")]
    pub report_dir: PathBuf,
    /// How many checks run at once.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_JOBS", default_value_t = 4)]
    pub jobs: usize,
    /// Seconds one check may take.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_CHECK_TIMEOUT", default_value_t = 300)]
    pub check_timeout: u64,
    /// Seconds one check may take under a fault (a stalled component ends there).
    #[arg(long, default_value_t = 60)]
    pub fault_timeout: u64,
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn mutants(args: MutantsArgs) -> u8 {
    if args.list {
        for m in crate::mutants::MUTANTS {
            let must = if m.kills.is_empty() {
                format!("none of {} may pass", m.runs)
            } else {
                format!("must fail: {}", m.kills.join(", "))
            };
            println!("{:<28} {:<15} {}; {must}", m.id, m.kind(), m.title);
        }
        return 0;
    }
    if let Err(e) = crate::mutants::run_select(&args.only) {
        eprintln!("error: {e}");
        return 2;
    }
    let opts = MutantsOptions {
        stack: args.stack,
        only: args.only,
        report_dir: args.report_dir,
        jobs: args.jobs,
        check_timeout: Duration::from_secs(args.check_timeout),
        fault_timeout: Duration::from_secs(args.fault_timeout),
    };
    let report = match run(&opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return match e.downcast_ref::<StartError>() {
                Some(start) => start.exit_code(),
                None => 2,
            };
        }
    };
    println!(
        "mutation self-test: {} of {} mutants killed; reports: {}",
        report.killed(),
        report.mutants.len(),
        opts.report_dir.join("mutation.md").display()
    );
    for m in report.mutants.iter().filter(|m| !m.killed) {
        println!("survived {}: {}", m.id, m.survived_because.join("; "));
    }
    for p in report.problems.iter().chain(&report.coverage_problems) {
        println!("problem: {p}");
    }
    if report
        .problems
        .iter()
        .any(|p| p.starts_with("interrupted by"))
    {
        INTERRUPTED
    } else {
        u8::from(!report.holds())
    }
}
