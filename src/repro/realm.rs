//! The small realm the reproduction imports, defined in code, and the Legacy V1
//! permissions it grants through the admin API.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::model::SetupStep;
use crate::keycloak::admin::AdminClient;
use crate::secret::{Secret, SecretKind};

pub const REALM: &str = "repro-impersonation";
pub const REQUESTER: &str = "requester";
pub const TARGET: &str = "target";
pub const LOGIN: &str = "repro-login";
pub const ALICE: &str = "alice";
pub const BOB: &str = "bob";
/// The name of the client policy the "with permissions" column attaches.
pub const POLICY: &str = "repro-allow-requester";

/// The realm's secrets, fresh for every run.
#[derive(Clone, Debug)]
pub struct ReproRealm {
    pub alice_password: Secret,
    pub bob_password: Secret,
    pub requester_secret: Secret,
    pub target_secret: Secret,
}

impl ReproRealm {
    pub fn generate() -> Self {
        Self {
            alice_password: Secret::generate(SecretKind::Password, 18),
            bob_password: Secret::generate(SecretKind::Password, 18),
            requester_secret: Secret::generate(SecretKind::ClientSecret, 24),
            target_secret: Secret::generate(SecretKind::ClientSecret, 24),
        }
    }

    /// The realm representation for `POST /admin/realms`.
    ///
    /// - `requester`: confidential, `standard.token.exchange.enabled` (Standard V2's switch),
    ///   and an audience mapper putting `target` into its own tokens: V2's `audience` only
    ///   narrows what the requester could get, it never adds.
    /// - `target`: confidential, the other audience.
    /// - `repro-login`: public, password grant only, with an audience mapper putting
    ///   `requester` into alice's token (V2 and V1 both require the requester in the
    ///   subject token's `aud`). A reproduction device, not a recommendation: it only
    ///   stands in for a browser login.
    pub fn representation(&self) -> Value {
        json!({
            "realm": REALM,
            "enabled": true,
            "users": [
                user(ALICE, "Alice", &self.alice_password),
                user(BOB, "Bob", &self.bob_password),
            ],
            "clients": [
                {
                    "clientId": REQUESTER,
                    "name": "Requester (exchanges tokens)",
                    "enabled": true,
                    "publicClient": false,
                    "clientAuthenticatorType": "client-secret",
                    "secret": self.requester_secret.expose(),
                    "standardFlowEnabled": false,
                    "directAccessGrantsEnabled": false,
                    "serviceAccountsEnabled": false,
                    "attributes": { "standard.token.exchange.enabled": "true" },
                    "protocolMappers": [audience_mapper("audience target", TARGET)],
                },
                {
                    "clientId": TARGET,
                    "name": "Target (the other audience)",
                    "enabled": true,
                    "publicClient": false,
                    "clientAuthenticatorType": "client-secret",
                    "secret": self.target_secret.expose(),
                    "standardFlowEnabled": false,
                    "directAccessGrantsEnabled": false,
                    "serviceAccountsEnabled": false,
                },
                {
                    "clientId": LOGIN,
                    "name": "Reproduction only: password grant for alice's subject token",
                    "enabled": true,
                    "publicClient": true,
                    "standardFlowEnabled": false,
                    "directAccessGrantsEnabled": true,
                    "protocolMappers": [audience_mapper("audience requester", REQUESTER)],
                },
            ],
        })
    }

    pub fn token_endpoint(base_url: &str) -> String {
        format!("{base_url}/realms/{REALM}/protocol/openid-connect/token")
    }
}

fn user(username: &str, first: &str, password: &Secret) -> Value {
    json!({
        "username": username,
        "enabled": true,
        "email": format!("{username}@repro.invalid"),
        "emailVerified": true,
        "firstName": first,
        "lastName": "Repro",
        "credentials": [{ "type": "password", "value": password.expose(), "temporary": false }],
    })
}

