//! How the MCP server must answer a token it refuses (RFC 6750 §3.1: 401 with
//! `error="invalid_token"` in the Bearer challenge; RFC 9728 §5.1: naming its metadata),
//! and the control each refusal is judged against: a sibling token, differing only in what
//! the check tests, that the server accepts. A server that refuses everything passes no
//! refusal check.

use anyhow::{Context, ensure};

use super::super::CheckCtx;
use super::{bearer_challenge, resolves_to_metadata};
use crate::http::{Http, Response};
use crate::secret::Secret;

/// POSTs an `initialize` request, as a client's first call, with `token` if given.
pub(super) async fn initialize(
    http: &Http,
    url: &str,
    token: Option<&Secret>,
) -> anyhow::Result<Response> {
    let mut req = initialize_request(http, url);
    if let Some(t) = token {
        req = req.bearer(t);
    }
    Ok(req.send().await?)
}

/// An `initialize` request, as a client's first call, with no credentials yet.
pub(super) fn initialize_request(http: &Http, url: &str) -> crate::http::Request {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": crate::mcp::client::PROTOCOL_VERSION.as_str(),
            "capabilities": {},
            "clientInfo": {"name": "mcp-authz-harness", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    http.post(url)
        .header("Accept", "application/json, text/event-stream")
        .json(&body)
}

/// RFC 6750 §3.1: a refused token gets 401 with `error="invalid_token"` in the Bearer
/// challenge. Returns the challenge's `resource_metadata` (RFC 9728 §5.1).
pub(super) fn invalid_token(resp: &Response, what: &str) -> anyhow::Result<String> {
    let (_, metadata, error) = bearer_challenge(resp).with_context(|| what.to_owned())?;
    ensure!(
        error.as_deref() == Some("invalid_token"),
        "{what}: the challenge's error is {error:?}, expected \"invalid_token\" (RFC 6750 §3.1)"
    );
    Ok(metadata)
}

/// The control: `initialize` with the sibling token answered 200.
pub(super) fn accepted(resp: &Response, what: &str) -> anyhow::Result<()> {
    ensure!(
        resp.status == 200,
        "{what} (the control) is not accepted: initialize answered {}; a refusal of its \
         sibling would prove nothing",
        resp.summary()
    );
    Ok(())
}

/// Initializes with `token` and requires the refusal, with metadata that resolves.
pub(super) async fn expect_invalid_token(
    ctx: &CheckCtx,
    url: &str,
    token: &Secret,
    what: &str,
) -> anyhow::Result<()> {
    ctx.step(format!("initialize with {what}"));
    let resp = initialize(ctx.http(), url, Some(token)).await?;
    let metadata = invalid_token(&resp, what)?;
    resolves_to_metadata(ctx, &metadata, url).await
}

/// Initializes with `sibling` and requires it accepted; then ends the session it opened.
pub(super) async fn expect_accepted(
    ctx: &CheckCtx,
    url: &str,
    sibling: &Secret,
    what: &str,
) -> anyhow::Result<()> {
    ctx.step(format!("control: initialize with {what}"));
    let resp = initialize(ctx.http(), url, Some(sibling)).await?;
    accepted(&resp, what)?;
    end_session(ctx, url, &resp, sibling).await;
    Ok(())
}

/// A POST of a JSON-RPC message after `initialize`, as a client sends it: the negotiated
/// protocol `version`, the `session` if the server opened one, the token if given. The
/// caller adds the message.
pub(super) fn on_session(
    http: &Http,
    url: &str,
    session: Option<&str>,
    version: &str,
    token: Option<&Secret>,
) -> crate::http::Request {
    let mut req = http
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", version);
    if let Some(s) = session {
        req = req.header("Mcp-Session-Id", s);
    }
    match token {
        Some(t) => req.bearer(t),
        None => req,
    }
}

/// Ends the session `resp` opened, if it opened one.
pub(super) async fn end_session(ctx: &CheckCtx, url: &str, resp: &Response, token: &Secret) {
    if let Some(session) = resp.header("mcp-session-id") {
        delete_session(ctx.http(), url, session, token).await;
    }
}

/// Ends `session` (best effort: a session left open only costs the server memory).
pub(super) async fn delete_session(http: &Http, url: &str, session: &str, token: &Secret) {
    let _ = http
        .delete(url)
        .header("Mcp-Session-Id", session)
        .header(
            "MCP-Protocol-Version",
            crate::mcp::client::PROTOCOL_VERSION.as_str(),
        )
        .bearer(token)
        .send()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const GOOD: &str = "good-token-123456";
    const BAD: &str = "bad-token-123456";

    fn token(value: &str) -> Secret {
        Secret::new(crate::secret::SecretKind::AccessToken, value)
    }

    fn challenge(value: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).insert_header("WWW-Authenticate", value)
    }

    /// A server answering `good` to the good token and `bad` to the bad one; the
    /// refusal of the bad token and the control with the good one, judged.
    async fn judged(good: ResponseTemplate, bad: ResponseTemplate) -> anyhow::Result<()> {
        let server = MockServer::start().await;
        for (t, answer) in [(GOOD, good), (BAD, bad)] {
            Mock::given(method("POST"))
                .and(header("Authorization", format!("Bearer {t}").as_str()))
                .respond_with(answer)
                .mount(&server)
                .await;
        }
        let http = Http::new(std::time::Duration::from_secs(2));
        let url = format!("{}/mcp", server.uri());
        invalid_token(
            &initialize(&http, &url, Some(&token(BAD))).await?,
            "the bad token",
        )?;
        accepted(
            &initialize(&http, &url, Some(&token(GOOD))).await?,
            "the good token",
        )
    }

    const REFUSED: &str = r#"Bearer error="invalid_token", resource_metadata="http://x/.well-known/oauth-protected-resource""#;

    #[tokio::test]
    async fn a_refusal_with_invalid_token_and_an_accepted_control_pass() {
        judged(ResponseTemplate::new(200), challenge(REFUSED))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_server_that_refuses_the_control_too_fails() {
        let why = judged(challenge(REFUSED), challenge(REFUSED))
            .await
            .unwrap_err();
        assert!(format!("{why:#}").contains("the control"), "{why:#}");
    }

    #[tokio::test]
    async fn a_refusal_without_invalid_token_fails() {
        let no_error =
            r#"Bearer resource_metadata="http://x/.well-known/oauth-protected-resource""#;
        let why = judged(ResponseTemplate::new(200), challenge(no_error))
            .await
            .unwrap_err();
        assert!(
            format!("{why:#}").contains("expected \"invalid_token\""),
            "{why:#}"
        );
        let other = r#"Bearer error="insufficient_scope", resource_metadata="http://x/m""#;
        assert!(
            judged(ResponseTemplate::new(200), challenge(other))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_refusal_that_is_not_a_401_fails() {
        for status in [403, 404, 500] {
            let answer = ResponseTemplate::new(status).insert_header("WWW-Authenticate", REFUSED);
            let why = judged(ResponseTemplate::new(200), answer)
                .await
                .unwrap_err();
            assert!(format!("{why:#}").contains("expected HTTP 401"), "{why:#}");
        }
    }
}
