//! What each provisioning flow leaves in the lab's database, and whether revocation takes
//! it away again.

use anyhow::{Context, ensure};
use serde_json::json;

use super::super::{CheckCtx, CheckResult, pass};
use super::Lab;
use super::flows::{FLOW2_USER, LOGIN_CHECK_TOOL, first_line, tool_message, user_token};
use crate::keycloak::realm::MCP_SERVER_CLIENT;
use crate::mcp::client::{McpClient, McpClientOptions};
use crate::oauth::{jwt, token};
use crate::secret::{Secret, SecretKind};
use crate::storage::scan::{Matcher, needles_without_headers};
use crate::storage::{Cipher, TokenDb, cipher, files_of};

/// The tool that revokes background access (0.202.1 naming; its scope is `openid`).
const REVOKE_TOOL: &str = "revoke_nextcloud_access";

/// The one row of `table` whose `user_id` is `sub`, and its encrypted column decrypted.
fn stored_for(
    db: &TokenDb,
    cipher: &Cipher,
    table: &str,
    column: &str,
    sub: &str,
    kind: SecretKind,
) -> anyhow::Result<(crate::storage::Row, Secret)> {
    let rows = db.rows_where(table, "user_id", sub)?;
    let row = rows.into_iter().next().with_context(|| {
        let keys: Vec<String> = db
            .rows(table)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.text("user_id").map(str::to_owned))
            .collect();
        format!("no {table} row under user_id {sub} (rows are under {keys:?})")
    })?;
    let stored = row
        .get(column)
        .and_then(|c| c.bytes())
        .with_context(|| format!("{table}.{column} is empty"))?
        .to_vec();
    ensure!(
        cipher::is_fernet_token(&stored),
        "{table}.{column} is not a Fernet token: {}",
        cipher::describe(&stored)
    );
    let plain = cipher.decrypt(&stored).map_err(|e| {
        anyhow::anyhow!("{table}.{column} does not decrypt with the run's key: {e}")
    })?;
    let plain = String::from_utf8(plain).context("the decrypted value is not UTF-8")?;
    ensure!(
        stored != plain.as_bytes(),
        "{table}.{column} holds its plaintext"
    );
    Ok((row, Secret::new(kind, plain)))
}

/// Whether Keycloak still honours a stored refresh token, found without using it (a
/// refresh grant would rotate it away, `revokeRefreshToken` being on).
struct Liveness {
    /// RFC 7662 introspection by the server's own client.
    introspected_active: bool,
    /// Whether the offline session the token names (`sid`) still exists for the server's
    /// client (admin API).
    session_alive: bool,
}

impl Liveness {
    /// Keycloak 26.6.2 and later answer an introspection `active: false` when the caller
    /// is not in the token's `aud` (the fix of CVE-2026-37979), and a refresh token's
    /// `aud` is the realm itself: no client can introspect it. The offline session the
    /// token belongs to is then the evidence.
    fn is_live(&self) -> bool {
        self.introspected_active || self.session_alive
    }

    fn describe(&self) -> String {
        let why = if !self.introspected_active && self.session_alive {
            " (Keycloak introspects only tokens whose aud names the caller; a refresh token's aud is the realm)"
        } else {
            ""
        };
        format!(
            "introspection says {}{why}, and its offline session {}",
            if self.introspected_active {
                "active"
            } else {
                "inactive"
            },
            if self.session_alive {
                "is alive at Keycloak"
            } else {
                "is gone"
            }
        )
    }
}

async fn liveness(ctx: &CheckCtx, token: &Secret) -> anyhow::Result<Liveness> {
    ctx.step(
        "ask Keycloak about the stored token: introspection (RFC 7662) as the server's client",
    );
    let meta = ctx.discovery().await?;
    let endpoint = meta
        .introspection_endpoint
        .as_deref()
        .context("discovery has no introspection_endpoint")?;
    let secret = ctx.client_secret(MCP_SERVER_CLIENT)?;
    let (introspected_active, _) =
        token::introspect(ctx.http(), endpoint, MCP_SERVER_CLIENT, &secret, token).await?;
    ctx.step("and the offline session it names, through the admin API");
    let (_, claims) = jwt::peek(token.expose())?;
    let (sub, sid) = (
        claims["sub"].as_str().unwrap_or_default(),
        claims["sid"].as_str().unwrap_or_default(),
    );
    let realm = &ctx.realm()?.name;
    let admin = ctx.admin();
    let client = admin
        .client_by_client_id(realm, MCP_SERVER_CLIENT)
        .await?
        .with_context(|| format!("no client {MCP_SERVER_CLIENT} in the realm"))?;
    let sessions = admin
        .get_json(&format!(
            "/realms/{realm}/users/{sub}/offline-sessions/{}",
            client.id
        ))
        .await?;
    let session_alive = sessions
        .as_array()
        .is_some_and(|all| all.iter().any(|s| s["id"] == sid));
    let l = Liveness {
        introspected_active,
        session_alive,
    };
    ctx.note(l.describe());
    Ok(l)
}

