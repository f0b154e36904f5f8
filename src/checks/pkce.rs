//! PKCE: the authorization code flow with PKCE (RFC 7636) through a real browser on
//! Keycloak's real login page, and the refusals around it.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::flows::{self, USER};
use super::{Area, Check, CheckCtx, CheckResult, Need, Subject, pass};
use crate::browser::login::{Credentials, FlowEnd};
use crate::browser::redirect::Callback;
use crate::check_fn;
use crate::oauth::discovery::ProviderMetadata;
use crate::oauth::jwt;
use crate::oauth::pkce::Pkce;
use crate::oauth::token::Tokens;
use crate::secret::{Secret, SecretKind};

const fn pkce_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Pkce,
        spec,
        subject: Subject::Keycloak,
        needs: &[Need::Browser],
        spec_revisions: super::NO_REVISION,
        run,
    }
}

pub const CHECKS: &[Check] = &[
    pkce_check(
        "PKCE-01",
        "a DCR-registered public client completes the code flow with S256",
        "RFC7636-4; OIDC-Core-3.1.3.7",
        check_fn!(public_success),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-02",
        "a confidential client completes the code flow with S256",
        "RFC7636-4.5; RFC6749-4.1.3",
        check_fn!(confidential_success),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-03",
        "a DCR-registered public client is refused without a code challenge",
        "RFC7636-4.4.1; RFC9700-2.1.1",
        check_fn!(missing_challenge),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-04",
        "a wrong code_verifier is refused with invalid_grant",
        "RFC7636-4.6",
        check_fn!(wrong_verifier),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-05",
        "a missing code_verifier is refused",
        "RFC7636-4.5; RFC7636-4.6",
        check_fn!(missing_verifier),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-06",
        "code_challenge_method=plain is refused where S256 is required",
        "RFC7636-4.2; RFC9700-2.1.1",
        check_fn!(plain_refused),
    ).revisions(super::ALL_REVISIONS),
    pkce_check(
        "PKCE-07",
        "a code redeemed twice: the second is refused and the first tokens revoked",
        "RFC6749-4.1.2; RFC6749-10.5",
        check_fn!(code_reuse),
    ),
    pkce_check(
        "PKCE-08",
        "a redirect_uri differing from the authorization request is refused",
        "RFC6749-4.1.3",
        check_fn!(redirect_mismatch),
    ),
    pkce_check(
        "PKCE-09",
        "state comes back unchanged, with iss",
        "RFC6749-4.1.2; RFC9207-2 (iss in the authorization response: SHOULD in MCP-authz 2026-07-28)",
        check_fn!(state_round_trip),
    ).revisions(super::SINCE_2026_07_28),
    pkce_check(
        "PKCE-10",
        "a wrong password stays on the login page with an error and no code",
        "RFC6749-4.1.2.1",
        check_fn!(wrong_password),
    ),
    pkce_check(
        "PKCE-11",
        "SHOULD: the authorization response carries iss equal to the issuer, and the metadata advertises it (RFC 9207)",
        "RFC9207-2; RFC9207-2.3; MCP-authz-2026-07-28 (authorization response validation: SHOULD include iss, MUST advertise it)",
        check_fn!(iss_in_response),
    ).revisions(super::SINCE_2026_07_28),
];

const SCOPE: &str = "openid notes.read";

