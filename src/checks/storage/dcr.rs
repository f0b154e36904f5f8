//! A server without a static client registers itself at Keycloak (RFC 7591) and keeps the
//! client in `oauth_clients`. The harness reads that row before anything restarts the
//! instance, decrypts the registration access token, and records the client in the
//! session's registry: teardown deletes it through RFC 7592 with the stored token (which
//! proves the token works) and counts it like every other client.

use std::path::Path;

use anyhow::{Context, ensure};
use tokio::sync::RwLock;

use super::super::{Blocked, CheckCtx, CheckResult, pass};
use crate::oauth::dcr::{self, DcrOutcome, Registration};
use crate::secret::{Secret, SecretKind};
use crate::stack::Instance;
use crate::storage::{Cipher, TokenDb, cipher};

/// The instance's name (its log is `<run>/storage-dcr.log`).
const NAME: &str = "storage-dcr";

/// The DCR instance and its stored client.
pub(crate) struct Dcr {
    /// The instance, when it started (it does not when its registration is refused).
    pub instance: Option<Instance>,
    /// Its stored client as first read, or why there is none.
    pub client: Result<StoredClient, String>,
    /// Its log lines about the registration (redacted), as it first started.
    pub log: Vec<String>,
    /// Readers of its database hold this shared; the restart check holds it exclusively.
    pub lock: RwLock<()>,
}

/// An `oauth_clients` row, with what its encrypted columns decrypt to.
pub(crate) struct StoredClient {
    pub client_id: String,
    pub registration_client_uri: Option<String>,
    pub client_secret_expires_at: Option<i64>,
    pub stored_secret: Vec<u8>,
    pub stored_token: Vec<u8>,
    pub secret: Result<Secret, String>,
    pub token: Result<Secret, String>,
}

impl StoredClient {
    fn read(db: &TokenDb, cipher: &Cipher) -> anyhow::Result<Option<StoredClient>> {
        let rows = db.rows("oauth_clients")?;
        ensure!(
            rows.len() <= 1,
            "{} rows in oauth_clients (the server keeps one client)",
            rows.len()
        );
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let bytes = |c: &str| {
            row.get(c)
                .and_then(|v| v.bytes())
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        };
        let (stored_secret, stored_token) = (
            bytes("encrypted_client_secret"),
            bytes("encrypted_registration_access_token"),
        );
        let open = |stored: &[u8], kind| {
            cipher
                .decrypt(stored)
                .map_err(|e| e.to_string())
                .and_then(|p| String::from_utf8(p).map_err(|_| "not UTF-8".to_owned()))
                .map(|p| Secret::new(kind, p))
        };
        Ok(Some(StoredClient {
            client_id: row.text("client_id").unwrap_or_default().to_owned(),
            registration_client_uri: row.text("registration_client_uri").map(str::to_owned),
            client_secret_expires_at: row.get("client_secret_expires_at").and_then(|c| c.as_i64()),
            secret: open(&stored_secret, SecretKind::ClientSecret),
            token: open(&stored_token, SecretKind::RegistrationToken),
            stored_secret,
            stored_token,
        }))
    }

    fn registration(&self) -> Registration {
        Registration {
            client_id: self.client_id.clone(),
            client_secret: self.secret.as_ref().ok().cloned(),
            registration_access_token: self.token.as_ref().ok().cloned(),
            registration_client_uri: self.registration_client_uri.clone(),
            metadata: serde_json::json!({}),
        }
    }

    fn describe(&self) -> String {
        format!(
            "client {} (client_secret_expires_at {:?}; secret {}; registration access token {}; registration_client_uri {:?})",
            self.client_id,
            self.client_secret_expires_at,
            cipher::describe(&self.stored_secret),
            cipher::describe(&self.stored_token),
            self.registration_client_uri
        )
    }
}

impl Dcr {
    /// The session's instance without a static client, started (once) and its stored
    /// client read.
    pub(super) async fn get(ctx: &CheckCtx) -> std::sync::Arc<Dcr> {
        ctx.session.memo.get_or_init(|| start(ctx)).await
    }
}

