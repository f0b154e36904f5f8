//! Scopes the MCP server needs from the realm.
//!
//! - LINT-07 (warning): `offline_access` is not an optional scope of the MCP server's own
//!   client (`--mcp-client`). The server asks for it to keep refresh tokens for background
//!   operations; Keycloak answers `invalid_scope` for a scope the client does not have.
//!   Optional, not default: every login would otherwise carry it.
//! - LINT-11 (warning): a scope the MCP server lists (its RFC 9728 metadata's
//!   `scopes_supported`) that the realm does not define as a client scope. Reported,
//!   never created: here the realm is the subject. `openid` is not a client scope in
//!   Keycloak and is skipped.

use super::{Ctx, Finding, Severity};

const OFFLINE_ACCESS: &str = "offline_access";

pub(super) fn check_offline_access(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    const RULE: &str = "LINT-07";
    let id = ctx.opts.mcp_client.as_str();
    let Some(i) = ctx.realm.clients.iter().position(|c| c.client_id() == id) else {
        out.push(Finding::new(
            RULE,
            Severity::Warning,
            "clients",
            format!(
                "no client `{id}`, so the MCP server's scopes cannot be checked. Pass --mcp-client \
                 with the clientId of the MCP server's own client"
            ),
        ));
        return;
    };
    let realm = ctx.realm;
    let (default, optional) = realm.clients[i].effective_scopes(realm);
    let defined = realm.defines_scope(OFFLINE_ACCESS);
    let has = |list: &[String]| list.iter().any(|s| s == OFFLINE_ACCESS);
    if has(&optional) && defined {
        return;
    }
    let now = if has(&default) {
        "is a default scope, not an optional one, of"
    } else {
        "is not an optional scope of"
    };
    let define = if defined {
        ""
    } else {
        " (and define the client scope `offline_access`, which the realm lacks)"
    };
    out.push(Finding::new(
        RULE,
        Severity::Warning,
        format!("{}.optionalClientScopes", ctx.paths.client(i)),
        format!(
            "`{OFFLINE_ACCESS}` {now} `{id}`, the MCP server's client: it asks for offline_access \
             to keep refresh tokens for background operations, and Keycloak answers invalid_scope \
             for a scope the client does not have. Add \"{OFFLINE_ACCESS}\" to its \
             optionalClientScopes{define}"
        ),
    ));
}

pub(super) fn check_mcp_scopes(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    const RULE: &str = "LINT-11";
    let Some(scopes) = &ctx.opts.mcp_scopes else {
        return;
    };
    let mut seen = Vec::new();
    for scope in scopes {
        if scope.is_empty() || scope == "openid" || seen.contains(&scope) {
            continue;
        }
        seen.push(scope);
        if ctx.realm.defines_scope(scope) {
            continue;
        }
        out.push(Finding::new(
            RULE,
            Severity::Warning,
            format!("clientScopes[{scope}]"),
            format!(
                "the MCP server lists the scope `{scope}` (scopes_supported of its protected \
                 resource metadata) but the realm defines no client scope `{scope}`, so Keycloak \
                 answers invalid_scope to any client asking for it. Define the client scope (and \
                 make it optional for MCP clients), or drop it from the server's scopes"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{LintOptions, lint};
    use super::*;

    #[test]
    fn the_offline_access_fixture_yields_a_warning() {
        let found = findings(&fixture("lint-07-no-offline-access.json"));
        assert_finding(
            &found,
            "LINT-07",
            Severity::Warning,
            "clients[nextcloud-mcp-server].optionalClientScopes",
        );
    }

    #[test]
    fn the_mcp_scope_fixture_yields_a_warning_per_undefined_scope() {
        let opts = LintOptions {
            mcp_scopes: Some(vec![
                "openid".into(),
                "notes.read".into(),
                "offline_access".into(),
            ]),
            ..LintOptions::default()
        };
        let found = lint(&fixture("lint-11-undefined-mcp-scope.json"), &opts);
        assert_eq!(of(&found, "LINT-11").len(), 1, "{found:#?}");
        assert_finding(
            &found,
            "LINT-11",
            Severity::Warning,
            "clientScopes[notes.read]",
        );
    }

    #[test]
    fn the_baseline_defines_offline_access_and_every_scope_of_the_reference_server() {
        let opts = LintOptions {
            mcp_scopes: Some(vec![
                "openid".into(),
                "notes.read".into(),
                "todo.write".into(),
            ]),
            ..LintOptions::default()
        };
        let found = lint(&baseline(), &opts);
        assert_eq!(of(&found, "LINT-07"), vec![]);
        assert_eq!(of(&found, "LINT-11"), vec![]);
    }

    #[test]
    fn another_mcp_client_can_be_named() {
        let opts = LintOptions {
            mcp_client: "nextcloud".into(),
            mcp_scopes: None,
        };
        assert_eq!(of(&lint(&baseline(), &opts), "LINT-07"), vec![]);
        let opts = LintOptions {
            mcp_client: "absent".into(),
            mcp_scopes: None,
        };
        assert_finding(
            &lint(&baseline(), &opts),
            "LINT-07",
            Severity::Warning,
            "clients",
        );
    }
}
