//! What the stand-in's handlers share.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::accounts::Accounts;
use super::bearer::BearerValidator;
use super::log::RequestLog;
use super::login_flow::LoginFlows;
use super::notes::NoteStore;

pub(crate) struct StandInState {
    /// `http://127.0.0.1:PORT`, what Nextcloud calls its own URL in Login Flow answers.
    pub(crate) base_url: String,
    pub(crate) bearer: BearerValidator,
    pub(crate) accounts: Mutex<Accounts>,
    pub(crate) flows: Mutex<LoginFlows>,
    pub(crate) notes: Mutex<NoteStore>,
    pub(crate) log: RequestLog,
}

impl StandInState {
    pub(crate) fn new(base_url: String, bearer: BearerValidator, flow_ttl: Duration) -> Self {
        Self {
            base_url,
            bearer,
            accounts: Mutex::new(Accounts::default()),
            flows: Mutex::new(LoginFlows::new(flow_ttl)),
            notes: Mutex::new(NoteStore::default()),
            log: RequestLog::default(),
        }
    }
}

/// Locks `m`, ignoring poisoning: the stand-in's data stays usable after a panicking
/// handler (each handler leaves it consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
