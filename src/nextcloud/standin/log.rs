//! The stand-in's request log: every request it received, with nothing secret in it.
//!
//! Bearer tokens appear only as [`crate::secret::fingerprint`]s, Basic credentials only
//! as their user name, and paths pass through [`crate::secret::redact`] (the login token
//! of a Login Flow v2 URL is registered as a secret when it is made).

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How a request tried to authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthKind {
    /// No `Authorization` header the stand-in understands.
    None,
    /// `Authorization: Bearer <token>` that is not an app password (a JWT, valid or not).
    Bearer { fingerprint: String },
    /// `Authorization: Basic`, with the login name it gave (valid or not).
    Basic { user: String },
    /// `Authorization: Bearer <app password>`: Nextcloud's own token login.
    BearerAppPassword { user: String },
}

/// One request the stand-in received, redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query, redacted.
    pub path: String,
    pub auth: AuthKind,
    /// The Nextcloud user id the credentials resolved to, if any (even when a CSRF or
    /// CORS rule then refused the request: `status` tells).
    pub user: Option<String>,
    pub status: u16,
    /// Whether the request carried `OCS-APIRequest: true`.
    pub ocs_api_request: bool,
    /// Why a bearer token logged no one in (user_oidc's validation, redacted), when one
    /// was sent and refused. A real Nextcloud keeps this to itself: it answers 401/997.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// Append-only, shared.
#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RequestLog {
    pub(crate) fn record(&self, request: RecordedRequest) {
        self.lock().push(request);
    }

    /// Every request so far, in order.
    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
