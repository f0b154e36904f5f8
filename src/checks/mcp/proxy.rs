//! The MCP server's own authorization-server proxy (`/oauth/authorize`), which MCP
//! clients use instead of Keycloak. Each refusal is judged against a control: the same
//! request, well formed, must be passed on to the IdP, so a refusal cannot come from
//! something other than the one parameter that differs.

use anyhow::{Context, bail, ensure};

use super::super::{CheckCtx, CheckResult, pass, skip};
use crate::http::Response;
use crate::oauth::pkce::s256;

/// A query of `/oauth/authorize`: plain pairs, so a check can leave any of them out.
type Query = Vec<(&'static str, String)>;

/// What `/oauth/authorize` did with a request.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Passed on: a redirect to the IdP's authorization endpoint.
    ToIdp,
    /// An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    ErrorToClient(String),
    /// An error answered directly (4xx).
    Refused { status: u16, error: Option<String> },
    /// Anything else, described.
    Other(String),
}

impl Outcome {
    fn is_refusal(&self) -> bool {
        matches!(self, Outcome::ErrorToClient(_) | Outcome::Refused { .. })
    }
}

struct Proxy {
    authorize: String,
    idp_authorize: String,
    client_id: String,
    redirect_uri: String,
    /// Whether this run configured the server to allow the client.
    allowed_by_this_run: bool,
}

impl Proxy {
    async fn new(ctx: &CheckCtx) -> anyhow::Result<Proxy> {
        let mcp = ctx.mcp_server()?;
        let idp = ctx.discovery().await?;
        let client = ctx.harness_client()?;
        Ok(Proxy {
            authorize: format!("{}/oauth/authorize", mcp.base_url),
            idp_authorize: idp
                .authorization_endpoint
                .context("the realm's discovery has no authorization_endpoint")?,
            client_id: client.client_id.clone(),
            redirect_uri: client.redirect_uri.clone(),
            allowed_by_this_run: client.allowed_by_this_run,
        })
    }

    /// A well-formed request: the allowed client, its redirect URI, S256.
    fn good_query(&self) -> Query {
        let verifier = crate::secret::Secret::generate(crate::secret::SecretKind::CodeVerifier, 32);
        vec![
            ("response_type", "code".into()),
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("state", format!("state-{:016x}", rand::random::<u64>())),
            ("scope", "openid".into()),
            ("code_challenge", s256(verifier.expose())),
            ("code_challenge_method", "S256".into()),
        ]
    }

    async fn send(&self, ctx: &CheckCtx, query: &Query) -> anyhow::Result<Outcome> {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = ctx.http().get(&self.authorize).query(&pairs).send().await?;
        Ok(self.classify(&resp))
    }

    fn classify(&self, resp: &Response) -> Outcome {
        if (300..400).contains(&resp.status) {
            let Some(location) = resp.header("location") else {
                return Outcome::Other(format!("HTTP {} without Location", resp.status));
            };
            if location.starts_with(&self.idp_authorize) {
                return Outcome::ToIdp;
            }
            if location.starts_with(&self.redirect_uri)
                && let Ok(u) = url::Url::parse(location)
                && let Some((_, e)) = u.query_pairs().find(|(k, _)| k == "error")
            {
                return Outcome::ErrorToClient(e.into_owned());
            }
            return Outcome::Other(format!("HTTP {} to {location}", resp.status));
        }
        if (400..500).contains(&resp.status) {
            return Outcome::Refused {
                status: resp.status,
                error: resp.oauth_error().map(|(e, _)| e),
            };
        }
        Outcome::Other(resp.summary())
    }

    /// The control must reach the IdP; otherwise no refusal means anything. `Ok(Some)`
    /// is a skip: a server this run did not configure does not know the client.
    async fn control(&self, ctx: &CheckCtx) -> anyhow::Result<Option<String>> {
        ctx.step("control: a well-formed S256 request from the allowed client");
        let outcome = self.send(ctx, &self.good_query()).await?;
        if outcome == Outcome::ToIdp {
            return Ok(None);
        }
        if !self.allowed_by_this_run {
            return Ok(Some(format!(
                "the MCP server (not configured by this run) does not pass on a request from \
                 {} with {} ({outcome:?}); allow it with ALLOWED_MCP_CLIENTS={}|{} and pass \
                 that URI as --mcp-redirect-uri",
                self.client_id, self.redirect_uri, self.client_id, self.redirect_uri
            )));
        }
        bail!(
            "the control request (allowed client {}, its redirect URI, S256) was not passed on \
             to the IdP at {}: {outcome:?}; the refusals below would prove nothing",
            self.client_id,
            self.idp_authorize
        )
    }

