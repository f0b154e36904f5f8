//! Static lint of a realm file: mistakes Keycloak accepts silently, or that break the
//! OAuth flows an MCP deployment needs, found without starting Keycloak.
//!
//! Each rule has a stable ID (`LINT-01`...), never reused; [`RULES`] lists them in order.
//! Every finding says what to do. Rules read the typed [`Realm`] and never change it.
//!
//! **Paths.** A finding's `path` is the JSON path in the realm file, in the style of
//! [`super::diff`]: object keys joined with `.` (attribute keys keep their own dots:
//! `clients[nextcloud-mcp-server].attributes.standard.token.exchange.enabled`), and a list
//! element in brackets by its identity: `clientId` for clients, `name` for client scopes,
//! `username` for users, `name/subType` for registration policies (abbreviated to
//! `components.ClientRegistrationPolicy[Trusted Hosts/anonymous]`), `name` for protocol
//! mappers. An element whose identity is missing or shared with another element of its
//! list is named by its 0-based index instead (`clients[3]`). Lists of plain values
//! (redirect URIs, credentials) are indexed. Something the realm lacks is named where it
//! would be (`clientScopes[notes.read]`, `clients` for a missing client).
//!
//! | rule | severity | finds |
//! |---|---|---|
//! | LINT-01 | error (near miss), warning, info (26.7 only) | client attribute keys Keycloak does not know |
//! | LINT-02 | error | token exchange on, no audience mapper reaching the tokens it receives |
//! | LINT-03 | error (public), warning (confidential) | authorization code flow without PKCE S256 |
//! | LINT-04 | error (`*`, host wildcards), warning (non-loopback path or port wildcards) | redirect URI wildcards |
//! | LINT-05 | error, info (masked) | literal secrets that look like examples or defaults |
//! | LINT-06 | error, warning | anonymous DCR refused from loopback, or left unguarded |
//! | LINT-07 | warning | `offline_access` not optional for the MCP server's client |
//! | LINT-08 | error | a service account on a public client |
//! | LINT-09 | error | duplicate `clientId` |
//! | LINT-10 | error | duplicate client scope name |
//! | LINT-11 | warning | a scope the MCP server lists that the realm does not define |

mod attributes;
mod duplicates;
mod exchange;
mod known_keys;
mod pkce;
mod redirects;
mod registration;
pub mod report;
mod scopes;
mod secrets;
mod service_accounts;
mod tokens;

use serde::Serialize;

use super::diff::REGISTRATION_POLICY_TYPE;
use super::model::{Component, Realm};

/// How bad a finding is. Any `error` makes `validate-realm` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding: which rule, how bad, where in the file, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

/// What the rules need besides the realm.
#[derive(Clone, Debug)]
pub struct LintOptions {
    /// The clientId of the MCP server's own client (LINT-07).
    pub mcp_client: String,
    /// Scopes the MCP server lists or requests (its PRM `scopes_supported`), when known
    /// (LINT-11).
    pub mcp_scopes: Option<Vec<String>>,
}

impl Default for LintOptions {
    fn default() -> Self {
        Self {
            mcp_client: crate::keycloak::realm::MCP_SERVER_CLIENT.to_owned(),
            mcp_scopes: None,
        }
    }
}

/// A rule's ID and a title for reports (a JUnit test case per rule).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
}

/// Every rule, in the order findings are reported.
pub const RULES: &[Rule] = &[
    rule("LINT-01", "client attribute keys Keycloak knows"),
    rule(
        "LINT-02",
        "a token-exchange client is in the audience of the tokens it receives",
    ),
    rule("LINT-03", "PKCE is enforced with S256"),
    rule("LINT-04", "no redirect URI wildcards beyond loopback"),
    rule("LINT-05", "no example or default secrets"),
    rule("LINT-06", "anonymous DCR is accepted from loopback"),
    rule(
        "LINT-07",
        "offline_access is an optional scope of the MCP server's client",
    ),
    rule("LINT-08", "no service account on a public client"),
    rule("LINT-09", "clientIds are unique"),
    rule("LINT-10", "client scope names are unique"),
    rule(
        "LINT-11",
        "the realm defines every scope the MCP server uses",
    ),
    rule("LINT-12", "refresh tokens are rotated"),
    rule("LINT-13", "user tokens carry sub (the basic scope)"),
];

