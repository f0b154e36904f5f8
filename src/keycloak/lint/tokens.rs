//! What the tokens of the realm must carry for the deployment behind it.
//!
//! LINT-12 (error): refresh-token rotation. The MCP authorization specification requires
//! an authorization server to rotate refresh tokens for public clients (OAuth 2.1 §4.3.1,
//! cited by MCP authorization "Token Theft"); MCP clients are public clients, usually
//! registered dynamically, and Keycloak rotates only realm-wide (`revokeRefreshToken`,
//! false by default), with `refreshTokenMaxReuse` reuses allowed before revoking. TOKEN-02
//! observes it live.
//!
//! LINT-13 (error): the `basic` client scope. Since Keycloak 25 the `sub` claim comes from
//! the `basic` scope's mapper; a token of a client without it has no `sub`, so Nextcloud's
//! user_oidc (which maps users by `sub`) logs nobody in and the MCP server falls back to
//! `preferred_username`. It counts as a default scope of the client, or, for clients
//! registered dynamically (every MCP client), in `defaultDefaultClientScopes`.

use super::{Ctx, Finding, Severity};

const ROTATION: &str = "LINT-12";
const SUB: &str = "LINT-13";
/// The scope whose `oidc-sub-mapper` puts `sub` into tokens (Keycloak 25 and later).
const BASIC: &str = "basic";

pub(super) fn check_rotation(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let realm = ctx.realm;
    if realm.revoke_refresh_token != Some(true) {
        out.push(Finding::new(
            ROTATION,
            Severity::Error,
            "revokeRefreshToken".to_owned(),
            "refresh tokens are not rotated (revokeRefreshToken is not true): a stolen refresh token \
             of a public MCP client stays usable. The MCP authorization specification requires \
             rotation for public clients (OAuth 2.1 §4.3.1). Set revokeRefreshToken to true"
                .to_owned(),
        ));
    } else if let Some(reuse) = realm.refresh_token_max_reuse.filter(|n| *n > 0) {
        out.push(Finding::new(
            ROTATION,
            Severity::Warning,
            "refreshTokenMaxReuse".to_owned(),
            format!(
                "a refresh token may be reused {reuse} time(s) before it is revoked, so rotation \
                 lets a stolen token through that many times. Set refreshTokenMaxReuse to 0"
            ),
        ));
    }
}

pub(super) fn check_sub(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let realm = ctx.realm;
    let has_basic = |scopes: &Option<Vec<String>>| {
        scopes
            .as_ref()
            .is_some_and(|s| s.iter().any(|n| n == BASIC))
    };
    // A file without `defaultDefaultClientScopes` gets Keycloak's defaults, basic included.
    if realm.default_default_client_scopes.is_some()
        && !has_basic(&realm.default_default_client_scopes)
    {
        out.push(Finding::new(
            SUB,
            Severity::Error,
            "defaultDefaultClientScopes".to_owned(),
            format!(
                "`{BASIC}` is not a realm default scope: clients registered dynamically (every \
                 MCP client) get tokens without `sub`, which Nextcloud's user_oidc needs to name \
                 the user. Add `{BASIC}` to defaultDefaultClientScopes"
            ),
        ));
    }
    for (i, client) in realm.clients.iter().enumerate() {
        let issues_user_tokens =
            client.standard_flow_enabled != Some(false) && client.bearer_only != Some(true);
        if !issues_user_tokens
            || client.default_client_scopes.is_none()
            || has_basic(&client.default_client_scopes)
        {
            continue;
        }
        out.push(Finding::new(
            SUB,
            Severity::Error,
            format!("{}.defaultClientScopes", ctx.paths.client(i)),
            format!(
                "`{}` issues user tokens without the `{BASIC}` scope, so they carry no `sub` \
                 (Keycloak 25 and later): Nextcloud's user_oidc logs nobody in with them. Add \
                 `{BASIC}` to its defaultClientScopes",
                client.client_id()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_rotation_fixture_yields_an_error() {
        let found = findings(&fixture("lint-12-no-refresh-rotation.json"));
        assert_finding(&found, ROTATION, Severity::Error, "revokeRefreshToken");
    }

    #[test]
    fn the_sub_fixture_yields_errors_for_the_realm_defaults_and_the_client() {
        let found = findings(&fixture("lint-13-no-basic-scope.json"));
        assert_finding(&found, SUB, Severity::Error, "defaultDefaultClientScopes");
        assert_finding(
            &found,
            SUB,
            Severity::Error,
            "clients[nextcloud-mcp-server].defaultClientScopes",
        );
    }

    #[test]
    fn the_baseline_rotates_and_issues_sub() {
        let found = findings(&baseline());
        assert_eq!(of(&found, ROTATION), vec![]);
        assert_eq!(of(&found, SUB), vec![]);
    }
}