/// The ID token validates (signature, iss, aud = client, nonce, exp); the access token is
/// for `client_id` (azp), carries the scopes asked for and the MCP audiences.
fn validate_tokens(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    keys: &jsonwebtoken::jwk::JwkSet,
    t: &Tokens,
    client_id: &str,
    nonce: &str,
) -> anyhow::Result<()> {
    let id = t
        .id_token
        .as_ref()
        .context("no id_token although openid was asked for")?;
    let aud = [client_id];
    let id_claims = jwt::verify(
        id,
        keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            audience: Some(&aud),
            leeway: 0,
        },
    )?;
    ensure!(
        id_claims["nonce"] == nonce,
        "the ID token's nonce is {}, expected the one sent",
        id_claims["nonce"]
    );
    let at = jwt::verify(
        &t.access_token,
        keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    ctx.note(format!(
        "access token claims: {}",
        jwt::claims_for_evidence(&at)
    ));
    ensure!(
        at["azp"] == client_id,
        "the access token's azp is {}, expected {client_id}",
        at["azp"]
    );
    let scopes = jwt::scopes(&at);
    for s in SCOPE.split_whitespace() {
        ensure!(
            scopes.iter().any(|x| x == s),
            "the access token's scope {scopes:?} lacks {s}"
        );
    }
    let auds = jwt::audiences(&at);
    for a in ["nextcloud-mcp-server", "nextcloud"] {
        ensure!(
            auds.iter().any(|x| x == a),
            "the access token's aud {auds:?} lacks {a}"
        );
    }
    ensure!(
        at["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "the access token has no sub"
    );
    Ok(())
}

async fn public_success(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    let client_id = flows::public_client(ctx).await?;
    let (callback, pkce, nonce) = flows::code(ctx, &meta, USER, &client_id, SCOPE).await?;
    let redirect = ctx.session.listener.redirect_uri();
    let tokens = flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        callback.code()?,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("redeeming with the verifier")?;
    validate_tokens(ctx, &meta, &keys, &tokens, &client_id, &nonce)?;
    pass(format!(
        "{USER} authorized {client_id}; ID token and access token validate"
    ))
}

async fn confidential_success(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    let client_id = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let secret = ctx.client_secret(client_id)?;
    let (callback, pkce, nonce) = flows::code(ctx, &meta, USER, client_id, SCOPE).await?;
    let redirect = ctx.session.listener.redirect_uri();
    let tokens = flows::redeem(
        ctx,
        &meta,
        client_id,
        Some(&secret),
        callback.code()?,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("redeeming with the secret and the verifier")?;
    validate_tokens(ctx, &meta, &keys, &tokens, client_id, &nonce)?;
    pass(format!(
        "{USER} authorized {client_id} with S256 and a client secret; tokens validate"
    ))
}

/// The authorization response for a request `change` made from a valid one.
async fn refused_authorization(
    ctx: &CheckCtx,
    change: impl FnOnce(
        crate::oauth::pkce::AuthorizationRequest,
    ) -> crate::oauth::pkce::AuthorizationRequest,
) -> anyhow::Result<(String, Option<String>)> {
    let meta = ctx.discovery().await?;
    let client_id = flows::public_client(ctx).await?;
    let pkce = Pkce::new();
    let (req, state, _) = flows::request(ctx, &client_id, SCOPE, &pkce);
    let end = flows::authorize(ctx, &meta, USER, &change(req), &state).await?;
    let callback = end.callback()?;
    ensure!(
        callback.code.is_none(),
        "a code was issued; expected an error response"
    );
    let error = callback
        .error
        .clone()
        .context("neither a code nor an error in the response")?;
    Ok((error, callback.error_description.clone()))
}

async fn missing_challenge(ctx: &CheckCtx) -> CheckResult {
    let (error, desc) = refused_authorization(ctx, |r| {
        r.without("code_challenge").without("code_challenge_method")
    })
    .await?;
    ensure!(
        error == "invalid_request",
        "error {error:?} ({desc:?}), expected invalid_request"
    );
    pass(format!("refused: {error}: {}", desc.unwrap_or_default()))
}

async fn plain_refused(ctx: &CheckCtx) -> CheckResult {
    let (error, desc) = refused_authorization(ctx, |r| {
        let verifier = Pkce::new().verifier;
        r.set("code_challenge", verifier.expose())
            .set("code_challenge_method", "plain")
    })
    .await?;
    ensure!(
        error == "invalid_request",
        "error {error:?} ({desc:?}), expected invalid_request"
    );
    pass(format!("refused: {error}: {}", desc.unwrap_or_default()))
}

/// A code for a fresh public client, ready to redeem with variations.
async fn fresh_code(ctx: &CheckCtx) -> anyhow::Result<(ProviderMetadata, String, Secret, Pkce)> {
    let meta = ctx.discovery().await?;
    let client_id = flows::public_client(ctx).await?;
    let (callback, pkce, _) = flows::code(ctx, &meta, USER, &client_id, SCOPE).await?;
    let code = callback.code()?.clone();
    Ok((meta, client_id, code, pkce))
}

async fn wrong_verifier(ctx: &CheckCtx) -> CheckResult {
    let (meta, client_id, code, _) = fresh_code(ctx).await?;
    let wrong = Pkce::new().verifier;
    let redirect = ctx.session.listener.redirect_uri();
    let r = flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        &code,
        Some(&redirect),
        Some(&wrong),
    )
    .await?
    .refused("redeeming with a wrong verifier")?;
    ensure!(
        r.status == 400 && r.error == "invalid_grant",
        "got {r}, expected HTTP 400 invalid_grant"
    );
    pass(format!("refused: {r}"))
}

async fn missing_verifier(ctx: &CheckCtx) -> CheckResult {
    let (meta, client_id, code, _) = fresh_code(ctx).await?;
    let redirect = ctx.session.listener.redirect_uri();
    let r = flows::redeem(ctx, &meta, &client_id, None, &code, Some(&redirect), None)
        .await?
        .refused("redeeming without a verifier")?;
    ensure!(
        r.status == 400 && r.error == "invalid_grant",
        "got {r}, expected HTTP 400 invalid_grant"
    );
    pass(format!("refused: {r}"))
}

async fn redirect_mismatch(ctx: &CheckCtx) -> CheckResult {
    let (meta, client_id, code, pkce) = fresh_code(ctx).await?;
    let other = format!("{}/elsewhere", ctx.session.listener.base_url());
    let r = flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        &code,
        Some(&other),
        Some(&pkce.verifier),
    )
    .await?
    .refused("redeeming with another redirect_uri")?;
    ensure!(
        r.status == 400 && r.error == "invalid_grant",
        "got {r}, expected HTTP 400 invalid_grant"
    );
    pass(format!("refused: {r}"))
}

