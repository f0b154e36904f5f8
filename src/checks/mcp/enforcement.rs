//! Scope enforcement on `tools/call` after provisioning, provisioning bound to its
//! caller, and what the server asks of a client that declared no elicitation.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::super::{CheckCtx, CheckResult, pass, skip};
use super::users::{USER, derived, mcp_url, token_for};
use crate::keycloak::realm::RESOURCE_SERVER_CLIENT;
use crate::mcp::client::{McpClient, McpClientOptions, ToolOutcome};
use crate::mcp::scope_map::ScopeMap;
use crate::mcp::{arguments, provision};
use crate::nextcloud::{AuthKind, RecordedRequest};
use crate::oauth::jwt;
use crate::secret::Secret;

/// Every scope the server lists, as a set.
pub(super) fn all_listed(listed: &[String]) -> BTreeSet<String> {
    listed.iter().cloned().collect()
}

/// Whether this release provisions users through Login Flow v2 (older releases pass the
/// user's bearer token on to Nextcloud instead).
pub(super) fn provisions(tools: &[String]) -> bool {
    tools.iter().any(|t| t == provision::PROVISION_TOOL)
}

/// `USER` is provisioned in this session's server: a second Login Flow v2 run would find
/// no flow to start (the tool answers `already_provisioned` without a login URL), and two
/// at once (checks run side by side) leave one of them pending.
struct Provisioned;

/// Provisions `USER` through Login Flow v2 (the user grants their own request), once per
/// session: concurrent callers wait for the first, later ones find it done.
pub(super) async fn provision_user(
    ctx: &CheckCtx,
    url: &str,
    listed: &[String],
) -> anyhow::Result<()> {
    ctx.session
        .memo
        .get_or_try_init(|| async {
            login_flow_v2(ctx, url, listed).await?;
            anyhow::Ok(Provisioned)
        })
        .await?;
    Ok(())
}

async fn login_flow_v2(ctx: &CheckCtx, url: &str, listed: &[String]) -> anyhow::Result<()> {
    let token = token_for(ctx, USER, &all_listed(listed)).await?;
    let p = provision::login_flow(ctx.http(), &ctx.evidence, url, &token, &token).await?;
    let status = p.final_status().unwrap_or_default();
    ensure!(
        status == "provisioned" || status == "already_provisioned",
        "provisioning {USER} ended with status {status:?} (grant HTTP {}): {}",
        p.grant_status,
        p.status.text
    );
    Ok(())
}

/// For each scope some tool needs: the tool that needs it with the fewest other scopes.
fn probe_per_scope(map: &ScopeMap) -> Vec<(String, String)> {
    let mut scopes: BTreeSet<&String> = map.values().flatten().collect();
    scopes.remove(&"openid".to_string());
    scopes
        .into_iter()
        .filter_map(|s| {
            map.iter()
                .filter(|(_, needs)| needs.contains(s))
                .min_by_key(|(name, needs)| (needs.len(), name.len()))
                .map(|(name, _)| (s.clone(), name.clone()))
        })
        .collect()
}

