//! The MCP server's authorization proxy end to end, through the browser: an MCP client
//! (the harness) at `/oauth/authorize`, Keycloak's login page, the proxy's
//! `/oauth/callback`, back to the client with a proxy code, redeemed at `/oauth/token`.

use std::time::Duration;

use anyhow::{Context, ensure};

use super::super::flows;
use super::super::{CheckCtx, CheckResult, pass};
use crate::browser::login::{Arrival, FlowEnd, Page};
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
/// proxy's state but with another nonce; a proxy that verifies the nonce refuses it, and
/// says so. The browser is followed until the proxy's callback answers it or the client's
/// redirect URI gets a response, whichever comes first.
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
    let callback = format!("{base}/oauth/callback");
    let flow = ctx.user_flow(flows::USER, Duration::from_secs(45))?;
    let arrival = flow
        .run_to_listener_or_page(injected_url.as_str(), &state, &callback)
        .await?;
    note_arrival(ctx, &arrival);
    let refusal = judge_injection(&arrival, &callback)?;
    pass(format!("{refusal}; no proxy code reached the client"))
}

/// Records where the injected flow arrived (the page text is the proxy's own answer).
fn note_arrival(ctx: &CheckCtx, arrival: &Arrival) {
    match arrival {
        Arrival::Listener(c) => ctx.note(format!(
            "the client's redirect URI got: code {}, error {:?} ({:?})",
            if c.code.is_some() {
                "present"
            } else {
                "absent"
            },
            c.error,
            c.error_description
        )),
        Arrival::Page(p) => ctx.note(format!(
            "the proxy's callback answered the browser: HTTP {} at {}: {}",
            p.status
                .map_or("(status unknown)".to_owned(), |s| s.to_string()),
            p.url,
            crate::secret::redact(&p.text)
        )),
        Arrival::Stopped(end) => ctx.note(format!("the browser stopped: {end:?}")),
    }
}

/// The injected code must be refused because of the ID token it brings: an OAuth error,
/// answered by the proxy's callback with a 4xx (or sent to the client's redirect URI), that
/// names the ID token or its nonce (OIDC Core §3.1.3.7: the client verifies the nonce).
/// A refusal for another reason (an unknown state, a 5xx) proves nothing about injection.
fn judge_injection(arrival: &Arrival, callback: &str) -> anyhow::Result<String> {
    match arrival {
        Arrival::Listener(c) if c.code.is_some() => anyhow::bail!(
            "the proxy accepted a code whose ID token carries another nonce and issued a proxy code to the client"
        ),
        Arrival::Listener(c) => {
            let error = c.error.as_deref().unwrap_or_default();
            let description = c.error_description.as_deref();
            ensure!(
                names_the_id_token(error, description),
                "the client got error {error:?} ({description:?}), which does not say the ID token or its nonce failed"
            );
            Ok(format!(
                "refused: the client got error {error:?} ({description:?})"
            ))
        }
        Arrival::Page(page) => judge_callback_page(page),
        Arrival::Stopped(end) => anyhow::bail!(
            "the injected flow reached neither the proxy's callback ({callback}) nor the client: {end:?}; nothing was proven"
        ),
    }
}

/// The proxy's callback answered the browser itself: a 4xx with an OAuth error body
/// naming the ID token or its nonce.
fn judge_callback_page(page: &Page) -> anyhow::Result<String> {
    let status = page
        .status
        .with_context(|| format!("the browser did not tell the HTTP status of {}", page.url))?;
    let (error, description) = oauth_error_in(&page.text).with_context(|| {
        format!(
            "the proxy's callback answered HTTP {status} without an OAuth error: {}",
            crate::http::truncate(&crate::secret::redact(&page.text), 200)
        )
    })?;
    ensure!(
        (400..500).contains(&status),
        "the proxy's callback answered HTTP {status} ({error}: {description:?}); a refusal is a 4xx"
    );
    ensure!(
        names_the_id_token(&error, description.as_deref()),
        "the proxy's callback answered HTTP {status} {error} ({description:?}), which does not say the ID token or its nonce failed"
    );
    Ok(format!(
        "refused at the proxy's callback: HTTP {status} {error} ({})",
        description.unwrap_or_default()
    ))
}

/// `error` and `error_description` of the JSON object a page shows (a browser renders a
/// JSON answer as text, possibly with its own controls around it).
fn oauth_error_in(text: &str) -> Option<(String, Option<String>)> {
    let (start, end) = (text.find('{')?, text.rfind('}')?);
    let v: serde_json::Value = serde_json::from_str(text.get(start..=end)?).ok()?;
    let error = v["error"].as_str()?.to_owned();
    Some((error, v["error_description"].as_str().map(str::to_owned)))
}

/// Whether a refusal is about the ID token: RFC 6750's `invalid_token`, or a description
/// naming the ID token or the nonce.
fn names_the_id_token(error: &str, description: Option<&str>) -> bool {
    let d = description.unwrap_or_default().to_lowercase();
    error == "invalid_token"
        || ["id token", "id_token", "nonce"]
            .iter()
            .any(|w| d.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::redirect::Callback;

    fn page(status: Option<u16>, text: &str) -> Arrival {
        Arrival::Page(Page {
            url: "http://mcp/oauth/callback?state=s".into(),
            text: text.into(),
            status,
        })
    }

    fn judged(arrival: Arrival) -> Result<String, String> {
        judge_injection(&arrival, "http://mcp/oauth/callback").map_err(|e| e.to_string())
    }

    const REFUSED: &str =
        r#"{"error":"invalid_token","error_description":"ID token failed verification"}"#;

    #[test]
    fn the_reference_refusal_passes() {
        assert!(judged(page(Some(400), REFUSED)).is_ok());
        assert!(judged(page(Some(400), &format!("Pretty-print\n{REFUSED}"))).is_ok());
    }

    #[test]
    fn a_stop_at_the_callback_is_no_refusal_by_itself() {
        assert!(
            judged(page(Some(500), REFUSED))
                .unwrap_err()
                .contains("a 4xx")
        );
        assert!(judged(page(None, REFUSED)).unwrap_err().contains("status"));
        assert!(
            judged(page(Some(404), "Not Found"))
                .unwrap_err()
                .contains("without an OAuth error")
        );
        assert!(
            judged(page(Some(400), "} not JSON {"))
                .unwrap_err()
                .contains("without an OAuth error")
        );
        let other_reason =
            r#"{"error":"invalid_request","error_description":"Unknown or expired server state"}"#;
        assert!(
            judged(page(Some(400), other_reason))
                .unwrap_err()
                .contains("does not say")
        );
    }

    #[test]
    fn a_proxy_code_for_the_client_fails_and_an_error_for_it_must_name_the_id_token() {
        let callback = |code: Option<&str>, error: Option<&str>, description: Option<&str>| {
            Arrival::Listener(Callback {
                path: "/callback".into(),
                code: code.map(|c| Secret::new(crate::secret::SecretKind::AuthorizationCode, c)),
                state: Some("s".into()),
                iss: None,
                error: error.map(str::to_owned),
                error_description: description.map(str::to_owned),
            })
        };
        assert!(
            judged(callback(Some("proxy-code-123"), None, None))
                .unwrap_err()
                .contains("accepted")
        );
        assert!(
            judged(callback(
                None,
                Some("server_error"),
                Some("Failed to exchange authorization code")
            ))
            .is_err()
        );
        assert!(
            judged(callback(
                None,
                Some("access_denied"),
                Some("nonce mismatch")
            ))
            .is_ok()
        );
    }
}
