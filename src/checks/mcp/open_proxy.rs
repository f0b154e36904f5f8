//! The proxy with `ENABLE_DCR=true` (a second configuration of the same release): must
//! it still refuse an authorization request from a client id nobody registered?
//!
//! The MCP authorization specification lets MCP clients register dynamically; it does not
//! let an authorization server accept clients it never registered. A proxy that does
//! hands an authorization code for the user's IdP session to whatever redirect URI the
//! request names (RFC 9700 §4.1: open redirection of codes).

use std::time::Duration;

use anyhow::Context;

use super::super::{CheckCtx, CheckResult, flows, pass};
use super::proxy::{Outcome, UNKNOWN_CLIENT_REFUSAL};
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

/// The browser profile this check logs alice in with. In the shared one, the login could
/// land on an SSO session another check's first login just created with `offline_access`,
/// which Keycloak (26.1 and later) removes when that login's code is redeemed: the proxy's
/// code then fails with `invalid_grant` "Code not valid" (seen in about one run in three of
/// the MCP area, where this check starts first), which says nothing about the proxy.
const OWN_PROFILE: &str = "alice-MCP-21";

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
    let resp = ctx.http().get(&url).send().await.map_err(|e| {
        anyhow::anyhow!("/oauth/authorize did not answer ({e}): a broken call is no refusal")
    })?;
    let idp = ctx.discovery().await?.authorization_endpoint;
    let idp = idp.context("the realm's discovery has no authorization_endpoint")?;
    let outcome = Outcome::classify(&resp, &idp, &redirect_uri);
    if outcome != Outcome::ToIdp {
        return judge_refusal(&outcome, &client_id);
    }
    ctx.note(format!(
        "the proxy redirected ({}) to {}",
        resp.status,
        resp.header("location").unwrap_or_default()
    ));
    ctx.step("follow it in alice's browser (a profile of its own): where does the code go?");
    let mut flow = ctx.user_flow(flows::USER, Duration::from_secs(45))?;
    flow.profile = OWN_PROFILE;
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

/// Anything but a pass to the IdP must be the refusal RFC 6749 §4.1.2.1 asks for an
/// unknown client: no redirect, HTTP 400 or 401 with `unauthorized_client`,
/// `invalid_client` or `invalid_request` (a 404, a 429 or a 5xx is none; a transport
/// error fails the check before this).
fn judge_refusal(outcome: &Outcome, client_id: &str) -> CheckResult {
    match outcome.judge(&UNKNOWN_CLIENT_REFUSAL) {
        Ok(refusal) => pass(format!(
            "client id {client_id} (never registered) refused without a redirect: {refusal}"
        )),
        Err(instead) => anyhow::bail!(
            "with ENABLE_DCR=true the proxy neither passed client id {client_id} (never \
             registered) on nor refused it as {} asks ({}, no redirect): {instead}",
            UNKNOWN_CLIENT_REFUSAL.clause,
            UNKNOWN_CLIENT_REFUSAL.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Verdict;

    fn refused(status: u16, error: Option<&str>) -> Outcome {
        Outcome::Refused {
            status,
            error: error.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn only_a_client_error_naming_the_client_is_a_refusal() {
        let passed = judge_refusal(&refused(401, Some("unauthorized_client")), "x").unwrap();
        assert!(matches!(passed, Verdict::Pass(m) if m.contains("HTTP 401 unauthorized_client")));
        for not_refused in [
            refused(404, None),
            refused(429, Some("too_many_requests")),
            refused(400, None),
            Outcome::Other("HTTP 500 server_error".into()),
            Outcome::ErrorToClient {
                status: 302,
                error: "unauthorized_client".into(),
            },
        ] {
            let err = judge_refusal(&not_refused, "x").unwrap_err().to_string();
            assert!(err.contains("neither passed"), "{err}");
        }
    }
}