/// Starts the instance without a static client and reads what it registered.
async fn start(ctx: &CheckCtx) -> Dcr {
    ctx.step(format!(
        "start instance {NAME:?} without a static client: it registers itself at Keycloak by anonymous DCR"
    ));
    let unavailable = |why: String, log: Vec<String>| Dcr {
        instance: None,
        client: Err(why),
        log,
        lock: RwLock::new(()),
    };
    let instances = match ctx.instances() {
        Ok(i) => i,
        Err(e) => return unavailable(format!("{e:#}"), Vec::new()),
    };
    let started = instances.start(NAME, |s| s.static_client = false).await;
    let log = instances.log_path(NAME);
    let lines = registration_lines(&log);
    ctx.note(format!("its log about registration:\n{}", lines.join("\n")));
    let instance = match started {
        Ok(i) => i,
        Err(why) => {
            let why = refusal(&lines).unwrap_or(format!("it did not start: {why}"));
            return unavailable(why, lines);
        }
    };
    let client = match read_client(&instance) {
        Ok(Some(c)) => {
            ctx.session.clients.record(
                &ctx.realm().map(|r| r.name.clone()).unwrap_or_default(),
                &c.registration(),
            );
            ctx.note(format!("stored: {}", c.describe()));
            Ok(c)
        }
        Ok(None) => Err("it started, and oauth_clients is empty".to_owned()),
        Err(e) => Err(format!("its stored client could not be read: {e:#}")),
    };
    if client.is_err() {
        record_from_admin(ctx, &instance).await;
    }
    Dcr {
        instance: Some(instance),
        client,
        log: lines,
        lock: RwLock::new(()),
    }
}

fn read_client(instance: &Instance) -> anyhow::Result<Option<StoredClient>> {
    let db = TokenDb::open(&instance.db_path)?;
    StoredClient::read(&db, &Cipher::new(&instance.fernet_key)?)
}

/// A client the server registered that the harness cannot read from the database is
/// still recorded (found by its redirect URI), so teardown removes it, through the admin
/// API when RFC 7592 is impossible: that fallback fails the run, as it should.
async fn record_from_admin(ctx: &CheckCtx, instance: &Instance) {
    let Ok(realm) = ctx.realm() else { return };
    let Ok(clients) = ctx.admin().clients(&realm.name).await else {
        return;
    };
    let callback = format!("{}/oauth/callback", instance.base_url);
    for c in clients.into_iter().filter(|c| {
        c.extra["redirectUris"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u == callback.as_str()))
    }) {
        ctx.note(format!(
            "recording {} (found through the admin API) for teardown",
            c.client_id
        ));
        ctx.session.clients.record(
            &realm.name,
            &Registration {
                client_id: c.client_id,
                client_secret: None,
                registration_access_token: None,
                registration_client_uri: None,
                metadata: serde_json::json!({}),
            },
        );
    }
}

/// The log lines about the server's own registration (redacted).
fn registration_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("regist") || l.contains("response:") || l.contains("oauth client")
        })
        .map(crate::secret::redact)
        .collect()
}

/// Keycloak's refusal as the server logged it: `HTTP <status>` and the response body.
fn refusal(lines: &[String]) -> Option<String> {
    let status = lines.iter().find_map(|l| {
        l.split_once("Failed to register client: ")
            .map(|(_, s)| s.trim().to_owned())
    })?;
    let body = lines
        .iter()
        .find_map(|l| l.split_once("Response: ").map(|(_, b)| b.trim().to_owned()))
        .unwrap_or_default();
    Some(format!(
        "Keycloak refused its registration: {status} {body}"
    ))
}

/// The DCR instance's stored client; without one the check is blocked by STORAGE-10.
async fn registered(ctx: &CheckCtx) -> anyhow::Result<std::sync::Arc<Dcr>> {
    let dcr = Dcr::get(ctx).await;
    match &dcr.client {
        Ok(_) => Ok(dcr),
        Err(why) => Err(Blocked {
            by: "STORAGE-10",
            why: format!("the instance without a static client holds no registered client ({why})"),
        }
        .into()),
    }
}

/// STORAGE-10: without a static client the server registers itself.
pub(super) async fn registers(ctx: &CheckCtx) -> CheckResult {
    let dcr = Dcr::get(ctx).await;
    ctx.step("the instance without a static client, as it started");
    ctx.note(format!(
        "its log about registration:\n{}",
        dcr.log.join("\n")
    ));
    let client = dcr
        .client
        .as_ref()
        .map_err(|why| anyhow::anyhow!("the server did not register itself: {why}"))?;
    let realm = &ctx.realm()?.name;
    let at_keycloak = ctx
        .admin()
        .client_by_client_id(realm, &client.client_id)
        .await?
        .with_context(|| format!("Keycloak has no client {}", client.client_id))?;
    pass(format!(
        "registered {} at Keycloak (name {:?}); stored: {}",
        client.client_id,
        at_keycloak.name.unwrap_or_default(),
        client.describe()
    ))
}

