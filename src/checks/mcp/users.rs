//! What the MCP server does with user tokens: the scope map derived live, scope
//! enforcement on `tools/call` after provisioning, provisioning bound to its caller,
//! tokens it must refuse, and what it asks of clients (elicitation).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, ensure};

use super::super::{CheckCtx, CheckResult, pass};
use crate::mcp::client::{McpClient, McpClientOptions};
use crate::mcp::scope_map::{self, Derived};
use crate::secret::Secret;

/// The user whose tokens derive the scope map and who is provisioned for enforcement.
pub(super) const USER: &str = "alice";

/// The MCP endpoint (the check is blocked when the server did not start).
pub(super) fn mcp_url(ctx: &CheckCtx) -> anyhow::Result<String> {
    ctx.mcp_server().map(|m| m.mcp_url())
}

/// `user`'s access token for exactly `scopes` (through the browser, cached).
pub(super) async fn token_for(
    ctx: &CheckCtx,
    user: &str,
    scopes: &BTreeSet<String>,
) -> anyhow::Result<Secret> {
    let scope = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    Ok(ctx
        .session
        .user_tokens(ctx.http(), user, &scope)
        .await?
        .access_token)
}

/// `tools/list` under `token`.
pub(super) async fn tools_under(url: &str, token: &Secret) -> anyhow::Result<Vec<String>> {
    let client = McpClient::connect(McpClientOptions::new(url, token.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {url}: {}", e.message))?;
    let names = client.list_tool_names().await;
    client.close().await;
    names
}

/// The scope map of this session's server: derived by the first check that asks, by
/// leave-one-out over the scopes its metadata lists, then shared.
pub(super) async fn derived(ctx: &CheckCtx, url: &str) -> anyhow::Result<Arc<Derived>> {
    ctx.session.memo.get_or_try_init(|| derive(ctx, url)).await
}

async fn derive(ctx: &CheckCtx, url: &str) -> anyhow::Result<Derived> {
    let listed = ctx
        .session
        .alignment
        .as_ref()
        .and_then(|a| a.as_ref().ok())
        .map(|a| a.listed.clone())
        .context("the server's scopes_supported is unknown (see MCP-02)")?;
    let all: BTreeSet<String> = listed.iter().cloned().collect();
    ctx.step(format!(
        "derive the scope map: tools/list as {USER} under all {} listed scopes, then each left out",
        all.len()
    ));
    let full = tools_under(url, &token_for(ctx, USER, &all).await?).await?;
    let mut without = BTreeMap::new();
    for scope in &all {
        let mut fewer = all.clone();
        fewer.remove(scope);
        let tools = tools_under(url, &token_for(ctx, USER, &fewer).await?).await?;
        without.insert(scope.clone(), tools);
    }
    let openid: BTreeSet<String> = ["openid".to_owned()].into();
    let openid_only = tools_under(url, &token_for(ctx, USER, &openid).await?).await?;
    let map = scope_map::derive(&full, &without);
    ctx.note(format!(
        "{} tools under all scopes; {} under openid alone",
        full.len(),
        openid_only.len()
    ));
    Ok(Derived {
        map,
        listed,
        full,
        openid_only,
    })
}

/// MCP: the scope map holds its invariants and is confirmed on a random subset.
pub(super) async fn scope_map_check(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    ensure!(
        !d.map.is_empty(),
        "tools/list under every listed scope is empty"
    );
    ensure!(
        d.openid_only.len() < d.full.len(),
        "an openid-only token lists {} tools, as many as every scope ({}): tools/list is not filtered by scope",
        d.openid_only.len(),
        d.full.len()
    );
    let required = scope_map::required_scopes(&d.map);
    let unlisted: Vec<&String> = required.iter().filter(|s| !d.listed.contains(s)).collect();
    ensure!(
        unlisted.is_empty(),
        "tools need scopes scopes_supported does not list: {unlisted:?}"
    );
    let unused = scope_map::unused(&d.map, &d.listed);
    ctx.note(format!("listed scopes no tool needs: {unused:?}"));
    confirm_on_random_subset(ctx, &url, &d).await?;
    let pinned = pin_snapshot(ctx, &d)?;
    let multi = d
        .map
        .values()
        .filter(|n| n.iter().filter(|s| *s != "openid").count() > 1)
        .count();
    pass(format!(
        "{} tools, {} scopes needed, {multi} tools need several application scopes; unused: {unused:?}; confirmed on a random subset; {pinned}",
        d.map.len(),
        required.len()
    ))
}

/// Adding scopes never removes a tool, and the map predicts the listing of a random
/// scope set (a superset of openid) and of a larger set containing it.
async fn confirm_on_random_subset(ctx: &CheckCtx, url: &str, d: &Derived) -> anyhow::Result<()> {
    let mut small: BTreeSet<String> = d
        .listed
        .iter()
        .filter(|_| rand::random::<bool>())
        .cloned()
        .collect();
    small.insert("openid".into());
    let mut large = small.clone();
    large.extend(d.listed.iter().filter(|_| rand::random::<bool>()).cloned());
    ctx.step(format!(
        "confirm the map on random scope sets {small:?} ⊆ {large:?}"
    ));
    let mut previous: Option<BTreeSet<String>> = None;
    for set in [&small, &large] {
        let actual: BTreeSet<String> = tools_under(url, &token_for(ctx, USER, set).await?)
            .await?
            .into_iter()
            .collect();
        let predicted = scope_map::predict(&d.map, set);
        ensure!(
            actual == predicted,
            "under {set:?} the map predicts another listing: {}",
            scope_map::difference(&predicted, &actual)
        );
        if let Some(p) = &previous {
            ensure!(
                p.is_subset(&actual),
                "adding scopes removed tools: {:?}",
                p.difference(&actual).collect::<Vec<_>>()
            );
        }
        previous = Some(actual);
    }
    Ok(())
}

/// The map is pinned per release in `fixtures/snapshots/scope-map-<release>.snap`.
fn pin_snapshot(ctx: &CheckCtx, d: &Derived) -> anyhow::Result<String> {
    let version = ctx
        .mcp_server()
        .map(|m| m.version.clone())
        .unwrap_or_default();
    let selects = match ctx.session.stack.mcp_subject() {
        crate::stack::McpSubject::Generic => "--mcp-subject generic".to_owned(),
        crate::stack::McpSubject::NextcloudMcpServer => format!("--mcp-server-version {version}"),
    };
    ctx.pinned(
        format!("scope-map-{version}"),
        "src/checks/mcp/users.rs",
        &selects,
        &d.map,
    )
}
