//! Tokens the MCP server must refuse (RFC 6750 §3.1, RFC 9068 §4, MCP authorization):
//! expired, for another audience, from a foreign issuer with a valid signature; and a
//! token whose `scope` claim is empty.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use serde_json::json;

use super::super::{CheckCtx, CheckResult, pass};
use super::users::{USER, derived, mcp_url, token_for, tools_under};
use super::{bearer_challenge, initialize, resolves_to_metadata};
use crate::oauth::jwt;
use crate::oauth::token::{self, ACCESS_TOKEN_TYPE, Exchange};
use crate::secret::Secret;

/// Initializes with `token` and expects the 401 challenge naming resolvable metadata.
async fn expect_challenge(ctx: &CheckCtx, url: &str, token: &Secret, what: &str) -> CheckResult {
    ctx.step(format!("initialize with {what}"));
    let resp = initialize(ctx, url, Some(token)).await?;
    let (_, metadata, error) = bearer_challenge(&resp)?;
    resolves_to_metadata(ctx, &metadata, url).await?;
    pass(format!(
        "{what}: 401, error {error:?}, resource_metadata resolves"
    ))
}

pub(super) async fn expired(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let t = super::super::admin_clients::expired_token(ctx, "mcp-short-lived").await?;
    expect_challenge(ctx, &url, &t, "an expired token").await
}

pub(super) async fn wrong_audience(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let openid: BTreeSet<String> = ["openid".to_owned()].into();
    let subject = token_for(ctx, USER, &openid).await?;
    ctx.step("exchange alice's token for audience nextcloud only");
    let meta = ctx.discovery().await?;
    let mcp_client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        audience: Some("nextcloud"),
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
        jwt::audiences(&claims) == ["nextcloud"],
        "the exchanged token's aud is {:?}",
        jwt::audiences(&claims)
    );
    expect_challenge(
        ctx,
        &url,
        &t.access_token,
        "a token for audience nextcloud only",
    )
    .await
}

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
    expect_challenge(
        ctx,
        &url,
        &t.access_token,
        "a token from a foreign issuer with a valid signature",
    )
    .await
}

/// Least privilege: a token with an empty `scope` claim unlocks no scoped tool.
pub(super) async fn empty_scope(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let audience = json!({
        "name": "audience nextcloud-mcp-server", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
        "config": {"included.client.audience": "nextcloud-mcp-server", "access.token.claim": "true", "id.token.claim": "false"}
    });
    let (client_id, secret) = super::super::admin_clients::service_client(
        ctx,
        "mcp-no-scopes",
        json!({"defaultClientScopes": ["basic"], "optionalClientScopes": [], "fullScopeAllowed": false, "protocolMappers": [audience]}),
    )
    .await?;
    let t = super::super::admin_clients::service_token(ctx, &client_id, &secret).await?;
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
