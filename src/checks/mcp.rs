//! MCP: the MCP server as an OAuth protected resource (RFC 9728, RFC 6750) and as the
//! authorization-server proxy it also is (RFC 8414, RFC 7636), per the MCP authorization
//! specification 2025-06-18. Nothing here knows the release: scope names and the
//! authorization servers come from the live server's metadata.
//!
//! With user tokens (from Keycloak's login page) it goes on to what the server does with
//! them: the scope map derived live, enforcement after provisioning, tokens it must refuse,
//! its proxy's code flow, and a second configuration with `ENABLE_DCR=true`.

mod bearer;
mod discovery;
mod enforcement;
mod open_proxy;
mod passthrough;
mod proxy;
pub(crate) mod proxy_flow;
mod resource;
mod session;
mod step_up;
mod tokens;
mod transport;
mod users;

use anyhow::{Context, bail, ensure};

use super::{Area, Check, CheckCtx, CheckResult, Need, Subject, blocked, pass};
use crate::check_fn;
use crate::http::Response;
use crate::mcp::{ProtectedResourceMetadata, challenge, prm};
use crate::oauth::discovery::ProviderMetadata;
use crate::secret::{Secret, SecretKind};
use crate::stack::McpServerState;

/// Checks of MCP authorization any MCP server behind Keycloak must pass (the generic
/// subject runs them too).
const NEEDS: &[Need] = &[Need::McpServer];
/// Checks with user tokens also need the browser (tokens come from Keycloak's login page).
const USER_NEEDS: &[Need] = &[Need::McpServer, Need::Browser];
/// Checks of what only nextcloud-mcp-server has: its authorization proxy, its Login Flow
/// v2 provisioning against Nextcloud.
const NEXTCLOUD_NEEDS: &[Need] = &[
    Need::NextcloudMcpServer,
    Need::McpServer,
    Need::ResourceServer,
];
const NEXTCLOUD_USER_NEEDS: &[Need] = &[
    Need::NextcloudMcpServer,
    Need::McpServer,
    Need::ResourceServer,
    Need::Browser,
];
/// MCP-32 reads what the resource server received.
const RS_LOG_NEEDS: &[Need] = &[
    Need::McpServer,
    Need::ResourceServer,
    Need::Browser,
    Need::ResourceServerLog,
];
/// MCP-33 boots a stack of its own next to the session's (Keycloak with another build):
/// only a backend that starts processes here offers further instances. Its component is
/// Keycloak: three of its four judgements are Keycloak's (RFC 8707), and whether it applies
/// depends on Keycloak's version; the MCP server's half is MCP-15's refusal, end to end.
const OWN_STACK_NEEDS: &[Need] = &[Need::McpServer, Need::ResourceServer, Need::McpInstances];
/// MCP-21 starts a second configuration of the server next to the first.
const INSTANCE_NEEDS: &[Need] = &[
    Need::NextcloudMcpServer,
    Need::McpServer,
    Need::ResourceServer,
    Need::Browser,
    Need::McpInstances,
];

const fn mcp_user_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    subject: Subject,
    run: super::CheckFn,
) -> Check {
    Check {
        needs: USER_NEEDS,
        ..mcp_check(id, title, spec, subject, run)
    }
}

/// A check of nextcloud-mcp-server itself: not run for a generic subject.
const fn nextcloud_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    subject: Subject,
    run: super::CheckFn,
) -> Check {
    Check {
        needs: NEXTCLOUD_NEEDS,
        ..mcp_check(id, title, spec, subject, run)
    }
}

/// A check of nextcloud-mcp-server itself, with user tokens.
const fn nextcloud_user_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    subject: Subject,
    run: super::CheckFn,
) -> Check {
    Check {
        needs: NEXTCLOUD_USER_NEEDS,
        ..mcp_check(id, title, spec, subject, run)
    }
}

const fn mcp_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    subject: Subject,
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Mcp,
        spec,
        subject,
        needs: NEEDS,
        spec_revisions: super::NO_REVISION,
        run,
    }
}

