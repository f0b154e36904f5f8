//! The run: its id, its private directory, and the watchdog that cleans up after a crash.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use time::OffsetDateTime;

use super::watchdog::Watchdog;

/// One run of the harness. Every process it starts carries `RUN_MARKER_VAR=<id>`; every
/// file it writes (outside the report dir) lives under `dir`.
pub struct RunContext {
    pub id: String,
    pub dir: PathBuf,
    pub keep: bool,
    pub started_at: OffsetDateTime,
    watchdog: Mutex<Option<Watchdog>>,
}

impl RunContext {
    /// Creates the run directory (mode 0700, under the system temp dir) and the watchdog.
    pub fn create(keep: bool) -> anyhow::Result<Self> {
        let started_at = OffsetDateTime::now_utc();
        let id = new_run_id(started_at);
        let dir = std::env::temp_dir().join(format!("mcp-authz-harness-{id}"));
        create_private_dir(&dir)?;
        let watchdog = Watchdog::start(&id, &dir)?;
        Ok(Self {
            id,
            dir,
            keep,
            started_at,
            watchdog: Mutex::new(Some(watchdog)),
        })
    }

    /// A path inside the run directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    /// A fresh subdirectory of the run directory.
    pub fn subdir(&self, rel: &str) -> anyhow::Result<PathBuf> {
        let p = self.path(rel);
        create_private_dir(&p)?;
        Ok(p)
    }

    /// Orderly end, after every process has stopped: removes the run directory unless
    /// `keep`, disarms the watchdog, and returns how many directories were left that
    /// should not have been (0 or 1).
    pub fn finish(&self) -> u32 {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if !self.keep
            && self.dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!("could not remove the run dir {}: {e}", self.dir.display());
        }
        if let Some(w) = watchdog {
            w.disarm();
        }
        u32::from(!self.keep && self.dir.exists())
    }

    /// Hard end (signal path): lets the watchdog kill and remove everything now.
    pub fn abort(&self) {
        if let Some(w) = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            w.trigger();
        }
    }
}

fn new_run_id(at: OffsetDateTime) -> String {
    let stamp = at
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("static format");
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

/// `mkdir -p` with mode 0700 on the leaf.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating the directory {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_sortable_timestamps_with_a_random_tail() {
        let at = time::macros::datetime!(2026-11-26 18:50:00 UTC);
        let id = new_run_id(at);
        assert!(id.starts_with("20261126T185000Z-"), "{id}");
        assert_eq!(id.len(), "20261126T185000Z-".len() + 4);
    }
}
