//! What the MCP server tells a client that has no token yet: its 401 challenge and its
//! protected resource metadata (RFC 9728), as the 2025-11-25 and 2026-07-28 revisions of
//! the MCP authorization specification add to them: the challenge's `scope` (SHOULD),
//! and no `offline_access` among the scopes a resource asks for (SHOULD NOT, 2026-07-28).

use anyhow::{bail, ensure};

use super::super::{CheckCtx, CheckResult, pass};
use super::bearer::initialize;
use super::bearer_challenge;
use crate::http::Response;
use crate::mcp::{ProtectedResourceMetadata, prm};

/// The scope a refresh token is asked for with (OIDC Core §11): no resource needs it.
const OFFLINE_ACCESS: &str = "offline_access";

/// The 401 to an `initialize` without a token, its challenge's `resource_metadata` and
/// `scope` (if any).
async fn unauthenticated(
    ctx: &CheckCtx,
    url: &str,
) -> anyhow::Result<(Response, String, Option<String>)> {
    ctx.step("initialize without a token");
    let resp = initialize(ctx.http(), url, None).await?;
    let (challenge, meta, _) = bearer_challenge(&resp)?;
    let scope = challenge.param("scope").map(str::to_owned);
    Ok((resp, meta, scope))
}

/// RFC 9728 §3.3: metadata reached through the challenge's `resource_metadata` names, as
/// `resource`, exactly the URL the client used for its request; so does the metadata at
/// the well-known URL built from that URL (§3.1).
pub(super) async fn resource_is_the_url_used(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let used = mcp.mcp_url();
    let (_, from_challenge, _) = unauthenticated(ctx, &used).await?;
    let [inserted, _] = prm::well_known_urls(&mcp.base_url);
    for (how, url) in [
        ("the challenge's resource_metadata", &from_challenge),
        ("the well-known URL built from it", &inserted),
    ] {
        ctx.step(format!("GET {url} ({how})"));
        let meta = ProtectedResourceMetadata::fetch(ctx.http(), url).await?;
        judge_resource(&meta.resource, &used, url)?;
    }
    pass(format!(
        "the metadata at {from_challenge} (from the challenge) and at {inserted} both name \
         resource {used}, the URL the client used, character for character"
    ))
}

pub(super) fn judge_resource(resource: &str, used: &str, at: &str) -> anyhow::Result<()> {
    ensure!(
        resource == used,
        "{at}: resource is {resource:?}, not the URL the client used for the MCP endpoint \
         {used:?}; RFC 9728 §3.3 says it MUST be identical and the client MUST NOT use the \
         metadata otherwise"
    );
    Ok(())
}

/// MCP authorization 2025-11-25 and 2026-07-28: the 401 challenge SHOULD carry `scope`
/// (the scopes this request needs) next to `resource_metadata`.
pub(super) async fn challenge_names_scope(ctx: &CheckCtx) -> CheckResult {
    let url = ctx.mcp_server()?.mcp_url();
    let (resp, meta, scope) = unauthenticated(ctx, &url).await?;
    let scope = judge_challenge_scope(&resp, scope)?;
    pass(format!(
        "the 401's Bearer challenge carries scope={scope:?} and resource_metadata {meta}"
    ))
}

pub(super) fn judge_challenge_scope(
    resp: &Response,
    scope: Option<String>,
) -> anyhow::Result<String> {
    let header = resp.header("www-authenticate").unwrap_or_default();
    match scope {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => bail!(
            "the 401's Bearer challenge has an empty scope: WWW-Authenticate {header:?} \
             (servers SHOULD name the scopes the request needs, MCP authorization 2025-11-25)"
        ),
        None => bail!(
            "the 401's Bearer challenge carries no scope: WWW-Authenticate {header:?} \
             (servers SHOULD include scope, MCP authorization 2025-11-25)"
        ),
    }
}

