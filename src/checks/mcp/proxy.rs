//! The MCP server's own authorization-server proxy (`/oauth/authorize`), which MCP
//! clients use instead of Keycloak. Each refusal is judged against a control: the same
//! request, well formed, must be passed on to the IdP, so a refusal cannot come from
//! something other than the one parameter that differs. A refusal counts only with the
//! status and OAuth `error` its clause names ([`Wanted`]): a 404, a 429 or a 5xx is no
//! refusal.

use anyhow::{Context, bail};

use super::super::{CheckCtx, CheckResult, pass, skip};
use crate::http::{Http, Response};
use crate::oauth::pkce::s256;

/// A query of `/oauth/authorize`: plain pairs, so a check can leave any of them out.
type Query = Vec<(&'static str, String)>;

/// What `/oauth/authorize` did with a request.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Passed on: a redirect to the IdP's authorization endpoint.
    ToIdp,
    /// An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    ErrorToClient { status: u16, error: String },
    /// A client error (4xx) answered directly, with the OAuth error of its body if any.
    Refused {
        status: u16,
        error: Option<String>,
        description: Option<String>,
    },
    /// Anything else (a 5xx, a success, a redirect elsewhere), described.
    Other(String),
}

/// The refusal a clause asks for: how it may reach the client, with which status and
/// which OAuth `error`.
pub(super) struct Wanted {
    /// The clause, for messages.
    pub clause: &'static str,
    /// Whether an error redirect to the client's redirect URI counts.
    pub by_redirect: bool,
    /// The statuses a direct answer may have.
    pub statuses: &'static [u16],
    /// The OAuth `error` codes that name the fault.
    pub errors: &'static [&'static str],
}

/// RFC 7636 §4.4.1 (no `code_challenge`, or a method the server does not support, §4.2):
/// `invalid_request`, as an authorization error response to the client's redirect URI or
/// answered directly with 400 (RFC 6749 §5.2 gives `invalid_request` status 400).
pub(super) const PKCE_REFUSAL: Wanted = Wanted {
    clause: "RFC 7636 §4.4.1",
    by_redirect: true,
    statuses: &[400],
    errors: &["invalid_request"],
};

/// RFC 6749 §4.1.2.1: for a client id that is missing, invalid or unknown the server must
/// not redirect (the redirect URI cannot be trusted) and informs the user agent instead.
/// The RFC names no status; a client error that refuses the request (400, or 401 as for
/// an unknown client at the token endpoint, §5.2) with an OAuth error naming the client:
/// `unauthorized_client` (§4.1.2.1), `invalid_client` (§5.2: unknown client) or
/// `invalid_request` (§4.1.2.1: "client identifier is missing or invalid").
pub(super) const UNKNOWN_CLIENT_REFUSAL: Wanted = Wanted {
    clause: "RFC 6749 §4.1.2.1",
    by_redirect: false,
    statuses: &[400, 401],
    errors: &["unauthorized_client", "invalid_client", "invalid_request"],
};

impl Outcome {
    /// Reads an answer of `/oauth/authorize`: to the IdP, an error to `redirect_uri`, a
    /// direct client error, or something else.
    pub(super) fn classify(resp: &Response, idp_authorize: &str, redirect_uri: &str) -> Outcome {
        if (300..400).contains(&resp.status) {
            let Some(location) = resp.header("location") else {
                return Outcome::Other(format!("HTTP {} without Location", resp.status));
            };
            if location.starts_with(idp_authorize) {
                return Outcome::ToIdp;
            }
            if location.starts_with(redirect_uri)
                && let Ok(u) = url::Url::parse(location)
                && let Some((_, e)) = u.query_pairs().find(|(k, _)| k == "error")
            {
                return Outcome::ErrorToClient {
                    status: resp.status,
                    error: e.into_owned(),
                };
            }
            return Outcome::Other(format!(
                "HTTP {} to {}",
                resp.status,
                crate::secret::redact(location)
            ));
        }
        if (400..500).contains(&resp.status) {
            let (error, description) = resp.oauth_error().unzip();
            return Outcome::Refused {
                status: resp.status,
                error,
                description: description.flatten(),
            };
        }
        Outcome::Other(resp.summary())
    }

