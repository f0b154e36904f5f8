//! Session-scoped clients: every client a run registers is recorded the moment it exists
//! and deleted through RFC 7592 at teardown, whatever happened before. A failed RFC 7592
//! delete is reported and the client is removed through the admin API instead; that
//! fallback fails the run, because a client the protocol cannot delete is a finding.
//!
//! Keycloak keeps no creation time for clients, so the harness writes it into the
//! `client_name`: `mcp-authz-harness <run id> <RFC 3339 time>`; `sweep` reads it back.

use std::sync::Mutex;

use serde_json::Value;
use time::OffsetDateTime;

use crate::http::Http;
use crate::keycloak::admin::AdminClient;
use crate::oauth::dcr::{self, DcrOutcome, Registration};
use crate::secret::Secret;

/// First word of every client name the harness registers.
pub const CLIENT_NAME_PREFIX: &str = "mcp-authz-harness";

/// The `client_name` for a client registered now by run `run_id`.
pub fn client_name(run_id: &str, at: OffsetDateTime) -> String {
    let ts = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!("{CLIENT_NAME_PREFIX} {run_id} {ts}")
}

/// The run id and creation time encoded in a harness client name, if it is one.
pub fn parse_client_name(name: &str) -> Option<(String, OffsetDateTime)> {
    let mut parts = name.split_whitespace();
    if parts.next()? != CLIENT_NAME_PREFIX {
        return None;
    }
    let run = parts.next()?.to_owned();
    let at = OffsetDateTime::parse(
        parts.next()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some((run, at))
}

#[derive(Clone, Debug)]
struct Entry {
    realm: String,
    client_id: String,
    uri: Option<String>,
    token: Option<Secret>,
    deleted: bool,
}

/// What teardown did with the registered clients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanupReport {
    pub deleted: u32,
    pub deleted_by_admin_fallback: u32,
    pub notes: Vec<String>,
}