async fn code_reuse(ctx: &CheckCtx) -> CheckResult {
    let (meta, client_id, code, pkce) = fresh_code(ctx).await?;
    let redirect = ctx.session.listener.redirect_uri();
    let first = flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        &code,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("the first redemption")?;
    let second = flows::redeem(
        ctx,
        &meta,
        &client_id,
        None,
        &code,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .refused("the second redemption")?;
    ensure!(
        second.status == 400 && second.error == "invalid_grant",
        "the second redemption got {second}, expected HTTP 400 invalid_grant"
    );
    ctx.step("are the tokens of the first redemption revoked? (RFC 6749 §4.1.2 SHOULD)");
    let (secret, introspector) = (
        ctx.client_secret(crate::keycloak::realm::MCP_SERVER_CLIENT)?,
        crate::keycloak::realm::MCP_SERVER_CLIENT,
    );
    let endpoint = meta
        .introspection_endpoint
        .as_deref()
        .context("no introspection_endpoint")?;
    let (active, _) = crate::oauth::token::introspect(
        ctx.http(),
        endpoint,
        introspector,
        &secret,
        &first.access_token,
    )
    .await?;
    let rt = first
        .refresh_token
        .as_ref()
        .context("the first redemption gave no refresh token")?;
    let refreshed =
        crate::oauth::token::refresh(ctx.http(), meta.token_endpoint()?, &client_id, None, rt)
            .await?;
    let refresh_works = matches!(refreshed, crate::oauth::token::TokenOutcome::Issued(_));
    ensure!(
        !active && !refresh_works,
        "the second redemption was refused ({second}), but the first tokens stay valid: access token introspects active={active}, refresh token works={refresh_works}"
    );
    pass(format!(
        "second redemption refused ({second}); the first tokens were revoked"
    ))
}

async fn state_round_trip(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let client_id = flows::public_client(ctx).await?;
    let pkce = Pkce::new();
    let (req, _, _) = flows::request(ctx, &client_id, SCOPE, &pkce);
    let state = format!("st {} /+=?&é", crate::oauth::pkce::random_value());
    let callback = flows::authorize(ctx, &meta, USER, &req.set("state", &state), &state)
        .await?
        .callback()?;
    ensure!(
        callback.state.as_deref() == Some(state.as_str()),
        "state came back as {:?}, sent {state:?}",
        callback.state
    );
    let supported = meta
        .extra
        .get("authorization_response_iss_parameter_supported")
        == Some(&serde_json::Value::Bool(true));
    if supported {
        ensure!(
            callback.iss.as_deref() == Some(meta.issuer.as_str()),
            "iss is {:?}, expected {} (RFC 9207 §2)",
            callback.iss,
            meta.issuer
        );
    }
    pass(format!(
        "state unchanged (with spaces, reserved characters and non-ASCII); iss {}",
        callback.iss.unwrap_or_else(|| "not advertised".into())
    ))
}

/// The metadata parameter of RFC 9207 §3.
const ISS_SUPPORTED: &str = "authorization_response_iss_parameter_supported";

/// Keycloak's per-client switch that leaves `iss` out of its authorization responses.
const EXCLUDE_ISS: &str = "exclude.issuer.from.auth.response";

/// A scope no client of any realm has: Keycloak refuses it with `invalid_scope`, an
/// error response that no realm setting turns into a code.
const NO_SUCH_SCOPE: &str = "pkce-11-no-such-scope";

async fn iss_in_response(ctx: &CheckCtx) -> CheckResult {
    ctx.step("discovery: is iss in the authorization response advertised? (RFC 9207 §3)");
    let meta = ctx.discovery().await?;
    ctx.note(format!(
        "{ISS_SUPPORTED} = {}",
        meta.extra
            .get(ISS_SUPPORTED)
            .map_or("absent".into(), Value::to_string)
    ));
    let client_id = flows::public_client(ctx).await?;
    let (success, _, _) = flows::code(ctx, &meta, USER, &client_id, "openid").await?;
    ctx.step(format!(
        "an error response for {client_id}: a scope it does not have ({NO_SUCH_SCOPE})"
    ));
    let pkce = Pkce::new();
    let (req, state, _) = flows::request(ctx, &client_id, "openid", &pkce);
    let req = req.set("scope", &format!("openid {NO_SUCH_SCOPE}"));
    let error = flows::authorize(ctx, &meta, USER, &req, &state)
        .await?
        .callback()?;
    let control = control_response(ctx, &meta).await?;
    let verdict = judge_iss(&IssObservation {
        issuer: &meta.issuer,
        advertised: meta.extra.get(ISS_SUPPORTED),
        success: &success,
        error: &error,
        control: &control,
    })?;
    pass(verdict)
}

/// The successful authorization response for a temporary public client that has
/// Keycloak's switch [`EXCLUDE_ISS`] on; the client is deleted before this returns.
async fn control_response(ctx: &CheckCtx, meta: &ProviderMetadata) -> anyhow::Result<Callback> {
    let base = json!({
        "publicClient": true, "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
        "redirectUris": [ctx.session.listener.redirect_uri()],
    });
    let attributes = json!({"attributes": {
        "pkce.code.challenge.method": "S256",
        EXCLUDE_ISS: "true",
    }});
    let control =
        super::admin_clients::create_temporary(ctx, "pkce-no-iss", base, attributes).await?;
    let flow = flows::code(ctx, meta, USER, &control.client_id, "openid").await;
    let deleted = control.delete(ctx).await;
    let (callback, _, _) = flow?;
    deleted?;
    Ok(callback)
}

/// What PKCE-11 observed.
struct IssObservation<'a> {
    /// The issuer of the validated metadata.
    issuer: &'a str,
    /// The metadata's `authorization_response_iss_parameter_supported`, as sent.
    advertised: Option<&'a Value>,
    /// The session's public client: a successful response.
    success: &'a Callback,
    /// The same client: an error response.
    error: &'a Callback,
    /// A client with Keycloak's switch that leaves iss out: a successful response.
    control: &'a Callback,
}

