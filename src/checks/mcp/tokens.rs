//! Tokens the MCP server must refuse (RFC 6750 §3.1, RFC 9068 §4, MCP authorization):
//! expired, for another audience, from a foreign issuer with a valid signature, each next
//! to a sibling token it must accept; and a token whose `scope` claim is empty.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use serde_json::json;

use super::super::{CheckCtx, CheckResult, admin_clients, pass};
use super::bearer::{expect_accepted, expect_invalid_token};
use super::users::{USER, derived, mcp_url, token_for, tools_under};
use crate::oauth::jwt;
use crate::oauth::token::{self, ACCESS_TOKEN_TYPE, Exchange};
use crate::secret::Secret;

/// How long the tokens of MCP-14's client live: long enough for the control to be
/// accepted while the token is fresh, short enough to wait out.
const SHORT_LIFESPAN_S: u32 = 5;

/// The refusal every check here asks for, and the control it is judged against.
const REFUSAL: &str =
    "401 with error=\"invalid_token\" and a resource_metadata that resolves (RFC 6750 §3.1)";

/// RFC 6750 §3.1, RFC 7519 §4.1.4: the same token, accepted while fresh, is refused once
/// it has expired.
pub(super) async fn expired(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let (client_id, secret) =
        admin_clients::short_lived_client(ctx, "mcp-short-lived", SHORT_LIFESPAN_S).await?;
    let t = admin_clients::service_token(ctx, &client_id, &secret).await?;
    expect_accepted(ctx, &url, &t, "the token while it is fresh").await?;
    ctx.step("wait until the token has expired");
    admin_clients::wait_until_expired(ctx, &t).await?;
    expect_invalid_token(ctx, &url, &t, "the same token once expired").await?;
    pass(format!(
        "expired: {REFUSAL}; the same token was accepted while fresh (initialize 200)"
    ))
}

/// Alice's token exchanged by the MCP server's client for `audience`.
async fn exchanged_for(ctx: &CheckCtx, subject: &Secret, audience: &str) -> anyhow::Result<Secret> {
    ctx.step(format!(
        "exchange alice's token for audience {audience} only"
    ));
    let meta = ctx.discovery().await?;
    let mcp_client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        audience: Some(audience),
        ..Default::default()
    };
    let t = token::exchange(
        ctx.http(),
        meta.token_endpoint()?,
        mcp_client,
        Some(&ctx.client_secret(mcp_client)?),
        &x,
    )
    .await?
    .issued("exchange")?;
    let (_, claims) = jwt::peek(t.access_token.expose())?;
    ensure!(
        jwt::audiences(&claims) == [audience],
        "the exchanged token's aud is {:?}, expected [{audience:?}]",
        jwt::audiences(&claims)
    );
    Ok(t.access_token)
}

/// RFC 9068 §4, RFC 8707 §2: a token for another audience is refused; the same exchange
/// for the MCP server's own audience (same user, client and issuer) is the control.
pub(super) async fn wrong_audience(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let openid: BTreeSet<String> = ["openid".to_owned()].into();
    let subject = token_for(ctx, USER, &openid).await?;
    let own = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let sibling = exchanged_for(ctx, &subject, own).await?;
    expect_accepted(
        ctx,
        &url,
        &sibling,
        &format!("the exchange for audience {own}"),
    )
    .await?;
    let other = exchanged_for(ctx, &subject, "nextcloud").await?;
    expect_invalid_token(ctx, &url, &other, "a token for audience nextcloud only").await?;
    pass(format!(
        "audience nextcloud only: {REFUSAL}; the same exchange for audience {own} is accepted \
         (initialize 200)"
    ))
}

/// RFC 9068 §4, RFC 7519 §4.1.1: a token whose `iss` is not the issuer is refused even
/// with a valid signature; the same client's token from the issuer is the control.
pub(super) async fn foreign_issuer(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    // Keycloak takes the issuer from the request's host: the same realm and key reached
    // as `localhost` issues tokens with another `iss` and a valid signature.
    let realm = ctx.realm()?;
    let foreign = realm.issuer().replacen("127.0.0.1", "localhost", 1);
    ensure!(
        foreign != realm.issuer(),
        "the issuer {} has no 127.0.0.1 to replace",
        realm.issuer()
    );
    ctx.step(format!("client_credentials at {foreign}"));
    let mcp_client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let endpoint = format!("{foreign}/protocol/openid-connect/token");
    let t = token::client_credentials(
        ctx.http(),
        &endpoint,
        mcp_client,
        &ctx.client_secret(mcp_client)?,
        None,
    )
    .await?
    .issued("client_credentials")?;
    let (_, claims) = jwt::peek(t.access_token.expose())?;
    ensure!(
        claims["iss"] == foreign.as_str(),
        "the token's iss is {}, expected {foreign}",
        claims["iss"]
    );
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    jwt::verify(&t.access_token, &keys, &jwt::Expect::default())
        .context("the foreign-issuer token must carry a valid signature")?;
    let (sibling, _) = ctx
        .verified_client_credentials(mcp_client, &ctx.client_secret(mcp_client)?)
        .await?;
    let own = format!("the same client's token from {}", realm.issuer());
    expect_accepted(ctx, &url, &sibling.access_token, &own).await?;
    expect_invalid_token(
        ctx,
        &url,
        &t.access_token,
        "a token from a foreign issuer with a valid signature",
    )
    .await?;
    pass(format!(
        "iss {foreign}: {REFUSAL}; {own} is accepted (initialize 200)"
    ))
}

/// Least privilege: a token with an empty `scope` claim unlocks no scoped tool.
pub(super) async fn empty_scope(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let audience = json!({
        "name": "audience nextcloud-mcp-server", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
        "config": {"included.client.audience": "nextcloud-mcp-server", "access.token.claim": "true", "id.token.claim": "false"}
    });
    let (client_id, secret) = admin_clients::service_client(
        ctx,
        "mcp-no-scopes",
        json!({"defaultClientScopes": ["basic"], "optionalClientScopes": [], "fullScopeAllowed": false, "protocolMappers": [audience]}),
    )
    .await?;
    let t = admin_clients::service_token(ctx, &client_id, &secret).await?;
    let (_, claims) = jwt::peek(t.expose())?;
    ctx.note(format!("claims: {}", jwt::claims_for_evidence(&claims)));
    ensure!(
        jwt::scopes(&claims).is_empty(),
        "the token's scope claim is not empty: {:?}",
        claims["scope"]
    );
    ctx.step("tools/list with it");
    let listed = tools_under(&url, &t).await?;
    let scoped: Vec<&String> = listed
        .iter()
        .filter(|t| d.map.get(*t).is_some_and(|n| !n.is_empty()))
        .collect();
    ensure!(
        scoped.is_empty(),
        "a token with an empty scope claim is shown {} tools that need scopes (of {} listed), e.g. {:?}",
        scoped.len(),
        listed.len(),
        scoped.iter().take(3).collect::<Vec<_>>()
    );
    pass(format!(
        "no scoped tool listed ({} tools listed)",
        listed.len()
    ))
}
