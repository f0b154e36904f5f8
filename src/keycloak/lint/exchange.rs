//! LINT-02 (error): a client allowed to exchange tokens (`standard.token.exchange.enabled`)
//! that no audience mapper puts into the audience of the user tokens it will receive.
//!
//! Standard Token Exchange (V2) refuses a subject token unless the caller is its `azp` or
//! in its `aud`: 403 `Client is not within the token audience`
//! (`AbstractTokenExchangeProvider`); the MCP server also rejects tokens whose `aud` lacks
//! its client id before it exchanges anything. Keycloak adds no client to `aud` by itself,
//! only an `oidc-audience-mapper` does, and only with `access.token.claim: "true"`
//! (`OIDCAttributeMapperHelper.includeInAccessToken`).
//!
//! The tokens a client will receive are issued to other clients (MCP clients, usually
//! registered dynamically) or, behind a proxy like the reference server's, to itself. So
//! the mapper counts when it reaches tokens of some client: on a realm default default
//! scope (every dynamically registered client gets those), or on a client that issues
//! user tokens (this one included), as its own mapper or on one of its default scopes.
//! Optional scopes do not count: only tokens that request them carry their mappers.

use super::{Ctx, Finding, Severity};
use crate::keycloak::model::{ProtocolMapper, Realm};

const RULE: &str = "LINT-02";
const SWITCH: &str = "standard.token.exchange.enabled";
const AUDIENCE_MAPPER: &str = "oidc-audience-mapper";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        // `Boolean.parseBoolean`: "true" in any case.
        let enabled = client
            .attribute(SWITCH)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let id = client.client_id();
        if !enabled || id.is_empty() || audience_reaches_tokens(ctx.realm, id) {
            continue;
        }
        let unused = mappers_anywhere(ctx, id);
        let hint = if unused.is_empty() {
            String::new()
        } else {
            format!(
                " The audience mapper at {} does not count: its scope is not a default scope of \
                 any client that gets user tokens, or it does not set access.token.claim to \"true\".",
                unused.join(", ")
            )
        };
        out.push(Finding::new(
            RULE,
            Severity::Error,
            format!("{}.attributes.{SWITCH}", ctx.paths.client(i)),
            format!(
                "`{id}` may exchange tokens, but no audience mapper puts `{id}` into the access \
                 tokens it will receive, so Keycloak refuses its exchanges with 403 \"Client is \
                 not within the token audience\".{hint} Add an {AUDIENCE_MAPPER} with \
                 included.client.audience \"{id}\" and access.token.claim \"true\" to a client \
                 scope listed in defaultDefaultClientScopes (as the baseline's `mcp-audiences` does)"
            ),
        ));
    }
}

/// Whether some token-issuing path carries an audience mapper for `id` (module doc).
fn audience_reaches_tokens(realm: &Realm, id: &str) -> bool {
    let scope_has = |name: &String| {
        realm
            .scope(name)
            .is_some_and(|s| s.protocol_mappers.iter().any(|m| puts_in_audience(m, id)))
    };
    realm.default_scopes().iter().any(scope_has)
        || realm
            .clients
            .iter()
            .filter(|c| c.issues_user_tokens())
            .any(|c| {
                c.protocol_mappers.iter().any(|m| puts_in_audience(m, id))
                    || c.effective_scopes(realm).0.iter().any(scope_has)
            })
}

/// An audience mapper for `id` that writes into access tokens.
fn puts_in_audience(m: &ProtocolMapper, id: &str) -> bool {
    names_audience(m, id) && m.config.get("access.token.claim") == Some("true")
}

fn names_audience(m: &ProtocolMapper, id: &str) -> bool {
    m.protocol_mapper.as_deref() == Some(AUDIENCE_MAPPER)
        && (m.config.get("included.client.audience") == Some(id)
            || m.config.get("included.custom.audience") == Some(id))
}

/// Paths of audience mappers for `id` wherever they are (for the message).
fn mappers_anywhere(ctx: &Ctx<'_>, id: &str) -> Vec<String> {
    let name = |m: &ProtocolMapper| m.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (i, s) in ctx.realm.client_scopes().iter().enumerate() {
        for m in s.protocol_mappers.iter().filter(|m| names_audience(m, id)) {
            out.push(format!(
                "{}.protocolMappers[{}]",
                ctx.paths.scope(i),
                name(m)
            ));
        }
    }
    for (i, c) in ctx.realm.clients.iter().enumerate() {
        for m in c.protocol_mappers.iter().filter(|m| names_audience(m, id)) {
            out.push(format!(
                "{}.protocolMappers[{}]",
                ctx.paths.client(i),
                name(m)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::keycloak::model::Realm;

    #[test]
    fn the_fixture_yields_an_error() {
        let found = findings(&fixture("lint-02-exchange-without-audience.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "clients[nextcloud-mcp-server].attributes.standard.token.exchange.enabled",
        );
    }

    #[test]
    fn the_baseline_puts_the_mcp_server_into_every_tokens_audience() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }

    fn realm(scope_mapper_claim: &str, default_scopes: &str) -> Realm {
        Realm::from_text(
            &format!(
                r#"{{"realm": "r", "defaultDefaultClientScopes": {default_scopes},
                "clientScopes": [{{"name": "aud", "protocolMappers": [{{"name": "m",
                  "protocolMapper": "oidc-audience-mapper",
                  "config": {{"included.client.audience": "x", "access.token.claim": "{scope_mapper_claim}"}}}}]}}],
                "clients": [{{"clientId": "x", "defaultClientScopes": [],
                  "attributes": {{"standard.token.exchange.enabled": "TRUE"}}}}]}}"#
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn a_realm_default_scope_with_the_mapper_is_enough() {
        assert_eq!(of(&findings(&realm("true", r#"["aud"]"#)), RULE), vec![]);
    }

    #[test]
    fn a_mapper_that_skips_access_tokens_or_sits_on_no_default_scope_does_not_count() {
        for r in [realm("false", r#"["aud"]"#), realm("true", "[]")] {
            let found = of(&findings(&r), RULE);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert!(
                found[0]
                    .message
                    .contains("clientScopes[aud].protocolMappers[m]"),
                "{}",
                found[0].message
            );
        }
    }
}
