//! The three ways a user's credentials reach the server's database, driven as a user
//! would, each against the lab instance:
//!
//! - Flow 2 (background provisioning) for `carol`, who provisions nowhere else: the
//!   `check_logged_in` tool hands out the server's `/oauth/authorize-nextcloud?state=...`
//!   URL in an elicitation; the harness accepts it, opens the URL in carol's browser
//!   profile (Keycloak's login and consent), and the server's callback stores her refresh
//!   token. TOKEN-02 also uses carol, with the harness's own public clients: it ends her
//!   online sessions and never her offline ones, so it cannot revoke what Flow 2 stores.
//! - Login Flow v2 (an app password) for `bob`, through the Nextcloud stand-in. On the
//!   session's own instance MCP-12 needs bob unprovisioned; the lab is another database.
//! - Flow 1 (the authorization proxy for MCP clients) for `alice`: the IdP's tokens are
//!   meant to stay in memory.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;

use super::super::CheckCtx;
use super::super::mcp::proxy_flow;
use crate::browser::login::Page;
use crate::mcp::provision;
use crate::oauth::jwt;
use crate::secret::{Secret, SecretKind};
use crate::stack::Instance;

/// Provisions by Flow 2 in the lab (and nowhere else in the catalogue).
pub(crate) const FLOW2_USER: &str = "carol";
/// Provisions by Login Flow v2 in the lab.
pub(crate) const GRANT_USER: &str = "bob";
/// Goes through the authorization proxy of the lab.
pub(crate) const FLOW1_USER: &str = "alice";

/// The tool that hands out the Flow 2 URL (0.202.1 naming; its scope is `openid`).
pub(crate) const LOGIN_CHECK_TOOL: &str = "check_logged_in";

/// `user`'s access token for `scope`, through the browser (cached by the session).
pub(super) async fn user_token(ctx: &CheckCtx, user: &str, scope: &str) -> anyhow::Result<Secret> {
    Ok(ctx
        .session
        .user_tokens(ctx.http(), user, scope)
        .await?
        .access_token)
}

/// The `sub` claim of a Keycloak token.
pub(super) fn sub_of(token: &Secret) -> anyhow::Result<String> {
    let (_, claims) = jwt::peek(token.expose())?;
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .context("the token has no sub claim")
}

/// What Flow 2 did.
pub(crate) struct Flow2 {
    pub user: &'static str,
    /// The user's Keycloak `sub`, the key the server stores the token under.
    pub sub: String,
    /// `check_logged_in` before the browser step, and after it.
    pub first_answer: String,
    pub second_answer: String,
    /// The server's page at the end of the browser step.
    pub page: Page,
}

impl Flow2 {
    pub fn summary(&self) -> String {
        format!(
            "Flow 2 for {} (sub {}): {LOGIN_CHECK_TOOL} answered {:?} before the browser step, the callback page said {:?}, then {LOGIN_CHECK_TOOL} answered {:?}",
            self.user,
            self.sub,
            first_line(&self.first_answer),
            first_line(&self.page.text),
            first_line(&self.second_answer)
        )
    }
}

pub(super) async fn flow2(ctx: &CheckCtx, lab: &Instance) -> anyhow::Result<Flow2> {
    let user = FLOW2_USER;
    let token = user_token(ctx, user, "openid").await?;
    let sub = sub_of(&token)?;
    ctx.step(format!(
        "Flow 2 for {user} at {}: tools/call {LOGIN_CHECK_TOOL}, accepting its elicitation",
        lab.name
    ));
    let client = provision::connect_accepting(&lab.mcp_url(), &token).await?;
    let first = client.call_tool(LOGIN_CHECK_TOOL, json!({})).await?;
    let requests = client.server_requests();
    client.close().await;
    ctx.note(format!(
        "answer: {}; server requests: {:?}",
        crate::secret::redact(&first.text),
        requests
    ));
    let message = requests
        .iter()
        .find(|r| r.method == "elicitation/create")
        .and_then(|r| r.message.clone())
        .with_context(|| {
            format!(
                "{LOGIN_CHECK_TOOL} sent no elicitation to {user}, who never provisioned here; it answered {:?}",
                first.text
            )
        })?;
    let url = authorize_url_in(&message).with_context(|| {
        format!("the elicitation names no /oauth/authorize-nextcloud URL: {message:?}")
    })?;
    ensure!(
        url.starts_with(&lab.base_url),
        "the elicitation's URL {url} is not the lab's own ({})",
        lab.base_url
    );
    ctx.step(format!(
        "open it in {user}'s browser profile: Keycloak's login and consent, then the server's callback"
    ));
    let page = to_page(ctx, user, &url, &format!("{}/oauth/callback", lab.base_url)).await?;
    ctx.note(format!(
        "the callback page says: {}",
        first_line(&page.text)
    ));
    ctx.step(format!("tools/call {LOGIN_CHECK_TOOL} again"));
    let client = provision::connect_accepting(&lab.mcp_url(), &token).await?;
    let second = client.call_tool(LOGIN_CHECK_TOOL, json!({})).await?;
    client.close().await;
    ctx.note(format!("answer: {}", crate::secret::redact(&second.text)));
    Ok(Flow2 {
        user,
        sub,
        first_answer: first.text,
        second_answer: second.text,
        page,
    })
}

