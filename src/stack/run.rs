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
    /// Held while the run lives (the kernel drops it when the process dies, however it
    /// dies): `sweep` leaves the clients of a run whose lock is held alone.
    _alive: std::fs::File,
}

impl RunContext {
    /// Creates the run directory (mode 0700, under the system temp dir) and the watchdog.
    pub fn create(keep: bool) -> anyhow::Result<Self> {
        Self::create_as(new_id(), keep)
    }

    /// As [`create`](Self::create), for an id the caller chose first (with [`new_id`]).
    pub fn create_as(id: String, keep: bool) -> anyhow::Result<Self> {
        let started_at = OffsetDateTime::now_utc();
        let dir = run_dir_of(&id);
        create_private_dir(&dir)?;
        let alive = hold_alive_lock(&dir)?;
        let watchdog = Watchdog::start(&id, &dir)?;
        Ok(Self {
            id,
            dir,
            keep,
            started_at,
            watchdog: Mutex::new(Some(watchdog)),
            _alive: alive,
        })
    }

    /// A path inside the run directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    /// Whether the run directory's filesystem is full (under 1 MiB left), in words: what
    /// then fails to write (a browser profile, a token database, a log) rarely says so.
    pub fn disk_fault(&self) -> Option<String> {
        let st = nix::sys::statvfs::statvfs(&self.dir).ok()?;
        let free = st.blocks_available() as u64 * st.fragment_size() as u64;
        (free < 1 << 20).then(|| {
            format!(
                "the run dir {} is on a full filesystem ({} KiB free)",
                self.dir.display(),
                free / 1024
            )
        })
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

/// A fresh run id: the UTC time, sortable, and a random tail.
pub fn new_id() -> String {
    new_run_id(OffsetDateTime::now_utc())
}

/// Where the run `id` keeps its files on this machine.
fn run_dir_of(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mcp-authz-harness-{id}"))
}

const ALIVE_LOCK: &str = "run.lock";

/// Locks `<dir>/run.lock` for the life of the process and writes its pid there.
fn hold_alive_lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    use fs2::FileExt;
    use std::io::Write;
    let path = dir.join(ALIVE_LOCK);
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.try_lock_exclusive()
        .with_context(|| format!("locking {}", path.display()))?;
    write!(f, "pid {}", std::process::id())?;
    Ok(f)
}

/// `Some("pid N")` when the run `id` is under way on this machine (its lock is held);
/// `None` when it ended, died, or never ran here (another machine, another TMPDIR).
pub fn running_here(id: &str) -> Option<String> {
    use fs2::FileExt;
    let path = run_dir_of(id).join(ALIVE_LOCK);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        // A run dir we may not read belongs to another user's run: assume it lives.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some("of another user".to_owned());
        }
        Err(_) => return None,
    };
    if FileExt::try_lock_shared(&f).is_ok() {
        let _ = FileExt::unlock(&f);
        return None;
    }
    let holder = std::fs::read_to_string(&path).unwrap_or_default();
    Some(holder.trim().to_owned())
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

    #[test]
    fn a_run_is_running_here_while_its_context_lives() {
        let run = RunContext::create(false).unwrap();
        let holder = running_here(&run.id).expect("the run's own lock is held");
        assert_eq!(holder, format!("pid {}", std::process::id()));
        let id = run.id.clone();
        run.finish();
        drop(run);
        assert_eq!(running_here(&id), None);
        assert_eq!(running_here("19700101T000000Z-0000"), None);
    }
}
