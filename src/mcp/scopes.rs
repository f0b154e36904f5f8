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
        offer_to_new_clients(admin, realm, &id, &scope).await?;
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

/// Makes scope `id` an optional scope of the client at `client_path`.
async fn attach(
    admin: &AdminClient,
    client_path: &str,
    id: &str,
    name: &str,
) -> anyhow::Result<()> {
    put_empty(
        admin,
        &format!("{client_path}/optional-client-scopes/{id}"),
        &format!("making {name} an optional scope of the client"),
    )
    .await
}

/// Makes a created scope one of the realm's default optional scopes, so clients registered
/// later (the MCP client the harness registers by DCR) may ask for it.
async fn offer_to_new_clients(
    admin: &AdminClient,
    realm: &str,
    id: &str,
    name: &str,
) -> anyhow::Result<()> {
    let what = format!("making {name} a default optional scope of the realm");
    put_empty(
        admin,
        &format!("/realms/{realm}/default-optional-client-scopes/{id}"),
        &what,
    )
    .await
}

/// A body-less PUT that must answer 204.
async fn put_empty(admin: &AdminClient, path: &str, what: &str) -> anyhow::Result<()> {
    let resp = admin.put(path, &Value::Null).await?;
    expect_status(&resp, 204, what)
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
    use crate::http::Http;
    use crate::secret::{Secret, SecretKind};
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const R: &str = "/admin/realms/r";

    async fn mock_keycloak() -> MockServer {
        let kc = MockServer::start().await;
        let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
        let routes = [
            (
                "/realms/master/protocol/openid-connect/token",
                "POST",
                ok(json!({"access_token": "admin-token-1234", "expires_in": 60})),
            ),
            (
                "/admin/realms/r/client-scopes",
                "GET",
                ok(json!([{"name": "profile", "id": "p"}, {"name": "notes.read", "id": "n"}])),
            ),
            (
                "/admin/realms/r/clients",
                "GET",
                ok(json!([{"id": "c1", "clientId": "srv"}])),
            ),
            (
                "/admin/realms/r/clients/c1/default-client-scopes",
                "GET",
                ok(json!([{"name": "profile", "id": "p"}])),
            ),
            (
                "/admin/realms/r/clients/c1/optional-client-scopes",
                "GET",
                ok(json!([])),
            ),
            (
                "/admin/realms/r/components",
                "GET",
                ok(json!([
                    {"id": "k1", "name": "Allowed Client Scopes", "providerId": ALLOWED_SCOPES_POLICY,
                     "subType": "anonymous", "config": {"allowed-client-scopes": ["notes.read"]}},
                    {"id": "k2", "name": "Trusted Hosts", "providerId": "trusted-hosts",
                     "subType": "anonymous", "config": {}}
                ])),
            ),
        ];
        for (p, m, resp) in routes {
            Mock::given(method(m))
                .and(path(p))
                .respond_with(resp)
                .mount(&kc)
                .await;
        }
        let created = ResponseTemplate::new(201)
            .insert_header("Location", format!("{}{R}/client-scopes/new-id", kc.uri()));
        Mock::given(method("POST"))
            .and(path(format!("{R}/client-scopes")))
            .and(body_partial_json(json!({"name": "sharing.read",
                "attributes": {"include.in.token.scope": "true"}})))
            .respond_with(created)
            .expect(1)
            .mount(&kc)
            .await;
        for id in ["new-id", "n"] {
            Mock::given(method("PUT"))
                .and(path(format!("{R}/clients/c1/optional-client-scopes/{id}")))
                .respond_with(ResponseTemplate::new(204))
                .expect(1)
                .mount(&kc)
                .await;
        }
        Mock::given(method("PUT"))
            .and(path(format!("{R}/default-optional-client-scopes/new-id")))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&kc)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("{R}/components/k1")))
            .and(body_partial_json(
                json!({"config": {"allowed-client-scopes":
                ["notes.read", "sharing.read"]}}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&kc)
            .await;
        kc
    }

    #[tokio::test]
    async fn creates_the_missing_offers_the_unoffered_and_extends_the_policy() {
        let kc = mock_keycloak().await;
        let admin = AdminClient::new(
            Http::new(std::time::Duration::from_secs(5)),
            &kc.uri(),
            "admin",
            Secret::new(SecretKind::Password, "admin-password-1"),
        );
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let listed = s(&["openid", "profile", "notes.read"]);
        let requested = s(&["openid", "sharing.read"]);
        let out = align(&admin, "r", "srv", &listed, &requested, true)
            .await
            .unwrap();
        assert_eq!(out.missing, ["sharing.read"]);
        assert_eq!(out.not_offered, ["notes.read"]);
        assert_eq!(out.created, ["sharing.read"]);
        assert_eq!(out.attached, ["sharing.read", "notes.read"]);
        assert_eq!(out.policies_updated, ["Allowed Client Scopes (anonymous)"]);
        // `expect(1)` on each change is verified when the mock server drops.
    }

    #[tokio::test]
    async fn compares_without_changing_when_told_not_to() {
        let kc = mock_keycloak().await;
        let admin = AdminClient::new(
            Http::new(std::time::Duration::from_secs(5)),
            &kc.uri(),
            "admin",
            Secret::new(SecretKind::Password, "admin-password-1"),
        );
        let requested = vec!["sharing.read".to_owned()];
        let out = align(&admin, "r", "srv", &[], &requested, false)
            .await
            .unwrap();
        assert_eq!(out.missing, ["sharing.read"]);
        assert!(out.created.is_empty() && out.attached.is_empty());
        let changes = kc
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() != "GET" && !r.url.path().ends_with("/token"))
            .count();
        assert_eq!(changes, 0);
        kc.reset().await; // the change mocks' `expect(1)` do not apply here
    }

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
