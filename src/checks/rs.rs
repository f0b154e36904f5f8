//! RS: the resource server (Nextcloud's `user_oidc`, or its stand-in in the native
//! backend) accepts the tokens it should — an exchanged token, naming the right user —
//! and refuses the rest with Nextcloud's OCS "not logged in" (statuscode 997).

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::{Area, Check, CheckCtx, CheckResult, Need, Subject, pass, skip};
use crate::check_fn;
use crate::http::Response;
use crate::nextcloud::AuthKind;
use crate::oauth::token::{self, ACCESS_TOKEN_TYPE, Exchange};
use crate::oauth::{forge, jwt};
use crate::secret::Secret;

const fn rs_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    needs: &'static [Need],
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Rs,
        spec,
        subject: Subject::ResourceServer,
        needs,
        spec_revisions: super::NO_REVISION,
        run,
    }
}

const RS: &[Need] = &[Need::ResourceServer];
const RS_USER: &[Need] = &[Need::ResourceServer, Need::Browser];

pub const CHECKS: &[Check] = &[
    rs_check(
        "RS-01",
        "an exchanged token is accepted and names the user, with user_oidc's user id",
        "RFC8693-2.2.1; RFC6750-2.1; Nextcloud-user_oidc-bearer",
        RS_USER,
        check_fn!(exchanged_accepted),
    ),
    rs_check(
        "RS-02",
        "a token for another audience is refused",
        "RFC9068-4; RFC8707-2",
        RS_USER,
        check_fn!(other_audience),
    ),
    rs_check(
        "RS-03",
        "an expired token is refused",
        "RFC9068-4; RFC7519-4.1.4",
        RS,
        check_fn!(expired),
    ),
    rs_check(
        "RS-04",
        "a token signed with another key (Keycloak's kid) is refused",
        "RFC9068-4; RFC7515-5.2",
        RS_USER,
        check_fn!(wrong_key),
    ),
    rs_check(
        "RS-05",
        "a token with alg none is refused",
        "RFC8725-3.1; RFC9068-4",
        RS_USER,
        check_fn!(alg_none),
    ),
    rs_check(
        "RS-06",
        "HS256 signed with the RSA public key as secret is refused",
        "RFC8725-3.1; RFC8725-2.1",
        RS_USER,
        check_fn!(hs256_confusion),
    ),
    rs_check(
        "RS-07",
        "a token with an unknown kid is refused",
        "RFC7515-4.1.4; RFC9068-4",
        RS_USER,
        check_fn!(unknown_kid),
    ),
    rs_check(
        "RS-08",
        "a token from a foreign issuer with a valid signature is refused",
        "RFC9068-4; RFC7519-4.1.1",
        RS,
        check_fn!(wrong_issuer),
    ),
    rs_check(
        "RS-09",
        "a token without sub is refused",
        "RFC9068-2.2; Nextcloud-user_oidc-uid-mapping",
        RS_USER,
        check_fn!(missing_sub),
    ),
    rs_check(
        "RS-10",
        "a token without aud is refused",
        "RFC9068-4; RFC9068-2.2",
        RS,
        check_fn!(missing_aud),
    ),
];

/// The resource server's base URL (every RS check needs one, so the runner reports the
/// check unavailable where there is none).
fn base(ctx: &CheckCtx) -> anyhow::Result<String> {
    Ok(ctx.resource_server()?.base_url.clone())
}

/// `GET /ocs/v2.php/cloud/user?format=json` with `token` as bearer.
async fn whoami(
    ctx: &CheckCtx,
    base: &str,
    token: &Secret,
    what: &str,
) -> anyhow::Result<Response> {
    ctx.step(format!("OCS cloud/user with {what}"));
    Ok(ctx
        .http()
        .get(format!("{base}/ocs/v2.php/cloud/user"))
        .query(&[("format", "json")])
        .header("OCS-APIRequest", "true")
        .bearer(token)
        .send()
        .await?)
}