    /// Sends the control, then `query`, and requires a refusal.
    async fn expect_refusal(&self, ctx: &CheckCtx, what: &str, query: Query) -> CheckResult {
        if let Some(why) = self.control(ctx).await? {
            return skip(why);
        }
        ctx.step(what.to_owned());
        let outcome = self.send(ctx, &query).await?;
        ensure!(
            outcome.is_refusal(),
            "{what}: not refused ({outcome:?}); the control with S256 was passed on the same way"
        );
        pass(format!(
            "{what}: refused ({outcome:?}); the control went to the IdP"
        ))
    }
}

fn without(mut query: Query, key: &str) -> Query {
    query.retain(|(k, _)| *k != key);
    query
}

fn with(mut query: Query, key: &'static str, value: &str) -> Query {
    query.retain(|(k, _)| *k != key);
    query.push((key, value.to_owned()));
    query
}

/// RFC 7636 §4.4.1: a server that requires PKCE answers a request without
/// `code_challenge` with `invalid_request`; the MCP specification requires PKCE.
pub(super) async fn no_challenge(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    let query = without(
        without(p.good_query(), "code_challenge"),
        "code_challenge_method",
    );
    p.expect_refusal(ctx, "a request without code_challenge", query)
        .await
}

/// RFC 7636 §4.2 and the MCP specification: S256 is required, `plain` is not supported.
pub(super) async fn plain_method(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    let verifier = crate::secret::Secret::generate(crate::secret::SecretKind::CodeVerifier, 32);
    let query = with(
        with(p.good_query(), "code_challenge", verifier.expose()),
        "code_challenge_method",
        "plain",
    );
    p.expect_refusal(ctx, "code_challenge_method=plain", query)
        .await
}

/// RFC 7636 §4.3: without `code_challenge_method` the method is `plain`; a server that
/// supports only S256 must refuse it (§4.4.1), not assume S256.
pub(super) async fn missing_method(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    if let Some(why) = p.control(ctx).await? {
        return skip(why);
    }
    ctx.step("a request with code_challenge but no code_challenge_method");
    let outcome = p
        .send(ctx, &without(p.good_query(), "code_challenge_method"))
        .await?;
    match outcome {
        o if o.is_refusal() => pass(format!(
            "refused ({o:?}): the missing method was taken as plain, which is not supported"
        )),
        Outcome::ToIdp => bail!(
            "a request without code_challenge_method was redirected to the IdP (taken as S256); \
             RFC 7636 §4.3 says the method defaults to plain, which this server does not \
             support, so it must refuse it"
        ),
        o => bail!("a request without code_challenge_method: neither refused nor passed on: {o:?}"),
    }
}

/// RFC 6749 §4.1.2.1: with an unknown client the server must not redirect (the
/// redirect URI cannot be trusted); it informs the user agent instead.
pub(super) async fn unknown_client(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    if let Some(why) = p.control(ctx).await? {
        return skip(why);
    }
    let stranger = format!("{}-unknown-{:08x}", p.client_id, rand::random::<u32>());
    ctx.step(format!(
        "the allowed redirect URI with client id {stranger}"
    ));
    let outcome = p
        .send(ctx, &with(p.good_query(), "client_id", &stranger))
        .await?;
    match outcome {
        Outcome::Refused { status, error } => pass(format!(
            "HTTP {status} {} without a redirect",
            error.as_deref().unwrap_or("(no OAuth error code)")
        )),
        o => bail!("client id {stranger} (not allowed) was not refused without a redirect: {o:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_tell_the_idp_the_client_and_refusals_apart() {
        let p = Proxy {
            authorize: "http://mcp/oauth/authorize".into(),
            idp_authorize: "http://kc/realms/r/protocol/openid-connect/auth".into(),
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            allowed_by_this_run: true,
        };
        let resp = |status, location: Option<&str>, body: &str| Response {
            status,
            url: String::new(),
            headers: location
                .map(|l| vec![("location".to_owned(), l.to_owned())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
        };
        let to_idp = resp(
            302,
            Some("http://kc/realms/r/protocol/openid-connect/auth?x=1"),
            "",
        );
        assert_eq!(p.classify(&to_idp), Outcome::ToIdp);
        let to_client = resp(
            302,
            Some("http://127.0.0.1:9/callback?error=invalid_request"),
            "",
        );
        assert_eq!(
            p.classify(&to_client),
            Outcome::ErrorToClient("invalid_request".into())
        );
        let refused = resp(400, None, r#"{"error":"invalid_request"}"#);
        assert!(p.classify(&refused).is_refusal());
        assert!(
            !p.classify(&resp(302, Some("http://elsewhere/"), ""))
                .is_refusal()
        );
    }
}
