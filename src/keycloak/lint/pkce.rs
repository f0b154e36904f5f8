//! LINT-03: PKCE not enforced with S256 for a client that uses the authorization code flow.
//!
//! **error** on a public client (RFC 7636 §1: a public client's code is otherwise
//! redeemable by whoever intercepts it; OAuth 2.1 and the MCP authorization spec require
//! PKCE), **warning** on a confidential one (it authenticates at the token endpoint; the
//! reference server's proxy sends no PKCE, so its client deliberately has none).
//!
//! Enforced means the client attribute `pkce.code.challenge.method` is `S256`, or an
//! enabled client policy applies a profile with the `pkce-enforcer` executor to this
//! client at authorization time. Conditions are evaluated the way
//! `DefaultClientPolicyManager.isSatisfied` does at an authorization request: `any-client`
//! votes yes, `client-access-type` yes or no by the client's type, the `client-updater-*`
//! conditions abstain (they vote only on registration and update), `is-negative-logic`
//! swaps yes and no, at least one yes is needed and any no (or, in `STRICT` mode, any
//! abstention) fails. A condition this lint cannot evaluate statically proves nothing.

use serde_json::Value;

use super::{Ctx, Finding, Severity};
use crate::keycloak::model::{Client, ClientPolicy, Condition, Realm, has_placeholder};

const RULE: &str = "LINT-03";
const KEY: &str = "pkce.code.challenge.method";
const EXECUTOR: &str = "pkce-enforcer";

/// Keycloak's global client profiles that contain a `pkce-enforcer` (both versions'
/// `keycloak-default-client-profiles.json`).
const GLOBAL_PKCE_PROFILES: &[&str] = &[
    "fapi-1-baseline",
    "fapi-2-security-profile",
    "fapi-2-message-signing",
    "oauth-2-1-for-confidential-client",
    "oauth-2-1-for-public-client",
    "fapi-2-dpop-security-profile",
    "fapi-2-dpop-message-signing",
];

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        if !client.is_oidc() || client.is_bearer_only() || !client.standard_flow() {
            continue;
        }
        let method = client.attribute(KEY);
        if method == Some("S256")
            || method.is_some_and(has_placeholder)
            || covered_by_policy(ctx.realm, client)
        {
            continue;
        }
        let now = match method {
            None | Some("") => "is not set".to_owned(),
            Some(m) => format!("is \"{m}\""),
        };
        let id = client.client_id();
        let (severity, message) = if client.is_public() {
            (
                Severity::Error,
                format!(
                    "public client `{id}` uses the authorization code flow without PKCE S256 ({KEY} \
                     {now}, and no enabled client policy with a {EXECUTOR} covers it), so an \
                     intercepted code can be redeemed by anyone (RFC 7636 §1; required by OAuth 2.1 \
                     and the MCP authorization spec). Set attributes.{KEY} to \"S256\""
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "confidential client `{id}` does not require PKCE S256 ({KEY} {now}, and no \
                     enabled client policy with a {EXECUTOR} covers it). Set attributes.{KEY} to \
                     \"S256\" once every login through this client sends PKCE (the reference MCP \
                     server's proxy sends none, so its own client stays without)"
                ),
            )
        };
        out.push(Finding::new(
            RULE,
            severity,
            format!("{}.attributes.{KEY}", ctx.paths.client(i)),
            message,
        ));
    }
}

/// Whether an enabled policy applies a PKCE-enforcing profile to `client` at
/// authorization requests.
fn covered_by_policy(realm: &Realm, client: &Client) -> bool {
    let Some(policies) = &realm.client_policies else {
        return false;
    };
    policies
        .policies
        .iter()
        .filter(|p| p.enabled == Some(true))
        .filter(|p| p.profiles.iter().any(|name| enforces_pkce(realm, name)))
        .any(|p| applies_at_authorization(p, client))
}

fn enforces_pkce(realm: &Realm, profile: &str) -> bool {
    GLOBAL_PKCE_PROFILES.contains(&profile)
        || realm.client_profiles.as_ref().is_some_and(|ps| {
            ps.profiles.iter().any(|p| {
                p.name.as_deref() == Some(profile)
                    && p.executors
                        .iter()
                        .any(|e| e.executor.as_deref() == Some(EXECUTOR))
            })
        })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Vote {
    Yes,
    No,
    Abstain,
    /// Not decidable from the file (roles, scopes, hosts...).
    Unknown,
}

fn applies_at_authorization(policy: &ClientPolicy, client: &Client) -> bool {
    let strict = policy
        .mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("STRICT"));
    let mut yes = false;
    for condition in &policy.conditions {
        match vote(condition, client) {
            Vote::Yes => yes = true,
            Vote::Abstain if !strict => {}
            Vote::Abstain | Vote::No | Vote::Unknown => return false,
        }
    }
    yes
}

fn vote(condition: &Condition, client: &Client) -> Vote {
    let config = &condition.configuration;
    let vote = match condition.condition.as_deref().unwrap_or_default() {
        "any-client" => Vote::Yes,
        "client-access-type" => {
            let kind = if client.is_public() {
                "public"
            } else if client.is_bearer_only() {
                "bearer-only"
            } else {
                "confidential"
            };
            if strings(&config["type"]).contains(&kind) {
                Vote::Yes
            } else {
                Vote::No
            }
        }
        c if c.starts_with("client-updater-") => Vote::Abstain,
        _ => Vote::Unknown,
    };
    let negative = matches!(&config["is-negative-logic"], Value::Bool(true))
        || config["is-negative-logic"].as_str() == Some("true");
    match (negative, vote) {
        (true, Vote::Yes) => Vote::No,
        (true, Vote::No) => Vote::Yes,
        (_, v) => v,
    }
}

/// A list of strings, or one string.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_fixture_yields_an_error_for_the_public_client() {
        let found = findings(&fixture("lint-03-public-client-without-pkce.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "clients[mcp-inspector].attributes.pkce.code.challenge.method",
        );
    }

    #[test]
    fn the_baseline_mcp_server_gets_a_warning_not_an_error() {
        let found = of(&findings(&baseline()), RULE);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Warning);
    }

    fn realm_with_policy(conditions: &str, public: bool) -> Realm {
        Realm::from_text(
            &format!(
                r#"{{"realm": "r", "clients": [{{"clientId": "c", "publicClient": {public}}}],
                "clientProfiles": {{"profiles": [{{"name": "p", "executors": [{{"executor": "pkce-enforcer", "configuration": {{"auto-configure": "true"}}}}]}}]}},
                "clientPolicies": {{"policies": [{{"name": "x", "enabled": true, "conditions": {conditions}, "profiles": ["p"]}}]}}}}"#
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn policies_cover_clients_as_keycloak_evaluates_them_at_authorization() {
        let covered = |conditions: &str, public: bool| {
            of(&findings(&realm_with_policy(conditions, public)), RULE).is_empty()
        };
        let by_type = r#"[{"condition": "client-updater-context", "configuration": {}},
                          {"condition": "client-access-type", "configuration": {"type": ["public"]}}]"#;
        assert!(covered(by_type, true));
        assert!(!covered(by_type, false));
        assert!(covered(r#"[{"condition": "any-client"}]"#, false));
        let only_at_registration =
            r#"[{"condition": "client-updater-context", "configuration": {}}]"#;
        assert!(!covered(only_at_registration, true));
        let negated = r#"[{"condition": "client-access-type", "configuration": {"type": ["public"], "is-negative-logic": true}}]"#;
        assert!(covered(negated, false));
        assert!(!covered(
            r#"[{"condition": "client-roles", "configuration": {}}]"#,
            true
        ));
    }
}
