//! The MCP server's authorization proxy end to end, through the browser: an MCP client
//! (the harness) at `/oauth/authorize`, Keycloak's login page, the proxy's
//! `/oauth/callback`, back to the client with a proxy code, redeemed at `/oauth/token`.

use std::time::Duration;

use anyhow::{Context, ensure};

use super::super::flows;
use super::super::{CheckCtx, CheckResult, pass};
use crate::browser::login::FlowEnd;
use crate::http::Response;
use crate::oauth::pkce::{AuthorizationRequest, Pkce, random_value};
use crate::secret::Secret;

/// A proxy code as the client received it, with the verifier it must present.
pub(crate) struct ProxyCode {
    pub code: Secret,
    pub verifier: Secret,
    pub redirect_uri: String,
}

/// The MCP server's base URL (the check is blocked when the server did not start).
fn base(ctx: &CheckCtx) -> anyhow::Result<String> {
    ctx.mcp_server().map(|m| m.base_url.clone())
}

/// The harness's authorization request at the proxy (S256, `scope`, no nonce: the
/// proxy is an OAuth authorization server to its clients).
fn request(
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    pkce: &Pkce,
) -> (AuthorizationRequest, String) {
    let state = random_value();
    let r = AuthorizationRequest::code(client_id, redirect_uri, scope, &state, "").s256(pkce);
    (r.without("nonce"), state)
}

/// Runs an authorization through the proxy at `base` as `user`; the proxy code.
pub(crate) async fn round_trip(
    ctx: &CheckCtx,
    base: &str,
    user: &str,
    scope: &str,
) -> anyhow::Result<ProxyCode> {
    let client = ctx.harness_client()?;
    let pkce = Pkce::new();
    let (req, state) = request(&client.client_id, &client.redirect_uri, scope, &pkce);
    let end = browse(
        ctx,
        user,
        &req.url(&format!("{base}/oauth/authorize")),
        &state,
        Duration::from_secs(45),
    )
    .await?;
    let callback = end.callback()?;
    Ok(ProxyCode {
        code: callback.code()?.clone(),
        verifier: pkce.verifier,
        redirect_uri: client.redirect_uri.clone(),
    })
}

/// Opens `url` in `user`'s profile and follows the pages (login, consent).
async fn browse(
    ctx: &CheckCtx,
    user: &str,
    url: &str,
    state: &str,
    timeout: Duration,
) -> anyhow::Result<FlowEnd> {
    let flow = ctx.user_flow(user, timeout)?;
    ctx.step(format!("browser ({user}): {}", crate::secret::redact(url)));
    flow.run(url, state).await
}

/// `/oauth/token` with the proxy code; the verifier optional on purpose.
pub(crate) async fn redeem(
    ctx: &CheckCtx,
    base: &str,
    code: &ProxyCode,
    verifier: Option<&Secret>,
) -> anyhow::Result<Response> {
    ctx.step("redeem the proxy code at /oauth/token");
    let client = ctx.harness_client()?;
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code.code.expose()),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", code.redirect_uri.as_str()),
    ];
    if let Some(v) = verifier {
        params.push(("code_verifier", v.expose()));
    }
    Ok(ctx
        .http()
        .post(format!("{base}/oauth/token"))
        .form(&params)
        .send()
        .await?)
}

fn refused_invalid_grant(resp: &Response, what: &str) -> anyhow::Result<String> {
    ensure!(
        resp.status == 400,
        "{what}: expected HTTP 400 invalid_grant, got {}",
        resp.summary()
    );
    let (error, desc) = resp.oauth_error().context("no OAuth error body")?;
    ensure!(
        error == "invalid_grant",
        "{what}: expected invalid_grant, got {error} ({desc:?})"
    );
    Ok(format!("{error}: {}", desc.unwrap_or_default()))
}

pub(super) async fn wrong_verifier(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let code = round_trip(ctx, &base, flows::USER, "openid").await?;
    let wrong = Pkce::new().verifier;
    let resp = redeem(ctx, &base, &code, Some(&wrong)).await?;
    let why = refused_invalid_grant(&resp, "a wrong code_verifier")?;
    pass(format!("refused: {why}"))
}

pub(super) async fn reused_code(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let code = round_trip(ctx, &base, flows::USER, "openid").await?;
    let first = redeem(ctx, &base, &code, Some(&code.verifier)).await?;
    ensure!(
        first.status == 200,
        "the first redemption failed: {}",
        first.summary()
    );
    let second = redeem(ctx, &base, &code, Some(&code.verifier)).await?;
    let why = refused_invalid_grant(&second, "a reused proxy code")?;
    pass(format!("first redemption 200; second refused: {why}"))
}

/// RFC 9700 §2.1.1 and §4.5: the proxy's own code flow toward Keycloak must resist code
/// injection (PKCE, or a nonce it verifies). The harness injects a code minted for the
/// proxy's state but with another nonce; a proxy that verifies the nonce refuses it.
pub(super) async fn code_injection(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let client = ctx.harness_client()?;
    let pkce = Pkce::new();
    let (req, state) = request(&client.client_id, &client.redirect_uri, "openid", &pkce);
    ctx.step("start at the proxy; read where it sends the browser");
    let resp = ctx
        .http()
        .get(req.url(&format!("{base}/oauth/authorize")))
        .send()
        .await?;
    let location = resp
        .header("location")
        .context("the proxy did not redirect to the IdP")?
        .to_owned();
    let idp_url = url::Url::parse(&location)?;
    let params: Vec<(String, String)> = idp_url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let has = |k: &str| params.iter().any(|(key, _)| key == k);
    ctx.note(format!(
        "the proxy's request to the IdP carries code_challenge: {}, nonce: {}",
        has("code_challenge"),
        has("nonce")
    ));
    ensure!(
        has("code_challenge") || has("nonce"),
        "the proxy's request to the IdP carries neither PKCE nor a nonce"
    );
    let injected: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            if k == "nonce" {
                (k.clone(), format!("injected-{}", random_value()))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let mut injected_url = idp_url.clone();
    injected_url
        .query_pairs_mut()
        .clear()
        .extend_pairs(injected.iter());
    ctx.step("the same request to the IdP with another nonce: the code it yields reaches the proxy's callback");
    let end = browse(
        ctx,
        flows::USER,
        injected_url.as_str(),
        &state,
        Duration::from_secs(10),
    )
    .await?;
    match end {
        FlowEnd::Callback(c) if c.code.is_some() => anyhow::bail!(
            "the proxy accepted a code whose ID token carries another nonce and issued a proxy code to the client"
        ),
        FlowEnd::Callback(c) => pass(format!(
            "refused: the client got error {:?} ({:?})",
            c.error, c.error_description
        )),
        FlowEnd::Stopped { url, reason, .. } => {
            // The browser must have got as far as the proxy's callback, which refused.
            ensure!(
                url.starts_with(&format!("{base}/oauth/callback")),
                "the injected flow stopped before the proxy's callback, at {url} ({reason}); nothing was proven"
            );
            pass(format!(
                "refused at the proxy's callback ({url}); no proxy code reached the client"
            ))
        }
    }
}