const fn rule(id: &'static str, title: &'static str) -> Rule {
    Rule { id, title }
}

/// Runs every rule; findings come rule by rule, each rule's in file order.
pub fn lint(realm: &Realm, opts: &LintOptions) -> Vec<Finding> {
    let ctx = Ctx {
        realm,
        opts,
        paths: Paths::new(realm),
    };
    let mut out = Vec::new();
    attributes::check(&ctx, &mut out);
    exchange::check(&ctx, &mut out);
    pkce::check(&ctx, &mut out);
    redirects::check(&ctx, &mut out);
    secrets::check(&ctx, &mut out);
    registration::check(&ctx, &mut out);
    scopes::check_offline_access(&ctx, &mut out);
    service_accounts::check(&ctx, &mut out);
    duplicates::check_clients(&ctx, &mut out);
    duplicates::check_scopes(&ctx, &mut out);
    scopes::check_mcp_scopes(&ctx, &mut out);
    tokens::check_rotation(&ctx, &mut out);
    tokens::check_sub(&ctx, &mut out);
    out
}

/// What every rule reads.
pub(crate) struct Ctx<'a> {
    pub realm: &'a Realm,
    pub opts: &'a LintOptions,
    pub paths: Paths,
}

/// The path of each list element, per the module doc's style.
pub(crate) struct Paths {
    clients: Vec<String>,
    scopes: Vec<String>,
    users: Vec<String>,
    policies: Vec<String>,
}

/// How registration policies are named in paths (as in [`super::diff`]).
pub(crate) const REGISTRATION_POLICIES_PATH: &str = "components.ClientRegistrationPolicy";

impl Paths {
    fn new(realm: &Realm) -> Self {
        let policies = registration_policies(realm);
        Self {
            clients: element_paths("clients", realm.clients.iter().map(|c| c.client_id.clone())),
            scopes: element_paths(
                "clientScopes",
                realm.client_scopes().iter().map(|s| s.name.clone()),
            ),
            users: element_paths("users", realm.users.iter().map(|u| u.username.clone())),
            policies: element_paths(
                REGISTRATION_POLICIES_PATH,
                policies
                    .iter()
                    .map(|p| Some(format!("{}/{}", p.name.as_deref()?, p.sub_type.as_deref()?))),
            ),
        }
    }

    pub fn client(&self, i: usize) -> &str {
        &self.clients[i]
    }

    pub fn scope(&self, i: usize) -> &str {
        &self.scopes[i]
    }

    pub fn user(&self, i: usize) -> &str {
        &self.users[i]
    }

    pub fn registration_policy(&self, i: usize) -> &str {
        &self.policies[i]
    }
}

/// `list[identity]` when the identity is present and unique, else `list[index]`.
fn element_paths(list: &str, ids: impl Iterator<Item = Option<String>>) -> Vec<String> {
    let ids: Vec<Option<String>> = ids.collect();
    ids.iter()
        .enumerate()
        .map(|(i, id)| match id {
            Some(id)
                if !id.is_empty() && ids.iter().filter(|x| x.as_ref() == Some(id)).count() == 1 =>
            {
                format!("{list}[{id}]")
            }
            _ => format!("{list}[{i}]"),
        })
        .collect()
}