/// The server's Flow 2 URL in an elicitation message.
pub(super) fn authorize_url_in(message: &str) -> Option<String> {
    let re = regex::Regex::new(r"https?://[^\s]+/oauth/authorize-nextcloud\?state=[^\s]+")
        .expect("static regex");
    re.find(message).map(|m| m.as_str().to_owned())
}

/// Opens `url` in `user`'s browser profile and follows login and consent to a page whose
/// URL starts with `prefix`.
async fn to_page(ctx: &CheckCtx, user: &str, url: &str, prefix: &str) -> anyhow::Result<Page> {
    ctx.user_flow(user, Duration::from_secs(45))?
        .run_to_page(url, prefix)
        .await
}

/// What Login Flow v2 provisioning did.
pub(crate) struct Grant {
    pub user: &'static str,
    pub sub: String,
    /// The user's id at the resource server (what the app password logs in as).
    pub uid: String,
    pub status: String,
}

impl Grant {
    pub fn summary(&self) -> String {
        format!(
            "Login Flow v2 for {} (sub {}, resource-server user {}): final status {:?}",
            self.user, self.sub, self.uid, self.status
        )
    }
}

pub(super) async fn login_flow(ctx: &CheckCtx, lab: &Instance) -> anyhow::Result<Grant> {
    let user = GRANT_USER;
    let token = user_token(ctx, user, "openid").await?;
    let sub = sub_of(&token)?;
    ctx.step(format!(
        "Login Flow v2 for {user} at {}: {user} asks, grants at the login URL, polls",
        lab.name
    ));
    let p =
        provision::login_flow(ctx.http(), &ctx.evidence, &lab.mcp_url(), &token, &token).await?;
    let status = p.final_status().unwrap_or_default();
    ensure!(
        status == "provisioned",
        "provisioning {user} ended with status {status:?} (grant HTTP {}): {}",
        p.grant_status,
        crate::secret::redact(&p.status.text)
    );
    Ok(Grant {
        user,
        uid: ctx.resource_server()?.user_id(&sub),
        sub,
        status,
    })
}

/// What the proxy flow gave the harness (the MCP client).
pub(crate) struct Flow1 {
    pub user: &'static str,
    /// The IdP's tokens the proxy relayed (access, refresh, ID), each registered as a
    /// secret.
    pub tokens: Vec<Secret>,
}

impl Flow1 {
    pub fn summary(&self) -> String {
        let kinds: Vec<&str> = self.tokens.iter().map(|t| t.kind().label()).collect();
        format!(
            "Flow 1 (the proxy) for {}: the harness received {}",
            self.user,
            kinds.join(", ")
        )
    }
}

pub(super) async fn flow1(ctx: &CheckCtx, lab: &Instance) -> anyhow::Result<Flow1> {
    let user = FLOW1_USER;
    ctx.step(format!(
        "Flow 1 for {user} at {}: the harness as MCP client through its /oauth/authorize proxy",
        lab.name
    ));
    let code = proxy_flow::round_trip(ctx, &lab.base_url, user, "openid").await?;
    let resp = proxy_flow::redeem(ctx, &lab.base_url, &code, Some(&code.verifier)).await?;
    ensure!(
        resp.status == 200,
        "redeeming the proxy code failed: {}",
        resp.summary()
    );
    let body = resp.json_value()?;
    let tokens: Vec<Secret> = [
        ("access_token", SecretKind::AccessToken),
        ("refresh_token", SecretKind::RefreshToken),
        ("id_token", SecretKind::IdToken),
    ]
    .into_iter()
    .filter_map(|(k, kind)| body[k].as_str().map(|v| Secret::new(kind, v)))
    .collect();
    ensure!(
        !tokens.is_empty(),
        "the proxy's token response carries no token"
    );
    Ok(Flow1 { user, tokens })
}

/// What a tool told the user: the `message` of its JSON answer, else its first line.
pub(super) fn tool_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(crate::secret::redact))
        .unwrap_or_else(|| first_line(text))
}

pub(super) fn first_line(s: &str) -> String {
    crate::secret::redact(
        s.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow2_url_is_read_from_the_elicitation_message() {
        let m = "Please log in to Nextcloud at the following URL:\n\nhttp://127.0.0.1:4321/oauth/authorize-nextcloud?state=abc-DEF_12\n\nAfter completing the login, check the box below and click OK.";
        assert_eq!(
            authorize_url_in(m).as_deref(),
            Some("http://127.0.0.1:4321/oauth/authorize-nextcloud?state=abc-DEF_12")
        );
        assert_eq!(authorize_url_in("no url here"), None);
    }
}
