//! Progress on long waits, and the time of each phase.
//!
//! On a terminal a spinner shows what is being waited for; under `CI=true` or without a
//! TTY the same information goes to the log at most every 15 seconds, so CI output stays
//! readable and still shows that something is happening.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spinner or periodic log line; cheap to share by reference.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
    /// Phase name and seconds, in the order phases ended; a repeated phase adds up.
    phases: Mutex<Vec<(String, f64)>>,
}

const QUIET_INTERVAL: Duration = Duration::from_secs(15);

impl Progress {
    /// A spinner when stderr is a terminal and `CI` is not `true`; log lines otherwise.
    pub fn new() -> Self {
        let interactive = std::io::stderr().is_terminal()
            && std::env::var("CI").map(|v| v != "true").unwrap_or(true);
        Self::with_spinner(interactive)
    }

    pub fn with_spinner(interactive: bool) -> Self {
        let bar = interactive.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            last_line: Mutex::new(None),
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Shows `message` now (spinner) or at most every 15 s (log).
    pub fn tick(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= QUIET_INTERVAL) {
                    *last = Some(Instant::now());
                    tracing::info!("{message}");
                }
            }
        }
    }

    /// Prints a line above the spinner (or logs it).
    pub fn println(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => tracing::info!("{message}"),
        }
    }

    /// Records that phase `name` took `elapsed`, and says so.
    pub fn phase_done(&self, name: &str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        match phases.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s += secs,
            None => phases.push((name.to_owned(), secs)),
        }
        drop(phases);
        self.println(&format!("phase {name}: {:.1}s", elapsed.as_secs_f64()));
    }

    /// Runs `fut` as phase `name`, recording its time whatever its result.
    pub async fn phase<T>(&self, name: &str, fut: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        self.tick(name);
        let out = fut.await;
        self.phase_done(name, started.elapsed());
        out
    }

    /// Phase name to seconds, in the order phases ended.
    pub fn phases(&self) -> Vec<(String, f64)> {
        self.phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
