//! Aligning the realm with the scopes the MCP server lists and requests.
//!
//! Keycloak refuses an authorization request naming a scope it does not know
//! (`invalid_scope`), and the reference server asks for scopes its metadata does not list
//! (`sharing.read`), so a realm that lags the server breaks every login through it. The
//! session compares both sets with the realm, creates what is missing as optional client
//! scopes, and offers them to the server's client and through the registration policies.
//! The comparison is kept for the check that reports it.

use anyhow::Context;
use serde_json::{Value, json};

use crate::keycloak::admin::{AdminClient, expect_status};

/// Scopes Keycloak handles without a client scope of that name.
const BUILT_IN: &[&str] = &["openid"];

/// The registration policy provider whose list limits the scopes a registered client gets.
const ALLOWED_SCOPES_POLICY: &str = "allowed-client-templates";
const POLICY_TYPE: &str =
    "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";

/// What the comparison found and what the session changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScopeAlignment {
    /// The metadata's `scopes_supported`.
    pub listed: Vec<String>,
    /// What the server asks the IdP for.
    pub requested: Vec<String>,
    /// Listed or requested, but no client scope of the realm has that name.
    pub missing: Vec<String>,
    /// Defined in the realm but neither a default nor an optional scope of the server's client.
    pub not_offered: Vec<String>,
    /// Client scopes the session created (deleted with the realm).
    pub created: Vec<String>,
    /// Scopes the session made optional scopes of the server's client.
    pub attached: Vec<String>,
    /// Registration policies (`name (subType)`) the session extended.
    pub policies_updated: Vec<String>,
}

impl ScopeAlignment {
    /// Everything the server names, sorted, without duplicates.
    pub fn wanted(&self) -> Vec<String> {
        sorted_union(&self.listed, &self.requested)
    }
}

/// Compares `listed` and `requested` with `realm`; when `change` is true, creates what is
/// missing and offers it to `client_id` and the allowed-client-scopes policies.
pub async fn align(
    admin: &AdminClient,
    realm: &str,
    client_id: &str,
    listed: &[String],
    requested: &[String],
    change: bool,
) -> anyhow::Result<ScopeAlignment> {
    let mut out = ScopeAlignment {
        listed: sorted_union(listed, &[]),
        requested: sorted_union(requested, &[]),
        ..Default::default()
    };
    let wanted: Vec<String> = out
        .wanted()
        .into_iter()
        .filter(|s| !BUILT_IN.contains(&s.as_str()))
        .collect();
    let defined = names_and_ids(&admin.client_scopes(realm).await?);
    let client = admin
        .client_by_client_id(realm, client_id)
        .await?
        .with_context(|| format!("the realm {realm} has no client {client_id}"))?;
    let client_path = format!("/realms/{realm}/clients/{}", client.id);
    let mut offered = Vec::new();
    for kind in ["default-client-scopes", "optional-client-scopes"] {
        let list = admin.get_json(&format!("{client_path}/{kind}")).await?;
        offered.extend(names_and_ids(list.as_array().map_or(&[][..], |v| v)));
    }
    for scope in &wanted {
        if !defined.iter().any(|(n, _)| n == scope) {
            out.missing.push(scope.clone());
        } else if !offered.iter().any(|(n, _)| n == scope) {
            out.not_offered.push(scope.clone());
        }
    }
    if !change {
        return Ok(out);
    }
    for scope in out.missing.clone() {
        let id = create_scope(admin, realm, &scope).await?;
        out.created.push(scope.clone());
        attach(admin, &client_path, &id, &scope).await?;
        out.attached.push(scope);
    }
    for scope in out.not_offered.clone() {
        let (_, id) = defined.iter().find(|(n, _)| *n == scope).expect("defined");
        attach(admin, &client_path, id, &scope).await?;
        out.attached.push(scope);
    }
    if !out.created.is_empty() {
        out.policies_updated = allow_in_policies(admin, realm, &out.created).await?;
    }
    Ok(out)
}

/// `(name, id)` of each client scope representation.
fn names_and_ids(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|s| Some((s["name"].as_str()?.to_owned(), s["id"].as_str()?.to_owned())))
        .collect()
}

/// Creates an OIDC client scope that appears in the token's `scope` claim; returns its id.
async fn create_scope(admin: &AdminClient, realm: &str, name: &str) -> anyhow::Result<String> {
    let resp = admin
        .post(
            &format!("/realms/{realm}/client-scopes"),
            &json!({
                "name": name,
                "protocol": "openid-connect",
                "attributes": {
                    "include.in.token.scope": "true",
                    "display.on.consent.screen": "true"
                }
            }),
        )
        .await?;
    expect_status(&resp, 201, &format!("creating the client scope {name}"))?;
    resp.header("location")
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_owned)
        .with_context(|| format!("creating the client scope {name}: no Location header"))
}

async fn attach(
    admin: &AdminClient,
    client_path: &str,
    id: &str,
    name: &str,
) -> anyhow::Result<()> {
    let resp = admin
        .put(
            &format!("{client_path}/optional-client-scopes/{id}"),
            &Value::Null,
        )
        .await?;
    expect_status(
        &resp,
        204,
        &format!("making {name} an optional scope of the client"),
    )
}

/// Adds `names` to every allowed-client-scopes registration policy (anonymous and
/// authenticated); returns the policies changed.
async fn allow_in_policies(
    admin: &AdminClient,
    realm: &str,
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut changed = Vec::new();
    for mut policy in admin.components(realm, POLICY_TYPE).await? {
        if policy["providerId"] != ALLOWED_SCOPES_POLICY {
            continue;
        }
        let list = policy["config"]["allowed-client-scopes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut allowed: Vec<String> = list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let before = allowed.len();
        for n in names {
            if !allowed.contains(n) {
                allowed.push(n.clone());
            }
        }
        if allowed.len() == before {
            continue;
        }
        policy["config"]["allowed-client-scopes"] = json!(allowed);
        let id = policy["id"]
            .as_str()
            .context("a component without id")?
            .to_owned();
        let resp = admin
            .put(&format!("/realms/{realm}/components/{id}"), &policy)
            .await?;
        let label = format!(
            "{} ({})",
            policy["name"].as_str().unwrap_or("?"),
            policy["subType"].as_str().unwrap_or("?")
        );
        expect_status(&resp, 204, &format!("updating the policy {label}"))?;
        changed.push(label);
    }
    Ok(changed)
}

fn sorted_union(a: &[String], b: &[String]) -> Vec<String> {
    let mut all: Vec<String> = a.iter().chain(b).cloned().collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_merges_listed_and_requested() {
        let a = ScopeAlignment {
            listed: vec!["notes.read".into(), "openid".into()],
            requested: vec!["sharing.read".into(), "openid".into()],
            ..Default::default()
        };
        assert_eq!(a.wanted(), ["notes.read", "openid", "sharing.read"]);
    }

    #[test]
    fn names_and_ids_skip_malformed_entries() {
        let list = [json!({"name": "a", "id": "1"}), json!({"name": "b"})];
        assert_eq!(names_and_ids(&list), [("a".to_owned(), "1".to_owned())]);
    }
}