/// MCP authorization 2026-07-28 (Refresh Tokens): servers SHOULD NOT include
/// `offline_access` in the challenge's `scope` nor in the metadata's `scopes_supported`:
/// refresh tokens are no resource requirement.
pub(super) async fn no_offline_access(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (_, _, scope) = unauthenticated(ctx, &url).await?;
    ctx.step("GET the metadata at the RFC 9728 URL, and at the root URL where served");
    let listed: Vec<(String, Vec<String>)> = prm::served(ctx.http(), &mcp.base_url)
        .await?
        .into_iter()
        .map(|(url, meta)| (url, meta.scopes_supported))
        .collect();
    judge_offline_access(scope.as_deref(), &listed)?;
    pass(format!(
        "no offline_access in the challenge's scope ({}) nor in scopes_supported at {}",
        scope.as_deref().unwrap_or("absent"),
        listed
            .iter()
            .map(|(u, s)| format!("{u} ({} scopes)", s.len()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

pub(super) fn judge_offline_access(
    challenge_scope: Option<&str>,
    listed: &[(String, Vec<String>)],
) -> anyhow::Result<()> {
    let mut found = Vec::new();
    if challenge_scope.is_some_and(|s| s.split_whitespace().any(|x| x == OFFLINE_ACCESS)) {
        found.push(format!(
            "the 401 challenge's scope {:?}",
            challenge_scope.unwrap_or_default()
        ));
    }
    for (url, scopes) in listed {
        if scopes.iter().any(|s| s == OFFLINE_ACCESS) {
            found.push(format!("scopes_supported at {url} {scopes:?}"));
        }
    }
    ensure!(
        found.is_empty(),
        "offline_access is listed in {} (servers SHOULD NOT include it, MCP authorization \
         2026-07-28: refresh tokens are not a resource requirement)",
        found.join(" and in ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> Response {
        Response {
            status: 401,
            url: "http://x/mcp".into(),
            headers: vec![("www-authenticate".into(), value.into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn a_resource_that_differs_from_the_url_used_fails() {
        let used = "http://127.0.0.1:8000/mcp";
        assert!(judge_resource(used, used, "m").is_ok());
        for other in [
            "http://127.0.0.1:8000/mcp/",
            "http://localhost:8000/mcp",
            "http://127.0.0.1:8000",
        ] {
            let why = judge_resource(other, used, "m").unwrap_err();
            assert!(format!("{why:#}").contains("MUST be identical"), "{why:#}");
        }
    }

    #[test]
    fn a_challenge_without_scope_fails_and_one_with_scope_passes() {
        let without = r#"Bearer error="invalid_token", resource_metadata="http://x/m""#;
        let r = challenge(without);
        let (c, _, _) = bearer_challenge(&r).unwrap();
        let why = judge_challenge_scope(&r, c.param("scope").map(str::to_owned)).unwrap_err();
        assert!(format!("{why:#}").contains("carries no scope"), "{why:#}");
        let with = r#"Bearer resource_metadata="http://x/m", scope="notes.read""#;
        let r = challenge(with);
        let (c, _, _) = bearer_challenge(&r).unwrap();
        assert_eq!(
            judge_challenge_scope(&r, c.param("scope").map(str::to_owned)).unwrap(),
            "notes.read"
        );
        assert!(judge_challenge_scope(&r, Some(" ".into())).is_err());
    }

    #[test]
    fn offline_access_in_the_challenge_or_the_metadata_fails() {
        let clean = vec![("http://x/m".to_owned(), vec!["notes.read".to_owned()])];
        assert!(judge_offline_access(Some("notes.read"), &clean).is_ok());
        assert!(judge_offline_access(None, &clean).is_ok());
        let why = judge_offline_access(Some("notes.read offline_access"), &clean).unwrap_err();
        assert!(format!("{why:#}").contains("challenge's scope"), "{why:#}");
        let listed = vec![(
            "http://x/m".to_owned(),
            vec!["openid".to_owned(), "offline_access".to_owned()],
        )];
        let why = judge_offline_access(None, &listed).unwrap_err();
        assert!(
            format!("{why:#}").contains("scopes_supported at http://x/m"),
            "{why:#}"
        );
    }
}
