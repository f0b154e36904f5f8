//! `report merge`: one matrix report from the report.json files of separate runs.

use std::path::PathBuf;

use crate::report::matrix::{merge, merged::MatrixReport};

/// `report`'s subcommands.
#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Merge the report.json files of separate runs (perhaps made on separate machines)
    /// into one matrix: a column per Keycloak version x MCP server release x backend, a
    /// row per check. Writes matrix.json and matrix.md. Exit status 0 when written, 2
    /// when an input is not a report.json or two inputs are the same cell, 1 when the
    /// output cannot be written.
    Merge(MergeArgs),
}

/// `report merge`'s flags.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// report.json files, or directories searched (recursively) for files of that name.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub inputs: Vec<PathBuf>,
    /// Where to write matrix.json and matrix.md.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn merge(args: MergeArgs) -> u8 {
    let cells = match merge::load(&args.inputs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = MatrixReport::new(cells);
    if let Err(e) = report.write(&args.out) {
        eprintln!("error: {e:#}");
        return 1;
    }
    println!(
        "merged {} runs ({} checks) into {}/matrix.json and matrix.md",
        report.cells.len(),
        report.checks.len(),
        args.out.display()
    );
    0
}