/// Requires Nextcloud's OCS "Current user is not logged in": HTTP 401, statuscode 997.
/// Where the resource server says why it refused (the stand-in's request log), the reason
/// goes into the evidence and the message; a real Nextcloud keeps it to itself.
async fn expect_refused(ctx: &CheckCtx, base: &str, token: &Secret, what: &str) -> CheckResult {
    let resp = whoami(ctx, base, token, what).await?;
    let body: Value = resp.json().unwrap_or(Value::Null);
    let code = &body["ocs"]["meta"]["statuscode"];
    ensure!(
        resp.status == 401 && code == 997,
        "{what}: expected HTTP 401 with OCS statuscode 997, got {} (statuscode {code})",
        resp.summary()
    );
    let reason = match stated_reason(ctx, token) {
        Some(reason) => {
            ctx.note(format!("the resource server's reason: {reason}"));
            format!("; the stand-in's reason: {reason}")
        }
        None => String::new(),
    };
    pass(format!(
        "{what}: HTTP 401, OCS 997 {:?}{reason}",
        body["ocs"]["meta"]["message"].as_str().unwrap_or_default()
    ))
}

/// Why the resource server refused `token`, if it keeps a request log that says: the last
/// logged request that carried this token (matched by fingerprint, never by value).
fn stated_reason(ctx: &CheckCtx, token: &Secret) -> Option<String> {
    let log = ctx.resource_server().ok()?.request_log.as_ref()?;
    let sent = AuthKind::Bearer {
        fingerprint: token.fingerprint(),
    };
    log.snapshot()
        .into_iter()
        .rev()
        .find(|r| r.auth == sent)
        .and_then(|r| r.refusal)
}

/// Requires acceptance, as a control before a refusal means anything.
async fn expect_accepted(
    ctx: &CheckCtx,
    base: &str,
    token: &Secret,
    what: &str,
) -> anyhow::Result<Value> {
    let resp = whoami(ctx, base, token, what).await?;
    ensure!(
        resp.status == 200,
        "{what} is not accepted (the control): {}",
        resp.summary()
    );
    Ok(resp.json::<Value>()?["ocs"]["data"].clone())
}

/// Alice's token exchanged by the MCP server for `audience`.
pub(super) async fn exchanged(ctx: &CheckCtx, audience: &str) -> anyhow::Result<Secret> {
    ctx.step("alice's token (browser), exchanged by nextcloud-mcp-server");
    let subject = ctx
        .session
        .user_tokens(ctx.http(), "alice", "openid")
        .await?
        .access_token;
    let meta = ctx.discovery().await?;
    let mcp = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        audience: Some(audience),
        ..Default::default()
    };
    Ok(token::exchange(
        ctx.http(),
        meta.token_endpoint()?,
        mcp,
        Some(&ctx.client_secret(mcp)?),
        &x,
    )
    .await?
    .issued("exchange")?
    .access_token)
}

async fn exchanged_accepted(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let t = exchanged(ctx, "nextcloud").await?;
    let (_, claims) = jwt::peek(t.expose())?;
    let sub = claims["sub"]
        .as_str()
        .context("the exchanged token has no sub")?;
    let data = expect_accepted(ctx, &base, &t, "the exchanged token").await?;
    let want = ctx.resource_server()?.user_id(sub);
    ensure!(
        data["id"] == want.as_str(),
        "cloud/user names {}, expected {want} (user_oidc's id for sub {sub})",
        data["id"]
    );
    pass(format!(
        "accepted as {} (display name {})",
        want, data["displayname"]
    ))
}

async fn other_audience(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let t = exchanged(ctx, "nextcloud-mcp-server").await?;
    let (_, claims) = jwt::peek(t.expose())?;
    ensure!(
        !jwt::audiences(&claims).iter().any(|a| a == "nextcloud"),
        "the token's aud still contains nextcloud"
    );
    expect_refused(
        ctx,
        &base,
        &t,
        "a token for audience nextcloud-mcp-server only",
    )
    .await
}

/// A token of a fresh service-account client with `extra` settings.
async fn service_client(ctx: &CheckCtx, purpose: &str, extra: Value) -> anyhow::Result<Secret> {
    let (client_id, secret) =
        super::admin_clients::service_client(ctx, &format!("rs-{purpose}"), extra).await?;
    super::admin_clients::service_token(ctx, &client_id, &secret).await
}

async fn expired(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let t = super::admin_clients::expired_token(ctx, "rs-short-lived").await?;
    expect_refused(ctx, &base, &t, "an expired token").await
}

/// Alice's exchanged token (accepted: the control) and its claims and signing key.
async fn control(ctx: &CheckCtx, base: &str) -> anyhow::Result<(Value, jsonwebtoken::jwk::Jwk)> {
    let t = exchanged(ctx, "nextcloud").await?;
    expect_accepted(ctx, base, &t, "alice's exchanged token (control)").await?;
    let (header, claims) = jwt::peek(t.expose())?;
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    let kid = header.kid.context("no kid")?;
    let jwk = keys
        .find(&kid)
        .cloned()
        .context("the token's kid is not in the JWKS")?;
    Ok((claims, jwk))
}

