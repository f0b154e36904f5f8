//! Processes of a run: each a child in its own process group, or a container's main
//! process; each carrying the run marker, logging to a file in the run directory, stopped
//! as a group (a container: by the engine, then removed).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::RUN_MARKER_VAR;
use super::containers::container::ManagedContainer;

/// A running process that the run owns: a child (and its process group), or a container.
pub struct ManagedProcess {
    name: String,
    runs: Runs,
    log_path: PathBuf,
    argv: Vec<String>,
    stopped: bool,
}

enum Runs {
    Child { child: Child, pgid: Pid },
    Container(Box<ManagedContainer>),
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
            runs: Runs::Child {
                child,
                pgid: Pid::from_raw(pid as i32),
            },
            log_path: log_path.to_owned(),
            argv,
            stopped: false,
        })
    }

    /// A started container as `name`, logging to `log_path`; `argv` is what the report
    /// shows of how it was started.
    pub fn container(
        name: &str,
        container: ManagedContainer,
        log_path: &Path,
        argv: Vec<String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            runs: Runs::Container(Box::new(container)),
            log_path: log_path.to_owned(),
            argv,
            stopped: false,
        }
    }

    /// The container it is, if it is one.
    pub fn as_container(&self) -> Option<&ManagedContainer> {
        match &self.runs {
            Runs::Container(c) => Some(c),
            Runs::Child { .. } => None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid (a container: its main process's pid on the host, 0 when unknown).
    pub fn pid(&self) -> i32 {
        match &self.runs {
            Runs::Child { pgid, .. } => pgid.as_raw(),
            Runs::Container(c) => c.pid,
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `Some(status)` once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        match &mut self.runs {
            Runs::Child { child, .. } => child.try_wait().ok().flatten(),
            Runs::Container(c) => c.exit_code().map(container_exit_status),
        }
    }

    /// What happened to a process that should be serving, if anything: it exited (how),
    /// or a process of its group is stopped (SIGSTOP). `None` while it runs, and once
    /// [`ManagedProcess::stop`] stopped it on purpose.
    pub fn fault(&mut self) -> Option<String> {
        if self.stopped {
            return None;
        }
        if let Some(status) = self.exit_status() {
            return Some(format!(
                "is no longer running: it {}",
                describe_exit(status)
            ));
        }
        let stopped: Vec<String> = group_members(self.pid())
            .into_iter()
            .filter(|m| m.state == 'T' || m.state == 't')
            .map(|m| format!("{} ({})", m.pid, m.comm))
            .collect();
        match stopped.as_slice() {
            [] => None,
            [one] => Some(format!(
                "does not run: process {one} of its group is stopped (e.g. by SIGSTOP)"
            )),
            many => Some(format!(
                "does not run: processes {} of its group are stopped (e.g. by SIGSTOP)",
                many.join(", ")
            )),
        }
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
        let started = Instant::now();
        let (child, pgid) = match &mut self.runs {
            Runs::Container(c) => return c.stop(grace).await,
            Runs::Child { child, pgid } => (child, *pgid),
        };
        let _ = killpg(pgid, Signal::SIGTERM);
        let stopped = wait_group_empty(child, pgid, grace).await;
        tracing::debug!(name = self.name, elapsed = ?started.elapsed(), stopped, "SIGTERM");
        if !stopped {
            tracing::debug!(name = self.name, "did not stop within {grace:?}; SIGKILL");
            let _ = killpg(pgid, Signal::SIGKILL);
            wait_group_empty(child, pgid, Duration::from_secs(2)).await;
        }
    }
}

async fn wait_group_empty(child: &mut Child, pgid: Pid, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let _ = child.try_wait(); // reap, so the group can become empty
        if killpg(pgid, None).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A container's exit code as a process status: the engine reports a main process killed
/// by signal N as 128+N.
fn container_exit_status(code: i64) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match code {
        129..=191 => std::process::ExitStatus::from_raw((code - 128) as i32),
        _ => std::process::ExitStatus::from_raw(((code & 0xff) as i32) << 8),
    }
}

impl Drop for ManagedProcess {
    /// The safety net: whatever happened, the group does not outlive its handle (a
    /// container's handle removes it as it goes).
    fn drop(&mut self) {
        if let (false, Runs::Child { pgid, .. }) = (self.stopped, &self.runs) {
            let _ = killpg(*pgid, Signal::SIGKILL);
        }
    }
}

/// How a process ended, in words: the signal that killed it, or its status (a shell
/// wrapper that exits with 128+N reports a child killed by signal N).
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let name = |n: i32| {
        Signal::try_from(n)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {n}"))
    };
    match (status.signal(), status.code()) {
        (Some(sig), _) => format!("was killed by {}", name(sig)),
        (None, Some(code)) if code > 128 && code < 128 + 65 => format!(
            "exited with status {code} (what it ran was killed by {})",
            name(code - 128)
        ),
        (None, Some(code)) => format!("exited with status {code}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// A process of a process group, as /proc/<pid>/stat shows it.
#[derive(Debug)]
pub struct GroupMember {
    pub pid: i32,
    pub comm: String,
    /// R, S, D, T (stopped), t (traced), Z, ...
    pub state: char,
}

/// The processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<GroupMember> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (member, group) = parse_stat(pid, &stat)?;
            (group == pgid).then_some(member)
        })
        .collect()
}

/// `pid (comm) state ppid pgrp ...`; the name may hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &str) -> Option<(GroupMember, i32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let _ppid = rest.next()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((GroupMember { pid, comm, state }, pgrp))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_told_in_words() {
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(describe_exit(killed), "was killed by SIGKILL");
        let wrapped = std::process::ExitStatus::from_raw(137 << 8);
        assert_eq!(
            describe_exit(wrapped),
            "exited with status 137 (what it ran was killed by SIGKILL)"
        );
        let plain = std::process::ExitStatus::from_raw(1 << 8);
        assert_eq!(describe_exit(plain), "exited with status 1");
    }

    #[test]
    fn stat_lines_parse_with_odd_names() {
        let (m, pgrp) = parse_stat(42, "42 (a (b) c) T 1 40 40 0 -1").unwrap();
        assert_eq!((m.comm.as_str(), m.state, pgrp), ("a (b) c", 'T', 40));
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn this_process_is_in_its_own_group() {
        let pgid = nix::unistd::getpgrp().as_raw();
        let me = std::process::id() as i32;
        assert!(group_members(pgid).iter().any(|m| m.pid == me));
    }
}
