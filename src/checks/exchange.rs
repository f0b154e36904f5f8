//! EXCHANGE: Keycloak's Standard Token Exchange (RFC 8693, "V2"), its success and each
//! refusal, and the live proof that misnamed client attributes do nothing.
//!
//! Keycloak runs the "not enabled" and unsupported-parameter checks before the client
//! and audience checks, so the clients these cases need are created with
//! `standard.token.exchange.enabled` on; each check's evidence shows the client used.

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::{Area, Check, CheckCtx, CheckResult, Need, Subject, pass};
use crate::check_fn;
use crate::oauth::jwt;
use crate::oauth::token::{self, ACCESS_TOKEN_TYPE, Exchange, REFRESH_TOKEN_TYPE, Refusal};
use crate::secret::Secret;

const fn exchange_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    needs: &'static [Need],
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Exchange,
        spec,
        subject: Subject::Keycloak,
        needs,
        spec_revisions: super::NO_REVISION,
        run,
    }
}

const BROWSER: &[Need] = &[Need::Browser];

pub const CHECKS: &[Check] = &[
    exchange_check(
        "EXCHANGE-01",
        "nextcloud-mcp-server gets a service-account token",
        "RFC6749-4.4; Keycloak-service-accounts",
        &[],
        check_fn!(service_account),
    ),
    exchange_check(
        "EXCHANGE-02",
        "a user's token exchanged for audience nextcloud keeps the subject and narrows the audience",
        "RFC8693-2.1; RFC8693-2.2.1",
        BROWSER,
        check_fn!(user_token_exchange),
    ),
    exchange_check(
        "EXCHANGE-03",
        "requested_subject is refused (no impersonation in Standard Token Exchange)",
        "RFC8693-2.1; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(requested_subject),
    ),
    exchange_check(
        "EXCHANGE-04",
        "requested_issuer is refused",
        "RFC8693-2.1; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(requested_issuer),
    ),
    exchange_check(
        "EXCHANGE-05",
        "a subject token that is not an access token is refused",
        "RFC8693-2.1; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(not_an_access_token),
    ),
    exchange_check(
        "EXCHANGE-06",
        "an invalid subject token is refused",
        "RFC8693-2.2.2",
        &[],
        check_fn!(invalid_subject_token),
    ),
    exchange_check(
        "EXCHANGE-07",
        "a requester outside the subject token's audience is refused",
        "RFC8693-2.2.2; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(requester_not_in_audience),
    ),
    exchange_check(
        "EXCHANGE-08",
        "a public client may not exchange",
        "RFC8693-2.1; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(public_client),
    ),
    exchange_check(
        "EXCHANGE-09",
        "an audience naming no client is refused",
        "RFC8693-2.2.2",
        BROWSER,
        check_fn!(audience_not_found),
    ),
    exchange_check(
        "EXCHANGE-10",
        "an existing audience the token cannot reach is refused",
        "RFC8693-2.2.2; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(audience_not_available),
    ),
    exchange_check(
        "EXCHANGE-11",
        "a refresh token is refused as the requested type while the client's switch is off",
        "RFC8693-2.1; Keycloak-standard-token-exchange",
        BROWSER,
        check_fn!(refresh_type_refused),
    ),
    exchange_check(
        "EXCHANGE-12",
        "misnamed exchange attributes do nothing: the same request is refused as not enabled",
        "Keycloak-standard-token-exchange (standard.token.exchange.enabled)",
        &[],
        check_fn!(misnamed_attributes),
    ),
];

const MCP: &str = crate::keycloak::realm::MCP_SERVER_CLIENT;

/// Alice's access token (openid), from the session's browser-backed cache.
async fn alice(ctx: &CheckCtx) -> anyhow::Result<Secret> {
    ctx.step("alice's access token (browser login, cached per session)");
    Ok(ctx
        .session
        .user_tokens(ctx.http(), "alice", "openid")
        .await?
        .access_token)
}

