//! Provisioning a user at the MCP server through Nextcloud's Login Flow v2, as the
//! reference's `nc_auth_*` tools drive it: the caller asks for access, someone logs in at
//! the login URL and grants it, the caller polls. The grant at the stand-in is made with
//! the granting user's own Keycloak token (the stand-in binds the app password to that
//! user, never to whoever polls).

use anyhow::Context;
use serde_json::{Value, json};

use super::client::{ElicitationPolicy, McpClient, McpClientOptions, ToolOutcome};
use crate::evidence::Evidence;
use crate::http::Http;
use crate::secret::Secret;

/// The tool that starts Login Flow v2 provisioning (0.202.1 naming).
pub const PROVISION_TOOL: &str = "nc_auth_provision_access";
/// The tool that polls it.
pub const STATUS_TOOL: &str = "nc_auth_check_status";

/// What the three steps answered.
#[derive(Debug)]
pub struct Provisioning {
    pub started: ToolOutcome,
    pub login_url: String,
    /// HTTP status of the grant at the login URL.
    pub grant_status: u16,
    pub status: ToolOutcome,
}

impl Provisioning {
    /// The `status` field of the final poll's JSON answer.
    pub fn final_status(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.status.text)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
    }
}

/// Connects as the caller, declaring elicitation and accepting the login prompt.
pub async fn connect_accepting(mcp_url: &str, token: &Secret) -> anyhow::Result<McpClient> {
    let mut opts = McpClientOptions::new(mcp_url, token.clone());
    opts.declare_elicitation = true;
    opts.elicitation = ElicitationPolicy::Accept(json!({"acknowledged": true}));
    McpClient::connect(opts)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {mcp_url}: {}", e.message))
}

/// Runs the flow: `caller_token` asks, `granter_token` grants at the login URL.
pub async fn login_flow(
    http: &Http,
    evidence: &Evidence,
    mcp_url: &str,
    caller_token: &Secret,
    granter_token: &Secret,
) -> anyhow::Result<Provisioning> {
    let client = connect_accepting(mcp_url, caller_token).await?;
    evidence.step(format!("tools/call {PROVISION_TOOL}"));
    let started = client.call_tool(PROVISION_TOOL, json!({})).await?;
    evidence.note(format!(
        "answer (is_error {}): {}",
        started.is_error, started.text
    ));
    let login_url = login_url_of(&started.text)
        .with_context(|| format!("{PROVISION_TOOL} gave no login_url: {}", started.text))?;
    evidence.step("grant access at the login URL with the granting user's Keycloak token");
    let grant = http
        .post(format!("{login_url}/grant"))
        .bearer(granter_token)
        .send()
        .await?;
    evidence.step(format!("tools/call {STATUS_TOOL}"));
    let status = client.call_tool(STATUS_TOOL, json!({})).await?;
    evidence.note(format!(
        "answer (is_error {}): {}",
        status.is_error, status.text
    ));
    client.close().await;
    Ok(Provisioning {
        started,
        login_url,
        grant_status: grant.status,
        status,
    })
}

/// The `login_url` of the provisioning tool's JSON answer.
fn login_url_of(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v["login_url"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_url_comes_from_the_tool_answer() {
        let text = r#"{"status":"pending","login_url":"http://127.0.0.1:1/index.php/login/v2/flow/abc","user_id":"u"}"#;
        assert_eq!(
            login_url_of(text).as_deref(),
            Some("http://127.0.0.1:1/index.php/login/v2/flow/abc")
        );
        assert_eq!(login_url_of("not json"), None);
    }
}
