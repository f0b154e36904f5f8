//! Readiness: named conditions polled under one deadline.
//!
//! When the deadline passes the error says which condition was still pending, what the
//! last probe saw, how long it waited, and the last lines of the component's log.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::process::ManagedProcess;
use crate::http::Http;
use crate::progress::Progress;

/// A probe: `Ok(())` when the condition holds, `Err(observation)` while it does not.
pub type Probe<'a> =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> + Send + 'a>;

/// One named readiness condition.
pub struct Condition<'a> {
    pub name: String,
    pub probe: Probe<'a>,
}

impl<'a> Condition<'a> {
    pub fn new<F, Fut>(name: impl Into<String>, mut probe: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'a,
        Fut: Future<Output = Result<(), String>> + Send + 'a,
    {
        Self {
            name: name.into(),
            probe: Box::new(move || Box::pin(probe())),
        }
    }

    /// `GET <url> answers 200`: the one HTTP probe every component's readiness uses.
    pub fn http_ok(http: &'a Http, what: &str, url: String) -> Self {
        Self::new(format!("GET {what} answers 200"), move || {
            let url = url.clone();
            async move {
                match http.get(&url).send().await {
                    Ok(r) if r.status == 200 => Ok(()),
                    Ok(r) => Err(format!("GET {url}: HTTP {}", r.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
    }
}

/// Why a component did not become ready.
#[derive(Debug, thiserror::Error)]
#[error(
    "{component} was not ready after {waited_s}s: {reason}\n  pending: {pending}\n  last observation: {observed}\n  log: {log}\n--- last {tail_lines} log lines ---\n{log_tail}\n---"
)]
pub struct NotReady {
    pub component: String,
    pub reason: String,
    pub pending: String,
    pub observed: String,
    pub waited_s: u64,
    pub log: String,
    pub log_path: Option<PathBuf>,
    pub tail_lines: usize,
    pub log_tail: String,
}

const TAIL_LINES: usize = 40;

/// Waits until every condition holds, in order, within `timeout`. Fails early when
/// `process` exits.
pub async fn wait_ready(
    component: &str,
    timeout: Duration,
    mut process: Option<&mut ManagedProcess>,
    conditions: Vec<Condition<'_>>,
    progress: &Progress,
) -> Result<Duration, NotReady> {
    let started = Instant::now();
    let deadline = started + timeout;
    for mut cond in conditions {
        let mut observed = String::from("(not probed yet)");
        loop {
            if let Some(p) = process.as_deref_mut()
                && let Some(status) = p.exit_status()
            {
                return Err(not_ready(
                    component,
                    process.as_deref(),
                    started,
                    &cond.name,
                    observed,
                    format!("the process exited ({status})"),
                ));
            }
            match (cond.probe)().await {
                Ok(()) => break,
                Err(seen) => observed = seen,
            }
            if Instant::now() >= deadline {
                return Err(not_ready(
                    component,
                    process.as_deref(),
                    started,
                    &cond.name,
                    observed,
                    format!("timed out after {}s", timeout.as_secs()),
                ));
            }
            progress.tick(&format!(
                "waiting for {component}: {} ({}s of {}s)",
                cond.name,
                started.elapsed().as_secs(),
                timeout.as_secs()
            ));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(started.elapsed())
}

fn not_ready(
    component: &str,
    process: Option<&ManagedProcess>,
    started: Instant,
    pending: &str,
    observed: String,
    reason: String,
) -> NotReady {
    let (log, log_path, log_tail) = match process {
        Some(p) => (
            p.log_path().display().to_string(),
            Some(p.log_path().to_owned()),
            p.log_tail(TAIL_LINES),
        ),
        None => (
            "(no log: not started by the harness)".into(),
            None,
            String::new(),
        ),
    };
    NotReady {
        component: component.to_owned(),
        reason,
        pending: pending.to_owned(),
        observed: crate::secret::redact(&observed),
        waited_s: started.elapsed().as_secs(),
        log,
        log_path,
        tail_lines: TAIL_LINES,
        log_tail,
    }
}