pub const CHECKS: &[Check] = &[
    nextcloud_check(
        "MCP-01",
        "the MCP server release starts against the session's Keycloak and answers /health/live",
        "MCP-authz-2025-06-18",
        Subject::McpServer,
        check_fn!(starts),
    ),
    mcp_check(
        "MCP-02",
        "the realm defines and offers every scope the MCP server lists or requests",
        "RFC6749-3.3; RFC9728-2",
        Subject::Realm,
        check_fn!(realm_has_scopes),
    ),
    mcp_check(
        "MCP-03",
        "no token: 401 with a Bearer challenge naming resource_metadata, which resolves",
        "RFC9728-5.1; RFC6750-3; MCP-authz-2025-06-18-AS-location (from 2025-11-25 resource_metadata in the challenge is one of two discovery mechanisms, the well-known URI the other)",
        Subject::McpServer,
        check_fn!(no_token),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-04",
        "a garbage token (opaque, an unknown kid, a valid token re-signed under Keycloak's kid): 401 invalid_token naming resource_metadata; the valid token is accepted",
        "RFC6750-3.1; RFC9728-5.1",
        Subject::McpServer,
        check_fn!(garbage_token),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-05",
        "protected resource metadata (at the RFC 9728 path, and at the root path where served) names the MCP URL and authorization servers with RFC 8414 metadata and S256",
        "RFC9728-3; RFC8414-3; MCP-authz-2025-06-18-AS-location",
        Subject::McpServer,
        check_fn!(metadata),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_check(
        "MCP-06",
        "the proxy's /oauth/authorize refuses a request without code_challenge",
        "RFC7636-4.4.1; MCP-authz-2025-06-18-code-protection",
        Subject::McpServer,
        check_fn!(proxy::no_challenge),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_check(
        "MCP-07",
        "the proxy's /oauth/authorize refuses code_challenge_method=plain",
        "RFC7636-4.2; RFC7636-4.4.1",
        Subject::McpServer,
        check_fn!(proxy::plain_method),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_check(
        "MCP-08",
        "the proxy's /oauth/authorize takes a missing code_challenge_method as plain, so refuses it",
        "RFC7636-4.3",
        Subject::McpServer,
        check_fn!(proxy::missing_method),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_check(
        "MCP-09",
        "the proxy's /oauth/authorize refuses a client id it does not allow, without redirecting",
        "RFC6749-4.1.2.1",
        Subject::McpServer,
        check_fn!(proxy::unknown_client),
    ).revisions(super::ALL_REVISIONS),
    mcp_user_check(
        "MCP-10",
        "the tool-to-scope map derived live by leave-one-out holds its invariants and matches its snapshot",
        "MCP-authz-2025-06-18-scopes; RFC9728-2 (scopes_supported)",
        Subject::McpServer,
        check_fn!(users::scope_map_check),
    ),
    nextcloud_user_check(
        "MCP-11",
        "after provisioning, a tool whose scope the token lacks is refused naming the scope; an allowed one works end to end",
        "MCP-authz-2025-06-18-scopes; RFC6750-3.1 (insufficient_scope)",
        Subject::McpServer,
        check_fn!(enforcement::enforcement),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_user_check(
        "MCP-12",
        "a Login Flow v2 grant made by another user does not provision the caller",
        "RFC9700-4.2 (authorization bound to the user); Nextcloud-Login-Flow-v2",
        Subject::McpServer,
        check_fn!(enforcement::provisioning_bound_to_caller),
    ),
    mcp_user_check(
        "MCP-13",
        "no elicitation/create to a client that declared no elicitation capability",
        "MCP-2025-06-18-lifecycle-capability-negotiation; MCP-2025-06-18-client-elicitation",
        Subject::McpServer,
        check_fn!(enforcement::no_elicitation_without_capability),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-14",
        "an expired token: 401 invalid_token naming resource_metadata; the same token is accepted while fresh",
        "RFC6750-3.1; RFC9728-5.1",
        Subject::McpServer,
        check_fn!(tokens::expired),
    ).revisions(super::ALL_REVISIONS),
    mcp_user_check(
        "MCP-15",
        "a token for another audience: 401 invalid_token; the same exchange for the MCP server's audience is accepted",
        "RFC9068-4; RFC8707-2; MCP-authz-2025-06-18-token-audience",
        Subject::McpServer,
        check_fn!(tokens::wrong_audience),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-16",
        "a token from a foreign issuer with a valid signature: 401 invalid_token; the same client's token from the issuer is accepted",
        "RFC9068-4; RFC7519-4.1.1",
        Subject::McpServer,
        check_fn!(tokens::foreign_issuer),
    ).revisions(super::ALL_REVISIONS),
    mcp_user_check(
        "MCP-17",
        "a token with an empty scope claim is shown no scoped tool",
        "MCP-authz-2025-06-18-scopes (least privilege); RFC6749-3.3",
        Subject::McpServer,
        check_fn!(tokens::empty_scope),
    ),
    nextcloud_user_check(
        "MCP-18",
        "the proxy's /oauth/token refuses a wrong code_verifier",
        "RFC7636-4.6; MCP-authz-2025-06-18-PKCE",
        Subject::McpServer,
        check_fn!(proxy_flow::wrong_verifier),
    ).revisions(super::ALL_REVISIONS),
    nextcloud_user_check(
        "MCP-19",
        "the proxy's /oauth/token refuses a reused proxy code",
        "RFC6749-4.1.2; RFC6749-10.5",
        Subject::McpServer,
        check_fn!(proxy_flow::reused_code),
    ),
    nextcloud_user_check(
        "MCP-20",
        "the proxy's own code flow toward Keycloak resists code injection (PKCE or a verified nonce)",
        "RFC9700-2.1.1; RFC9700-4.5; OIDC-Core-3.1.3.7",
        Subject::McpServer,
        check_fn!(proxy_flow::code_injection),
    ).revisions(super::ALL_REVISIONS),
    Check {
        needs: INSTANCE_NEEDS,
        ..mcp_check(
            "MCP-21",
            "with ENABLE_DCR=true the proxy still refuses a client id nobody registered",
            "RFC7591-3; RFC9700-4.1; MCP-authz-2025-06-18-DCR (SHOULD; MAY from 2025-11-25; deprecated in favour of CIMD in 2026-07-28)",
            Subject::McpServer,
            check_fn!(open_proxy::unregistered_client),
        )
    }.revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-22",
        "MUST: a request with a valid token and a foreign Origin (http://evil.example) is refused with 403",
        "MCP-transports Streamable HTTP security: servers MUST validate Origin (2025-06-18); an invalid Origin MUST get 403 Forbidden (2025-11-25, 2026-07-28)",
        Subject::McpServer,
        check_fn!(transport::foreign_origin),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-23",
        "MUST: a valid token only in the query string (?access_token=), no Authorization header, gets 401",
        "MCP-authz access token usage (tokens MUST be sent in the Authorization header, MUST NOT be in the query string; a request without a valid token MUST get 401); RFC6750-2.3",
        Subject::McpServer,
        check_fn!(transport::token_in_query),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-24",
        "MUST: a valid token's claims under alg none, and signed by a key that is not the realm's, each get 401",
        "MCP-authz token validation (MUST validate per OAuth 2.1 §5.2; invalid tokens MUST receive 401); RFC8725-3.1",
        Subject::McpServer,
        check_fn!(transport::foreign_signatures),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-25",
        "MUST: the protected resource metadata named by the 401 challenge, and at the well-known URL, has resource identical to the MCP URL the client used",
        "RFC9728-3.3; MCP-authz protected resource metadata (MUST implement RFC 9728)",
        Subject::McpServer,
        check_fn!(discovery::resource_is_the_url_used),
    ).revisions(super::ALL_REVISIONS),
    mcp_check(
        "MCP-26",
        "SHOULD: the 401 challenge carries scope next to resource_metadata",
        "MCP-authz-2025-11-25 scope challenge (SHOULD include scope in WWW-Authenticate; kept in 2026-07-28); RFC6750-3; RFC9728-5.1",
        Subject::McpServer,
        check_fn!(discovery::challenge_names_scope),
    ).revisions(super::SINCE_2025_11_25),
    mcp_check(
        "MCP-27",
        "SHOULD NOT: offline_access is neither in the 401 challenge's scope nor in the metadata's scopes_supported",
        "MCP-authz-2026-07-28 refresh tokens (servers SHOULD NOT include offline_access in the WWW-Authenticate scope or PRM scopes_supported)",
        Subject::McpServer,
        check_fn!(discovery::no_offline_access),
    ).revisions(super::SINCE_2026_07_28),
    mcp_check(
        "MCP-28",
        "MUST: a session ID without a token never authenticates (a request on an open session without the Authorization header gets 401; with the token it is accepted)",
        "MCP-authz 2025-06-18/2025-11-25 access token usage (authorization MUST be included in every HTTP request, even in the same logical session); MCP security best practices Session Hijacking (MCP servers MUST NOT use sessions for authentication); 2026-07-28 removed sessions",
        Subject::McpServer,
        check_fn!(session::no_token_on_session),
    ).revisions(super::UNTIL_2025_11_25),
    mcp_check(
        "MCP-29",
        "MUST: session IDs are distinct per session, visible ASCII, and unguessable (at least 122 bits of apparent entropy, no sequential numbering)",
        "MCP-transports 2025-06-18/2025-11-25 session management (session ID MUST only contain visible ASCII 0x21-0x7E; SHOULD be globally unique and cryptographically secure); MCP security best practices Session Hijacking (MUST use secure, non-deterministic session IDs); 2026-07-28 removed sessions",
        Subject::McpServer,
        check_fn!(session::session_ids),
    ).revisions(super::UNTIL_2025_11_25),
    mcp_user_check(
        "MCP-30",
        "SHOULD: after provisioning, a tools/call whose one scope the token lacks gets 403 with a Bearer insufficient_scope challenge naming that scope and a resource_metadata that resolves; with the scope the call is not refused for scope",
        "MCP-authz-2025-11-25 scope challenge handling, runtime insufficient scope errors (SHOULD answer 403 with WWW-Authenticate: Bearer error=\"insufficient_scope\", scope, resource_metadata; kept in 2026-07-28); RFC6750-3.1",
        Subject::McpServer,
        check_fn!(step_up::insufficient_scope),
    ).revisions(super::SINCE_2025_11_25),
    mcp_user_check(
        "MCP-31",
        "SHOULD: after provisioning, a tools/call lacking every scope of a tool that needs several gets one 403 insufficient_scope challenge naming all of them",
        "MCP-authz-2026-07-28 server scope management (servers SHOULD include all scopes required for the current operation in a single challenge, not incrementally); RFC6750-3.1",
        Subject::McpServer,
        check_fn!(step_up::single_challenge),
    ).revisions(super::SINCE_2026_07_28),
    Check {
        needs: RS_LOG_NEEDS,
        ..mcp_check(
        "MCP-32",
        "MUST NOT: the token the MCP client sent never reaches the resource server (no token passthrough), seen in the resource server's log",
        "MCP-authz access token privilege restriction (MCP servers MUST NOT pass through the token received from the MCP client; all revisions); MCP security best practices: token passthrough",
        Subject::McpServer,
        check_fn!(passthrough::no_passthrough),
    )}.revisions(super::ALL_REVISIONS),
    Check {
        needs: OWN_STACK_NEEDS,
        ..mcp_check(
        "MCP-33",
        "MUST: with RFC 8707 resource indicators, a token requested for the MCP URL has exactly that aud and is accepted; one requested for another client has its aud and gets 401 invalid_token; an unknown resource, or one differing between the authorization and token requests, gets 400 invalid_target",
        "RFC8707-2 (the authorization server binds the token to the resource, refuses an unknown one with invalid_target); MCP-authz token audience binding and validation (clients MUST send resource on both requests; MCP servers MUST validate that tokens were issued specifically for them; all revisions)",
        Subject::Keycloak,
        check_fn!(resource::resource_indicators),
    )}.revisions(super::ALL_REVISIONS),
];

async fn starts(ctx: &CheckCtx) -> CheckResult {
    let mcp = match &ctx.session.stack.subjects.mcp {
        McpServerState::Running(m) => m,
        McpServerState::Failed { message, log } => {
            if let Some(log) = log {
                ctx.step("the MCP server's log");
                ctx.note(format!("log: {}", log.display()));
            }
            bail!("the MCP server did not start: {message}")
        }
        McpServerState::Unavailable(why) => return blocked("REALM-01", why.clone()),
        McpServerState::NotNeeded => bail!("the session did not start the MCP server"),
    };
    ctx.step("GET /health/live");
    if !mcp.argv.is_empty() {
        ctx.note(format!("started as: {}", mcp.argv.join(" ")));
    }
    let url = format!("{}/health/live", mcp.base_url);
    let resp = ctx.http().get(&url).send().await?;
    ensure!(resp.status == 200, "GET {url}: {}", resp.summary());
    pass(format!(
        "{} {} answers /health/live at {} (discovery against {} done)",
        crate::mcp::REFERENCE_PACKAGE,
        mcp.version,
        mcp.base_url,
        ctx.realm()?.issuer()
    ))
}

async fn realm_has_scopes(ctx: &CheckCtx) -> CheckResult {
    ctx.mcp_server()?;
    for step in ctx.session.setup.steps() {
        if step.name.starts_with("align the realm") {
            ctx.step(step.name.clone());
            step.notes.iter().for_each(|n| ctx.note(n));
            step.exchanges
                .into_iter()
                .for_each(|x| ctx.evidence.record(x));
        }
    }
    let alignment = match &ctx.session.alignment {
        None => bail!("the session made no scope comparison although the MCP server runs"),
        Some(Err(e)) => bail!("comparing the MCP server's scopes with the realm failed: {e}"),
        Some(Ok(a)) => a,
    };
    let mut problems = Vec::new();
    if !alignment.missing.is_empty() {
        problems.push(format!(
            "the realm lacks client scopes {} (created for this run)",
            alignment.missing.join(", ")
        ));
    }
    if !alignment.not_offered.is_empty() {
        problems.push(format!(
            "{} does not offer {} (attached for this run)",
            crate::keycloak::realm::MCP_SERVER_CLIENT,
            alignment.not_offered.join(", ")
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    pass(format!(
        "all {} scopes the server lists ({}) or asks the IdP for ({}) are client scopes offered to {}",
        alignment.wanted().len(),
        alignment.listed.len(),
        alignment.requested.len(),
        crate::keycloak::realm::MCP_SERVER_CLIENT
    ))
}

async fn no_token(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    ctx.step("initialize without a token");
    let resp = bearer::initialize(ctx.http(), &mcp.mcp_url(), None).await?;
    let (_, meta_url, error) = bearer_challenge(&resp)?;
    resolves_to_metadata(ctx, &meta_url, &mcp.mcp_url()).await?;
    let note = match error {
        // RFC 6750 §3: a request without credentials SHOULD NOT get an error code.
        Some(e) => format!(
            "; note: the challenge carries error={e:?} although no token was sent \
             (RFC 6750 §3 says it SHOULD NOT)"
        ),
        None => String::new(),
    };
    pass(format!(
        "401 with a Bearer challenge; resource_metadata {meta_url} serves metadata for {}{note}",
        mcp.mcp_url()
    ))
}

/// RFC 6750 §3.1: tokens that are not tokens of the IdP are refused with `invalid_token`:
/// an opaque string, a JWT under an unknown `kid`, and a valid token's claims re-signed
/// with another key under Keycloak's own `kid`. The valid token itself is the control.
async fn garbage_token(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    let (valid, claims) = ctx
        .verified_client_credentials(client, &ctx.client_secret(client)?)
        .await?;
    let (header, _) = crate::oauth::jwt::peek(valid.access_token.expose())?;
    let kid = header.kid.context("Keycloak's token has no kid")?;
    let valid_what = format!("a valid token of {client}");
    bearer::expect_accepted(ctx, &url, &valid.access_token, &valid_what).await?;
    let resigned = crate::oauth::forge::ForgeKey::shared()
        .await?
        .sign(&claims, &kid)?;
    let garbage = [
        (
            "an opaque random token".to_owned(),
            Secret::generate(SecretKind::Token, 24),
        ),
        (
            "a JWT with a bad signature under an unknown kid".to_owned(),
            forged_jwt(&ctx.realm()?.issuer(), &mcp.base_url),
        ),
        (
            format!(
                "the claims of {valid_what}, signed with another key under Keycloak's kid {kid}"
            ),
            resigned,
        ),
    ];
    for (what, token) in &garbage {
        bearer::expect_invalid_token(ctx, &url, token, what).await?;
    }
    let refused: Vec<&str> = garbage.iter().map(|(what, _)| what.as_str()).collect();
    pass(format!(
        "{}: each 401 with error=\"invalid_token\" and a resource_metadata that resolves; \
         the valid token is accepted (initialize 200)",
        refused.join("; ")
    ))
}

async fn metadata(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let want = mcp.mcp_url();
    let mut servers = Vec::new();
    ctx.step("GET the metadata at the RFC 9728 URL, and at the root URL where served");
    let served = prm::served(ctx.http(), &mcp.base_url).await?;
    let paths: Vec<String> = served.iter().map(|(url, _)| url.clone()).collect();
    for (url, meta) in served {
        ensure!(
            meta.resource == want,
            "{url}: resource is {:?}, expected the MCP URL {want:?} (RFC 9728 §3.3)",
            meta.resource
        );
        ensure!(
            !meta.authorization_servers.is_empty(),
            "{url}: authorization_servers is empty"
        );
        servers.extend(meta.authorization_servers);
    }
    servers.sort();
    servers.dedup();
    for issuer in &servers {
        let url = rfc8414_url(issuer)?;
        ctx.step(format!("authorization server metadata of {issuer}"));
        let meta = ProviderMetadata::fetch(ctx.http(), &url).await?;
        ensure!(
            meta.issuer == *issuer,
            "{url}: issuer is {:?}, expected {issuer:?} (RFC 8414 §3.3)",
            meta.issuer
        );
        ensure!(
            meta.code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256"),
            "{url}: code_challenge_methods_supported {:?} lacks S256",
            meta.code_challenge_methods_supported
        );
    }
    pass(format!(
        "the metadata at {} names {want}; authorization servers {} serve RFC 8414 metadata with S256",
        paths.join(" and "),
        servers.join(", ")
    ))
}

/// From a 401: the Bearer challenge, its `resource_metadata` and its `error`.
fn bearer_challenge(
    resp: &Response,
) -> anyhow::Result<(challenge::Challenge, String, Option<String>)> {
    ensure!(
        resp.status == 401,
        "expected HTTP 401, got {}",
        resp.summary()
    );
    let header = resp
        .header("www-authenticate")
        .context("the 401 has no WWW-Authenticate header (RFC 6750 §3)")?;
    let bearer = challenge::find(header, "Bearer")
        .with_context(|| format!("WWW-Authenticate {header:?} has no Bearer challenge"))?;
    let meta = bearer
        .param("resource_metadata")
        .with_context(|| {
            format!("the Bearer challenge {header:?} names no resource_metadata (RFC 9728 §5.1)")
        })?
        .to_owned();
    let error = bearer.param("error").map(str::to_owned);
    Ok((bearer, meta, error))
}

/// `url` serves protected resource metadata whose `resource` is `mcp_url`.
async fn resolves_to_metadata(ctx: &CheckCtx, url: &str, mcp_url: &str) -> anyhow::Result<()> {
    ctx.step(format!("resolve resource_metadata {url}"));
    let meta = ProtectedResourceMetadata::fetch(ctx.http(), url).await?;
    ensure!(
        meta.resource == mcp_url,
        "{url}: resource is {:?}, expected {mcp_url:?} (RFC 9728 §3.3)",
        meta.resource
    );
    Ok(())
}

/// RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path.
fn rfc8414_url(issuer: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(issuer).with_context(|| format!("issuer {issuer:?} is not a URL"))?;
    let path = u.path().trim_end_matches('/');
    let origin = u.origin().ascii_serialization();
    Ok(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    ))
}

/// A JWT-shaped token with plausible claims and a signature no key made.
fn forged_jwt(issuer: &str, audience: &str) -> Secret {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = b64(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "forged"}));
    let claims = b64(serde_json::json!({
        "iss": issuer, "aud": [audience, "nextcloud-mcp-server"], "sub": "forged-user",
        "exp": now + 300, "iat": now, "scope": "openid notes.read"
    }));
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 64]>());
    Secret::new(SecretKind::Token, format!("{header}.{claims}.{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_inserts_the_well_known_suffix_before_the_path() {
        assert_eq!(
            rfc8414_url("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            rfc8414_url("http://kc:8080/realms/r").unwrap(),
            "http://kc:8080/.well-known/oauth-authorization-server/realms/r"
        );
    }

    #[test]
    fn forged_tokens_look_like_jwts() {
        let t = forged_jwt("http://kc/realms/r", "http://mcp");
        let (header, claims) = crate::oauth::jwt::peek(t.expose()).unwrap();
        assert_eq!(header.kid.as_deref(), Some("forged"));
        assert_eq!(claims["iss"], "http://kc/realms/r");
    }
}
