//! TOKEN: what happens to user tokens after the code flow: refresh and rotation, offline
//! tokens, revocation (RFC 7009) and introspection (RFC 7662).

use anyhow::{Context, ensure};

use super::flows;
use super::{Area, Check, CheckCtx, CheckResult, Need, Subject, pass};
use crate::check_fn;
use crate::oauth::discovery::ProviderMetadata;
use crate::oauth::jwt;
use crate::oauth::token::{self, Refusal, TokenOutcome, Tokens};

const fn token_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Token,
        spec,
        subject: Subject::Keycloak,
        needs: &[Need::Browser],
        spec_revisions: super::NO_REVISION,
        run,
    }
}

pub const CHECKS: &[Check] = &[
    token_check(
        "TOKEN-01",
        "a refresh grant returns new tokens and, with rotation on, the old refresh token is refused",
        "RFC6749-6; RFC9700-4.14.2",
        check_fn!(refresh_rotation),
    ).revisions(super::ALL_REVISIONS),
    token_check(
        "TOKEN-02",
        "an offline token survives the end of the user's sessions; an online one does not",
        "OIDC-Core-11; Keycloak-offline-access",
        check_fn!(offline_survives_logout),
    ),
    token_check(
        "TOKEN-03",
        "a revoked refresh token no longer refreshes",
        "RFC7009-2.1; RFC7009-2.2",
        check_fn!(revoked_refresh_token),
    ),
    token_check(
        "TOKEN-04",
        "a revoked access token introspects as inactive",
        "RFC7009-2.1; RFC7662-2.2",
        check_fn!(revoked_access_token),
    ),
];

