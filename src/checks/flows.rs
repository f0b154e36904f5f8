//! Building blocks of the browser checks: a fresh public client, an authorization through
//! a user's browser profile, and redeeming the code, each recorded in the check's evidence.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::CheckCtx;
use crate::browser::login::{Credentials, Flow, FlowEnd};
use crate::browser::redirect::Callback;
use crate::oauth::discovery::ProviderMetadata;
use crate::oauth::pkce::{AuthorizationRequest, Pkce, random_value};
use crate::oauth::token::{self, TokenOutcome};
use crate::secret::Secret;

/// The user most browser checks log in as.
pub const USER: &str = "alice";

/// Registers a public client (no secret) whose redirect URI is the session's listener.
pub async fn public_client(ctx: &CheckCtx) -> anyhow::Result<String> {
    ctx.step("register a public client (RFC 7591, token_endpoint_auth_method none)");
    let metadata = json!({
        "redirect_uris": [ctx.session.listener.redirect_uri()],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    let reg = ctx
        .session
        .register_client(ctx.http(), ctx.realm()?, &metadata, None)
        .await?
        .client("registering a public client")?;
    Ok(reg.client_id)
}

/// A request for `client_id` to the listener, with fresh state and nonce and an S256
/// challenge: the starting point that checks then change.
pub fn request(
    ctx: &CheckCtx,
    client_id: &str,
    scope: &str,
    pkce: &Pkce,
) -> (AuthorizationRequest, String, String) {
    let (state, nonce) = (random_value(), random_value());
    let r = AuthorizationRequest::code(
        client_id,
        &ctx.session.listener.redirect_uri(),
        scope,
        &state,
        &nonce,
    )
    .s256(pkce);
    (r, state, nonce)
}

/// Runs `request` in `user`'s browser profile, logging in as `user` when asked.
pub async fn authorize(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    user: &str,
    request: &AuthorizationRequest,
    state: &str,
) -> anyhow::Result<FlowEnd> {
    let flow = ctx.user_flow(user, Duration::from_secs(45))?;
    run(ctx, meta, flow, request, state).await
}

/// Runs `request` in browser profile `profile`, logging in with `login` when asked.
pub async fn authorize_as(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    profile: &str,
    login: Credentials<'_>,
    request: &AuthorizationRequest,
    state: &str,
) -> anyhow::Result<FlowEnd> {
    let mut flow = ctx.user_flow(login.username, Duration::from_secs(45))?;
    flow.profile = profile;
    flow.login = Some(login);
    run(ctx, meta, flow, request, state).await
}

/// Sends `request` to the authorization endpoint through `flow`, noting where it ended.
async fn run(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    flow: Flow<'_>,
    request: &AuthorizationRequest,
    state: &str,
) -> anyhow::Result<FlowEnd> {
    let endpoint = meta
        .authorization_endpoint
        .as_deref()
        .context("no authorization_endpoint")?;
    let url = request.url(endpoint);
    ctx.step(format!("browser ({}): authorization request", flow.profile));
    ctx.note(format!("GET {}", crate::secret::redact(&url)));
    let end = flow.run(&url, state).await?;
    match &end {
        FlowEnd::Callback(c) => ctx.note(describe(c)),
        FlowEnd::Stopped {
            reason,
            url,
            page_error,
            capture,
        } => ctx.note(format!(
            "stopped: {reason} at {url}; page error {page_error:?}; {capture}"
        )),
    }
    Ok(end)
}

fn describe(c: &Callback) -> String {
    format!(
        "authorization response at {}: code {}, state {:?}, iss {:?}, error {:?} {:?}",
        c.path,
        if c.code.is_some() {
            "present"
        } else {
            "absent"
        },
        c.state,
        c.iss,
        c.error,
        c.error_description
    )
}

/// Redeems `code` at the token endpoint; every parameter optional on purpose.
pub async fn redeem(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    client_id: &str,
    secret: Option<&Secret>,
    code: &Secret,
    redirect_uri: Option<&str>,
    verifier: Option<&Secret>,
) -> anyhow::Result<TokenOutcome> {
    ctx.step("redeem the code at the token endpoint");
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("client_id", client_id),
    ];
    if let Some(r) = redirect_uri {
        params.push(("redirect_uri", r));
    }
    if let Some(v) = verifier {
        params.push(("code_verifier", v.expose()));
    }
    if let Some(s) = secret {
        params.push(("client_secret", s.expose()));
    }
    token::request(ctx.http(), meta.token_endpoint()?, &params).await
}

/// A complete, successful code flow with PKCE S256 for `user`: the callback, the verifier
/// used and the nonce sent.
pub async fn code(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    user: &str,
    client_id: &str,
    scope: &str,
) -> anyhow::Result<(Callback, Pkce, String)> {
    let pkce = Pkce::new();
    let (req, state, nonce) = request(ctx, client_id, scope, &pkce);
    let callback = authorize(ctx, meta, user, &req, &state).await?.callback()?;
    Ok((callback, pkce, nonce))
}
