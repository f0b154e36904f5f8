//! The version matrix in one command: backends × Keycloak versions × MCP server
//! releases. Each Keycloak version boots once per backend; its first release runs on the built-in realm in the
//! session that owns the stack, every further release in a session joined to it, on the
//! baseline realm under another name, with an MCP server instance of its own release.
//! Each cell writes a full report into `<report dir>/<keycloak>-<release>/` (native) or
//! `<keycloak>-<release>-<backend>/`; the cells
//! are then merged into `matrix.json` and `matrix.md` (see [`crate::report::matrix`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Interrupt;
use super::orchestrate::{self, Finished, StartError};
use crate::checks::{Check, needs_of};
use crate::config::StackArgs;
use crate::keycloak::realm::RealmFile;
use crate::progress::Progress;
use crate::report::matrix::merge;
use crate::report::matrix::merged::MatrixReport;
use crate::session::{Joining, Session, SessionOptions};
use crate::stack::Backend;

/// What the matrix runs and where its reports go.
pub struct MatrixOptions {
    /// Native, containers, or both: each boots its own Keycloak per version.
    pub backends: Vec<Backend>,
    pub keycloak_versions: Vec<String>,
    pub mcp_server_versions: Vec<String>,
    /// Distribution, boot timeout, images, `--keep`; the backend comes from `backends`.
    pub stack: StackArgs,
    pub checks: Vec<Check>,
    pub report_dir: PathBuf,
    pub jobs: usize,
    pub check_timeout: Duration,
    /// Run one cell's checks after another's on each Keycloak instead of all at once.
    pub sequential: bool,
}

/// One cell: where its report went and how its run ended.
pub struct CellRun {
    pub backend: Backend,
    pub keycloak: String,
    pub release: String,
    pub dir: PathBuf,
    pub finished: Finished,
}

/// How the matrix ended.
pub struct MatrixRun {
    pub cells: Vec<CellRun>,
    /// A Keycloak version that did not come up, and why (the matrix stopped there).
    pub not_up: Option<(String, StartError)>,
    pub interrupted: Option<&'static str>,
    /// Writing or reading back the merged report failed.
    pub merge_error: Option<String>,
    pub seconds: f64,
}

impl MatrixRun {
    /// The contract's exit status: 130 after a signal, 2 when a Keycloak did not come up,
    /// 1 when any cell failed (a check, its teardown or its reports) or the merged report
    /// could not be written, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted.is_some() {
            return super::INTERRUPTED;
        }
        if let Some((_, e)) = &self.not_up {
            return e.exit_code();
        }
        let failed = self.cells.iter().any(|c| c.finished.exit_code() != 0);
        u8::from(failed || self.merge_error.is_some())
    }
}

/// The directory of a cell under the report dir: `<keycloak>-<release>`, and
/// `-<backend>` after it for a backend other than native.
pub fn cell_dir(
    report_dir: &std::path::Path,
    backend: Backend,
    keycloak: &str,
    release: &str,
) -> PathBuf {
    match backend {
        Backend::Native => report_dir.join(format!("{keycloak}-{release}")),
        other => report_dir.join(format!("{keycloak}-{release}-{}", other.name())),
    }
}

