//! Requests the MCP endpoint must refuse although they carry, or once carried, a valid
//! token: a foreign `Origin` (the Streamable HTTP transport's defence against DNS
//! rebinding), a token only in the query string, and a token whose signature is not the
//! realm's (`alg: none`, or the harness's own RSA key). Each is judged next to the control:
//! the same valid token, in the Authorization header and without an Origin, accepted.

use anyhow::{bail, ensure};

use super::super::{CheckCtx, CheckResult, pass};
use super::bearer::{end_session, expect_accepted, initialize, initialize_request};
use crate::http::Response;
use crate::secret::Secret;

/// An Origin no deployment of the reference serves: a page of another site in the
/// user's browser (a DNS-rebinding attack sends the attacker's origin).
pub(super) const FOREIGN_ORIGIN: &str = "http://evil.example";

/// The `kid` the harness signs its own tokens under: the realm publishes no such key.
const HARNESS_KID: &str = "mcp-authz-harness-own-key";

/// A valid token of the MCP server's client and its claims.
pub(super) async fn valid_token(ctx: &CheckCtx) -> anyhow::Result<(Secret, serde_json::Value)> {
    let client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let (t, claims) = ctx
        .verified_client_credentials(client, &ctx.client_secret(client)?)
        .await?;
    Ok((t.access_token, claims))
}

/// Streamable HTTP transport (2025-06-18 §Security Warning: servers MUST validate the
/// Origin header; from 2025-11-25: an invalid Origin MUST get 403 Forbidden).
pub(super) async fn foreign_origin(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (token, _) = valid_token(ctx).await?;
    expect_accepted(
        ctx,
        &url,
        &token,
        "the valid token without an Origin header",
    )
    .await?;
    ctx.step(format!(
        "initialize with the same token and Origin: {FOREIGN_ORIGIN}"
    ));
    let resp = initialize_request(ctx.http(), &url)
        .bearer(&token)
        .header("Origin", FOREIGN_ORIGIN)
        .send()
        .await?;
    end_session(ctx, &url, &resp, &token).await;
    judge_origin(&resp, FOREIGN_ORIGIN)?;
    pass(format!(
        "Origin {FOREIGN_ORIGIN}: HTTP 403; the same token without an Origin is accepted \
         (initialize 200)"
    ))
}

/// 403 passes; another refusal or an answer fails, saying which.
pub(super) fn judge_origin(resp: &Response, origin: &str) -> anyhow::Result<()> {
    match resp.status {
        403 => Ok(()),
        400..=499 => bail!(
            "with a valid token and Origin {origin} the MCP endpoint refused with {}, not the \
             403 Forbidden the Streamable HTTP transport requires for an invalid Origin since \
             2025-11-25",
            resp.summary()
        ),
        _ => {
            let cors = match resp.header("access-control-allow-origin") {
                Some(v) => format!(
                    "; it even allows the origin by CORS (Access-Control-Allow-Origin: {v}, \
                     Access-Control-Allow-Credentials: {})",
                    resp.header("access-control-allow-credentials")
                        .unwrap_or("absent")
                ),
                None => String::new(),
            };
            bail!(
                "with a valid token and Origin {origin} the MCP endpoint served the request: \
                 {}{cors}; servers MUST validate Origin (Streamable HTTP transport) and answer \
                 an invalid one with 403",
                resp.summary()
            )
        }
    }
}

/// MCP authorization (all revisions): the token goes in the Authorization header on every
/// request and MUST NOT be in the query string; a request without a valid Authorization
/// header is one without a token, which gets 401.
pub(super) async fn token_in_query(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (token, _) = valid_token(ctx).await?;
    expect_accepted(ctx, &url, &token, "the token in the Authorization header").await?;
    ctx.step("initialize with the same token only in the query (?access_token=...)");
    let resp = initialize_request(ctx.http(), &url)
        .query(&[("access_token", token.expose())])
        .send()
        .await?;
    end_session(ctx, &url, &resp, &token).await;
    judge_query_token(&resp)?;
    pass(
        "the token only in ?access_token=: HTTP 401; the same token in the Authorization \
         header is accepted (initialize 200)",
    )
}