/// RFC 9207 §2 and §2.3 as MCP authorization 2026-07-28 states them: every authorization
/// response (an error response too) carries `iss` equal to the issuer (SHOULD; compared
/// as strings, nothing normalized), and an authorization server that sends it advertises
/// `authorization_response_iss_parameter_supported: true` (MUST). The control, whose
/// client has iss switched off, must come back without it: otherwise this check could not
/// tell a missing iss from a present one.
fn judge_iss(o: &IssObservation) -> anyhow::Result<String> {
    let mut problems = Vec::new();
    if o.control.code.is_none() {
        problems.push(format!(
            "the control flow (iss switched off) ended without a code (error {:?}): it shows nothing",
            o.control.error
        ));
    } else if let Some(iss) = &o.control.iss {
        problems.push(format!(
            "the control client has {EXCLUDE_ISS}=true and its response still carries iss {iss:?}: \
             this check cannot tell a response without iss from one with it"
        ));
    }
    if o.success.code.is_none() {
        problems.push(format!(
            "the flow of the public client ended without a code (error {:?} {:?})",
            o.success.error, o.success.error_description
        ));
    }
    if o.error.error.is_none() {
        problems.push(format!(
            "the request for a scope the client lacks came back without an error (code {}): \
             no error response to look at",
            if o.error.code.is_some() {
                "present"
            } else {
                "absent"
            }
        ));
    }
    let responses = [
        ("the authorization response", o.success),
        ("the error response", o.error),
    ];
    for (what, c) in responses {
        match &c.iss {
            None => problems.push(format!(
                "{what} carries no iss (SHOULD, RFC 9207 §2; MCP authorization 2026-07-28)"
            )),
            Some(iss) if iss != o.issuer => problems.push(format!(
                "{what} carries iss {iss:?}, not the issuer {:?} (RFC 9207 §2: simple string comparison)",
                o.issuer
            )),
            Some(_) => {}
        }
    }
    let advertised = o.advertised == Some(&Value::Bool(true));
    let shown = o.advertised.map_or("absent".into(), Value::to_string);
    if !advertised {
        if responses.iter().any(|(_, c)| c.iss.is_some()) {
            problems.push(format!(
                "iss is sent but the metadata's {ISS_SUPPORTED} is {shown}, not true \
                 (MUST, RFC 9207 §2.3; MCP authorization 2026-07-28)"
            ));
        } else {
            problems.push(format!(
                "the metadata's {ISS_SUPPORTED} is {shown}, not true (RFC 9207 §3)"
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(format!(
        "{ISS_SUPPORTED}: true; iss {:?} = the issuer in the authorization response and in the \
         error response ({}); the control client ({EXCLUDE_ISS}=true) got no iss",
        o.issuer,
        o.error.error.as_deref().unwrap_or_default()
    ))
}

async fn wrong_password(ctx: &CheckCtx) -> CheckResult {
    let meta = ctx.discovery().await?;
    let client_id = flows::public_client(ctx).await?;
    let pkce = Pkce::new();
    let (req, state, _) = flows::request(ctx, &client_id, SCOPE, &pkce);
    let wrong = Secret::new(
        SecretKind::Password,
        format!("wrong-{}", crate::oauth::pkce::random_value()),
    );
    // A profile of its own: no Keycloak session that would skip the login page.
    let profile = format!("wrong-password-{}", ctx.session.run.id);
    let end = flows::authorize_as(
        ctx,
        &meta,
        &profile,
        Credentials {
            username: USER,
            password: wrong,
        },
        &req,
        &state,
    )
    .await?;
    let FlowEnd::Stopped {
        reason, page_error, ..
    } = end
    else {
        anyhow::bail!("the authorization went through with a wrong password");
    };
    ensure!(
        reason == "login refused",
        "the browser stopped for another reason: {reason}"
    );
    let shown = page_error.unwrap_or_default();
    ensure!(
        shown.contains("Invalid username or password"),
        "the login page shows {shown:?}, expected \"Invalid username or password.\""
    );
    ensure!(
        ctx.session
            .listener
            .wait(&state, Duration::from_millis(500))
            .await
            .is_none(),
        "a response reached the redirect URI"
    );
    pass(format!(
        "login page shows {shown:?}; nothing reached the redirect URI"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://127.0.0.1:8080/realms/mcp";

    fn response(code: bool, error: Option<&str>, iss: Option<&str>) -> Callback {
        Callback {
            path: "/callback".into(),
            code: code.then(|| Secret::new(SecretKind::AuthorizationCode, "c0de")),
            state: Some("s".into()),
            iss: iss.map(str::to_owned),
            error: error.map(str::to_owned),
            error_description: None,
        }
    }

    fn success(iss: Option<&str>) -> Callback {
        response(true, None, iss)
    }

    fn refused(iss: Option<&str>) -> Callback {
        response(false, Some("invalid_scope"), iss)
    }

    fn judge(
        advertised: Option<Value>,
        ok: Callback,
        err: Callback,
        control: Callback,
    ) -> anyhow::Result<String> {
        judge_iss(&IssObservation {
            issuer: ISSUER,
            advertised: advertised.as_ref(),
            success: &ok,
            error: &err,
            control: &control,
        })
    }

    fn fails(r: anyhow::Result<String>, needle: &str) {
        let e = format!("{:#}", r.expect_err("the judgement should fail"));
        assert!(e.contains(needle), "{e}");
    }

    #[test]
    fn iss_everywhere_advertised_and_absent_from_the_control_passes() {
        let msg = judge(
            Some(Value::Bool(true)),
            success(Some(ISSUER)),
            refused(Some(ISSUER)),
            success(None),
        )
        .unwrap();
        assert!(
            msg.contains("invalid_scope") && msg.contains(ISSUER),
            "{msg}"
        );
    }

    #[test]
    fn a_response_without_iss_fails_the_should() {
        let t = Some(Value::Bool(true));
        fails(
            judge(
                t.clone(),
                success(None),
                refused(Some(ISSUER)),
                success(None),
            ),
            "the authorization response carries no iss (SHOULD",
        );
        fails(
            judge(t, success(Some(ISSUER)), refused(None), success(None)),
            "the error response carries no iss",
        );
    }

    #[test]
    fn an_iss_other_than_the_issuer_fails_without_normalizing() {
        let t = Some(Value::Bool(true));
        for other in [
            "http://127.0.0.1:8080/realms/other",
            "http://127.0.0.1:8080/realms/mcp/",
            "HTTP://127.0.0.1:8080/realms/mcp",
            "http://127.0.0.1:8080/realms/%6Dcp",
        ] {
            fails(
                judge(
                    t.clone(),
                    success(Some(other)),
                    refused(Some(ISSUER)),
                    success(None),
                ),
                "not the issuer",
            );
            fails(
                judge(
                    t.clone(),
                    success(Some(ISSUER)),
                    refused(Some(other)),
                    success(None),
                ),
                "the error response carries iss",
            );
        }
    }

    #[test]
    fn iss_sent_but_not_advertised_fails_the_must() {
        for advertised in [None, Some(Value::Bool(false)), Some(Value::from("true"))] {
            fails(
                judge(
                    advertised,
                    success(Some(ISSUER)),
                    refused(Some(ISSUER)),
                    success(None),
                ),
                "iss is sent but the metadata's authorization_response_iss_parameter_supported",
            );
        }
        // Neither sent nor advertised: the SHOULDs fail, the MUST is not at stake.
        let e = format!(
            "{:#}",
            judge(None, success(None), refused(None), success(None)).unwrap_err()
        );
        assert!(e.contains("carries no iss") && !e.contains("MUST"), "{e}");
    }

    #[test]
    fn a_control_that_keeps_iss_means_the_check_cannot_tell() {
        fails(
            judge(
                Some(Value::Bool(true)),
                success(Some(ISSUER)),
                refused(Some(ISSUER)),
                success(Some(ISSUER)),
            ),
            "cannot tell",
        );
        fails(
            judge(
                Some(Value::Bool(true)),
                success(Some(ISSUER)),
                refused(Some(ISSUER)),
                refused(None),
            ),
            "the control flow (iss switched off) ended without a code",
        );
    }

    #[test]
    fn responses_of_the_wrong_kind_fail() {
        let t = Some(Value::Bool(true));
        fails(
            judge(
                t.clone(),
                refused(Some(ISSUER)),
                refused(Some(ISSUER)),
                success(None),
            ),
            "ended without a code",
        );
        fails(
            judge(
                t,
                success(Some(ISSUER)),
                success(Some(ISSUER)),
                success(None),
            ),
            "came back without an error",
        );
    }
}