    /// `Ok` with a description when this is the refusal `wanted` asks for, else `Err`
    /// saying what it is instead.
    pub(super) fn judge(&self, wanted: &Wanted) -> Result<String, String> {
        let named = |e: &str| wanted.errors.contains(&e);
        match self {
            Outcome::ErrorToClient { status, error } if wanted.by_redirect && named(error) => Ok(
                format!("HTTP {status} error redirect to the client with error={error}"),
            ),
            Outcome::ErrorToClient { status, error } if wanted.by_redirect => Err(format!(
                "HTTP {status} error redirect to the client with error={error}, not {}",
                wanted.errors.join(" or ")
            )),
            Outcome::ErrorToClient { status, error } => Err(format!(
                "HTTP {status} redirect to the client's redirect URI (error={error}), which {} \
                 forbids here",
                wanted.clause
            )),
            Outcome::Refused { status, .. } if !wanted.statuses.contains(status) => Err(format!(
                "HTTP {status} ({}) is not the refusal {} asks for ({})",
                self.error_text(),
                wanted.clause,
                wanted.describe()
            )),
            Outcome::Refused {
                status,
                error: Some(error),
                ..
            } if named(error) => Ok(format!("HTTP {status} {}", self.error_text())),
            Outcome::Refused { status, .. } => Err(format!(
                "HTTP {status} ({}), but {} asks for error {}",
                self.error_text(),
                wanted.clause,
                wanted.errors.join(" or ")
            )),
            Outcome::ToIdp => Err("passed on to the IdP".into()),
            Outcome::Other(what) => Err(what.clone()),
        }
    }

    /// The OAuth error of a direct refusal and its description, as text.
    fn error_text(&self) -> String {
        match self {
            Outcome::Refused {
                error: Some(e),
                description: Some(d),
                ..
            } => format!("{e}: {d}"),
            Outcome::Refused { error: Some(e), .. } => e.clone(),
            _ => "no OAuth error in the body".into(),
        }
    }
}

impl Wanted {
    /// `HTTP 400 or 401 with error unauthorized_client or invalid_client`.
    pub(super) fn describe(&self) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(u16::to_string).collect();
        format!(
            "HTTP {} with error {}",
            statuses.join(" or "),
            self.errors.join(" or ")
        )
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

    /// Sends `query` to `/oauth/authorize` (not following redirects) and classifies the
    /// answer; a broken call is an error, never a refusal.
    async fn send(&self, http: &Http, query: &Query) -> anyhow::Result<Outcome> {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = http.get(&self.authorize).query(&pairs).send().await?;
        Ok(Outcome::classify(
            &resp,
            &self.idp_authorize,
            &self.redirect_uri,
        ))
    }