/// STORAGE-11: the stored client secret and registration access token are encrypted, and
/// decrypt to what Keycloak issued.
pub(super) async fn clients_encrypted(ctx: &CheckCtx) -> CheckResult {
    let dcr = registered(ctx).await?;
    let _reading = dcr.lock.read().await;
    let c = dcr.client.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    ctx.step("the stored client secret and registration access token");
    ctx.note(c.describe());
    for (what, stored, plain) in [
        ("client secret", &c.stored_secret, &c.secret),
        ("registration access token", &c.stored_token, &c.token),
    ] {
        ensure!(
            cipher::is_fernet_token(stored),
            "the stored {what} is not a Fernet token: {}",
            cipher::describe(stored)
        );
        let plain = plain.as_ref().map_err(|e| {
            anyhow::anyhow!("the stored {what} does not decrypt with the run's key: {e}")
        })?;
        ensure!(
            stored.as_slice() != plain.expose().as_bytes(),
            "the stored {what} is its plaintext"
        );
    }
    ctx.step("the decrypted secret is the one Keycloak holds (admin API, not recorded)");
    let realm = &ctx.realm()?.name;
    let rep = ctx
        .session
        .admin
        .client_by_client_id(realm, &c.client_id)
        .await?
        .with_context(|| format!("Keycloak has no client {}", c.client_id))?;
    let held = ctx
        .session
        .admin
        .get_json(&format!("/realms/{realm}/clients/{}/client-secret", rep.id))
        .await?;
    let secret = c.secret.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        held["value"].as_str() == Some(secret.expose()),
        "the decrypted client secret is not the one Keycloak holds for {}",
        c.client_id
    );
    ctx.step("read the client (RFC 7592 §2.1) with the decrypted registration access token");
    let (uri, token) = (
        c.registration_client_uri
            .as_deref()
            .context("no registration_client_uri stored")?,
        c.token.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let read = match dcr::read(ctx.http(), uri, token).await? {
        DcrOutcome::Client { registration, .. } => registration,
        other => anyhow::bail!(
            "the stored registration access token does not read the client: HTTP {}",
            other.status()
        ),
    };
    if let Some(t) = &read.registration_access_token
        && t != token
    {
        ctx.note("Keycloak answered with another registration access token; teardown uses it");
        ctx.session.clients.rotate(&c.client_id, Some(t));
    }
    pass(format!(
        "client secret and registration access token stored as Fernet tokens; the secret is Keycloak's, the token reads the client (RFC 7592); teardown deletes {} with it",
        c.client_id
    ))
}

/// STORAGE-12: a restart keeps the registered client (`client_secret_expires_at: 0`
/// means it never expires, RFC 7591 §3.2.1), so no client is left orphaned at Keycloak.
pub(super) async fn restart_keeps_client(ctx: &CheckCtx) -> CheckResult {
    let dcr = registered(ctx).await?;
    let _exclusive = dcr.lock.write().await;
    let old = dcr.client.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let instance = dcr.instance.as_ref().context("no instance")?;
    let instances = ctx.instances()?;
    ctx.step(format!(
        "restart {NAME} (SIGTERM, then the same port, database and key)"
    ));
    let log = instances.log_path(NAME);
    let before = registration_lines(&log).len();
    let restarted = instances.restart(instance, None).await;
    let lines: Vec<String> = registration_lines(&log).split_off(before);
    ctx.note(format!(
        "its log about the client since the restart:\n{}",
        lines.join("\n")
    ));
    let restarted = restarted.map_err(|e| anyhow::anyhow!("the restart failed: {e}"))?;
    let new = read_client(&restarted)?;
    let Some(new) = new else {
        anyhow::bail!(
            "after the restart oauth_clients is empty (the old client {} was dropped)",
            old.client_id
        );
    };
    if new.client_id == old.client_id {
        return pass(format!(
            "the restarted server kept client {}",
            old.client_id
        ));
    }
    ctx.session
        .clients
        .record(&ctx.realm()?.name, &new.registration());
    let orphan = ctx
        .admin()
        .client_by_client_id(&ctx.realm()?.name, &old.client_id)
        .await?
        .is_some();
    anyhow::bail!(
        "on restart the server dropped its stored client {} (client_secret_expires_at {:?} taken as expired) and registered {}; {}",
        old.client_id,
        old.client_secret_expires_at,
        new.client_id,
        if orphan {
            format!(
                "{} is left orphaned at Keycloak (teardown deletes both with their stored tokens)",
                old.client_id
            )
        } else {
            format!("{} no longer exists at Keycloak", old.client_id)
        }
    )
}

#[cfg(test)]
#[path = "dcr_tests.rs"]
mod tests;