/// An exchange by `client_id` authenticating with `secret`, recorded in a step.
async fn exchange(
    ctx: &CheckCtx,
    client_id: &str,
    secret: Option<&Secret>,
    x: &Exchange<'_>,
) -> anyhow::Result<token::TokenOutcome> {
    ctx.step(format!("token exchange by {client_id}"));
    let meta = ctx.discovery().await?;
    token::exchange(ctx.http(), meta.token_endpoint()?, client_id, secret, x).await
}

fn expect(r: &Refusal, status: u16, error: &str, description: &str) -> CheckResult {
    ensure!(
        r.is(status, error, description),
        "refused with {r}; expected HTTP {status} {error}: {description}"
    );
    pass(format!("refused: {r}"))
}

/// A refusal of an exchange by nextcloud-mcp-server of alice's access token, with the
/// parameters of `extra` added (a `subject_token_type` there replaces the default).
async fn mcp_refusal(ctx: &CheckCtx, extra: Exchange<'_>) -> anyhow::Result<Refusal> {
    let subject = alice(ctx).await?;
    let secret = ctx.client_secret(MCP)?;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: extra.subject_token_type.or(Some(ACCESS_TOKEN_TYPE)),
        ..extra
    };
    exchange(ctx, MCP, Some(&secret), &x)
        .await?
        .refused("the exchange")
}

async fn service_account(ctx: &CheckCtx) -> CheckResult {
    let (_, claims) = ctx
        .verified_client_credentials(MCP, &ctx.client_secret(MCP)?)
        .await?;
    let username = claims["preferred_username"].as_str().unwrap_or_default();
    ensure!(
        username == format!("service-account-{MCP}"),
        "preferred_username is {username:?}, expected service-account-{MCP}"
    );
    ensure!(claims["azp"] == MCP, "azp is {}", claims["azp"]);
    pass(format!("a token for {username}"))
}