/// The realm a further release's session imports: the baseline as `nextcloud-mcp-` and
/// the release, dots as dashes (Keycloak refused realm names of 37 characters or more).
pub fn realm_name(release: &str) -> String {
    let slug: String = (release.chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("nextcloud-mcp-{slug}").chars().take(30).collect()
}

/// Runs every backend's Keycloak versions in turn (each its own boot) and merges the cells.
pub async fn run(opts: &MatrixOptions, interrupt: &Interrupt) -> MatrixRun {
    let started = Instant::now();
    let mut out = MatrixRun {
        cells: Vec::new(),
        not_up: None,
        interrupted: None,
        merge_error: None,
        seconds: 0.0,
    };
    let versions =
        (opts.backends.iter()).flat_map(|b| opts.keycloak_versions.iter().map(move |k| (*b, k)));
    for (backend, keycloak) in versions {
        match one_keycloak(opts, backend, keycloak, interrupt).await {
            Ok((cells, interrupted)) => {
                out.cells.extend(cells);
                out.interrupted = interrupted;
            }
            Err(StartError::Interrupted(sig)) => out.interrupted = Some(sig),
            Err(e) => out.not_up = Some((keycloak.clone(), e)),
        }
        if out.interrupted.is_some() || out.not_up.is_some() {
            break;
        }
    }
    out.merge_error = write_matrix(opts, &out.cells).err();
    out.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    out
}

/// `matrix.json` and `matrix.md` from the cells' written `report.json` files.
fn write_matrix(opts: &MatrixOptions, cells: &[CellRun]) -> Result<(), String> {
    let files: Vec<PathBuf> = (cells.iter())
        .filter(|c| c.finished.write_error.is_none())
        .map(|c| c.dir.join("report.json"))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let cells = merge::load(&files).map_err(|e| e.to_string())?;
    (MatrixReport::new(cells).write(&opts.report_dir)).map_err(|e| format!("{e:#}"))
}

/// The options of the session for `release` on `keycloak`: the built-in realm for the
/// first release, the baseline renamed for the others.
fn session_options(
    opts: &MatrixOptions,
    backend: Backend,
    keycloak: &str,
    release: &str,
    first: bool,
) -> anyhow::Result<SessionOptions> {
    let mut args = opts.stack.clone();
    args.backend = backend;
    args.realm = None;
    args.mcp_redirect_uri = None;
    args.keycloak_version = keycloak.to_owned();
    args.mcp_server_version = release.to_owned();
    let mut session = args.session_options(needs_of(&opts.checks))?;
    if !first {
        session.realm = RealmFile::baseline_as(&realm_name(release));
    }
    Ok(session)
}

/// One Keycloak version: its boot shared by every release, each release's checks, each
/// cell's teardown (the joined sessions before the one that owns the stack) and report.
async fn one_keycloak(
    opts: &MatrixOptions,
    backend: Backend,
    keycloak: &str,
    interrupt: &Interrupt,
) -> Result<(Vec<CellRun>, Option<&'static str>), StartError> {
    let releases = &opts.mcp_server_versions;
    let dirs: Vec<PathBuf> = (releases.iter())
        .map(|r| cell_dir(&opts.report_dir, backend, keycloak, r))
        .collect();
    let progress = Arc::new(Progress::new());
    progress.println(&format!(
        "keycloak {keycloak} ({}): {}",
        backend.name(),
        releases.join(", ")
    ));
    let sessions = bring_up(opts, backend, keycloak, &dirs, &progress, interrupt).await;
    let sessions = sessions.inspect_err(|_| progress.finish())?;
    let (results, problems, interrupted) = run_cells(&sessions, opts, interrupt).await;
    let failed = results.iter().any(|r| {
        (r.lock().unwrap_or_else(|e| e.into_inner()).iter()).any(|r| r.status.fails_run())
    });
    let end = |i: usize, problems: Vec<String>| {
        orchestrate::finish(
            &sessions[i],
            &results[i],
            problems,
            &dirs[i],
            interrupted,
            failed,
        )
    };
    let mut problems = problems.into_iter();
    let first_problems = problems.next().unwrap_or_default();
    // The joined sessions first, side by side; then the first one, which stops Keycloak.
    let mut ended =
        futures::future::join_all(problems.enumerate().map(|(i, p)| end(i + 1, p))).await;
    ended.insert(0, end(0, first_problems).await);
    let cells = (ended.into_iter().enumerate())
        .map(|(i, finished)| CellRun {
            backend,
            keycloak: keycloak.to_owned(),
            release: releases[i].clone(),
            dir: dirs[i].clone(),
            finished,
        })
        .collect();
    progress.finish();
    Ok((cells, interrupted))
}

/// Boots Keycloak for the first release's session and deploys every release's session
/// on it at once; a signal or a failure on the way tears down what is up.
async fn bring_up(
    opts: &MatrixOptions,
    backend: Backend,
    keycloak: &str,
    dirs: &[PathBuf],
    progress: &Arc<Progress>,
    interrupt: &Interrupt,
) -> Result<Vec<Arc<Session>>, StartError> {
    let not_up = |e: anyhow::Error| StartError::NotUp {
        error: crate::stack::StackError::new(e),
        logs_dir: dirs[0].join("logs"),
    };
    let all: Vec<SessionOptions> = (opts.mcp_server_versions.iter().enumerate())
        .map(|(i, r)| session_options(opts, backend, keycloak, r, i == 0))
        .collect::<anyhow::Result<_>>()
        .map_err(not_up)?;
    let joining: Vec<Joining> = (all[1..].iter().zip(&dirs[1..]))
        .map(|(opts, report_dir)| Joining { opts, report_dir })
        .collect();
    let up = Session::start_sharing(&all[0], &dirs[0], &joining, progress.clone());
    match interrupt.guard(up).await {
        Ok(Ok(sessions)) => Ok(sessions),
        Ok(Err(error)) => Err(StartError::NotUp {
            error,
            logs_dir: dirs[0].join("logs"),
        }),
        Err(sig) => Err(StartError::Interrupted(sig)),
    }
}

/// Runs the checks on every cell's session (all at once, or one after another), each
/// line of progress labelled with its release.
async fn run_cells(
    sessions: &[Arc<Session>],
    opts: &MatrixOptions,
    interrupt: &Interrupt,
) -> orchestrate::EachResults {
    let labels: Vec<String> = (opts.mcp_server_versions.iter())
        .map(|r| format!("[{r}] "))
        .collect();
    let plan = orchestrate::OnEach {
        checks: &opts.checks,
        jobs: opts.jobs,
        timeout: opts.check_timeout,
        sequential: opts.sequential,
    };
    orchestrate::run_on_each(sessions, &labels, &plan, interrupt).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn further_releases_get_short_realm_names_and_cells_their_own_dirs() {
        assert_eq!(realm_name("0.202.1"), "nextcloud-mcp-0-202-1");
        assert!(realm_name("0.202.1-rc.1+build.12345678").len() <= 30);
        assert_eq!(
            cell_dir(
                std::path::Path::new("out"),
                Backend::Native,
                "26.4.7",
                "0.65.3"
            ),
            PathBuf::from("out/26.4.7-0.65.3")
        );
        assert_eq!(
            cell_dir(
                std::path::Path::new("out"),
                Backend::Containers,
                "26.4.7",
                "0.65.3"
            ),
            PathBuf::from("out/26.4.7-0.65.3-containers")
        );
    }
}