async fn wrong_key(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let (claims, jwk) = control(ctx, &base).await?;
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let forged = forge::ForgeKey::shared().await?.sign(&claims, &kid)?;
    expect_refused(
        ctx,
        &base,
        &forged,
        "the same claims signed with another key under Keycloak's kid",
    )
    .await
}

async fn alg_none(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let (claims, _) = control(ctx, &base).await?;
    expect_refused(
        ctx,
        &base,
        &forge::alg_none(&claims)?,
        "the same claims with alg none",
    )
    .await
}

async fn hs256_confusion(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let (claims, jwk) = control(ctx, &base).await?;
    expect_refused(
        ctx,
        &base,
        &forge::hs256_with_public_key(&claims, &jwk)?,
        "the same claims, HS256 keyed with Keycloak's public key",
    )
    .await
}

async fn unknown_kid(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let (claims, _) = control(ctx, &base).await?;
    let forged = forge::ForgeKey::shared()
        .await?
        .sign(&claims, "unknown-kid-mcp-authz-harness")?;
    expect_refused(ctx, &base, &forged, "the same claims under an unknown kid").await
}

async fn wrong_issuer(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    // Keycloak takes the issuer from the request host: the same realm and key reached as
    // `localhost` issue a token with another `iss` and a valid signature.
    let realm = ctx.realm()?;
    let foreign = realm.issuer().replacen("127.0.0.1", "localhost", 1);
    ensure!(
        foreign != realm.issuer(),
        "the issuer {} has no 127.0.0.1 to replace",
        realm.issuer()
    );
    ctx.step(format!("client_credentials at {foreign}"));
    let mcp = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let t = token::client_credentials(
        ctx.http(),
        &format!("{foreign}/protocol/openid-connect/token"),
        mcp,
        &ctx.client_secret(mcp)?,
        None,
    )
    .await?
    .issued("client_credentials at the other host")?
    .access_token;
    let (_, claims) = jwt::peek(t.expose())?;
    ensure!(
        claims["iss"] == foreign.as_str(),
        "iss is {}, expected {foreign}",
        claims["iss"]
    );
    ensure!(
        jwt::audiences(&claims).iter().any(|a| a == "nextcloud"),
        "the token lacks aud nextcloud, so it would fail for another reason"
    );
    expect_refused(
        ctx,
        &base,
        &t,
        "a token whose iss is the realm reached as localhost",
    )
    .await
}

async fn missing_sub(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    // Since Keycloak 25 `sub` comes from the `basic` scope: a user token of a client
    // without it should carry none (a service-account token always does).
    let rep = json!({
        "publicClient": true, "standardFlowEnabled": true,
        "redirectUris": [ctx.session.listener.redirect_uri()],
        "attributes": {"pkce.code.challenge.method": "S256"},
        "defaultClientScopes": ["mcp-audiences"], "optionalClientScopes": [],
    });
    let client_id = super::admin_clients::create(ctx, "rs-no-sub", rep, json!({})).await?;
    let meta = ctx.discovery().await?;
    let (callback, pkce, _) = super::flows::code(ctx, &meta, "alice", &client_id, "openid").await?;
    let redirect = ctx.session.listener.redirect_uri();
    let t = super::flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        callback.code()?,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("redeeming the code")?
    .access_token;
    let (_, claims) = jwt::peek(t.expose())?;
    ctx.note(format!("claims: {}", jwt::claims_for_evidence(&claims)));
    if claims.get("sub").is_some() {
        return skip(format!(
            "Keycloak {} put a sub into a user token of a client without the basic scope, so no token without sub \
             can be minted live; the stand-in's unit tests cover the refusal of a missing or empty sub",
            ctx.session.stack.keycloak.version
        ));
    }
    expect_refused(ctx, &base, &t, "a token without sub").await
}

async fn missing_aud(ctx: &CheckCtx) -> CheckResult {
    let base = base(ctx)?;
    let t = service_client(
        ctx,
        "no-aud",
        json!({"defaultClientScopes": ["basic"], "optionalClientScopes": []}),
    )
    .await?;
    let (_, claims) = jwt::peek(t.expose())?;
    ensure!(
        claims.get("aud").is_none(),
        "the token has an aud {}, so nothing would be shown",
        claims["aud"]
    );
    expect_refused(ctx, &base, &t, "a token without aud").await
}