fn audience_mapper(name: &str, audience: &str) -> Value {
    json!({
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "consentRequired": false,
        "config": {
            "included.client.audience": audience,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    })
}

/// What the realm gives every column.
pub fn realm_settings() -> Vec<String> {
    vec![
        format!(
            "`{REQUESTER}`: confidential, `standard.token.exchange.enabled: \"true\"`, audience mapper adding `{TARGET}`"
        ),
        format!("`{TARGET}`: confidential"),
        format!("`{LOGIN}`: public, password grant, audience mapper adding `{REQUESTER}`"),
    ]
}

/// The settings the "with permissions" column adds.
pub fn permission_settings() -> Vec<String> {
    vec![
        format!(
            "`{TARGET}`: client management permissions enabled; client policy `{POLICY}` (clients: `{REQUESTER}`) on its `token-exchange` permission"
        ),
        format!(
            "users management permissions enabled; the same policy on `impersonate` (`admin-impersonating.permission.users`)"
        ),
    ]
}

/// Grants Legacy V1 what it needs, through the admin API (fine-grained admin permissions
/// V1): `requester` may exchange to `target`, and may impersonate users. Every call is
/// appended to `steps`, the failing one included.
pub async fn grant_v1_permissions(
    admin: &AdminClient,
    steps: &mut Vec<SetupStep>,
) -> anyhow::Result<()> {
    let target = client_uuid(admin, TARGET).await?;
    let requester = client_uuid(admin, REQUESTER).await?;
    let realm_mgmt = client_uuid(admin, "realm-management").await?;
    let authz = format!("/realms/{REALM}/clients/{realm_mgmt}/authz/resource-server");

    let perms = call(
        admin,
        steps,
        &format!("enable client management permissions on `{TARGET}`"),
        "PUT",
        &format!("/realms/{REALM}/clients/{target}/management/permissions"),
        Some(json!({"enabled": true})),
        200,
    )
    .await?;
    let exchange_perm = scope_permission(&perms, "token-exchange")?;

    let policy = call(
        admin,
        steps,
        &format!("create client policy `{POLICY}` allowing `{REQUESTER}`"),
        "POST",
        &format!("{authz}/policy/client"),
        Some(json!({
            "name": POLICY,
            "logic": "POSITIVE",
            "decisionStrategy": "UNANIMOUS",
            "clients": [requester],
        })),
        201,
    )
    .await?;
    let policy_id = policy["id"]
        .as_str()
        .context("the created policy has no id")?
        .to_owned();
    attach(
        admin,
        steps,
        &authz,
        &exchange_perm,
        &policy_id,
        "token-exchange",
    )
    .await?;

    let users = call(
        admin,
        steps,
        "enable users management permissions",
        "PUT",
        &format!("/realms/{REALM}/users-management-permissions"),
        Some(json!({"enabled": true})),
        200,
    )
    .await?;
    let impersonate_perm = scope_permission(&users, "impersonate")?;
    attach(
        admin,
        steps,
        &authz,
        &impersonate_perm,
        &policy_id,
        "impersonate",
    )
    .await
}

async fn client_uuid(admin: &AdminClient, client_id: &str) -> anyhow::Result<String> {
    Ok(admin
        .client_by_client_id(REALM, client_id)
        .await?
        .with_context(|| format!("client {client_id} not found in realm {REALM}"))?
        .id)
}

fn scope_permission(rep: &Value, scope: &str) -> anyhow::Result<String> {
    rep["scopePermissions"][scope]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no `{scope}` in scopePermissions: {rep}"))
}

/// Attaches `policy` to the scope permission `perm` (GET, then PUT of the whole
/// representation: the PUT overwrites name, logic and decision strategy).
async fn attach(
    admin: &AdminClient,
    steps: &mut Vec<SetupStep>,
    authz: &str,
    perm: &str,
    policy: &str,
    scope: &str,
) -> anyhow::Result<()> {
    let path = format!("{authz}/permission/scope/{perm}");
    let mut rep = call(
        admin,
        steps,
        &format!("read the `{scope}` permission"),
        "GET",
        &path,
        None,
        200,
    )
    .await?;
    rep["policies"] = json!([policy]);
    call(
        admin,
        steps,
        &format!("attach `{POLICY}` to the `{scope}` permission"),
        "PUT",
        &path,
        Some(rep),
        0,
    )
    .await?;
    Ok(())
}

/// One admin call; `want` 0 accepts any 2xx. Returns the JSON body (null when empty).
async fn call(
    admin: &AdminClient,
    steps: &mut Vec<SetupStep>,
    what: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> anyhow::Result<Value> {
    let mut step = SetupStep {
        what: what.to_owned(),
        method: method.to_owned(),
        path: format!("/admin{path}"),
        status: None,
    };
    let body = body.unwrap_or(Value::Null);
    let resp = match method {
        "GET" => admin.get(path).await,
        "POST" => admin.post(path, &body).await,
        "PUT" => admin.put(path, &body).await,
        other => bail!("unsupported method {other}"),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            steps.push(step);
            return Err(e.context(format!("{what}: {method} /admin{path}")));
        }
    };
    step.status = Some(resp.status);
    steps.push(step);
    let ok = if want == 0 {
        resp.is_success()
    } else {
        resp.status == want
    };
    if !ok {
        bail!("{what}: {method} /admin{path}: {}", resp.summary());
    }
    if resp.body.is_empty() {
        Ok(Value::Null)
    } else {
        resp.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_realm_carries_what_each_provider_checks() {
        let r = ReproRealm::generate();
        let rep = r.representation();
        let client = |id: &str| {
            rep["clients"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["clientId"] == id)
                .unwrap()
                .clone()
        };
        let requester = client(REQUESTER);
        assert_eq!(
            requester["attributes"]["standard.token.exchange.enabled"],
            "true"
        );
        assert_eq!(requester["publicClient"], false);
        assert_eq!(
            requester["protocolMappers"][0]["config"]["included.client.audience"],
            TARGET
        );
        let login = client(LOGIN);
        assert_eq!(login["publicClient"], true);
        assert_eq!(login["directAccessGrantsEnabled"], true);
        assert_eq!(
            login["protocolMappers"][0]["config"]["included.client.audience"],
            REQUESTER
        );
        assert_eq!(
            rep["users"][0]["credentials"][0]["value"],
            r.alice_password.expose()
        );
    }
}
