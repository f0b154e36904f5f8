//! The watchdog: a tiny process that outlives the harness just long enough to clean up.
//!
//! The Linux parent-death signal reaches direct children only, and only when the thread
//! that forked them exits, which in a tokio runtime is any idle worker. So instead every
//! child carries the run marker in its environment, and a `sh` script holds the read end
//! of a pipe whose write end only the harness has. When the harness dies (panic, SIGKILL,
//! anything) the pipe closes, the script wakes up, kills every process whose environment
//! carries the marker (grandchildren such as the JVM under `kc.sh` or Chromium under
//! ChromeDriver included, and the processes of the run's containers, which the engine then
//! removes), removes the run's containers by label where a `docker` CLI is at hand (a
//! container whose processes it may not signal), and removes the run directory. An orderly teardown writes
//! `disarm` first, so `--keep` keeps its directory.
//!
//! The script runs in its own process group, so a terminal's Ctrl-C reaches only the
//! harness, which then tears down in order while Keycloak is still there to answer.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::Context;

use super::RUN_MARKER_VAR;

const SCRIPT: &str = r#"
marker="$1"; dir="$2"; label="$3"
while IFS= read -r line; do
  [ "$line" = disarm ] && exit 0
done
kill_marked() {
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    if tr '\0' '\n' < "$env" 2>/dev/null | grep -qxF "$marker"; then
      kill -KILL "$pid" 2>/dev/null
    fi
  done
}
kill_marked
if command -v docker >/dev/null 2>&1; then
  docker ps -aq --filter "label=$label" 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1
fi
sleep 1; kill_marked
[ -n "$dir" ] && rm -rf -- "$dir"
exit 0
"#;

/// The harness's end of the watchdog: dropping it (or dying) arms the cleanup.
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog for the run `run_id`, which owns `run_dir`.
    pub fn start(run_id: &str, run_dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        let marker = format!("{RUN_MARKER_VAR}={run_id}");
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("mcp-authz-harness-watchdog")
            .arg(&marker)
            .arg(run_dir)
            .arg(format!("{}={run_id}", super::containers::engine::RUN_LABEL))
            // The watchdog must not carry the marker, or it would kill itself first.
            .env_remove(RUN_MARKER_VAR)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the watchdog (/bin/sh)")?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    /// Orderly end: the harness cleaned up itself; the watchdog exits without acting.
    pub fn disarm(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"disarm\n");
        }
        let _ = self.child.wait();
    }

    /// Makes the watchdog act now, as if the harness had died, and waits for it.
    pub fn trigger(mut self) {
        drop(self.pipe.take());
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the pipe arms the cleanup; the script finishes on its own.
        drop(self.pipe.take());
    }
}
