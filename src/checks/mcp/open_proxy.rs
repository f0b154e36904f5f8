//! The proxy with `ENABLE_DCR=true` (a second configuration of the same release): must
//! it still refuse an authorization request from a client id nobody registered?
//!
//! The MCP authorization specification lets MCP clients register dynamically; it does not
//! let an authorization server accept clients it never registered. A proxy that does
//! hands an authorization code for the user's IdP session to whatever redirect URI the
//! request names (RFC 9700 §4.1: open redirection of codes).

use std::time::Duration;

use super::super::{CheckCtx, CheckResult, flows, pass};
use crate::browser::login::FlowEnd;
use crate::oauth::pkce::{AuthorizationRequest, Pkce, random_value};

/// Starts `mcp-server-dcr`: the session's release and wiring with `ENABLE_DCR=true`.
async fn start_open_instance(ctx: &CheckCtx) -> anyhow::Result<String> {
    ctx.step("start a second instance of the release with ENABLE_DCR=true");
    let instance = ctx
        .instances()?
        .start("mcp-server-dcr", |s| {
            s.set_env.push(("ENABLE_DCR".into(), "true".into()))
        })
        .await
        .map_err(|why| anyhow::anyhow!("the ENABLE_DCR instance did not start: {why}"))?;
    Ok(instance.base_url)
}

pub(super) async fn unregistered_client(ctx: &CheckCtx) -> CheckResult {
    let base = start_open_instance(ctx).await?;
    let client_id = format!("never-registered-{}", random_value().to_lowercase());
    let redirect_uri = format!(
        "{}/never-registered-callback",
        ctx.session.listener.base_url()
    );
    let pkce = Pkce::new();
    let state = random_value();
    let req = AuthorizationRequest::code(&client_id, &redirect_uri, "openid", &state, "")
        .without("nonce")
        .s256(&pkce);
    let url = req.url(&format!("{base}/oauth/authorize"));
    ctx.step(format!(
        "/oauth/authorize with client id {client_id} and redirect URI {redirect_uri}"
    ));
    let resp = ctx.http().get(&url).send().await?;
    if !(300..400).contains(&resp.status) {
        return pass(format!("refused: {}", resp.summary()));
    }
    ctx.note(format!(
        "the proxy redirected ({}) to {}",
        resp.status,
        resp.header("location").unwrap_or_default()
    ));
    ctx.step("follow it in alice's browser: where does the code go?");
    let flow = ctx.user_flow(flows::USER, Duration::from_secs(45))?;
    let delivered = match flow.run(&url, &state).await? {
        FlowEnd::Callback(c) if c.code.is_some() => {
            format!("a code was delivered to {} (path {})", redirect_uri, c.path)
        }
        FlowEnd::Callback(c) => format!("an error was delivered to {redirect_uri}: {:?}", c.error),
        FlowEnd::Stopped { reason, url, .. } => format!("the browser stopped at {url}: {reason}"),
    };
    anyhow::bail!(
        "with ENABLE_DCR=true the proxy accepted client id {client_id}, which nobody registered, and redirected to the IdP; {delivered}"
    )
}
