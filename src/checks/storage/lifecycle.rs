//! A server's database across its own lifecycle: the ephemeral database of a server given
//! no path, and a restart with another key. Each check starts an instance of its own and
//! stops it at the end, whatever happened.

use anyhow::{Context, ensure};
use serde_json::json;

use super::super::{CheckCtx, CheckResult, pass};
use super::at_rest::db_files_in;
use super::flows::{GRANT_USER, first_line, tool_message, user_token};
use crate::mcp::client::{McpClient, McpClientOptions, ToolOutcome};
use crate::mcp::provision;
use crate::secret::Secret;
use crate::stack::Instance;
use crate::storage::mode_of;

/// A notes tool that reads through the stored app password (0.202.1 naming).
const LIST_NOTES_TOOL: &str = "nc_notes_list_notes";
/// What a user runs to drop their stored access (0.202.1 naming).
const REVOKE_TOOL: &str = "revoke_nextcloud_access";
/// What the refusal after a key change must mention for the user to understand it.
const KEY_WORDS: &[&str] = &[
    "encryption key",
    "decrypt",
    "key changed",
    "token_encryption_key",
];

/// STORAGE-02.
pub(super) async fn ephemeral_removed(ctx: &CheckCtx) -> CheckResult {
    const NAME: &str = "storage-ephemeral";
    // With background operations on, the release refuses to start without a path
    // ("TOKEN_STORAGE_DB is required when ENABLE_OFFLINE_ACCESS is enabled"), so this
    // instance runs without them: Login Flow v2 still stores app passwords.
    ctx.step(format!(
        "start instance {NAME:?} without TOKEN_STORAGE_DB (and without background operations, which require it)"
    ));
    let instances = ctx.instances()?;
    let i = instances
        .start(NAME, |s| {
            s.unset_env = vec!["TOKEN_STORAGE_DB".into()];
            s.set_env
                .push(("ENABLE_BACKGROUND_OPERATIONS".into(), "false".into()));
        })
        .await
        .map_err(|e| anyhow::anyhow!("it did not start: {e}"))?;
    let stored = async {
        let token = user_token(ctx, GRANT_USER, "openid").await?;
        provision_attempt(ctx, &i, &token)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }
    .await;
    ctx.note(match &stored {
        Ok(()) => format!("{GRANT_USER} provisioned: an app password is stored"),
        Err(e) => {
            format!("{GRANT_USER} could not provision ({e:#}); the database holds no credential")
        }
    });
    let during = db_files_in(&i.tmp_dir);
    let logged = ephemeral_path_logged(&i);
    ctx.note(format!(
        "while it runs, its TMPDIR {} holds {:?} (mode {}); its log names {:?}",
        i.tmp_dir.display(),
        during,
        during
            .first()
            .and_then(|f| mode_of(f).ok())
            .map(|m| format!("{m:04o}"))
            .unwrap_or_default(),
        logged
    ));
    ctx.step("SIGTERM, then look again");
    let status = instances.stop(NAME).await;
    let after = db_files_in(&i.tmp_dir);
    let exit = status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no exit status".into());
    ctx.note(format!("exit: {exit}; TMPDIR now holds {after:?}"));
    ensure!(
        !during.is_empty(),
        "no database file appeared in its TMPDIR {} while it ran (log names {logged:?}): nothing to judge",
        i.tmp_dir.display()
    );
    ensure!(
        after.is_empty(),
        "after SIGTERM ({exit}) the ephemeral database is still in the temp dir: {}{}",
        after
            .iter()
            .map(|f| format!(
                "{} ({} bytes)",
                f.file_name().unwrap_or_default().to_string_lossy(),
                std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)
            ))
            .collect::<Vec<_>>()
            .join(", "),
        if stored.is_ok() {
            format!(", holding {GRANT_USER}'s app password (encrypted)")
        } else {
            String::new()
        }
    );
    pass(format!(
        "the ephemeral database {:?} was removed at exit ({exit})",
        during
            .iter()
            .map(|f| f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned())
            .collect::<Vec<_>>()
    ))
}

/// The path after "ephemeral token storage at" in the instance's log.
fn ephemeral_path_logged(i: &Instance) -> Option<String> {
    let log = std::fs::read_to_string(&i.log).ok()?;
    log.lines().find_map(|l| {
        l.split_once("ephemeral token storage at ")
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    })
}

/// STORAGE-08.
pub(super) async fn rekeyed(ctx: &CheckCtx) -> CheckResult {
    const NAME: &str = "storage-rekey";
    ctx.step(format!("start instance {NAME:?}"));
    let instances = ctx.instances()?;
    let i = instances
        .start(NAME, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("it did not start: {e}"))?;
    let outcome = rekey_steps(ctx, &i).await;
    instances.stop(NAME).await;
    outcome
}

