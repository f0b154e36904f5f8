//! `matrix`: backends × Keycloak versions × MCP server releases in one command, one
//! Keycloak boot per backend and version shared by every release (see
//! [`crate::runner::matrix`]).
//!
//! Exit status: 0 every cell passed and left nothing behind; 1 a cell failed (a check,
//! its teardown, its reports) or the merged report could not be written; 2 invalid input
//! or a Keycloak that did not come up; 130 after a signal.

use std::path::PathBuf;
use std::time::Duration;

use crate::checks::{Selection, catalogue};
use crate::config::{DEFAULT_KEYCLOAK_VERSION, DEFAULT_MCP_SERVER_VERSION, StackArgs};
use crate::report::dir_lock::ReportDirLock;
use crate::runner::Interrupt;
use crate::runner::matrix::{MatrixOptions, MatrixRun};
use crate::stack::Backend;

/// `matrix`'s flags.
#[derive(clap::Args)]
pub struct MatrixArgs {
    /// Comma list of backends (native, containers); each boots its own Keycloak per
    /// version. The containers backend takes its images from --keycloak-image and
    /// --mcp-server-image's environment variables.
    #[arg(long, value_delimiter = ',', default_value = "native", value_parser = backend_arg)]
    pub backends: Vec<Backend>,
    /// Comma list of Keycloak versions; each boots once, shared by every release.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_KEYCLOAK_VERSION, value_parser = crate::config::version_arg)]
    pub keycloak_versions: Vec<String>,
    /// Comma list of `nextcloud-mcp-server` releases from PyPI; each runs against every
    /// Keycloak version with an MCP server instance of its own.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MCP_SERVER_VERSION, value_parser = crate::config::version_arg)]
    pub mcp_server_versions: Vec<String>,
    /// Comma list of areas (REALM, DCR, ...) and check IDs (DCR-03) to run in every cell.
    #[arg(long)]
    pub only: Option<String>,
    /// Where the cells' reports (`<keycloak>-<release>/`, `-<backend>` after it for a
    /// backend other than native) and matrix.json and matrix.md go.
    #[arg(long, default_value = "target/matrix")]
    pub report_dir: PathBuf,
    /// How many checks run at once in each cell.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_JOBS", default_value_t = 4, allow_negative_numbers = true, value_parser = super::at_least_one)]
    pub jobs: usize,
    /// Seconds one check may take.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_CHECK_TIMEOUT", default_value_t = 300, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_timeout: u64,
    /// Run the cells of one Keycloak one after another instead of all at once.
    #[arg(long)]
    pub sequential: bool,
    /// A Keycloak distribution to use instead of the cache (one Keycloak version only).
    #[arg(long, env = "KEYCLOAK_HOME")]
    pub keycloak_dist: Option<PathBuf>,
    /// Seconds to wait for each Keycloak to become ready.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_BOOT_TIMEOUT", default_value_t = 180, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub boot_timeout: u64,
    /// Keep the run directories and component logs (redacted); never processes.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_KEEP")]
    pub keep: bool,
}

pub async fn matrix(args: MatrixArgs) -> u8 {
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // Before anything starts: a second run on the same report dir stops here.
    let _lock = match ReportDirLock::acquire(&opts.report_dir, &crate::stack::run::new_id()) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let interrupt = Interrupt::install();
    let run = crate::runner::matrix::run(&opts, &interrupt).await;
    print_outcome(&opts, &run);
    run.exit_code()
}

/// The options, or a usage error naming the flag.
fn options(args: MatrixArgs) -> Result<MatrixOptions, String> {
    distinct("--backends", &args.backends)?;
    distinct("--keycloak-versions", &args.keycloak_versions)?;
    distinct("--mcp-server-versions", &args.mcp_server_versions)?;
    if args.keycloak_dist.is_some() && args.keycloak_versions.len() > 1 {
        return Err("--keycloak-dist is one distribution: give one --keycloak-versions".into());
    }
    let all = catalogue();
    let checks = match &args.only {
        None => all.clone(),
        Some(spec) => {
            let sel = Selection::parse(spec, &all).map_err(|e| format!("--only: {e}"))?;
            all.iter().filter(|c| sel.matches(c)).copied().collect()
        }
    };
    let mut stack = StackArgs::from_env().map_err(|e| format!("{e:#}"))?;
    stack.keycloak_dist = args.keycloak_dist;
    stack.boot_timeout = args.boot_timeout;
    stack.keep = args.keep;
    Ok(MatrixOptions {
        backends: args.backends,
        keycloak_versions: args.keycloak_versions,
        mcp_server_versions: args.mcp_server_versions,
        stack,
        checks,
        report_dir: args.report_dir,
        jobs: args.jobs,
        check_timeout: Duration::from_secs(args.check_timeout),
        sequential: args.sequential,
    })
}

/// A backend that starts what a cell needs: native or containers (external reaches one
/// deployment, configured against one realm).
fn backend_arg(s: &str) -> Result<Backend, String> {
    match <Backend as clap::ValueEnum>::from_str(s, true)? {
        Backend::External => Err(
            "external reaches one running deployment; a matrix needs a backend that starts \
             each version: native or containers"
                .into(),
        ),
        b => Ok(b),
    }
}

/// A version named twice would be two runs of one cell.
fn distinct<T: PartialEq + std::fmt::Debug>(flag: &str, versions: &[T]) -> Result<(), String> {
    for (i, v) in versions.iter().enumerate() {
        if versions[..i].contains(v) {
            return Err(format!("{flag}: {v:?} is given twice; name each one once"));
        }
    }
    Ok(())
}

fn print_outcome(opts: &MatrixOptions, run: &MatrixRun) {
    for cell in &run.cells {
        let f = &cell.finished;
        if let Some(e) = &f.write_error {
            eprintln!(
                "error: {} / {} / {}: {e}",
                cell.keycloak,
                cell.release,
                cell.backend.name()
            );
        }
        let counts: Vec<String> = (f.report.summary.iter())
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let teardown = match f.report.teardown.is_clean() {
            true => "clean",
            false => "LEFT SOMETHING",
        };
        println!(
            "{} / {} / {}: {}; teardown {teardown}; {}",
            cell.keycloak,
            cell.release,
            cell.backend.name(),
            counts.join(", "),
            cell.dir.display()
        );
    }
    if let Some((keycloak, e)) = &run.not_up {
        eprintln!("error: --keycloak-versions {keycloak}: {e}");
    }
    if let Some(sig) = run.interrupted {
        eprintln!("interrupted by {sig}: the matrix is partial");
    }
    match &run.merge_error {
        Some(e) => eprintln!("error: the matrix report: {e}"),
        None if run.cells.is_empty() => eprintln!("no cell finished: no matrix report written"),
        None => println!(
            "matrix: {}/matrix.json and matrix.md ({} cells, {:.1}s)",
            opts.report_dir.display(),
            run.cells.len(),
            run.seconds
        ),
    }
}