/// MCP: after provisioning, each application scope is enforced on `tools/call`, and a
/// tool the token allows works end to end through Nextcloud with the app password.
pub(super) async fn enforcement(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let login_flow = provisions(&d.full);
    if login_flow {
        provision_user(ctx, &url, &d.listed).await?;
    } else {
        ctx.note(format!(
            "no {} tool: this release calls Nextcloud with the user's bearer token",
            provision::PROVISION_TOOL
        ));
    }
    let all = all_listed(&d.listed);
    let schemas = {
        let client = McpClient::connect(McpClientOptions::new(
            &url,
            token_for(ctx, USER, &all).await?,
        ))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let tools = client.list_tools().await?;
        client.close().await;
        tools
    };
    let mut leaks = Vec::new();
    let probes = probe_per_scope(&d.map);
    ctx.step(format!(
        "call one tool per scope ({}) with a token lacking that scope",
        probes.len()
    ));
    for (scope, tool) in &probes {
        let mut fewer = all.clone();
        fewer.remove(scope);
        let schema = schemas
            .iter()
            .find(|t| &t.name == tool)
            .map(|t| t.input_schema.clone())
            .unwrap_or(json!({}));
        let client = McpClient::connect(McpClientOptions::new(
            &url,
            token_for(ctx, USER, &fewer).await?,
        ))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let outcome = client.call_tool(tool, arguments::minimal(&schema)).await;
        client.close().await;
        let verdict = not_enforced(tool, scope, &outcome);
        ctx.note(format!(
            "{scope}: {tool} → {}",
            verdict.as_deref().unwrap_or("refused, naming the scope")
        ));
        leaks.extend(verdict);
    }
    ensure!(
        leaks.is_empty(),
        "{} of {} scopes not enforced: {}",
        leaks.len(),
        probes.len(),
        leaks.join("; ")
    );
    end_to_end(ctx, &url, &d.map, &all, login_flow).await?;
    let how = if login_flow {
        "the app password (Basic)"
    } else {
        "the user's bearer token"
    };
    pass(format!(
        "{} scopes enforced (each refusal names the missing scope or says insufficient_scope); a notes tool works end to end with {how}",
        probes.len()
    ))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Why a call of `tool` without `scope` does not show the scope enforced, or `None` when
/// it does: a refusal (a tool error, or a JSON-RPC/HTTP error) that names the missing
/// scope or says `insufficient_scope` (RFC 6750 §3.1). A refusal for another reason, or
/// an error that merely contains "403", is not enforcement.
fn not_enforced(tool: &str, scope: &str, outcome: &anyhow::Result<ToolOutcome>) -> Option<String> {
    let says_so = |text: &str| names_scope(text, scope) || text.contains("insufficient_scope");
    match outcome {
        Ok(o) if o.is_error && says_so(&o.text) => None,
        Ok(o) if o.is_error => Some(format!(
            "{tool} without {scope}: refused, but neither naming the scope nor saying insufficient_scope: {}",
            crate::secret::redact(first_line(&o.text))
        )),
        Ok(o) => Some(format!(
            "{tool} without {scope}: ran ({})",
            crate::secret::redact(first_line(&o.text))
        )),
        Err(e) if says_so(&format!("{e:#}")) => None,
        Err(e) => Some(format!("{tool} without {scope}: {e:#}")),
    }
}

/// Whether `text` names `scope` as a whole word: `notes.read` is not named by
/// `notes.readwrite` or `mynotes.read`, but is by "Missing: notes.read." (a full stop
/// ends a sentence unless a name goes on after it).
pub(super) fn names_scope(text: &str, scope: &str) -> bool {
    let in_name = |c: char| c.is_alphanumeric() || "_-:/".contains(c);
    text.match_indices(scope).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + scope.len()..].chars();
        let continues = match after.next() {
            Some('.') => after.next().is_some_and(in_name),
            next => next.is_some_and(in_name),
        };
        !before.is_some_and(|c| in_name(c) || c == '.') && !continues
    })
}