pub(super) fn judge_query_token(resp: &Response) -> anyhow::Result<()> {
    ensure!(
        resp.status == 401,
        "with the token only in the query string (?access_token=) and no Authorization \
         header the MCP endpoint answered {}, not 401 (tokens MUST NOT be sent in the query \
         string, so the request carries none)",
        resp.summary()
    );
    Ok(())
}

/// MCP authorization (all revisions): the server MUST validate tokens (OAuth 2.1 §5.2)
/// and answer an invalid one with 401: here the claims of a valid token under
/// `alg: none`, and under a signature by a key the realm does not have.
pub(super) async fn foreign_signatures(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (token, claims) = valid_token(ctx).await?;
    expect_accepted(ctx, &url, &token, "the valid token").await?;
    let forged = [
        (
            "the same claims with alg none".to_owned(),
            crate::oauth::forge::alg_none(&claims)?,
        ),
        (
            format!("the same claims signed RS256 by the harness's own key (kid {HARNESS_KID})"),
            crate::oauth::forge::ForgeKey::shared()
                .await?
                .sign(&claims, HARNESS_KID)?,
        ),
    ];
    let mut seen = Vec::new();
    for (what, t) in &forged {
        ctx.step(format!("initialize with {what}"));
        let resp = initialize(ctx.http(), &url, Some(t)).await?;
        end_session(ctx, &url, &resp, t).await;
        judge_forged(&resp, what)?;
        seen.push(what.as_str());
    }
    pass(format!(
        "{}: each HTTP 401; the valid token is accepted (initialize 200)",
        seen.join("; ")
    ))
}

pub(super) fn judge_forged(resp: &Response, what: &str) -> anyhow::Result<()> {
    ensure!(
        resp.status == 401,
        "{what}: the MCP endpoint answered {}, not 401 (invalid tokens MUST receive 401)",
        resp.summary()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Http;
    use wiremock::matchers::{header, method, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            url: "http://x/mcp".into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    async fn server() -> (MockServer, Http, String) {
        let server = MockServer::start().await;
        let url = format!("{}/mcp", server.uri());
        (server, Http::new(std::time::Duration::from_secs(2)), url)
    }

    #[tokio::test]
    async fn a_server_that_serves_a_foreign_origin_fails_and_403_passes() {
        let (server, http, url) = server().await;
        Mock::given(method("POST"))
            .and(header("Origin", FOREIGN_ORIGIN))
            .respond_with(ResponseTemplate::new(200).set_body_string("event: message"))
            .mount(&server)
            .await;
        let resp = initialize_request(&http, &url)
            .header("Origin", FOREIGN_ORIGIN)
            .send()
            .await
            .unwrap();
        let why = judge_origin(&resp, FOREIGN_ORIGIN).unwrap_err();
        assert!(
            format!("{why:#}").contains("served the request: HTTP 200"),
            "{why:#}"
        );
        let refused = |status| answer(status, "");
        assert!(judge_origin(&refused(403), FOREIGN_ORIGIN).is_ok());
        let why = judge_origin(&refused(400), FOREIGN_ORIGIN).unwrap_err();
        assert!(format!("{why:#}").contains("not the 403"), "{why:#}");
    }

    #[tokio::test]
    async fn a_server_that_takes_the_token_from_the_query_fails() {
        let (server, http, url) = server().await;
        Mock::given(method("POST"))
            .and(query_param("access_token", "t0ken-in-the-query"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let resp = initialize_request(&http, &url)
            .query(&[("access_token", "t0ken-in-the-query")])
            .send()
            .await
            .unwrap();
        let why = judge_query_token(&resp).unwrap_err();
        assert!(format!("{why:#}").contains("not 401"), "{why:#}");
        assert!(judge_query_token(&answer(401, "")).is_ok());
    }

    #[test]
    fn a_forged_token_served_or_refused_otherwise_than_401_fails() {
        for status in [200, 403, 500] {
            let why = judge_forged(&answer(status, "{}"), "alg none").unwrap_err();
            assert!(format!("{why:#}").contains("not 401"), "{why:#}");
        }
        assert!(judge_forged(&answer(401, ""), "alg none").is_ok());
    }
}