    /// The control must reach the IdP; otherwise no refusal means anything. `Ok(Some)`
    /// is a skip: a server this run did not configure does not know the client.
    async fn control(&self, ctx: &CheckCtx) -> anyhow::Result<Option<String>> {
        ctx.step("control: a well-formed S256 request from the allowed client");
        let outcome = self.send(ctx.http(), &self.good_query()).await?;
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

    /// Sends the control, then `query`, and requires the refusal `wanted` describes.
    async fn expect_refusal(
        &self,
        ctx: &CheckCtx,
        what: &str,
        query: Query,
        wanted: &Wanted,
    ) -> CheckResult {
        if let Some(why) = self.control(ctx).await? {
            return skip(why);
        }
        ctx.step(what.to_owned());
        let outcome = self.send(ctx.http(), &query).await?;
        match outcome.judge(wanted) {
            Ok(refusal) => pass(format!(
                "{what}: refused ({refusal}, as {} asks); the control went to the IdP",
                wanted.clause
            )),
            Err(instead) => bail!(
                "{what}: not refused as {} asks: {instead}; the control with S256 was passed on to the IdP",
                wanted.clause
            ),
        }
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
    p.expect_refusal(
        ctx,
        "a request without code_challenge",
        query,
        &PKCE_REFUSAL,
    )
    .await
}

/// RFC 7636 §4.2 and the MCP specification: S256 is required, `plain` is not supported,
/// so §4.4.1's `invalid_request` applies.
pub(super) async fn plain_method(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    let verifier = crate::secret::Secret::generate(crate::secret::SecretKind::CodeVerifier, 32);
    let query = with(
        with(p.good_query(), "code_challenge", verifier.expose()),
        "code_challenge_method",
        "plain",
    );
    p.expect_refusal(ctx, "code_challenge_method=plain", query, &PKCE_REFUSAL)
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
        .send(
            ctx.http(),
            &without(p.good_query(), "code_challenge_method"),
        )
        .await?;
    if outcome == Outcome::ToIdp {
        bail!(
            "a request without code_challenge_method was redirected to the IdP (taken as S256); \
             RFC 7636 §4.3 says the method defaults to plain, which this server does not \
             support, so it must refuse it"
        );
    }
    match outcome.judge(&PKCE_REFUSAL) {
        Ok(refusal) => pass(format!(
            "refused ({refusal}): the missing method was taken as plain, which is not supported"
        )),
        Err(instead) => bail!(
            "a request without code_challenge_method: neither refused as RFC 7636 §4.4.1 asks \
             nor passed on: {instead}"
        ),
    }
}

/// RFC 6749 §4.1.2.1: with an unknown client the server must not redirect (the
/// redirect URI cannot be trusted); it informs the user agent instead.
pub(super) async fn unknown_client(ctx: &CheckCtx) -> CheckResult {
    let p = Proxy::new(ctx).await?;
    let stranger = format!("{}-unknown-{:08x}", p.client_id, rand::random::<u32>());
    let query = with(p.good_query(), "client_id", &stranger);
    let what = format!("the allowed redirect URI with client id {stranger}");
    p.expect_refusal(ctx, &what, query, &UNKNOWN_CLIENT_REFUSAL)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const IDP: &str = "http://kc/realms/r/protocol/openid-connect/auth";
    const CLIENT: &str = "http://127.0.0.1:9/callback";

    fn resp(status: u16, location: Option<&str>, body: &str) -> Response {
        Response {
            status,
            url: String::new(),
            headers: location
                .map(|l| vec![("location".to_owned(), l.to_owned())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn classify(r: &Response) -> Outcome {
        Outcome::classify(r, IDP, CLIENT)
    }

    #[test]
    fn outcomes_tell_the_idp_the_client_and_refusals_apart() {
        assert_eq!(
            classify(&resp(302, Some(&format!("{IDP}?x=1")), "")),
            Outcome::ToIdp
        );
        assert_eq!(
            classify(&resp(
                302,
                Some(&format!("{CLIENT}?error=invalid_request")),
                ""
            )),
            Outcome::ErrorToClient {
                status: 302,
                error: "invalid_request".into()
            }
        );
        assert!(matches!(
            classify(&resp(400, None, r#"{"error":"invalid_request"}"#)),
            Outcome::Refused { status: 400, error: Some(e), .. } if e == "invalid_request"
        ));
        assert!(matches!(
            classify(&resp(302, Some("http://elsewhere/"), "")),
            Outcome::Other(_)
        ));
        assert!(matches!(
            classify(&resp(500, None, r#"{"error":"server_error"}"#)),
            Outcome::Other(_)
        ));
    }

    #[test]
    fn a_pkce_refusal_is_invalid_request_by_redirect_or_400() {
        let judge = |r: Response| classify(&r).judge(&PKCE_REFUSAL);
        let redirect = |e: &str| resp(302, Some(&format!("{CLIENT}?error={e}&state=s")), "");
        assert!(judge(redirect("invalid_request")).is_ok());
        assert!(judge(resp(400, None, r#"{"error":"invalid_request"}"#)).is_ok());
        assert!(judge(redirect("access_denied")).is_err());
        assert!(judge(resp(400, None, r#"{"error":"invalid_scope"}"#)).is_err());
        assert!(judge(resp(400, None, "<html>bad request</html>")).is_err());
        assert!(judge(resp(401, None, r#"{"error":"invalid_request"}"#)).is_err());
        assert!(judge(resp(302, Some(IDP), "")).is_err());
    }

    #[test]
    fn an_unknown_client_is_refused_without_a_redirect_naming_the_client() {
        let judge = |r: Response| classify(&r).judge(&UNKNOWN_CLIENT_REFUSAL);
        assert!(judge(resp(401, None, r#"{"error":"unauthorized_client"}"#)).is_ok());
        assert!(judge(resp(400, None, r#"{"error":"invalid_client"}"#)).is_ok());
        let to_client = resp(
            302,
            Some(&format!("{CLIENT}?error=unauthorized_client")),
            "",
        );
        assert!(
            judge(to_client)
                .unwrap_err()
                .contains("redirect to the client's redirect URI")
        );
        assert!(judge(resp(403, None, r#"{"error":"unauthorized_client"}"#)).is_err());
        assert!(judge(resp(400, None, r#"{"error":"invalid_scope"}"#)).is_err());
    }

    /// The proxy's answer as a mock server gives it, judged as `wanted` asks.
    async fn judged(answer: ResponseTemplate, wanted: &Wanted) -> Result<String, String> {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/oauth/authorize"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let p = Proxy {
            authorize: format!("{}/oauth/authorize", server.uri()),
            idp_authorize: IDP.into(),
            client_id: "c".into(),
            redirect_uri: CLIENT.into(),
            allowed_by_this_run: true,
        };
        let http = Http::new(std::time::Duration::from_secs(2));
        let query = p.good_query();
        p.send(&http, &query).await.unwrap().judge(wanted)
    }

    fn oauth_error(status: u16, error: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(serde_json::json!({"error": error}))
    }

    #[tokio::test]
    async fn not_found_rate_limited_and_server_errors_are_no_refusals() {
        for wanted in [&PKCE_REFUSAL, &UNKNOWN_CLIENT_REFUSAL] {
            for status in [404, 429] {
                let why = judged(ResponseTemplate::new(status), wanted)
                    .await
                    .unwrap_err();
                assert!(why.contains(&format!("HTTP {status}")), "{why}");
            }
            let why = judged(oauth_error(500, "invalid_request"), wanted)
                .await
                .unwrap_err();
            assert!(why.contains("HTTP 500"), "{why}");
        }
    }

    #[tokio::test]
    async fn a_refusal_without_the_error_code_its_clause_names_fails() {
        let why = judged(ResponseTemplate::new(400), &PKCE_REFUSAL)
            .await
            .unwrap_err();
        assert!(why.contains("no OAuth error"), "{why}");
        let why = judged(oauth_error(400, "server_error"), &UNKNOWN_CLIENT_REFUSAL)
            .await
            .unwrap_err();
        assert!(why.contains("unauthorized_client"), "{why}");
    }

    #[tokio::test]
    async fn the_refusals_the_reference_gives_pass() {
        let pkce = oauth_error(400, "invalid_request");
        assert!(judged(pkce, &PKCE_REFUSAL).await.is_ok());
        let client = oauth_error(401, "unauthorized_client");
        assert!(judged(client, &UNKNOWN_CLIENT_REFUSAL).await.is_ok());
    }
}
