//! Clients a check creates through the admin API, for settings DCR cannot make (the
//! token-exchange switch, a short token lifespan, missing default scopes). Each is
//! recorded by the session and deleted at teardown.

use serde_json::{Value, json};

use super::CheckCtx;
use crate::secret::{Secret, SecretKind};

/// A confidential client with a service account and `extra` settings merged in; returns
/// its client id and secret. `purpose` goes into the client id.
pub async fn service_client(
    ctx: &CheckCtx,
    purpose: &str,
    extra: Value,
) -> anyhow::Result<(String, Secret)> {
    let secret = Secret::generate(SecretKind::ClientSecret, 24);
    let rep = json!({
        "publicClient": false, "serviceAccountsEnabled": true, "standardFlowEnabled": false,
        "directAccessGrantsEnabled": false, "secret": secret.expose(),
    });
    let client_id = create(ctx, purpose, rep, extra).await?;
    Ok((client_id, secret))
}

/// A client from `base` with `extra` merged in (public clients, say); returns its id.
pub async fn create(
    ctx: &CheckCtx,
    purpose: &str,
    base: Value,
    extra: Value,
) -> anyhow::Result<String> {
    Ok(create_temporary(ctx, purpose, base, extra).await?.client_id)
}

/// A client [`create_temporary`] made, which the check deletes itself once done with it
/// ([`Temporary::delete`]); one it does not delete goes at teardown like any other.
pub struct Temporary {
    pub client_id: String,
    /// Keycloak's internal id, which the admin API deletes by.
    id: String,
}

impl Temporary {
    /// Deletes the client now, noting it in the check's evidence.
    pub async fn delete(self, ctx: &CheckCtx) -> anyhow::Result<()> {
        ctx.step(format!(
            "delete client {} through the admin API",
            self.client_id
        ));
        ctx.session
            .delete_admin_client(&ctx.realm()?.name, &self.id, &ctx.evidence)
            .await
    }
}

/// As [`create`], keeping what deleting it takes.
pub async fn create_temporary(
    ctx: &CheckCtx,
    purpose: &str,
    mut base: Value,
    extra: Value,
) -> anyhow::Result<Temporary> {
    let client_id = format!(
        "{purpose}-{}",
        crate::oauth::pkce::random_value().to_lowercase()
    );
    base["clientId"] = json!(client_id);
    if let (Some(r), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    ctx.step(format!("create client {client_id} through the admin API"));
    ctx.note(format!(
        "client settings: {}",
        crate::http::redact_json(&base)
    ));
    let id = ctx
        .session
        .create_admin_client(&ctx.realm()?.name, &base, &ctx.evidence)
        .await?;
    Ok(Temporary { client_id, id })
}

/// An access token of `client_id` by client credentials.
pub async fn service_token(
    ctx: &CheckCtx,
    client_id: &str,
    secret: &Secret,
) -> anyhow::Result<Secret> {
    let meta = ctx.discovery().await?;
    Ok(crate::oauth::token::client_credentials(
        ctx.http(),
        meta.token_endpoint()?,
        client_id,
        secret,
        None,
    )
    .await?
    .issued(&format!("client_credentials for {client_id}"))?
    .access_token)
}

/// A client whose access tokens live `lifespan_s` seconds, with the MCP audiences;
/// returns its client id and secret.
pub async fn short_lived_client(
    ctx: &CheckCtx,
    purpose: &str,
    lifespan_s: u32,
) -> anyhow::Result<(String, Secret)> {
    let settings = json!({
        "attributes": {"access.token.lifespan": lifespan_s.to_string()},
        "defaultClientScopes": ["basic", "mcp-audiences"],
    });
    service_client(ctx, purpose, settings).await
}

/// Waits until `token` has expired: its `exp` plus 2 s (noted in the evidence).
pub async fn wait_until_expired(ctx: &CheckCtx, token: &Secret) -> anyhow::Result<()> {
    let (_, claims) = crate::oauth::jwt::peek(token.expose())?;
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("the short-lived token has no exp"))?;
    let wait = exp - time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    ctx.note(format!("token expires at {exp}; waiting {wait}s"));
    // No condition to poll: expiry is a matter of the clock.
    tokio::time::sleep(std::time::Duration::from_secs(wait.max(0) as u64)).await;
    Ok(())
}

/// An access token that has expired: from a fresh client whose access tokens live 2 s
/// (with the MCP audiences), waited out.
pub async fn expired_token(ctx: &CheckCtx, purpose: &str) -> anyhow::Result<Secret> {
    let (client_id, secret) = short_lived_client(ctx, purpose, 2).await?;
    let token = service_token(ctx, &client_id, &secret).await?;
    wait_until_expired(ctx, &token).await?;
    Ok(token)
}
