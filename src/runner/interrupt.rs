//! SIGINT and SIGTERM, handled one way for every command: the first cancels what runs
//! (the caller tears down in order and reports what it has), the second exits at once
//! with status 130 and leaves the kill to the watchdog, which notices the harness's death
//! (its pipe closes) and removes every process and directory of the run.

use std::sync::OnceLock;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// Exit status after a signal: 128 + SIGINT(2).
pub const INTERRUPTED: u8 = 130;

/// The process's signal handler, installed once; clones share it.
#[derive(Clone)]
pub struct Interrupt {
    received: watch::Receiver<Option<&'static str>>,
}

static INSTALLED: OnceLock<Interrupt> = OnceLock::new();

impl Interrupt {
    /// The handler, installed on first use (inside a tokio runtime).
    pub fn install() -> Interrupt {
        INSTALLED
            .get_or_init(|| {
                let (tx, rx) = watch::channel(None);
                tokio::spawn(handle_signals(tx));
                Interrupt { received: rx }
            })
            .clone()
    }

    /// Resolves at the first SIGINT or SIGTERM (at once when one already came), with
    /// the signal's name.
    pub async fn cancelled(&self) -> &'static str {
        let mut rx = self.received.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or("signal"),
            // The handler is gone (no signal support): nothing will ever cancel.
            Err(_) => std::future::pending().await,
        }
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<&'static str> {
        *self.received.borrow()
    }

    /// Runs `work` unless a signal comes first: `Err(signal name)` then.
    pub async fn guard<T>(&self, work: impl Future<Output = T>) -> Result<T, &'static str> {
        tokio::select! {
            out = work => Ok(out),
            sig = self.cancelled() => Err(sig),
        }
    }
}

async fn handle_signals(tx: watch::Sender<Option<&'static str>>) {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default action (terminate) applies and the watchdog cleans up.
        return;
    };
    let first = next(&mut int, &mut term).await;
    eprintln!("{first}: stopping and tearing down (send it again to abort at once)");
    let _ = tx.send(Some(first));
    let second = next(&mut int, &mut term).await;
    eprintln!("{second} again: aborting; the watchdog removes what is left");
    std::process::exit(i32::from(INTERRUPTED));
}

async fn next(int: &mut Signal, term: &mut Signal) -> &'static str {
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