/// A note created through the MCP server reaches the resource server as the user: read
/// back there with the user's own (exchanged) token, it is in the user's notes. Where the
/// resource server keeps a request log (the stand-in), it also shows how the MCP server
/// authenticated: Basic with the app password when the release provisions through Login
/// Flow v2 (never the bearer token then), the user's bearer token otherwise.
async fn end_to_end(
    ctx: &CheckCtx,
    url: &str,
    map: &ScopeMap,
    all: &BTreeSet<String>,
    login_flow: bool,
) -> anyhow::Result<()> {
    let tool = map
        .iter()
        .find(|(name, needs)| {
            name.contains("create_note") && needs.iter().any(|s| s.starts_with("notes"))
        })
        .map(|(n, _)| n.clone())
        .context("no notes tool that creates a note in the map")?;
    ctx.step(format!("{tool} with every scope"));
    let token = token_for(ctx, USER, all).await?;
    let (_, claims) = jwt::peek(token.expose())?;
    let rs = ctx.resource_server()?;
    let uid = rs.user_id(claims["sub"].as_str().unwrap_or_default());
    let mark = rs.log_mark();
    let client = McpClient::connect(McpClientOptions::new(url, token))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let title = format!("harness note {}", crate::oauth::pkce::random_value());
    let mut args = client.minimal_arguments(&tool).await?;
    args["title"] = json!(title);
    args["content"] = json!("written by mcp-authz-harness");
    let outcome = client.call_tool(&tool, args).await?;
    client.close().await;
    ensure!(!outcome.is_error, "{tool} failed: {}", outcome.text);
    read_back_as_user(ctx, &title, &uid).await?;
    if let Some(log) = &rs.request_log {
        how_it_authenticated(ctx, &log.snapshot()[mark..], &uid, login_flow)?;
    }
    Ok(())
}

/// The note titled `title` is among the user's notes at the resource server, read with
/// the user's token exchanged for the resource server (`aud` = its client).
async fn read_back_as_user(ctx: &CheckCtx, title: &str, uid: &str) -> anyhow::Result<()> {
    let base = ctx.resource_server()?.base_url.clone();
    let token = super::super::rs::exchanged(ctx, RESOURCE_SERVER_CLIENT).await?;
    ctx.step(format!(
        "read the notes back at the resource server as {USER}"
    ));
    let resp = ctx
        .http()
        .get(format!("{base}/index.php/apps/notes/api/v1/notes"))
        .header("OCS-APIRequest", "true")
        .bearer(&token)
        .send()
        .await?;
    ensure!(
        resp.status == 200,
        "listing {USER}'s notes at the resource server: {}",
        resp.summary()
    );
    let notes: Vec<serde_json::Value> = resp.json()?;
    ensure!(
        notes.iter().any(|n| n["title"] == title),
        "the note {title:?} is not among {USER}'s {} notes at the resource server (user {uid})",
        notes.len()
    );
    Ok(())
}

/// What the resource server's log says about the MCP server's Notes requests.
fn how_it_authenticated(
    ctx: &CheckCtx,
    requests: &[RecordedRequest],
    uid: &str,
    login_flow: bool,
) -> anyhow::Result<()> {
    let notes: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/apps/notes/api/v1/notes"))
        .collect();
    ctx.note(format!(
        "the resource server's log: {}",
        serde_json::to_string(&notes).unwrap_or_default()
    ));
    let post = notes
        .iter()
        .find(|r| r.method == "POST")
        .context("the resource server's log holds no POST to the Notes API")?;
    if login_flow {
        ensure!(
            matches!(&post.auth, AuthKind::Basic { user } if user == uid),
            "the Notes request came with {:?}, expected Basic auth with the app password of {uid}",
            post.auth
        );
    } else {
        ensure!(
            matches!(&post.auth, AuthKind::Bearer { .. }) && post.user.as_deref() == Some(uid),
            "the Notes request came with {:?} as {:?}, expected the bearer token of {uid}",
            post.auth,
            post.user
        );
    }
    Ok(())
}