/// STORAGE-03.
pub(super) async fn flow2_stored(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    let (_held, f) = lab.flow2(ctx).await?;
    ensure!(
        f.second_answer.trim() == "yes",
        "after Flow 2, {LOGIN_CHECK_TOOL} still does not see {} as logged in: {:?}",
        f.user,
        first_line(&f.second_answer)
    );
    ctx.step(format!("{}'s row in refresh_tokens", f.user));
    let (row, rt) = stored_for(
        &lab.db()?,
        &lab.cipher()?,
        "refresh_tokens",
        "encrypted_token",
        &f.sub,
        SecretKind::RefreshToken,
    )?;
    ctx.note(format!(
        "flow_type {:?}, token_audience {:?}, scopes {:?}; encrypted_token: {}",
        row.text("flow_type"),
        row.text("token_audience"),
        row.text("scopes"),
        cipher::describe(
            row.get("encrypted_token")
                .and_then(|c| c.bytes())
                .unwrap_or_default()
        )
    ));
    let (_, claims) = jwt::peek(rt.expose()).context("the decrypted token is not a JWT")?;
    ctx.note(format!("decrypted: {}", jwt::claims_for_evidence(&claims)));
    let issuer = ctx.realm()?.issuer();
    ensure!(
        claims["typ"] == "Offline",
        "the stored token's typ is {}, expected Offline (Flow 2 asks for offline_access)",
        claims["typ"]
    );
    ensure!(
        claims["sub"] == f.sub.as_str(),
        "the stored token belongs to sub {}, not to {} ({})",
        claims["sub"],
        f.user,
        f.sub
    );
    ensure!(
        claims["iss"] == issuer.as_str(),
        "the stored token's issuer is {}, not {issuer}",
        claims["iss"]
    );
    let live = liveness(ctx, &rt).await?;
    ensure!(
        live.is_live(),
        "Keycloak no longer honours the stored refresh token: {}",
        live.describe()
    );
    pass(format!(
        "{}'s refresh token is stored as a Fernet token; the run's key decrypts it to a Keycloak Offline token of {} (azp {}); {}",
        f.user,
        f.sub,
        claims["azp"],
        live.describe()
    ))
}

/// STORAGE-04.
pub(super) async fn flow1_not_stored(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    let f = lab.flow1(ctx).await?;
    let known: Vec<(String, SecretKind)> = f
        .tokens
        .iter()
        .map(|t| (t.expose().to_owned(), t.kind()))
        .collect();
    // Without JWT headers: the stored Flow 2 token is signed with the same key, so it
    // shares the refresh token's header and nothing else.
    let matcher = Matcher::new(needles_without_headers(&known));
    let instance = lab.instance()?;
    ctx.step(format!(
        "look for the {} tokens (and their JWT payloads and signatures, {} needles; headers are shared by every token of a key) in the lab's files and in every stored value, decrypted where it decrypts",
        f.tokens.len(),
        matcher.len()
    ));
    let files = files_of(&instance.db_path);
    let mut found: Vec<String> = matcher
        .scan_files(&files)?
        .into_iter()
        .map(|(file, h)| format!("{} in {} at byte {}", h.what, file.display(), h.offset))
        .collect();
    let db = lab.db()?;
    let cipher = lab.cipher()?;
    let values = db.all_values()?;
    for v in &values {
        let bytes = v.cell.bytes().unwrap_or_default();
        found.extend(
            matcher
                .find_all(bytes)
                .into_iter()
                .map(|h| format!("{} in {}", h.what, v.place())),
        );
        if let Ok(plain) = cipher.decrypt(bytes) {
            found.extend(
                matcher
                    .find_all(&plain)
                    .into_iter()
                    .map(|h| format!("{} encrypted in {}", h.what, v.place())),
            );
        }
    }
    let idp_columns: Vec<String> = db
        .rows("oauth_sessions")
        .unwrap_or_default()
        .iter()
        .flat_map(|r| r.0.iter())
        .filter(|(c, v)| c.starts_with("idp_") && !v.is_empty())
        .map(|(c, _)| format!("oauth_sessions.{c} holds a value"))
        .collect();
    found.extend(idp_columns);
    ensure!(
        found.is_empty(),
        "the IdP's tokens from the proxy flow are persisted: {}",
        found.join("; ")
    );
    pass(format!(
        "none of the {} IdP tokens the proxy relayed is in {} file(s) or in any of {} stored values (decrypted where possible); oauth_sessions.idp_* hold nothing",
        f.tokens.len(),
        files.len(),
        values.len()
    ))
}

