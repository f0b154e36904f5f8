//! SIGINT and SIGTERM: the first starts an orderly teardown, the second ends it at once.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves at the next SIGINT or SIGTERM; returns the signal's name.
pub async fn next_signal() -> &'static str {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default action (terminate) applies and the watchdog cleans up.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Exit status after a signal: 128 + SIGINT(2).
pub const INTERRUPTED: u8 = 130;
