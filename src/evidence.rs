//! Evidence: what a check did and saw, as named steps of HTTP exchanges and notes.
//!
//! Every HTTP call the harness makes goes through [`crate::http::Http`], which records into
//! an [`Evidence`] already redacted, so reports never need to redact again.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One HTTP request and its response (or the failure to get one), redacted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// A named group of exchanges and notes ("register a client", "read it back").
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Step {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub exchanges: Vec<Exchange>,
}

/// A shared, append-only log of steps. Cloning shares the log.
#[derive(Clone, Default, Debug)]
pub struct Evidence {
    steps: Arc<Mutex<Vec<Step>>>,
}

impl Evidence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a new step; later exchanges and notes go into it.
    pub fn step(&self, name: impl Into<String>) {
        self.lock().push(Step {
            name: name.into(),
            notes: Vec::new(),
            exchanges: Vec::new(),
        });
    }

    /// Adds a note (redacted) to the current step.
    pub fn note(&self, text: impl AsRef<str>) {
        let text = crate::secret::redact(text.as_ref());
        self.current(|s| s.notes.push(text));
    }

    pub fn record(&self, exchange: Exchange) {
        self.current(|s| s.exchanges.push(exchange));
    }

    pub fn steps(&self) -> Vec<Step> {
        self.lock().clone()
    }

    fn current(&self, f: impl FnOnce(&mut Step)) {
        let mut steps = self.lock();
        if steps.is_empty() {
            steps.push(Step {
                name: "(unnamed)".into(),
                notes: Vec::new(),
                exchanges: Vec::new(),
            });
        }
        f(steps.last_mut().expect("a step exists"));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Step>> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner())
    }
}