async fn rekey_steps(ctx: &CheckCtx, first: &Instance) -> CheckResult {
    let user = GRANT_USER;
    let token = user_token(ctx, user, "openid notes.read").await?;
    provision_attempt(ctx, first, &token)
        .await
        .map_err(|e| anyhow::anyhow!("provisioning before the key change failed: {e}"))?;
    let works = call(ctx, first, &token, LIST_NOTES_TOOL).await?;
    ensure!(
        !works.is_error,
        "{LIST_NOTES_TOOL} fails right after provisioning: {}",
        first_line(&works.text)
    );
    ctx.step("restart it on the same database with another TOKEN_ENCRYPTION_KEY");
    let log_before = std::fs::read_to_string(&first.log)
        .map(|l| l.len())
        .unwrap_or(0);
    let new_key = crate::storage::cipher::new_key();
    let second = ctx
        .instances()?
        .restart(first, Some(new_key))
        .await
        .map_err(|e| anyhow::anyhow!("the restart failed: {e}"))?;
    let refused = call(ctx, &second, &token, LIST_NOTES_TOOL).await?;
    ctx.step(format!("{user} provisions again"));
    let mut reprovisioned = provision_attempt(ctx, &second, &token)
        .await
        .map(|()| "directly");
    let mut revoke_answer = None;
    if reprovisioned.is_err() {
        ctx.step(format!(
            "{user} revokes the old access ({REVOKE_TOOL}), then provisions again"
        ));
        let r = call(ctx, &second, &token, REVOKE_TOOL).await?;
        revoke_answer = Some(tool_message(&r.text));
        if provision_attempt(ctx, &second, &token).await.is_ok() {
            reprovisioned = Ok("after revoking");
        }
    }
    note_log_about_keys(ctx, &second, log_before);
    let text = refused.text.to_ascii_lowercase();
    let clear = refused.is_error && KEY_WORDS.iter().any(|w| text.contains(w));
    let refusal = format!(
        "after the key change {LIST_NOTES_TOOL} answered (is_error {}) {:?}",
        refused.is_error,
        first_line(&refused.text)
    );
    let reprovisioning = match (&reprovisioned, &revoke_answer) {
        (Ok(how), _) => {
            let again = call(ctx, &second, &token, LIST_NOTES_TOOL).await?;
            ensure!(
                !again.is_error,
                "{refusal}; re-provisioning ({how}) succeeded, but {LIST_NOTES_TOOL} still fails: {}",
                first_line(&again.text)
            );
            format!("re-provisioning worked {how}")
        }
        (Err(e), revoke) => format!(
            "re-provisioning failed: {e}{}",
            revoke
                .as_ref()
                .map(|r| format!("; {REVOKE_TOOL} answered {r:?} and provisioning still failed"))
                .unwrap_or_default()
        ),
    };
    ensure!(
        clear && reprovisioned.is_ok(),
        "{refusal}{}; {reprovisioning}",
        if clear {
            ""
        } else {
            ", which does not say the stored credential cannot be decrypted"
        }
    );
    pass(format!("{refusal}; {reprovisioning}"))
}

/// Login Flow v2 for `token`'s user; `Err` says what the tools answered instead of
/// "provisioned".
async fn provision_attempt(ctx: &CheckCtx, at: &Instance, token: &Secret) -> Result<(), String> {
    match provision::login_flow(ctx.http(), &ctx.evidence, &at.mcp_url(), token, token).await {
        Ok(p) if p.final_status().as_deref() == Some("provisioned") => Ok(()),
        Ok(p) => Err(format!(
            "{} ended with {:?}",
            provision::STATUS_TOOL,
            first_line(&p.status.text)
        )),
        Err(e) => Err(first_line(&format!("{e:#}"))),
    }
}

/// The instance's log lines since byte `from` about decryption, as evidence.
fn note_log_about_keys(ctx: &CheckCtx, at: &Instance, from: usize) {
    let log = std::fs::read_to_string(&at.log).unwrap_or_default();
    let lines: Vec<String> = log
        .get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("decrypt") || l.contains("invalidtoken")
        })
        .take(10)
        .map(crate::secret::redact)
        .collect();
    ctx.note(format!("its log about decryption:\n{}", lines.join("\n")));
}

/// `tools/call` of `tool` without arguments, declining any elicitation, recorded.
async fn call(
    ctx: &CheckCtx,
    at: &Instance,
    token: &Secret,
    tool: &str,
) -> anyhow::Result<ToolOutcome> {
    ctx.step(format!(
        "tools/call {tool} at {} ({})",
        at.name, at.base_url
    ));
    let client = McpClient::connect(McpClientOptions::new(at.mcp_url(), token.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let outcome = client.call_tool(tool, json!({})).await;
    let requests = client.server_requests();
    client.close().await;
    let outcome = outcome.with_context(|| format!("{tool} at {}", at.name))?;
    ctx.note(format!(
        "answer (is_error {}): {}; server requests: {:?}",
        outcome.is_error,
        crate::http::truncate(&crate::secret::redact(&outcome.text), 600),
        requests
    ));
    Ok(outcome)
}