/// MCP: a Login Flow v2 grant made by another user does not provision the caller: the
/// caller's poll refuses it explicitly, and asked again the caller is still not provisioned.
pub(super) async fn provisioning_bound_to_caller(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let openid: BTreeSet<String> = ["openid".to_owned()].into();
    let caller = token_for(ctx, "bob", &openid).await?;
    if !provisions(&super::users::tools_under(&url, &caller).await?) {
        return skip(format!(
            "this release has no Login Flow v2 provisioning (no {} tool)",
            provision::PROVISION_TOOL
        ));
    }
    let granter = token_for(ctx, USER, &openid).await?;
    let rs = ctx.resource_server()?;
    let mark = rs.log_mark();
    ctx.step("bob asks for access; alice grants it at bob's login URL");
    let p = provision::login_flow(ctx.http(), &ctx.evidence, &url, &caller, &granter).await?;
    ensure!(
        p.grant_status == 200,
        "the resource server refused alice's grant (HTTP {})",
        p.grant_status
    );
    let refusal = refuses_foreign_grant(&p.status.text)?;
    ctx.step(format!("bob asks {} again", provision::STATUS_TOOL));
    let after = status_of(&url, &caller).await?;
    ctx.note(format!(
        "answer (is_error {}): {}",
        after.is_error,
        crate::secret::redact(&after.text)
    ));
    still_not_provisioned(&after.text)?;
    let deleted = rs.request_log.as_ref().is_some_and(|log| {
        log.snapshot()[mark..]
            .iter()
            .any(|r| r.method == "DELETE" && r.path.contains("apppassword"))
    });
    pass(format!(
        "bob's poll after alice's grant is refused: {refusal}; asked again, bob is {NOT_PROVISIONED}{}",
        if deleted {
            "; the server deleted the foreign app password"
        } else {
            ""
        }
    ))
}

/// The status a caller that holds no app password and no pending flow gets.
const NOT_PROVISIONED: &str = "not_initiated";

/// `nc_auth_check_status` as the holder of `token`.
async fn status_of(url: &str, token: &Secret) -> anyhow::Result<ToolOutcome> {
    let client = McpClient::connect(McpClientOptions::new(url, token.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let outcome = client.call_tool(provision::STATUS_TOOL, json!({})).await;
    client.close().await;
    outcome
}

/// The poll that finds another user's grant must refuse it explicitly: `status` "error",
/// `success` false, and a message saying the account that granted access is not the
/// caller's (GHSA-84qv-22q6-x82r). Silence ("pending"), a generic error or a success is no
/// refusal.
fn refuses_foreign_grant(answer: &str) -> anyhow::Result<String> {
    static OTHER_ACCOUNT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)not the (same )?(account|user)|(another|different|other) (nextcloud )?(account|user)",
        )
        .expect("static regex")
    });
    let v: Value = serde_json::from_str(answer).with_context(|| {
        format!(
            "the poll's answer is not JSON: {}",
            crate::secret::redact(answer)
        )
    })?;
    let (status, message) = (&v["status"], v["message"].as_str().unwrap_or_default());
    ensure!(
        status == "error" && v["success"] == false,
        "bob's poll after alice's grant answered status {status} (success {}): {}; expected \
         an explicit refusal (status \"error\")",
        v["success"],
        crate::secret::redact(message)
    );
    ensure!(
        OTHER_ACCOUNT.is_match(message),
        "bob's poll after alice's grant answered status \"error\" without saying the grant \
         came from another account: {}",
        crate::secret::redact(message)
    );
    Ok(format!("status \"error\": {message:?}"))
}

/// A follow-up status call shows the caller holds no app password.
fn still_not_provisioned(answer: &str) -> anyhow::Result<()> {
    let v: Value = serde_json::from_str(answer).unwrap_or(Value::Null);
    ensure!(
        v["status"] == NOT_PROVISIONED,
        "asked again after the refused grant, bob's status is {} (expected \"{NOT_PROVISIONED}\"): {}",
        v["status"],
        crate::secret::redact(answer)
    );
    Ok(())
}