async fn user_token_exchange(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    let subject = alice(ctx).await?;
    let subject_claims = jwt::verify(
        &subject,
        &keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    let secret = ctx.client_secret(MCP)?;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        audience: Some("nextcloud"),
        ..Default::default()
    };
    let t = exchange(ctx, MCP, Some(&secret), &x)
        .await?
        .issued("exchange for audience nextcloud")?;
    ensure!(
        t.issued_token_type.as_deref() == Some(ACCESS_TOKEN_TYPE),
        "issued_token_type is {:?}",
        t.issued_token_type
    );
    ensure!(
        t.token_type.eq_ignore_ascii_case("bearer"),
        "token_type is {:?}",
        t.token_type
    );
    ensure!(
        t.refresh_token.is_none(),
        "a refresh token was issued although none was requested"
    );
    let claims = jwt::verify(
        &t.access_token,
        &keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    ctx.note(format!(
        "exchanged token claims: {}",
        jwt::claims_for_evidence(&claims)
    ));
    ensure!(
        claims["sub"] == subject_claims["sub"],
        "sub changed: {} -> {}",
        subject_claims["sub"],
        claims["sub"]
    );
    ensure!(
        claims["azp"] == MCP,
        "azp is {}, expected {MCP}",
        claims["azp"]
    );
    let aud = jwt::audiences(&claims);
    ensure!(
        aud == ["nextcloud"],
        "aud is {aud:?}, expected exactly [\"nextcloud\"]"
    );
    let realm = ctx
        .admin()
        .get_json(&format!("/realms/{}", ctx.realm()?.name))
        .await?;
    let max = realm["ssoSessionMaxLifespan"]
        .as_i64()
        .context("no ssoSessionMaxLifespan")?;
    let auth_time = subject_claims["auth_time"]
        .as_i64()
        .context("the subject token has no auth_time")?;
    let exp = claims["exp"].as_i64().context("no exp")?;
    ensure!(
        exp <= auth_time + max,
        "exp {exp} is later than the session maximum (auth_time {auth_time} + {max}s)"
    );
    pass(format!(
        "200: sub kept, azp {MCP}, aud [nextcloud], exp within the SSO session maximum"
    ))
}

async fn requested_subject(ctx: &CheckCtx) -> CheckResult {
    let r = mcp_refusal(
        ctx,
        Exchange {
            requested_subject: Some("bob"),
            ..Default::default()
        },
    )
    .await?;
    expect(
        &r,
        400,
        "invalid_request",
        "Parameter 'requested_subject' is not supported for standard token exchange",
    )
}

async fn requested_issuer(ctx: &CheckCtx) -> CheckResult {
    let r = mcp_refusal(
        ctx,
        Exchange {
            requested_issuer: Some("https://other.example"),
            ..Default::default()
        },
    )
    .await?;
    expect(
        &r,
        400,
        "invalid_request",
        "Parameter 'requested_issuer' is not supported for standard token exchange",
    )
}

async fn not_an_access_token(ctx: &CheckCtx) -> CheckResult {
    let r = mcp_refusal(
        ctx,
        Exchange {
            subject_token_type: Some(REFRESH_TOKEN_TYPE),
            ..Default::default()
        },
    )
    .await?;
    expect(
        &r,
        400,
        "invalid_request",
        "Parameter 'subject_token' supports access tokens only",
    )
}

async fn invalid_subject_token(ctx: &CheckCtx) -> CheckResult {
    let secret = ctx.client_secret(MCP)?;
    let bogus = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.aW52YWxpZA";
    let x = Exchange {
        subject_token: Some(bogus),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        ..Default::default()
    };
    let r = exchange(ctx, MCP, Some(&secret), &x)
        .await?
        .refused("exchange of an invalid token")?;
    expect(&r, 400, "invalid_request", "Invalid token")
}

/// A client with the exchange switch on that no mapper puts in any audience.
async fn outsider(ctx: &CheckCtx, public: bool) -> anyhow::Result<(String, Option<Secret>)> {
    let switch = json!({"attributes": {"standard.token.exchange.enabled": "true"}});
    if public {
        let base = json!({"publicClient": true, "standardFlowEnabled": false, "directAccessGrantsEnabled": false});
        Ok((
            super::admin_clients::create(ctx, "exchange-public", base, switch).await?,
            None,
        ))
    } else {
        let (id, secret) =
            super::admin_clients::service_client(ctx, "exchange-outsider", switch).await?;
        Ok((id, Some(secret)))
    }
}

async fn requester_not_in_audience(ctx: &CheckCtx) -> CheckResult {
    let subject = alice(ctx).await?;
    let (client_id, secret) = outsider(ctx, false).await?;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        ..Default::default()
    };
    let r = exchange(ctx, &client_id, secret.as_ref(), &x)
        .await?
        .refused("exchange by a client outside the audience")?;
    expect(
        &r,
        403,
        "access_denied",
        "Client is not within the token audience",
    )
}