/// The realm's client-registration policies (`components[REGISTRATION_POLICY_TYPE]`).
pub(crate) fn registration_policies(realm: &Realm) -> &[Component] {
    realm
        .components
        .get(REGISTRATION_POLICY_TYPE)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

impl Finding {
    pub(crate) fn new(
        rule: &'static str,
        severity: Severity,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            severity,
            path: path.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures: `fixtures/realms/lint-NN-<slug>.json`, each a small valid realm that
    //! triggers exactly its rule.

    use super::*;
    use crate::keycloak::realm::RealmFile;

    pub fn fixture(name: &str) -> Realm {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/realms")
            .join(name);
        Realm::load(&path).unwrap_or_else(|e| panic!("{e:#}")).1
    }

    pub fn baseline() -> Realm {
        Realm::from_value(&RealmFile::baseline().json, "baseline").unwrap()
    }

    pub fn findings(realm: &Realm) -> Vec<Finding> {
        lint(realm, &LintOptions::default())
    }

    /// Asserts a finding of that rule, severity and path exists.
    pub fn assert_finding(findings: &[Finding], rule: &str, severity: Severity, path: &str) {
        assert!(
            findings
                .iter()
                .any(|f| f.rule == rule && f.severity == severity && f.path == path),
            "no {rule} {severity:?} at {path} in {findings:#?}"
        );
    }

    /// The findings of one rule.
    pub fn of(findings: &[Finding], rule: &str) -> Vec<Finding> {
        findings
            .iter()
            .filter(|f| f.rule == rule)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    /// Fixture per rule: rule ID, file name.
    const FIXTURES: &[(&str, &str)] = &[
        ("LINT-01", "lint-01-unknown-attribute.json"),
        ("LINT-02", "lint-02-exchange-without-audience.json"),
        ("LINT-03", "lint-03-public-client-without-pkce.json"),
        ("LINT-04", "lint-04-wildcard-redirect.json"),
        ("LINT-05", "lint-05-example-secret.json"),
        ("LINT-06", "lint-06-dcr-refused-from-loopback.json"),
        ("LINT-07", "lint-07-no-offline-access.json"),
        ("LINT-08", "lint-08-public-service-account.json"),
        ("LINT-09", "lint-09-duplicate-client-id.json"),
        ("LINT-10", "lint-10-duplicate-scope-name.json"),
        ("LINT-11", "lint-11-undefined-mcp-scope.json"),
        ("LINT-12", "lint-12-no-refresh-rotation.json"),
        ("LINT-13", "lint-13-no-basic-scope.json"),
    ];

    #[test]
    fn the_baseline_has_no_error_finding() {
        let found = findings(&baseline());
        let errors: Vec<&Finding> = found
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn the_baseline_warns_only_about_the_mcp_servers_deliberate_lack_of_pkce() {
        let found = findings(&baseline());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_finding(
            &found,
            "LINT-03",
            Severity::Warning,
            "clients[nextcloud-mcp-server].attributes.pkce.code.challenge.method",
        );
    }

    #[test]
    fn every_rule_has_a_fixture_that_triggers_only_that_rule() {
        assert_eq!(FIXTURES.len(), RULES.len());
        for ((rule, file), r) in FIXTURES.iter().zip(RULES) {
            assert_eq!(*rule, r.id);
            let realm = fixture(file);
            let opts = LintOptions {
                mcp_scopes: (*rule == "LINT-11").then(|| vec!["notes.read".to_owned()]),
                ..LintOptions::default()
            };
            let found = lint(&realm, &opts);
            assert!(!found.is_empty(), "{file} triggers nothing");
            let others: Vec<&Finding> = found.iter().filter(|f| f.rule != *rule).collect();
            assert!(others.is_empty(), "{file} also triggers {others:#?}");
        }
    }

    #[test]
    fn findings_serialize_with_lowercase_severity() {
        let f = Finding::new("LINT-01", Severity::Warning, "clients[x]", "do this");
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"rule": "LINT-01", "severity": "warning", "path": "clients[x]", "message": "do this"})
        );
    }

    #[test]
    fn paths_use_identity_when_unique_and_index_otherwise() {
        let ids = [Some("a"), Some("b"), Some("a"), None, Some("")].map(|x| x.map(str::to_owned));
        assert_eq!(
            element_paths("clients", ids.into_iter()),
            [
                "clients[0]",
                "clients[b]",
                "clients[2]",
                "clients[3]",
                "clients[4]"
            ]
        );
    }
}
