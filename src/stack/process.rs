//! Child processes of a run: each in its own process group, carrying the run marker,
//! logging to a file in the run directory, stopped as a group.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::RUN_MARKER_VAR;

/// A running child process (and its process group) that the run owns.
pub struct ManagedProcess {
    name: String,
    child: Child,
    pgid: Pid,
    log_path: PathBuf,
    argv: Vec<String>,
    stopped: bool,
}

impl ManagedProcess {
    /// Spawns `cmd` as `name` with the run marker, in a new process group, with stdout and
    /// stderr appended to `log_path`.
    pub fn spawn(
        name: &str,
        run_id: &str,
        mut cmd: Command,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening the log file {}", log_path.display()))?;
        let std_cmd = cmd.as_std();
        let argv: Vec<String> = std::iter::once(std_cmd.get_program())
            .chain(std_cmd.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        cmd.env(RUN_MARKER_VAR, run_id)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {}", argv.join(" ")))?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited before its pid could be read"))?;
        tracing::debug!(name, pid, "started {}", argv.join(" "));
        Ok(Self {
            name: name.to_owned(),
            child,
            pgid: Pid::from_raw(pid as i32),
            log_path: log_path.to_owned(),
            argv,
            stopped: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> i32 {
        self.pgid.as_raw()
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `Some(status)` once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the log, redacted.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace`. Returns once the group is
    /// empty or a further second has passed after SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if !self.wait_group_empty(grace).await {
            tracing::debug!(name = self.name, "did not stop within {grace:?}; SIGKILL");
            let _ = killpg(self.pgid, Signal::SIGKILL);
            self.wait_group_empty(Duration::from_secs(2)).await;
        }
    }

    async fn wait_group_empty(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let _ = self.child.try_wait(); // reap, so the group can become empty
            if killpg(self.pgid, None).is_err() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ManagedProcess {
    /// The safety net: whatever happened, the group does not outlive its handle.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// The last `lines` lines of a log file, redacted; a note when it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            crate::secret::redact(&tail.join("\n"))
        }
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

/// Processes whose environment carries `run_id`'s marker: `(pid, command line)`.
pub fn processes_with_marker(run_id: &str) -> Vec<(i32, String)> {
    let marker = format!("{RUN_MARKER_VAR}={run_id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
                .unwrap_or(false)
        })
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmdline.trim().to_owned())
        })
        .collect()
}

/// Kills every process carrying `run_id`'s marker; returns how many were found.
pub fn kill_marked(run_id: &str) -> usize {
    let found = processes_with_marker(run_id);
    for (pid, _) in &found {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    found.len()
}