/// The registry of clients this run registered.
#[derive(Default)]
pub struct ClientRegistry {
    entries: Mutex<Vec<Entry>>,
    deleted_by_checks: Mutex<u32>,
    /// Registration requests sent whose answer is not recorded yet.
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Marks one registration request as in flight while it lives.
pub(crate) struct InFlight(std::sync::Arc<ClientRegistry>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ClientRegistry {
    pub(crate) fn begin(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Waits (up to `limit`) until no registration request is in flight, so teardown sees
    /// every client that exists. Returns whether it got there.
    pub async fn settle(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a client that now exists (even if its registration response was faulty).
    pub fn record(&self, realm: &str, reg: &Registration) {
        self.lock().push(Entry {
            realm: realm.to_owned(),
            client_id: reg.client_id.clone(),
            uri: reg.registration_client_uri.clone(),
            token: reg.registration_access_token.clone(),
            deleted: false,
        });
    }

    /// The registration access token rotated (RFC 7592 §2.2): keep the new one.
    pub fn rotate(&self, client_id: &str, token: Option<&Secret>) {
        if let Some(e) = self.lock().iter_mut().find(|e| e.client_id == client_id)
            && let Some(t) = token
        {
            e.token = Some(t.clone());
        }
    }

    /// A check deleted the client itself through RFC 7592; it counts as deleted.
    pub fn deleted_by_check(&self, client_id: &str) {
        let mut entries = self.lock();
        if let Some(e) = entries
            .iter_mut()
            .find(|e| e.client_id == client_id && !e.deleted)
        {
            e.deleted = true;
            *self
                .deleted_by_checks
                .lock()
                .unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }

    pub fn registered(&self) -> usize {
        self.lock().len()
    }

    /// Deletes every client still recorded: RFC 7592 first, the admin API when that fails.
    pub async fn delete_all(&self, http: &Http, admin: &AdminClient) -> CleanupReport {
        let mut report = CleanupReport {
            deleted: *self
                .deleted_by_checks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            ..Default::default()
        };
        let pending: Vec<Entry> = self.lock().iter().filter(|e| !e.deleted).cloned().collect();
        // A few at a time: each delete is one round trip to Keycloak, independent of the
        // others.
        use futures::StreamExt;
        let mut outcomes = futures::stream::iter(pending)
            .map(|entry| async move {
                let outcome = match delete_by_protocol(http, &entry).await {
                    Ok(()) => Ok(()),
                    Err(why) => Err((why, delete_by_admin(admin, &entry).await)),
                };
                (entry, outcome)
            })
            .buffer_unordered(DELETES_AT_ONCE);
        while let Some((entry, outcome)) = outcomes.next().await {
            match outcome {
                Ok(()) => report.deleted += 1,
                Err((why, fallback)) => {
                    report.notes.push(format!(
                        "RFC 7592 delete of client {} failed: {why}; deleting it through the admin API",
                        entry.client_id
                    ));
                    match fallback {
                        Ok(()) => report.deleted_by_admin_fallback += 1,
                        Err(e) => report.notes.push(format!(
                            "admin delete of client {} failed too: {e:#}",
                            entry.client_id
                        )),
                    }
                }
            }
            if let Some(e) = self
                .lock()
                .iter_mut()
                .find(|e| e.client_id == entry.client_id)
            {
                e.deleted = true;
            }
        }
        report
    }
}

/// How many registered clients teardown deletes concurrently.
const DELETES_AT_ONCE: usize = 8;

async fn delete_by_protocol(http: &Http, entry: &Entry) -> Result<(), String> {
    let (Some(uri), Some(token)) = (&entry.uri, &entry.token) else {
        return Err("the registration response gave no registration_client_uri or registration_access_token".into());
    };
    match dcr::delete(http, uri, token).await {
        Ok(DcrOutcome::Deleted) => Ok(()),
        Ok(DcrOutcome::Refused(r)) => Err(r.to_string()),
        Ok(other) => Err(format!("unexpected HTTP {}", other.status())),
        Err(e) => Err(format!("{e:#}")),
    }
}

async fn delete_by_admin(admin: &AdminClient, entry: &Entry) -> anyhow::Result<()> {
    let client = admin
        .client_by_client_id(&entry.realm, &entry.client_id)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "client {} not found in realm {}",
                entry.client_id,
                entry.realm
            )
        })?;
    let resp = admin.delete_client(&entry.realm, &client.id).await?;
    anyhow::ensure!(resp.status == 204, "DELETE answered {}", resp.summary());
    Ok(())
}

/// Adds the harness's `client_name` unless the metadata names the client already.
pub fn with_client_name(metadata: &Value, run_id: &str) -> Value {
    let mut m = metadata.clone();
    if let Some(obj) = m.as_object_mut()
        && !obj.contains_key("client_name")
    {
        obj.insert(
            "client_name".into(),
            Value::String(client_name(run_id, OffsetDateTime::now_utc())),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_round_trip_their_run_and_time() {
        let at = time::macros::datetime!(2026-11-26 18:50:00 UTC);
        let name = client_name("20261126T185000Z-ab12", at);
        assert_eq!(
            name,
            "mcp-authz-harness 20261126T185000Z-ab12 2026-11-26T18:50:00Z"
        );
        assert_eq!(
            parse_client_name(&name),
            Some(("20261126T185000Z-ab12".into(), at))
        );
        assert_eq!(parse_client_name("Nextcloud MCP Server (Bearer)"), None);
        assert_eq!(parse_client_name("mcp-authz-harness run not-a-time"), None);
    }

    #[test]
    fn an_explicit_client_name_is_kept() {
        let m = with_client_name(&serde_json::json!({"client_name": "mine"}), "r");
        assert_eq!(m["client_name"], "mine");
        let m = with_client_name(&serde_json::json!({}), "r");
        assert!(
            m["client_name"]
                .as_str()
                .unwrap()
                .starts_with("mcp-authz-harness r ")
        );
    }
}
