//! The report dir's lock. Two runs writing into one report dir (the default
//! `target/conformance` makes that easy) would leave a mix of both runs' reports, so the
//! second refuses at once, naming the first and what to do instead.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The lock file, inside the report dir; it stays there between runs, unlocked.
const LOCK_FILE: &str = ".mcp-authz-harness.lock";

/// Held for as long as a run may write into its report dir (the kernel releases it when
/// the process dies, however it dies).
#[derive(Debug)]
pub struct ReportDirLock {
    _file: File,
}

/// Why the report dir cannot be used: one line, naming the dir and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the report dir {dir} is in use by {holder}; wait for it to finish, or give this run \
         its own dir with --report-dir DIR"
    )]
    InUse { dir: PathBuf, holder: String },
    #[error("--report-dir {dir}: {why}; pass a directory this user can create and write")]
    Unusable { dir: PathBuf, why: String },
}

impl ReportDirLock {
    /// Creates `dir` if needed and locks it for the run `run_id`, or says who holds it.
    pub fn acquire(dir: &Path, run_id: &str) -> Result<Self, LockError> {
        let unusable = |e: std::io::Error| LockError::Unusable {
            dir: dir.to_owned(),
            why: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(unusable)?;
        let path = dir.join(LOCK_FILE);
        // Not truncated before the lock is ours: the holder's line must stay readable.
        let mut file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(unusable)?;
        if file.try_lock_exclusive().is_err() {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => "another run (it has not written its id yet)".to_owned(),
                h => h.to_owned(),
            };
            return Err(LockError::InUse {
                dir: dir.to_owned(),
                holder,
            });
        }
        file.set_len(0).map_err(unusable)?;
        write!(file, "run {run_id} (pid {})", std::process::id()).map_err(unusable)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_run_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        let first = ReportDirLock::acquire(&reports, "run-a").unwrap();
        let err = ReportDirLock::acquire(&reports, "run-b")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&reports.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("run run-a (pid {})", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--report-dir"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        drop(first);
        ReportDirLock::acquire(&reports, "run-b").expect("free once the first is gone");
    }

    #[test]
    fn an_unusable_dir_names_the_flag() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = ReportDirLock::acquire(&file.path().join("sub"), "r")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--report-dir "), "{err}");
    }
}