/// MCP: the server sends no `elicitation/create` to a client that did not declare the
/// elicitation capability.
pub(super) async fn no_elicitation_without_capability(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let tool = d
        .map
        .iter()
        .filter(|(_, needs)| needs.iter().any(|s| s.starts_with("notes")))
        .min_by_key(|(name, needs)| (!name.contains("list"), needs.len()))
        .map(|(n, _)| n.clone())
        .context("no notes tool in the map")?;
    // `admin` never provisions, so the server has a reason to ask the user something.
    let token = token_for(ctx, "admin", &all_listed(&d.listed)).await?;
    ctx.step(format!(
        "as admin (not provisioned), without the elicitation capability: {tool}"
    ));
    let client = McpClient::connect(McpClientOptions::new(&url, token))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    // Valid arguments: the server validates them before anything else happens.
    let args = client.minimal_arguments(&tool).await?;
    let outcome = client.call_tool(&tool, args).await;
    let requests = client.server_requests();
    client.close().await;
    ctx.note(format!("tool answer: {outcome:?}"));
    let elicitations: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "elicitation/create")
        .collect();
    ensure!(
        elicitations.is_empty(),
        "the server sent elicitation/create to a client that declared no elicitation capability ({} time(s); message: {:?})",
        elicitations.len(),
        elicitations[0].message
    );
    pass("no server request the client did not declare")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_error(text: &str) -> anyhow::Result<ToolOutcome> {
        Ok(ToolOutcome {
            is_error: true,
            text: text.into(),
        })
    }

    #[test]
    fn a_scope_counts_as_enforced_only_when_the_refusal_says_why() {
        let judged = |o: anyhow::Result<ToolOutcome>| not_enforced("t", "notes.write", &o);
        assert_eq!(
            judged(tool_error(
                "Missing required scopes: notes.write. Ask for it."
            )),
            None
        );
        assert_eq!(judged(tool_error("error: insufficient_scope")), None);
        assert_eq!(
            judged(Err(anyhow::anyhow!(
                r#"HTTP 403: Bearer error="insufficient_scope", scope="notes.write""#
            ))),
            None
        );
        for not_enforcement in [
            Err(anyhow::anyhow!(
                "tools/call t: HTTP status client error (403 Forbidden)"
            )),
            Err(anyhow::anyhow!("Transport closed")),
            tool_error("User not provisioned"),
            tool_error("Missing required scopes: notes.writeall"),
            Ok(ToolOutcome {
                is_error: false,
                text: "notes.write done".into(),
            }),
        ] {
            assert!(judged(not_enforcement).is_some());
        }
    }

    #[test]
    fn scopes_are_named_as_whole_words() {
        assert!(names_scope("needs notes.read.", "notes.read"));
        assert!(names_scope("[notes.read, files.read]", "notes.read"));
        assert!(!names_scope("needs notes.readwrite", "notes.read"));
        assert!(!names_scope("needs mynotes.read", "notes.read"));
        assert!(!names_scope("needs notes.read.all", "notes.read"));
        assert!(names_scope(
            "Missing required scopes: notes.read. Token has",
            "notes.read"
        ));
    }

    const REFUSED: &str = r#"{"status":"error","success":false,"user_id":"bob","message":"The Nextcloud account that granted access is not the account you are signed in as. Nothing was stored."}"#;

    #[test]
    fn a_foreign_grant_must_be_refused_explicitly() {
        assert!(refuses_foreign_grant(REFUSED).is_ok());
        for not_a_refusal in [
            r#"{"status":"pending","message":"Login flow is still pending."}"#,
            r#"{"status":"provisioned","message":"Nextcloud access provisioned successfully as alice."}"#,
            r#"{"status":"error","success":false,"message":"Failed to check login status: timeout"}"#,
            r#"{"status":"error","success":true,"message":"not the account you are signed in as"}"#,
            "Error: not JSON",
        ] {
            assert!(
                refuses_foreign_grant(not_a_refusal).is_err(),
                "{not_a_refusal}"
            );
        }
    }

    #[test]
    fn the_follow_up_must_say_not_provisioned() {
        assert!(still_not_provisioned(r#"{"status":"not_initiated"}"#).is_ok());
        assert!(still_not_provisioned(r#"{"status":"provisioned"}"#).is_err());
        assert!(still_not_provisioned("Error").is_err());
    }
}