/// Tokens for `user` and a fresh public client (so revocations touch only this check).
async fn tokens_for(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    user: &str,
    scope: &str,
) -> anyhow::Result<(String, Tokens)> {
    let client_id = flows::public_client(ctx).await?;
    let (callback, pkce, _) = flows::code(ctx, meta, user, &client_id, scope).await?;
    let redirect = ctx.session.listener.redirect_uri();
    let tokens = flows::redeem(
        ctx,
        meta,
        &client_id,
        None,
        callback.code()?,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("redeeming the code")?;
    Ok((client_id, tokens))
}

async fn introspect(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    t: &crate::secret::Secret,
) -> anyhow::Result<bool> {
    let endpoint = meta
        .introspection_endpoint
        .as_deref()
        .context("no introspection_endpoint")?;
    let client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let secret = ctx.client_secret(client)?;
    Ok(token::introspect(ctx.http(), endpoint, client, &secret, t)
        .await?
        .0)
}

/// RFC 6749 §5.2: a refresh token that is invalid, expired or revoked is refused with
/// `invalid_grant`, HTTP 400 (any other refusal, a 401 or a 5xx, is not that answer).
fn invalid_grant(outcome: TokenOutcome, what: &str) -> anyhow::Result<Refusal> {
    let r = outcome.refused(what)?;
    ensure!(
        r.status == 400 && r.error == "invalid_grant",
        "{what}: got {r}, expected HTTP 400 invalid_grant (RFC 6749 §5.2)"
    );
    Ok(r)
}

async fn refresh_rotation(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let (client_id, first) = tokens_for(ctx, &meta, "bob", "openid").await?;
    let rt = first.refresh_token.clone().context("no refresh token")?;
    ctx.step("refresh");
    let second = token::refresh(ctx.http(), meta.token_endpoint()?, &client_id, None, &rt)
        .await?
        .issued("the refresh grant")?;
    ensure!(
        second.access_token != first.access_token,
        "the refresh returned the same access token"
    );
    let new_rt = second
        .refresh_token
        .clone()
        .context("the refresh returned no refresh token")?;
    ensure!(
        new_rt != rt,
        "the refresh returned the same refresh token although rotation is on"
    );
    ctx.step("the old refresh token again");
    let old = token::refresh(ctx.http(), meta.token_endpoint()?, &client_id, None, &rt).await?;
    let old = invalid_grant(old, "refreshing with the rotated-out token")?;
    pass(format!(
        "new tokens issued; the old refresh token is refused ({old})"
    ))
}

async fn offline_survives_logout(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    // carol only: ending her sessions must not touch tokens other checks hold.
    let (offline_client, offline) =
        tokens_for(ctx, &meta, "carol", "openid offline_access").await?;
    let (online_client, online) = tokens_for(ctx, &meta, "carol", "openid").await?;
    let (ort, nrt) = (
        offline
            .refresh_token
            .clone()
            .context("no offline refresh token")?,
        online
            .refresh_token
            .clone()
            .context("no online refresh token")?,
    );
    let (_, offline_claims) = jwt::peek(ort.expose())?;
    let (_, online_claims) = jwt::peek(nrt.expose())?;
    ensure!(
        offline_claims["typ"] == "Offline",
        "the offline refresh token's typ is {}, expected Offline",
        offline_claims["typ"]
    );
    ensure!(
        online_claims["typ"] == "Refresh",
        "the online refresh token's typ is {}, expected Refresh",
        online_claims["typ"]
    );
    // POST /users/{id}/logout would also set carol's not-before, which Keycloak applies to
    // offline tokens too ("Stale token"); ending each online session leaves that out.
    ctx.step("end carol's online sessions through the admin API, one by one");
    let realm = &ctx.realm()?.name;
    let admin = ctx.admin();
    let users = admin
        .get_json(&format!("/realms/{realm}/users?exact=true&username=carol"))
        .await?;
    let id = users[0]["id"].as_str().context("no user carol")?;
    let sessions = admin
        .get_json(&format!("/realms/{realm}/users/{id}/sessions"))
        .await?;
    let ids: Vec<&str> = sessions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    ensure!(!ids.is_empty(), "carol has no online session to end");
    for sid in &ids {
        let resp = admin
            .delete(&format!("/realms/{realm}/sessions/{sid}"))
            .await?;
        ensure!(
            resp.status == 204,
            "ending session {sid} answered {}",
            resp.summary()
        );
    }
    ctx.note(format!("ended {} online session(s)", ids.len()));
    ctx.step("refresh both");
    let endpoint = meta.token_endpoint()?;
    let on = token::refresh(ctx.http(), endpoint, &online_client, None, &nrt).await?;
    let off = token::refresh(ctx.http(), endpoint, &offline_client, None, &ort).await?;
    let on = invalid_grant(on, "refreshing the online token after the logout")?;
    match off {
        token::TokenOutcome::Issued(_) => pass(format!(
            "the offline token refreshes after the logout; the online one is refused ({on})"
        )),
        token::TokenOutcome::Refused(r) => anyhow::bail!(
            "the offline refresh token is refused after the user's sessions were ended: {r}"
        ),
    }
}

async fn revoked_refresh_token(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let (client_id, t) = tokens_for(ctx, &meta, "bob", "openid").await?;
    let rt = t.refresh_token.clone().context("no refresh token")?;
    ctx.step("revoke the refresh token (RFC 7009)");
    let endpoint = meta
        .revocation_endpoint
        .as_deref()
        .context("no revocation_endpoint")?;
    let status =
        token::revoke(ctx.http(), endpoint, &client_id, None, &rt, "refresh_token").await?;
    ensure!(
        status == 200,
        "revocation answered HTTP {status}, expected 200 (RFC 7009 §2.2)"
    );
    ctx.step(format!(
        "refresh with it until refused (RFC 7009 §2.1 allows a propagation delay, to be kept \
         short: at most {}s here)",
        REVOCATION_WINDOW.as_secs()
    ));
    let revoked = std::time::Instant::now();
    let mut issued = 0;
    loop {
        match token::refresh(ctx.http(), meta.token_endpoint()?, &client_id, None, &rt).await? {
            TokenOutcome::Issued(_) if revoked.elapsed() < REVOCATION_WINDOW => {
                issued += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            outcome => {
                let r = invalid_grant(outcome, "refreshing with a revoked token")?;
                return pass(format!(
                    "revoked (200); refresh refused ({r}) {} ms after the revocation, after \
                     {issued} refresh(es) that still succeeded",
                    revoked.elapsed().as_millis()
                ));
            }
        }
    }
}

/// How long a revoked refresh token may still refresh: RFC 7009 §2.1 allows a propagation
/// delay ("implementations should minimize that window"). Keycloak refuses at once with
/// refresh-token rotation on; with it off, a refresh right after the revocation was seen to
/// succeed once.
const REVOCATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

async fn revoked_access_token(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let (client_id, t) = tokens_for(ctx, &meta, "bob", "openid").await?;
    ctx.step("introspect before revocation");
    ensure!(
        introspect(ctx, &meta, &t.access_token).await?,
        "the fresh access token introspects as inactive"
    );
    ctx.step("revoke the access token (RFC 7009)");
    let endpoint = meta
        .revocation_endpoint
        .as_deref()
        .context("no revocation_endpoint")?;
    let status = token::revoke(
        ctx.http(),
        endpoint,
        &client_id,
        None,
        &t.access_token,
        "access_token",
    )
    .await?;
    ensure!(
        status == 200,
        "revocation answered HTTP {status}, expected 200"
    );
    ctx.step("introspect after revocation");
    ensure!(
        !introspect(ctx, &meta, &t.access_token).await?,
        "the revoked access token still introspects as active"
    );
    pass("active before revocation, inactive after")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Http;
    use crate::secret::{Secret, SecretKind};
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// A refresh grant against a token endpoint that answers `answer`, judged.
    async fn judged(answer: ResponseTemplate) -> anyhow::Result<Refusal> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let http = Http::new(std::time::Duration::from_secs(2));
        let rt = Secret::new(SecretKind::RefreshToken, "rt-under-test-123");
        let endpoint = format!("{}/token", server.uri());
        let outcome = token::refresh(&http, &endpoint, "c", None, &rt).await?;
        invalid_grant(outcome, "refreshing")
    }

    fn error(status: u16, error: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({"error": error}))
    }

    #[tokio::test]
    async fn only_400_invalid_grant_is_the_refusal_of_a_dead_refresh_token() {
        assert!(judged(error(400, "invalid_grant")).await.is_ok());
        for wrong in [
            error(401, "invalid_grant"),
            error(400, "invalid_request"),
            error(500, "server_error"),
            ResponseTemplate::new(404),
        ] {
            let why = judged(wrong).await.unwrap_err().to_string();
            assert!(why.contains("expected HTTP 400 invalid_grant"), "{why}");
        }
        let issued = ResponseTemplate::new(200)
            .set_body_json(json!({"access_token": "at-123456", "token_type": "Bearer"}));
        assert!(judged(issued).await.is_err());
    }
}