/// STORAGE-05.
pub(super) async fn app_password_stored(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    let rs = ctx.resource_server()?.base_url.clone();
    let g = lab.grant(ctx).await?;
    ctx.step(format!("{}'s row in app_passwords", g.user));
    let (row, password) = stored_for(
        &lab.db()?,
        &lab.cipher()?,
        "app_passwords",
        "encrypted_password",
        &g.sub,
        SecretKind::AppPassword,
    )?;
    let username = row.text("username").unwrap_or_default().to_owned();
    ctx.note(format!(
        "user_id {}, username {username:?}, scopes {:?}",
        g.sub,
        row.text("scopes")
    ));
    ensure!(
        username == g.uid,
        "the stored username is {username:?}, not {}'s Nextcloud login name {}",
        g.user,
        g.uid
    );
    ctx.step(
        "log in at the resource server with the decrypted app password (Basic, OCS cloud/user)",
    );
    let resp = ctx
        .http()
        .get(format!("{rs}/ocs/v2.php/cloud/user?format=json"))
        .basic(&username, &password)
        .header("OCS-APIRequest", "true")
        .send()
        .await?;
    ensure!(
        resp.status == 200,
        "the decrypted app password does not log in: {}",
        resp.summary()
    );
    let id = resp.json_value()?["ocs"]["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        id == g.uid,
        "the decrypted app password logs in as {id:?}, not as {} ({})",
        g.user,
        g.uid
    );
    pass(format!(
        "{}'s app password is stored as a Fernet token under their sub {}; decrypted, it logs in as {} at the resource server",
        g.user, g.sub, g.uid
    ))
}

/// STORAGE-09.
pub(super) async fn revoked(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    let (mut slot, f) = lab.flow2(ctx).await?;
    let (_, rt) = stored_for(
        &lab.db()?,
        &lab.cipher()?,
        "refresh_tokens",
        "encrypted_token",
        &f.sub,
        SecretKind::RefreshToken,
    )?;
    let token = user_token(ctx, FLOW2_USER, "openid").await?;
    ctx.step(format!("tools/call {REVOKE_TOOL} as {FLOW2_USER}"));
    let client = McpClient::connect(McpClientOptions::new(lab.instance()?.mcp_url(), token))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let answer = client.call_tool(REVOKE_TOOL, json!({})).await;
    client.close().await;
    let answer = answer?;
    ctx.note(format!(
        "answer (is_error {}): {}",
        answer.is_error,
        crate::secret::redact(&answer.text)
    ));
    let message = tool_message(&answer.text);
    ctx.step("is the token still stored?");
    let still_stored = !lab
        .db()?
        .rows_where("refresh_tokens", "user_id", &f.sub)?
        .is_empty();
    let live = liveness(ctx, &rt).await?;
    if !still_stored {
        // Later checks need carol's token again: Flow 2 runs anew for them.
        *slot = None;
    }
    ensure!(
        !still_stored && !live.is_live(),
        "{REVOKE_TOOL} answered {message:?}; the stored refresh token is {}; {}",
        if still_stored {
            "still stored"
        } else {
            "removed"
        },
        live.describe()
    );
    pass(format!(
        "{REVOKE_TOOL} answered {message:?}; the stored token is gone; {}",
        live.describe()
    ))
}
