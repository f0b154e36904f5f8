//! The loopback redirect listener (RFC 8252 §7.3): where authorization responses land.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::Uri;
use tokio::task::JoinHandle;

use crate::secret::{Secret, SecretKind};

/// One authorization response as the listener received it.
#[derive(Clone, Debug)]
pub struct Callback {
    pub path: String,
    pub code: Option<Secret>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Callback {
    /// The code, or an error describing what came back instead.
    pub fn code(&self) -> anyhow::Result<&Secret> {
        self.code.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "the authorization response carried no code but error={:?} ({:?})",
                self.error,
                self.error_description
            )
        })
    }
}

type Received = Arc<Mutex<Vec<Callback>>>;

/// A listener on 127.0.0.1 with an ephemeral port; every request to it is a callback.
pub struct RedirectListener {
    base: String,
    received: Received,
    task: JoinHandle<()>,
}

impl RedirectListener {
    /// Binds `port` on 127.0.0.1 (0: an ephemeral one).
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                anyhow::anyhow!("binding the redirect listener on 127.0.0.1:{port}: {e}")
            })?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let received: Received = Arc::default();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base,
            received,
            task,
        })
    }

    /// The redirect URI to register and send: `<base>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The callback for `state`, taken out of the list, if it arrived.
    pub fn take(&self, state: &str) -> Option<Callback> {
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        let i = received
            .iter()
            .position(|c| c.state.as_deref() == Some(state))?;
        Some(received.remove(i))
    }

    /// Waits up to `limit` for the callback of `state`.
    pub async fn wait(&self, state: &str, limit: Duration) -> Option<Callback> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.take(state) {
                return Some(c);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl RedirectListener {
    /// Stops listening, freeing the port for another process (`up` hands its redirect
    /// URI to the runs that use its stack).
    pub fn close(&self) {
        self.task.abort();
    }
}

impl Drop for RedirectListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(received): State<Received>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> &'static str {
    let callback = Callback {
        path: uri.path().to_owned(),
        code: q
            .get("code")
            .map(|c| Secret::new(SecretKind::AuthorizationCode, c.clone())),
        state: q.get("state").cloned(),
        iss: q.get("iss").cloned(),
        error: q.get("error").cloned(),
        error_description: q.get("error_description").cloned(),
    };
    received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(callback);
    "mcp-authz-harness received the authorization response; this window can be closed."
}