async fn public_client(ctx: &CheckCtx) -> CheckResult {
    let subject = alice(ctx).await?;
    let (client_id, _) = outsider(ctx, true).await?;
    let x = Exchange {
        subject_token: Some(subject.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        ..Default::default()
    };
    let r = exchange(ctx, &client_id, None, &x)
        .await?
        .refused("exchange by a public client")?;
    expect(
        &r,
        400,
        "invalid_client",
        "Public client is not allowed to exchange token",
    )
}

async fn audience_not_found(ctx: &CheckCtx) -> CheckResult {
    let r = mcp_refusal(
        ctx,
        Exchange {
            audience: Some("no-such-client-anywhere"),
            ..Default::default()
        },
    )
    .await?;
    expect(&r, 400, "invalid_client", "Audience not found")
}

async fn audience_not_available(ctx: &CheckCtx) -> CheckResult {
    let (target, _) = outsider(ctx, false).await?;
    let r = mcp_refusal(
        ctx,
        Exchange {
            audience: Some(&target),
            ..Default::default()
        },
    )
    .await?;
    expect(
        &r,
        400,
        "invalid_request",
        &format!("Requested audience not available: {target}"),
    )
}

async fn refresh_type_refused(ctx: &CheckCtx) -> CheckResult {
    let r = mcp_refusal(
        ctx,
        Exchange {
            requested_token_type: Some(REFRESH_TOKEN_TYPE),
            ..Default::default()
        },
    )
    .await?;
    expect(
        &r,
        400,
        "invalid_request",
        "requested_token_type unsupported",
    )
}

/// The baseline with the MCP server's client carrying the misnamed keys instead of
/// `standard.token.exchange.enabled`; nothing else changes.
pub fn misnamed_variant(realm: &mut Value) {
    let Some(clients) = realm["clients"].as_array_mut() else {
        return;
    };
    for c in clients.iter_mut().filter(|c| c["clientId"] == MCP) {
        if let Some(attrs) = c["attributes"].as_object_mut() {
            attrs.remove("standard.token.exchange.enabled");
            attrs.insert(
                "client.token.exchange.standard.enabled".into(),
                json!("true"),
            );
            attrs.insert("token.exchange.grant.enabled".into(), json!("true"));
        }
    }
}

/// The same exchange (the MCP server's own service-account token, for audience
/// nextcloud) in a realm; returns the outcome.
async fn same_request(
    ctx: &CheckCtx,
    realm: &crate::session::DeployedRealm,
) -> anyhow::Result<token::TokenOutcome> {
    ctx.step(format!(
        "in realm {}: client_credentials, then exchange for audience nextcloud",
        realm.name
    ));
    let endpoint = format!("{}/protocol/openid-connect/token", realm.issuer());
    let secret = realm.client_secret(MCP).ok_or_else(|| {
        super::NotApplicable(format!(
            "the realm file defines no client {MCP:?} with a secret"
        ))
    })?;
    let own = token::client_credentials(ctx.http(), &endpoint, MCP, &secret, None)
        .await?
        .issued("client_credentials")?;
    let x = Exchange {
        subject_token: Some(own.access_token.expose()),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        audience: Some("nextcloud"),
        ..Default::default()
    };
    token::exchange(ctx.http(), &endpoint, MCP, Some(&secret), &x).await
}

async fn misnamed_attributes(ctx: &CheckCtx) -> CheckResult {
    let realm = ctx.realm()?;
    same_request(ctx, realm).await?.issued(&format!(
        "the same exchange in the session's realm {} (the switch must work there for the comparison)",
        realm.name
    ))?;
    ctx.step("import the variant with the misnamed attributes next to the baseline");
    let variant = ctx
        .session
        .realm_variant("misnamed", misnamed_variant, &ctx.evidence)
        .await?;
    let r = same_request(ctx, &variant)
        .await?
        .refused("the same exchange in the misnamed variant")?;
    expect(
        &r,
        400,
        "invalid_request",
        "Standard token exchange is not enabled for the requested client",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keycloak::realm::RealmFile;

    /// The variant differs from the baseline only in the MCP client's exchange keys.
    #[test]
    fn the_misnamed_variant_changes_only_the_exchange_attributes() {
        let base = RealmFile::baseline().json;
        let mut variant = base.clone();
        misnamed_variant(&mut variant);
        let mut changed = Vec::new();
        diff(&base, &variant, "", &mut changed);
        changed.sort();
        assert_eq!(
            changed,
            [
                ".clients[0].attributes.client.token.exchange.standard.enabled",
                ".clients[0].attributes.standard.token.exchange.enabled",
                ".clients[0].attributes.token.exchange.grant.enabled",
            ]
        );
    }

    fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = format!("{path}.{k}");
                    match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => diff(u, v, &p, out),
                        _ => out.push(p),
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    diff(u, v, &format!("{path}[{i}]"), out);
                }
            }
            _ if a == b => {}
            _ => out.push(path.to_owned()),
        }
    }
}
