//! The command line: `run`, `pin`, `up`, `doctor`, `sweep`, `validate-realm`, `mutants`,
//! `repro`, `report merge`, `matrix`, `images build`, `stand-in`.

mod doctor;
mod images;
mod matrix;
mod mutants;
mod report;
mod repro;
mod run;
mod stand_in;
mod sweep;
mod up;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::StackArgs;

#[derive(Parser)]
#[command(
    name = "mcp-authz-harness",
    version,
    about = "OAuth/MCP authorization conformance harness: Keycloak, nextcloud-mcp-server and a resource server, checked live"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring the stack up, run the catalogue, write report.json, report.md and junit.xml.
    Run(RunArgs),
    /// Run the checks that keep a pin (MCP-10, STORAGE-13; narrow with --only) and write
    /// what each observed as its new pin in fixtures/snapshots/; review the diff, commit.
    Pin(RunArgs),
    /// Bring the stack up, write stack.json into the run dir, and stay until Ctrl-C.
    Up(UpArgs),
    /// Say which prerequisites are present and how to install the missing ones.
    Doctor(DoctorArgs),
    /// Delete clients that earlier runs registered and left behind (e.g. after SIGKILL).
    Sweep(SweepArgs),
    /// Lint a realm file (and, unless --static-only, diff it live against the baseline).
    ValidateRealm(validate::ValidateArgs),
    /// The mutation self-test: the catalogue against deliberately broken deployments,
    /// each of which must be caught by the checks it names.
    Mutants(mutants::MutantsArgs),
    /// Reproductions of findings against freshly booted Keycloaks.
    #[command(subcommand)]
    Repro(ReproCommand),
    /// Work on reports already written.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Keycloak versions x MCP server releases: one Keycloak boot per version shared by
    /// every release, a full report per cell, and matrix.json and matrix.md merged.
    Matrix(matrix::MatrixArgs),
    /// Local images for the containers backend, built from images/ with no registry.
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Serve the harness's strict Nextcloud stand-in (not Nextcloud) until SIGTERM or
    /// Ctrl-C, for a deployment the harness does not start (the stand-in image).
    StandIn(stand_in::StandInArgs),
}

/// `repro`'s subcommands.
#[derive(Subcommand)]
pub enum ReproCommand {
    /// Boot Keycloak with Standard Token Exchange (V2), then with Legacy V1, send the same
    /// exchange and impersonation requests to both (V1 before and after granting its
    /// permissions), and print what each answered.
    Impersonation(ImpersonationArgs),
}

/// `repro impersonation`'s flags.
#[derive(clap::Args)]
pub struct ImpersonationArgs {
    /// Keycloak version.
    #[arg(long, env = "KEYCLOAK_VERSION", default_value = crate::config::DEFAULT_KEYCLOAK_VERSION, value_parser = crate::config::version_arg)]
    pub keycloak_version: String,
    /// A Keycloak distribution to use instead of the cache: a zip or an unpacked directory.
    #[arg(long, env = "KEYCLOAK_HOME")]
    pub keycloak_dist: Option<PathBuf>,
    /// Seconds to wait for each Keycloak boot.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_BOOT_TIMEOUT", default_value_t = 180, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub boot_timeout: u64,
    /// Write the raw results as JSON to FILE, and their Markdown rendering next to it
    /// (`results.json` -> `results.md`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Keep the run directories and Keycloak logs after the run; never processes.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_KEEP")]
    pub keep: bool,
}

/// `sweep`'s flags.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Keycloak's base URL (sweeps its clients).
    #[arg(long, env = "KEYCLOAK_URL", value_parser = crate::config::http_url_arg, required_unless_present = "containers")]
    pub keycloak_url: Option<String>,
    /// The realm to sweep.
    #[arg(long, default_value = "nextcloud-mcp")]
    pub realm: String,
    /// The admin user (master realm).
    #[arg(
        long,
        env = "KEYCLOAK_ADMIN_USER",
        required_unless_present = "containers"
    )]
    pub admin_user: Option<String>,
    /// The name of the environment variable holding the admin password.
    #[arg(
        long,
        env = "KEYCLOAK_ADMIN_PASSWORD_ENV",
        required_unless_present = "containers"
    )]
    pub admin_password_env: Option<String>,
    /// Also (or, without --keycloak-url, only) remove the containers runs left on the
    /// Docker engine (label org.mcp-authz-harness.run), older than --older-than.
    #[arg(long)]
    pub containers: bool,
    /// Only clients registered longer ago than this (30m, 0s, 2h, 1d); the default leaves
    /// a concurrent run alone.
    #[arg(long, default_value = "30m")]
    pub older_than: String,
    /// Delete them (without it, only list).
    #[arg(long)]
    pub yes: bool,
}

/// `run`'s flags.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Comma list of areas (REALM, DCR, ...) and check IDs (DCR-03) to run.
    #[arg(long)]
    pub only: Option<String>,
    /// Only the checks of this MCP specification revision (2025-06-18, 2025-11-25,
    /// 2026-07-28); with --only, the checks both select.
    #[arg(long, value_name = "REVISION", value_parser = crate::checks::spec_revision_arg)]
    pub spec_revision: Option<String>,
    /// Where to write the reports.
    #[arg(long, default_value = "target/conformance")]
    pub report_dir: PathBuf,
    /// Print the catalogue (libtest's `--list` format) and start nothing.
    #[arg(long)]
    pub list: bool,
    /// How many checks run at once.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_JOBS", default_value_t = 4, allow_negative_numbers = true, value_parser = at_least_one)]
    pub jobs: usize,
    /// Seconds one check may take.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_CHECK_TIMEOUT", default_value_t = 300, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_timeout: u64,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// `up`'s flags.
#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

/// `doctor`'s flags.
#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The Keycloak version whose JDK requirement to check (and whose images to look for).
    #[arg(long, env = "KEYCLOAK_VERSION", default_value = crate::config::DEFAULT_KEYCLOAK_VERSION, value_parser = crate::config::version_arg)]
    pub keycloak_version: String,
    /// The MCP server release whose image to look for (containers backend).
    #[arg(long, env = "MCP_SERVER_VERSION", default_value = crate::config::DEFAULT_MCP_SERVER_VERSION, value_parser = crate::config::version_arg)]
    pub mcp_server_version: String,
}

/// A count of at least 1 (`--jobs 0` would run nothing and wait for ever).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; give a whole number, at least 1")),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Pin(args) => run::pin(args).await,
            Command::Up(args) => up::up(args).await,
            Command::Doctor(args) => doctor::doctor(&args).await,
            Command::Sweep(args) => sweep::sweep(args).await,
            Command::ValidateRealm(args) => validate::validate(args).await,
            Command::Mutants(args) => mutants::mutants(args).await,
            Command::Repro(ReproCommand::Impersonation(args)) => repro::impersonation(args).await,
            Command::Report(report::ReportCommand::Merge(args)) => report::merge(args),
            Command::Matrix(args) => matrix::matrix(args).await,
            Command::Images(command) => images::images(command).await,
            Command::StandIn(args) => stand_in::stand_in(args).await,
        }
    });
    ExitCode::from(code)
}

/// Logs to stderr; `RUST_LOG` overrides the default: `info`, except the MCP client
/// library's per-session lines (several per MCP check, hundreds per run) at `warn`, and
/// testcontainers' removal-on-drop, which fails for every container the engine already
/// removed (`AutoRemove`): teardown counts the run's containers left itself.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,rmcp=warn,testcontainers::core::containers::async_container=off",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
