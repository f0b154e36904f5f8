//! No token passthrough, seen from the resource server: the token an MCP client sends to
//! the MCP server never arrives at the resource server, whatever the MCP server does to
//! reach it (an app password, an exchanged token, or nothing). Only a resource server
//! that logs what it receives can show it: the harness's stand-in does, by fingerprint.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};

use super::super::{CheckCtx, CheckResult, pass};
use super::enforcement::{all_listed, provision_user, provisions};
use super::users::{USER, derived, mcp_url};
use crate::mcp::client::{McpClient, McpClientOptions};
use crate::mcp::scope_map::ScopeMap;
use crate::nextcloud::{AuthKind, RecordedRequest};
use crate::secret::Secret;

/// MCP authorization (all revisions), token passthrough: the MCP server MUST NOT pass the
/// token it received from the client on to an upstream API.
pub(super) async fn no_passthrough(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let rs = ctx.resource_server()?;
    let log = rs
        .request_log
        .clone()
        .context("the stack offers the resource server's request log, yet gave none")?;
    let d = derived(ctx, &url).await?;
    if provisions(&d.full) {
        provision_user(ctx, &url, &d.listed).await?;
    }
    let tool = reading_tool(&d.map)?;
    let scope = scopes_of(&all_listed(&d.listed));
    // A token of this check alone (not the session's cached one), so that no other check
    // running meanwhile can have sent it to the resource server.
    ctx.step(format!("a token of {USER}'s own for this check (browser)"));
    let token = ctx
        .session
        .authorize_user(ctx.http(), USER, &scope, "no-passthrough")
        .await?
        .tokens
        .access_token;
    let before = rs.log_mark();
    ctx.step(format!("{tool} through the MCP server with that token"));
    let outcome = call(&url, &token, &tool).await?;
    // Even a tool error says what the MCP server sent, if it reached the resource server.
    ctx.note(format!(
        "{tool}: {}{}",
        if outcome.is_error { "tool error: " } else { "" },
        crate::secret::redact(outcome.text.lines().next().unwrap_or_default())
    ));
    let during = log.snapshot()[before..].to_vec();
    ctx.step("control: the same token sent to the resource server by the harness itself");
    let control_from = rs.log_mark();
    ctx.http()
        .get(format!("{}/ocs/v2.php/cloud/user?format=json", rs.base_url))
        .header("OCS-APIRequest", "true")
        .bearer(&token)
        .send()
        .await?;
    let control = log.snapshot()[control_from..].to_vec();
    let seen = judge_passthrough(&token.fingerprint(), &during, &control)?;
    ctx.note(format!(
        "the resource server's log while {tool} ran: {}",
        serde_json::to_string(&during).unwrap_or_default()
    ));
    pass(format!(
        "{tool} called; meanwhile the resource server received {seen} request(s), none \
         with the client's token (fingerprint {}); sent by the harness \
         directly, the same token is in its log (the control)",
        token.fingerprint()
    ))
}

/// Passes when the resource server was reached while the tool ran, never with the
/// client's token (`fingerprint`), and when the control (that token sent directly) shows
/// the log would have seen it. Returns how many requests it received meanwhile (other
/// checks running at the same time may add theirs: only the fingerprint is this check's).
pub(super) fn judge_passthrough(
    fingerprint: &str,
    during: &[RecordedRequest],
    control: &[RecordedRequest],
) -> anyhow::Result<usize> {
    let carries = |r: &&RecordedRequest| matches!(&r.auth, AuthKind::Bearer { fingerprint: f } if f == fingerprint);
    ensure!(
        control.iter().any(|r| carries(&r)),
        "the control failed: the token sent directly to the resource server is not in its \
         log under fingerprint {fingerprint}, so its absence would prove nothing"
    );
    let passed: Vec<&RecordedRequest> = during.iter().filter(carries).collect();
    ensure!(
        passed.is_empty(),
        "the MCP server passed the client's token through: the resource server received it \
         (fingerprint {fingerprint}) on {}; MCP servers MUST NOT pass the token they \
         received on to upstream APIs",
        passed
            .iter()
            .map(|r| format!("{} {} (HTTP {})", r.method, r.path, r.status))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure!(
        !during.is_empty(),
        "the resource server received no request while the tool ran, so what the MCP \
         server sends it could not be seen"
    );
    Ok(during.len())
}

/// A Notes tool that only reads (needs no scope but `notes.read` and `openid`).
fn reading_tool(map: &ScopeMap) -> anyhow::Result<String> {
    map.iter()
        .filter(|(name, needs)| {
            name.contains("notes")
                && !needs.is_empty()
                && needs.iter().all(|s| s == "openid" || s.ends_with("read"))
                && needs.iter().any(|s| s.starts_with("notes"))
        })
        .min_by_key(|(name, _)| (!name.contains("search"), name.len()))
        .map(|(name, _)| name.clone())
        .context("the scope map has no Notes tool that needs only a read scope")
}

fn scopes_of(scopes: &BTreeSet<String>) -> String {
    scopes.iter().cloned().collect::<Vec<_>>().join(" ")
}

async fn call(
    url: &str,
    token: &Secret,
    tool: &str,
) -> anyhow::Result<crate::mcp::client::ToolOutcome> {
    let client = McpClient::connect(McpClientOptions::new(url, token.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {url}: {}", e.message))?;
    let outcome = match client.minimal_arguments(tool).await {
        Ok(args) => client.call_tool(tool, args).await,
        Err(e) => Err(e),
    };
    client.close().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, auth: AuthKind) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            auth,
            user: Some("alice".into()),
            status: 200,
            ocs_api_request: true,
            refusal: None,
        }
    }

    fn bearer(f: &str) -> AuthKind {
        AuthKind::Bearer {
            fingerprint: f.into(),
        }
    }

    const NOTES: &str = "/index.php/apps/notes/api/v1/notes";

    #[test]
    fn the_clients_token_at_the_resource_server_fails() {
        let control = [request("/ocs/v2.php/cloud/user", bearer("abcd1234"))];
        let during = [request(NOTES, bearer("abcd1234"))];
        let why = judge_passthrough("abcd1234", &during, &control).unwrap_err();
        assert!(
            format!("{why:#}").contains("passed the client's token through"),
            "{why:#}"
        );
    }

    #[test]
    fn another_credential_passes_and_a_blind_log_or_no_request_fails() {
        let control = [request("/ocs/v2.php/cloud/user", bearer("abcd1234"))];
        let basic = AuthKind::Basic {
            user: "alice".into(),
        };
        let during = [
            request(NOTES, basic.clone()),
            request(NOTES, bearer("ffff0000")),
        ];
        assert_eq!(judge_passthrough("abcd1234", &during, &control).unwrap(), 2);
        let why = judge_passthrough("abcd1234", &during, &[]).unwrap_err();
        assert!(format!("{why:#}").contains("the control failed"), "{why:#}");
        let why = judge_passthrough("abcd1234", &[], &control).unwrap_err();
        assert!(
            format!("{why:#}").contains("received no request"),
            "{why:#}"
        );
    }
}
